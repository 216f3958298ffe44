"""Values of a Hugging Face checkpoint directory's tensors, one at a time: the shard the index
names for a tensor (every shard name held inside the directory, `formats.hf.paths`) is opened
with its own format's value reader, one shard at a time."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import numpy as np

from inspector.errors import ValuesUnavailableError
from inspector.formats.hf.reader import checkpoint_root, weight_files
from inspector.formats.source import Source
from inspector.formats.values import ValueReader
from inspector.model import FileFormat

_READERS = {
    ".safetensors": ("inspector.formats.safetensors.values", FileFormat.SAFETENSORS),
    ".bin": ("inspector.formats.torch.values", FileFormat.PYTORCH),
}


class CheckpointValues:
    def __init__(self, root: Source, shards: dict[str, Source]) -> None:
        self._root = root
        self._shards = shards
        self._open: tuple[Source, ValueReader] | None = None
        self._stack = ExitStack()

    def read(self, key: str) -> np.ndarray:
        path = self._shards.get(key) or self._shards.get("")
        if path is None:
            raise ValuesUnavailableError(f"{self._root}: no shard holds tensor {key[:80]!r}")
        return self._reader(path).read(key)

    def _reader(self, path: Source) -> ValueReader:
        """The shard's reader; the one opened before is closed first (a checkpoint of many
        shards never holds more than one open)."""
        if self._open is not None and self._open[0] == path:
            return self._open[1]
        self._stack.close()
        self._stack = ExitStack()
        module, file_format = _READERS.get(path.suffix, _READERS[".bin"])
        opener: AbstractContextManager[ValueReader] = importlib.import_module(module).open_reader(
            path, file_format
        )
        reader = self._stack.enter_context(opener)
        self._open = (path, reader)
        return reader

    def close(self) -> None:
        self._stack.close()
        self._open = None


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[CheckpointValues]:
    root, index_name = checkpoint_root(path)
    reader = CheckpointValues(root, weight_files(root, index_name))
    try:
        yield reader
    finally:
        reader.close()
