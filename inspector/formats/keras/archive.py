""".keras archives (Keras 3 and tf_keras): `config.json` + `metadata.json` + `model.weights.h5`
in a zip file.

The archive is read in place, never extracted: the weights member is opened by h5py through a
read-only window onto the archive file (members are stored uncompressed by Keras), so only the
HDF5 metadata is read, whatever the model's size. A deflated weights member (an archive zipped
again by hand) is inflated once into memory, up to MAX_INFLATED_BYTES: zipfile would inflate it
again from the start on every backward seek h5py makes.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import IO, cast

import h5py

from inspector.errors import CorruptModelError, NotAModelError
from inspector.formats.bounded_json import MAX_JSON_BYTES, check_json_size, load_json
from inspector.formats.hdf5_tree import HDF5_ERRORS, external_references, optimizer_state
from inspector.formats.keras import layers as keras_layers
from inspector.formats.keras import v3 as keras_v3
from inspector.formats.keras.config import parse_model_config
from inspector.formats.source import Source
from inspector.model import FileFormat, Model

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
MAX_INFLATED_BYTES = 256 * 1024 * 1024
_ARCHIVE_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    *HDF5_ERRORS,
)
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")


def read(path: Source) -> Model:
    with path.open() as raw, open_archive(path, raw) as archive:
        try:
            return _read_archive(path, archive)
        except _ARCHIVE_ERRORS as error:
            raise CorruptModelError(f"{path}: damaged .keras archive ({error})") from None


def open_archive(path: Source, raw: IO[bytes]) -> zipfile.ZipFile:
    """The zip's central directory, read from the end of `raw` (the file `path` opened)."""
    try:
        return zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise CorruptModelError(
            f"{path}: has a zip signature but is not a readable zip archive ({error}); "
            "the file is probably truncated"
        ) from None


def _read_archive(path: Source, archive: zipfile.ZipFile) -> Model:
    names = set(archive.namelist())
    if CONFIG not in names:
        if any(name.endswith("data.pkl") for name in names):
            raise NotAModelError(
                f"{path}: a PyTorch checkpoint (zip holding pickled data): rnninspect never "
                "unpickles; export the model to ONNX or save its state dict as .safetensors"
            )
        shown = ", ".join(sorted(names)[:5]) or "nothing"
        raise NotAModelError(
            f"{path}: zip archive without '{CONFIG}': not a Keras .keras file (holds {shown})"
        )
    document = _json_member(path, archive, CONFIG)
    metadata = _json_member(path, archive, METADATA) if METADATA in names else {}
    config = parse_model_config(document)
    warnings: list[str] = []
    groups: dict[str, list] = {}
    optimizer = None
    if WEIGHTS in names:
        with _open_member(path, archive, WEIGHTS) as member, h5py.File(member, "r") as weights:
            groups = keras_v3.map_layers(weights, config, warnings)
            warnings.extend(external_references(weights))
            optimizer = optimizer_state(weights, "optimizer", path)
    else:
        warnings.append(f"the archive has no '{WEIGHTS}': counts come from nothing stored")
    built = keras_layers.build(config, groups)
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return Model(
        path=str(path),
        format=FileFormat.KERAS_V3,
        producer=f"keras {version}" if isinstance(version, str) else None,
        layers=built.layers,
        recurrent_layers=built.recurrent_layers,
        inputs=built.inputs,
        outputs=built.outputs,
        trainable_known=True,
        optimizer=optimizer,
        warnings=tuple(warnings) + built.warnings,
    )


def _json_member(path: Source, archive: zipfile.ZipFile, name: str) -> object:
    info = archive.getinfo(name)
    where = f"{path}: '{name}'"
    check_json_size(info.file_size, where)
    with archive.open(info) as member:
        raw = member.read(MAX_JSON_BYTES + 1)  # the size in the directory may lie
    return load_json(raw, where)


def open_weights(path: Source, archive: zipfile.ZipFile) -> io.RawIOBase | IO[bytes] | None:
    """The archive's weights file opened read-only in place, never extracted (value comparison
    reads datasets through it); None when the archive has none."""
    if WEIGHTS not in set(archive.namelist()):
        return None
    return _open_member(path, archive, WEIGHTS)


def _open_member(path: Source, archive: zipfile.ZipFile, name: str) -> io.RawIOBase | IO[bytes]:
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return _inflated(path, archive, info)
    with path.open() as handle:
        handle.seek(info.header_offset)
        header = handle.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or not header.startswith(b"PK\x03\x04"):
        raise CorruptModelError(f"{path}: bad local header for '{name}' in the zip archive")
    name_length, extra_length = struct.unpack("<2H", header[26:30])
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    return _Window(path, start, info.file_size)


def _inflated(path: Source, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> io.RawIOBase:
    """A compressed member inflated once into memory, refused above MAX_INFLATED_BYTES (the
    size the directory claims is checked first, then the bytes actually inflated). The buffer
    is allocated once at the claimed size: the peak is the member itself, not two copies."""
    if info.file_size > MAX_INFLATED_BYTES:
        raise CorruptModelError(
            f"{path}: '{info.filename}' is compressed and {info.file_size:,} bytes inflated, "
            f"over the {MAX_INFLATED_BYTES:,}-byte limit for compressed weights; store it "
            "uncompressed (as Keras writes it) to have it read in place"
        )
    data = bytearray(info.file_size)
    view = memoryview(data)
    filled = 0
    with archive.open(info) as opened:
        member = cast(zipfile.ZipExtFile, opened)
        while filled < len(data):
            got = member.readinto(view[filled : filled + _CHUNK])
            if not got:
                break
            filled += got
        if filled < len(data) or member.read(1):
            raise CorruptModelError(f"{path}: '{info.filename}' does not inflate to its size")
    return _InMemory(data)


_CHUNK = 1 << 20


class _InMemory(io.RawIOBase):
    """A read-only, seekable view of bytes already in memory (no copy, unlike io.BytesIO of
    a bytearray)."""

    def __init__(self, data: bytearray) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data[self._pos : self._pos + len(buffer)]
        memoryview(buffer)[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


class _Window(io.RawIOBase):
    """A read-only view of `size` bytes of a file starting at `start`."""

    def __init__(self, path: Source, start: int, size: int) -> None:
        super().__init__()
        self._file = path.open()
        self._start, self._size, self._pos = start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        remaining = self._size - self._pos
        if remaining <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), remaining)]
        self._file.seek(self._start + self._pos)
        data = self._file.read(len(view))  # a local file or a URL's ranges (formats/source.py)
        count = len(data)
        view[:count] = data
        self._pos += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()
