"""Values of a GGUF file for `compare`: one tensor at a time, read at the offset its (checked)
tensor info gives and dequantized to float32 in chunks of blocks (`quants`), in the shape the
report shows (PyTorch's order, GGUF's ne reversed).

`tolerance(key)` gives, per element, how far each value may be from the float it was quantized
from (`quants.tolerance`: one quantization step of its block plus the rounding of the block's
float16 scale), or None for types stored exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from inspector.errors import CorruptModelError, ValuesUnavailableError
from inspector.formats.gguf import quants
from inspector.formats.gguf.container import Container, TensorInfo, read_container
from inspector.formats.source import Source
from inspector.formats.values import read_at
from inspector.model import FileFormat

CHUNK_BLOCKS = 1 << 14  # blocks decoded at a time: bounds the temporaries to a few MB


class GgufValues:
    def __init__(self, path: Source, handle: BinaryIO, container: Container) -> None:
        self._path = path
        self._handle = handle
        self._order = ">" if container.big_endian else "<"
        self._tensors = {info.name: info for info in container.tensors}

    def _info(self, key: str) -> TensorInfo:
        info = self._tensors.get(key)
        if info is None:
            raise ValuesUnavailableError(f"{self._path}: no tensor '{key}'")
        name = info.type.name
        if name not in quants.DECODERS and name not in quants.PLAIN and name != "BF16":
            raise ValuesUnavailableError(
                f"{self._path}: tensor '{key}' is ggml {name}, which rnninspect does not "
                f"dequantize (it decodes {', '.join(supported())}): values not compared"
            )
        return info

    def _raw(self, info: TensorInfo) -> bytes:
        data = read_at(self._handle, info.begin, info.nbytes)
        if len(data) != info.nbytes:
            raise CorruptModelError(f"{self._path}: tensor '{info.name}' is cut short")
        return data

    def read(self, key: str) -> np.ndarray:
        info = self._info(key)
        raw, name = self._raw(info), info.type.name
        if name in quants.PLAIN:
            return np.frombuffer(raw, self._order + quants.PLAIN[name]).reshape(info.shape)
        if name == "BF16":
            return quants.bfloat16(raw, self._order).reshape(info.shape)
        return self._blocks(info, raw, quants.DECODERS[name]).reshape(info.shape)

    def tolerance(self, key: str) -> np.ndarray | None:
        """Per element, how far a value may be from its unquantized source (see
        `quants.tolerance`); None for types stored exactly."""
        info = self._info(key)
        name = info.type.name
        step_of = quants.STEPS.get(name)
        if step_of is None and name not in quants.FLOAT_PRECISION:
            return None
        values = self.read(key).astype(np.float32).reshape(-1)
        step = None
        if step_of is not None:
            step = self._blocks(info, self._raw(info), step_of).reshape(-1)
        bound = quants.tolerance(step, values, name)
        return None if bound is None else bound.reshape(info.shape)

    def _blocks(self, info: TensorInfo, raw: bytes, decode: quants.Decoder) -> np.ndarray:
        """`decode` over the tensor's blocks, a chunk at a time; a result of one column per
        block (a step) spreads over the block's elements."""
        kind = info.type
        blocks = np.frombuffer(raw, np.uint8).reshape(-1, kind.size)
        out = np.empty((blocks.shape[0], kind.elements), np.float32)
        for start in range(0, blocks.shape[0], CHUNK_BLOCKS):
            out[start : start + CHUNK_BLOCKS] = decode(
                blocks[start : start + CHUNK_BLOCKS], self._order
            )
        return out


def supported() -> list[str]:
    return sorted({*quants.PLAIN, "BF16", *quants.DECODERS})


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[GgufValues]:
    container = read_container(path)
    with path.open() as handle:
        yield GgufValues(path, handle, container)
