"""Values of a torch.save file's tensors, one at a time: the pickle is read again as data
(nothing is unpickled), and only the bytes a tensor's view spans are read — from its zip member
`<archive>/data/<key>` (stored uncompressed by torch; a repacked, compressed member is read
through zipfile up to the same bound) or from the legacy file's storage section."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from inspector.errors import CorruptModelError, ValuesUnavailableError
from inspector.formats.source import Source
from inspector.formats.torch.container import ZIP_ERRORS, Loaded
from inspector.formats.torch.reader import check_bounds, locate_checkpoint, open_checkpoint
from inspector.formats.torch.vocabulary import TensorData
from inspector.formats.values import read_at
from inspector.model import FileFormat

# A compressed storage's span is inflated into memory whole; above this `compare` leaves it
# unverified (a tensor this size costs about three times as much while it is compared).
MAX_INFLATED_SPAN = 64 * 1024 * 1024


class TorchValues:
    def __init__(
        self,
        path: Source,
        handle: BinaryIO,
        archive: zipfile.ZipFile | None,
        loaded: Loaded,
        tensors: dict[str, TensorData],
    ) -> None:
        self._path = path
        self._handle = handle
        self._archive = archive
        self._loaded = loaded
        self._tensors = tensors

    def read(self, key: str) -> np.ndarray:
        data = self._tensors.get(key)
        if data is None:
            raise ValuesUnavailableError(f"{self._path}: no tensor '{key}' in the state dict")
        if data.dtype.numpy is None and data.dtype.name != "bfloat16":
            raise ValuesUnavailableError(
                f"{self._path}: tensor '{key}' is {data.dtype.name}, not decoded for comparison"
            )
        itemsize = data.dtype.itemsize
        if data.numel == 0:
            return np.zeros(data.size, dtype=np.float32)
        # Only the span the view touches: from its offset to its last element.
        last = sum((n - 1) * s for n, s in zip(data.size, data.stride, strict=True))
        begin, length = data.offset * itemsize, (last + 1) * itemsize
        raw = self._bytes(data.storage.key, begin, length)
        if len(raw) != length:
            raise CorruptModelError(f"{self._path}: tensor '{key}' is cut short: file truncated")
        order = "<" if self._loaded.byteorder == "little" else ">"
        if data.dtype.name == "bfloat16":
            bits = np.frombuffer(raw, dtype=f"{order}u2").astype(np.uint32) << 16
            flat = bits.view(np.float32)
        else:
            flat = np.frombuffer(raw, dtype=f"{order}{data.dtype.numpy}")
        strides = tuple(s * flat.itemsize for s in data.stride)
        view = np.lib.stride_tricks.as_strided(flat, shape=data.size, strides=strides)
        return np.array(view)  # a contiguous copy, independent of the buffer

    def _bytes(self, key: str, begin: int, length: int) -> bytes:
        place = self._loaded.places[key]
        if begin + length > place.nbytes:
            raise CorruptModelError(f"{self._path}: a view of storage '{key}' runs past its end")
        if place.member is None or self._archive is None:
            return read_at(self._handle, place.offset + begin, length)
        try:
            info = self._archive.getinfo(place.member)
            # torch.save stores storages uncompressed; a repacked, compressed member can inflate
            # a few KB into gigabytes, so only a bounded span of one is ever inflated.
            if info.compress_type != zipfile.ZIP_STORED and length > MAX_INFLATED_SPAN:
                raise ValuesUnavailableError(
                    f"{self._path}: storage '{key}' is compressed in the archive and its tensor "
                    f"spans {length:,} bytes, over the {MAX_INFLATED_SPAN:,}-byte limit for "
                    "inflating (torch.save stores storages uncompressed)"
                )
            with self._archive.open(place.member) as member:
                member.seek(begin)
                return member.read(length)
        except ZIP_ERRORS as error:
            raise CorruptModelError(f"{self._path}: damaged zip member ({error})") from None


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[TorchValues]:
    loaded = open_checkpoint(path)
    found = locate_checkpoint(path, loaded)
    tensors: dict[str, TensorData] = {}
    for named in found.parameters:
        check_bounds(path, named)
        tensors.setdefault(named.name, named.tensor)
    with path.open() as handle:
        if loaded.layout == "legacy":  # zip and TorchScript archives hold storages as members
            yield TorchValues(path, handle, None, loaded, tensors)
            return
        try:
            archive = zipfile.ZipFile(handle)
        except ZIP_ERRORS as error:
            raise CorruptModelError(f"{path}: not a readable zip archive ({error})") from None
        with archive:
            yield TorchValues(path, handle, archive, loaded, tensors)
