"""Values of ONNX tensors, by the keys the ONNX reader gives them.

The file is memory-mapped read-only and its wire format walked again (metadata only, as for a
report); a requested tensor's payload is then decoded from the map, from typed fields or from an
external data file in the model's folder. A per-direction view (`W[0]`) or bias half
(`B[0][:64]`) is cut from its stacked tensor; a weight the graph computes from stored tensors is
evaluated along its chain (`onnx_eval`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from inspector.errors import CorruptModelError, ValuesUnavailableError
from inspector.formats.onnx import wire as onnx_wire
from inspector.formats.onnx.evaluate import evaluate
from inspector.formats.onnx.graph import GraphError, Index, ValueId
from inspector.formats.onnx.keys import split_view_key
from inspector.formats.onnx.payload import decode
from inspector.formats.ranges import Buffer
from inspector.formats.source import Source
from inspector.formats.values import read_at
from inspector.model import FileFormat


class OnnxValues:
    def __init__(self, path: Source, handle: BinaryIO, buf: Buffer, index: Index) -> None:
        self._path = path
        self._handle = handle
        self._buf = buf
        self._index = index
        self._folder = path.parent
        # Keys as the reader makes them: a stored tensor's own key, else `scope path|name`.
        self._keys: dict[str, ValueId] = {}
        for vid in index.values:
            self._keys.setdefault(f"{index.scopes[vid.scope].path}|{vid.name}", vid)
        for vid, value in index.values.items():
            if value.stored is not None:
                self._keys[value.stored.key] = vid

    def read(self, key: str) -> np.ndarray:
        vid = self._keys.get(key)
        if vid is not None:
            return self._value(vid)
        view = split_view_key(key)
        base = self._keys.get(view.base) if view is not None else None
        if view is None or base is None:
            raise ValuesUnavailableError(f"{self._path}: no tensor '{key}'")
        stacked = self._value(base)
        if stacked.ndim == 0 or view.direction >= stacked.shape[0]:
            raise ValuesUnavailableError(
                f"{self._path}: '{view.base}' has shape {list(stacked.shape)}, no direction "
                f"{view.direction}"
            )
        return stacked[view.direction][..., view.start : view.stop]

    def _value(self, vid: ValueId) -> np.ndarray:
        return evaluate(self._index, vid, self._stored)

    def _stored(self, vid: ValueId) -> np.ndarray | None:
        value = self._index.values.get(vid)
        if value is None or value.stored is None or value.stored.meta is None:
            return None  # computed (or a Constant list attribute, evaluated as an op)
        return decode(self._buf, value.stored, self._folder, self._read_at)

    def _read_at(self, offset: int, length: int) -> bytes:
        data = read_at(self._handle, offset, length)
        if len(data) != length:
            raise CorruptModelError(f"{self._path}: a tensor payload runs past the end of file")
        return data


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[OnnxValues]:
    with path.open() as handle, path.view() as buf:
        try:
            index = Index(onnx_wire.parse_model(buf))
        except (onnx_wire.WireError, onnx_wire.TooLargeError, GraphError) as error:
            raise CorruptModelError(f"{path}: damaged ONNX file ({error})") from None
        yield OnnxValues(path, handle, buf, index)
