"""Values of SavedModel variables, for `rnninspect compare`: one tensor's bytes read from its
data shard at the offset and size its `BundleEntryProto` gives (tensor_bundle.cc writes
fixed-size types as raw little-endian arrays). Shards are found beside the index, never through
a link out of the directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import BinaryIO

import numpy as np

from inspector.errors import CorruptModelError, NotFoundError, ValuesUnavailableError
from inspector.formats.savedmodel.bundle import Bundle, BundleError, read_bundle, shard_name
from inspector.formats.savedmodel.reader import INDEX, member, savedmodel_root
from inspector.formats.source import Source
from inspector.formats.values import read_at
from inspector.model import FileFormat

_NUMPY = {
    "float32": "<f4",
    "float64": "<f8",
    "float16": "<f2",
    "int8": "i1",
    "uint8": "u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "int64": "<i8",
    "uint64": "<u8",
    "bool": "|b1",
}


class SavedModelValues:
    def __init__(self, root: Source, bundle: Bundle, stack: ExitStack) -> None:
        self._root = root
        self._bundle = bundle
        self._entries = {entry.key: entry for entry in bundle.entries}
        self._stack = stack
        self._shards: dict[int, BinaryIO] = {}

    def read(self, key: str) -> np.ndarray:
        entry = self._entries.get(key)
        if entry is None:
            raise ValuesUnavailableError(f"{self._root}: no checkpoint key '{key}'")
        numpy_type = _NUMPY.get(entry.dtype.name)
        if numpy_type is None or entry.shape is None or entry.sliced:
            raise ValuesUnavailableError(
                f"{self._root}: '{key}' ({entry.dtype.name}) is not decoded for comparison"
            )
        needed = int(np.prod(entry.shape, dtype=np.int64)) * entry.dtype.itemsize
        if entry.size != needed:
            raise CorruptModelError(
                f"{self._root}: '{key}' has shape {entry.shape} ({needed:,} bytes) but stores "
                f"{entry.size:,}"
            )
        data = read_at(self._shard(entry.shard_id), entry.offset, needed)
        if len(data) != needed:
            raise CorruptModelError(f"{self._root}: '{key}' is cut short: shard truncated")
        return np.frombuffer(data, dtype=numpy_type).reshape(entry.shape)

    def _shard(self, shard_id: int) -> BinaryIO:
        handle = self._shards.get(shard_id)
        if handle is None:
            name = "variables/" + shard_name("variables", shard_id, self._bundle.num_shards)
            try:
                handle = self._stack.enter_context(member(self._root, name).open())
            except (OSError, NotFoundError) as error:
                raise ValuesUnavailableError(
                    f"{self._root / name}: cannot be read "
                    f"({getattr(error, 'strerror', None) or error})"
                ) from None
            self._shards[shard_id] = handle
        return handle


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[SavedModelValues]:
    root = savedmodel_root(path)
    try:
        with member(root, INDEX).view() as buf:
            bundle = read_bundle(buf)
    except (OSError, ValueError) as error:
        raise NotFoundError(f"{root / INDEX}: cannot be read ({error})") from None
    except BundleError as error:
        raise CorruptModelError(f"{root / INDEX}: {error}") from None
    with ExitStack() as stack:
        yield SavedModelValues(root, bundle, stack)
