"""Values of a safetensors state dict: one tensor's bytes read at the offsets its header gives
(the header is validated by the reader; nothing is unpickled)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import BinaryIO

import numpy as np

from inspector.errors import CorruptModelError, ValuesUnavailableError
from inspector.formats.safetensors.reader import Entry, read_any
from inspector.formats.source import Source
from inspector.formats.values import read_at
from inspector.model import FileFormat


class SafetensorsValues:
    def __init__(self, path: Source, stack: ExitStack, entries: dict[str, Entry]) -> None:
        self._path = path
        self._stack = stack
        self._handles: dict[str, BinaryIO] = {}  # by shard ("": the file itself)
        self._entries = entries

    def read(self, key: str) -> np.ndarray:
        entry = self._entries.get(key)
        if entry is None:
            raise ValuesUnavailableError(f"{self._path}: no tensor '{key}'")
        data = read_at(self._handle(entry.shard), entry.begin, entry.end - entry.begin)
        if len(data) != entry.end - entry.begin:
            raise CorruptModelError(f"{self._path}: tensor '{key}' is cut short: file truncated")
        if entry.dtype.name == "bfloat16":
            bits = np.frombuffer(data, dtype="<u2")
            return (bits.astype(np.uint32) << 16).view(np.float32).reshape(entry.shape)
        if entry.dtype.numpy is None:
            raise ValuesUnavailableError(
                f"{self._path}: tensor '{key}' is {entry.dtype.name}, not decoded for comparison"
            )
        return np.frombuffer(data, dtype=entry.dtype.numpy).reshape(entry.shape)

    def _handle(self, shard: str) -> BinaryIO:
        handle = self._handles.get(shard)
        if handle is None:
            file = self._path.parent / shard if shard else self._path
            handle = self._handles[shard] = self._stack.enter_context(file.open())
        return handle


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[SafetensorsValues]:
    entries = {entry.name: entry for entry in read_any(path).entries}
    with ExitStack() as stack:
        yield SafetensorsValues(path, stack, entries)
