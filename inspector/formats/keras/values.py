"""Values of Keras weights: one HDF5 dataset read per request, reached through hard links only.

A `.keras` archive's weights file is read in place through the read-only window the reader
uses (never extracted); external datasets are never read.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import h5py
import numpy as np

from inspector.errors import CorruptModelError, ValuesUnavailableError
from inspector.formats.hdf5_tree import HDF5_ERRORS, child, outside_data
from inspector.formats.keras.archive import open_weights
from inspector.formats.source import Source
from inspector.model import FileFormat

_NUMERIC_KINDS = frozenset("fiub")
_OPEN_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, *HDF5_ERRORS)


class Hdf5Values:
    def __init__(self, path: Source, handle: h5py.File | None) -> None:
        self._path = path
        self._handle = handle  # None: a .keras archive without a weights file

    def read(self, key: str) -> np.ndarray:
        if self._handle is None:
            raise ValuesUnavailableError(f"{self._path}: the archive stores no weights file")
        node: object = self._handle
        for part in (p for p in key.split("/") if p):
            if not isinstance(node, h5py.Group):
                node = None
                break
            node = child(node, part)
        if not isinstance(node, h5py.Dataset):
            raise ValuesUnavailableError(f"{self._path}: no dataset '{key}' reached by hard links")
        try:
            where = outside_data(node)
            if where is not None:  # external raw files, or a virtual dataset's sources
                raise ValuesUnavailableError(
                    f"{self._path}: dataset '{key}' keeps its data in {where}; not read"
                )
            if node.dtype.kind not in _NUMERIC_KINDS:
                raise ValuesUnavailableError(
                    f"{self._path}: dataset '{key}' holds {node.dtype}, not numbers"
                )
            return np.asarray(node[()])
        except HDF5_ERRORS as error:
            raise CorruptModelError(
                f"{self._path}: dataset '{key}' cannot be read ({error}); the file is damaged"
            ) from None


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[Hdf5Values]:
    with ExitStack() as stack:
        raw = stack.enter_context(path.open())
        try:
            handle: h5py.File | None = None
            if file_format is FileFormat.KERAS_V3:
                archive = stack.enter_context(zipfile.ZipFile(raw))
                member = open_weights(path, archive)
                if member is not None:
                    stack.enter_context(member)
                    handle = stack.enter_context(h5py.File(member, "r"))
            else:
                handle = stack.enter_context(h5py.File(raw, "r"))
        except _OPEN_ERRORS as error:
            raise CorruptModelError(f"{path}: cannot be opened to read values ({error})") from None
        yield Hdf5Values(path, handle)
