"""The containers `torch.save` writes, opened read-only and never unpickled
(torch/serialization.py):

- **zip** (the default since torch 1.6, `_save`): `<archive>/data.pkl` (the pickled object, its
  tensors' storages as persistent ids), `<archive>/data/<key>` (each storage's raw bytes, stored
  uncompressed), `<archive>/version`, `<archive>/byteorder`. The archive folder's name varies
  (the file's stem at save time); like torch's reader (caffe2/serialize/inline_container.cc) it
  is taken from the first member.
- **legacy** (`_use_new_zipfile_serialization=False`, `_legacy_save`): pickles in sequence — the
  magic number, the protocol version (1001), a sys-info dict, the object, the sorted list of
  storage keys — then each storage as an 8-byte element count and its raw bytes.
- **tar** (torch < 0.4): recognised and refused as unsupported.

`load(path)` returns the object as data (`pickle_data`) and where each storage's bytes lie, with
every storage checked against the file before anything trusts it.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from inspector.errors import (
    CorruptModelError,
    NotAModelError,
    UnsupportedModelError,
)
from inspector.formats.source import Source
from inspector.formats.torch.pickle_data import parse
from inspector.formats.torch.script_code import MAX_CODE_BYTES, Scalar, code_file, final_constants
from inspector.formats.torch.vocabulary import Storage, brief

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch/serialization.py
PROTOCOL_VERSION = 1001
MAX_PICKLE_BYTES = 256 * 1024 * 1024  # data.pkl of a state dict is ~100 bytes per tensor
_SMALL_MEMBER = 64  # version, byteorder
TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
_COUNT = {"little": struct.Struct("<q"), "big": struct.Struct(">q")}
# What zipfile raises for a damaged archive; NotImplementedError for a member that claims an
# unknown zip version or compression method (zipfile._check_compression).
ZIP_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    zlib.error,
)


@dataclass(frozen=True)
class Place:
    """Where one storage's bytes are: a zip member, or an offset in a legacy file."""

    member: str | None
    offset: int
    nbytes: int


@dataclass(frozen=True)
class Loaded:
    root: object
    storages: Mapping[str, Storage]
    places: Mapping[str, Place]
    layout: str  # "zip" | "torchscript" | "legacy"
    byteorder: str  # "little" | "big"
    version: str | None  # the zip's `version` record
    foreign: tuple[str, ...] = ()  # globals outside the state-dict vocabulary the object names
    foreign_capped: bool = False  # more foreign names than pickle_data.MAX_FOREIGN
    unlisted: tuple[str, ...] = ()  # foreign names outside the allow-list of data
    # TorchScript: each scripted class's `Final` constants, from its code (never run).
    script_constants: Mapping[str, Mapping[str, Scalar]] = field(default_factory=dict)


def load(path: Source) -> Loaded:
    """Raises NotFoundError, NotAModelError, UnsupportedModelError, CorruptModelError, and
    pickle_data.RefusedPickle for an opcode or persistent id outside the data-only vocabulary
    (foreign globals are kept as placeholders and listed in `Loaded.foreign`)."""
    with path.open() as handle:
        head = handle.read(512)
        handle.seek(0)
        if head.startswith(b"PK\x03\x04"):
            return _load_zip(path, handle)
        if is_torch_tar(head):
            raise UnsupportedModelError(
                f"{path}: a torch.save file in the tar layout of PyTorch < 0.4: not supported; "
                "re-save it with a current PyTorch (torch.save(state_dict))"
            )
        return _load_legacy(path, handle)


def is_torch_tar(head: bytes) -> bool:
    """A POSIX tar whose first member is one torch's tar layout writes."""
    if len(head) < 263 or head[257:262] != b"ustar":
        return False
    name = head[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    return name in TAR_MEMBERS


# --- zip ----------------------------------------------------------------------------------


def _escapes(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(parts[0]) == 2 and ":" in name)


def _load_zip(path: Source, handle: IO[bytes]) -> Loaded:
    try:
        archive = zipfile.ZipFile(handle)
    except ZIP_ERRORS as error:
        raise CorruptModelError(
            f"{path}: has a zip signature but is not a readable zip archive ({error}); "
            "the file is probably truncated"
        ) from None
    with archive:
        infos = archive.infolist()
        escaping = next((i.filename for i in infos if _escapes(i.filename)), None)
        if escaping is not None:
            raise CorruptModelError(
                f"{path}: zip member {escaping[:80]!r} names a path outside the archive; "
                "torch.save never writes one, the file is refused"
            )
        folder = infos[0].filename.split("/", 1)[0] if infos and "/" in infos[0].filename else ""
        names = {info.filename: info for info in infos}
        pickle_name = f"{folder}/data.pkl"
        if not folder or pickle_name not in names:
            raise NotAModelError(
                f"{path}: a zip archive without '<archive>/data.pkl' first: not a torch.save file"
            )
        pickle_info = names[pickle_name]
        try:
            version = _text(archive, names.get(f"{folder}/version"), path)
            byteorder = _text(archive, names.get(f"{folder}/byteorder"), path) or "little"
        except ZIP_ERRORS as error:
            raise CorruptModelError(f"{path}: damaged zip member ({error})") from None
        if byteorder not in _COUNT:
            raise CorruptModelError(
                f"{path}: byteorder record {brief(byteorder)} is not little/big"
            )
        _check_size(pickle_info, MAX_PICKLE_BYTES, path)
        # Parsed from the member's stream, never read whole first: a deflated data.pkl of a few
        # hundred KB can hold 256 MiB of string arguments, and holding the raw bytes as well as
        # the strings taken from them would double the peak memory.
        try:
            with archive.open(pickle_info) as stream:
                parsed = parse(stream)
        except ZIP_ERRORS as error:
            raise CorruptModelError(f"{path}: damaged zip member ({error})") from None
        places: dict[str, Place] = {}
        for key, storage in parsed.storages.items():
            member = names.get(f"{folder}/data/{key}")
            if member is None:
                raise CorruptModelError(
                    f"{path}: data.pkl refers to storage '{key}' but the archive has no member "
                    f"'{folder}/data/{key}'; the file is damaged"
                )
            if member.file_size != storage.nbytes:
                raise CorruptModelError(
                    f"{path}: storage '{key}' holds {storage.numel:,} {storage.dtype.name} "
                    f"elements ({storage.nbytes:,} bytes) but its member has "
                    f"{member.file_size:,} bytes; the file is damaged"
                )
            places[key] = Place(member.filename, 0, storage.nbytes)
        # torch.jit.save writes the module's code beside data.pkl (torch/csrc/jit/serialization/
        # export_module.cpp): a TorchScript archive, whose data.pkl is read the same way.
        scripted = f"{folder}/constants.pkl" in names and any(
            name.startswith(f"{folder}/code/") for name in names
        )
        constants = _script_constants(archive, folder, parsed.foreign, path) if scripted else {}
    return Loaded(
        parsed.value,
        parsed.storages,
        places,
        "torchscript" if scripted else "zip",
        byteorder,
        version,
        parsed.foreign,
        parsed.foreign_capped,
        parsed.unlisted,
        constants,
    )


def _script_constants(
    archive: zipfile.ZipFile, folder: str, classes: tuple[str, ...], path: Source
) -> dict[str, Mapping[str, Scalar]]:
    """The `Final` constants of each scripted class the pickle names, from its code file."""
    found: dict[str, Mapping[str, Scalar]] = {}
    texts: dict[str, Mapping[str, Mapping[str, Scalar]]] = {}
    for name in classes:
        where = code_file(name)
        info = archive.NameToInfo.get(f"{folder}/{where}") if where else None
        if info is None or info.file_size > MAX_CODE_BYTES:
            continue
        if info.filename not in texts:
            try:
                raw = _member(archive, info, MAX_CODE_BYTES, path)
            except ZIP_ERRORS as error:
                raise CorruptModelError(f"{path}: damaged zip member ({error})") from None
            texts[info.filename] = final_constants(raw.decode("utf-8", "replace"))
        found[name] = texts[info.filename].get(name.rsplit(".", 1)[-1], {})
    return found


def _check_size(info: zipfile.ZipInfo, limit: int, path: Source) -> None:
    if info.file_size > limit:
        raise CorruptModelError(
            f"{path}: member '{info.filename}' claims {info.file_size:,} bytes, over the "
            f"{limit:,}-byte limit"
        )


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: Source) -> bytes:
    _check_size(info, limit, path)
    with archive.open(info) as member:
        return member.read(limit + 1)[:limit]


def _text(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None, path: Source) -> str | None:
    if info is None:
        return None
    raw = _member(archive, info, _SMALL_MEMBER, path)
    return raw.decode("ascii", "replace").strip()


# --- legacy -------------------------------------------------------------------------------


def _load_legacy(path: Source, handle: IO[bytes]) -> Loaded:
    size = path.size
    magic = parse(handle).value
    if magic != MAGIC_NUMBER:
        raise NotAModelError(
            f"{path}: a Python pickle that is not a torch.save file (no PyTorch magic number), "
            "which rnninspect never unpickles"
        )
    version = parse(handle).value
    if version != PROTOCOL_VERSION:
        raise UnsupportedModelError(
            f"{path}: legacy torch.save protocol {brief(version)}; only {PROTOCOL_VERSION} is known"
        )
    info = parse(handle).value
    little = info.get("little_endian") if isinstance(info, dict) else None
    if not isinstance(little, bool):
        raise CorruptModelError(f"{path}: legacy torch.save sys_info lacks 'little_endian'")
    byteorder = "little" if little else "big"
    parsed = parse(handle)
    keys = parse(handle).value
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CorruptModelError(f"{path}: legacy storage key list is not a list of names")
    declared = parsed.storages
    if set(keys) != set(declared) or len(keys) != len(declared):
        missing = sorted(set(declared) - set(keys))[:3]
        raise CorruptModelError(
            f"{path}: legacy storage list does not match the storages the object refers to "
            f"(missing: {', '.join(missing) or 'none'}); the file is damaged"
        )
    places: dict[str, Place] = {}
    position = handle.tell()
    count_format = _COUNT[byteorder]
    for key in keys:
        storage = declared[key]
        handle.seek(position)
        raw = handle.read(count_format.size)
        if len(raw) < count_format.size:
            raise CorruptModelError(f"{path}: legacy storage '{key}' is cut short: truncated")
        (count,) = count_format.unpack(raw)
        start = position + count_format.size
        if count != storage.numel:
            raise CorruptModelError(
                f"{path}: legacy storage '{key}' records {count:,} elements where the object "
                f"expects {storage.numel:,}; the file is damaged"
            )
        if start + storage.nbytes > size:
            raise CorruptModelError(
                f"{path}: legacy storage '{key}' needs {storage.nbytes:,} bytes but the file "
                f"holds {max(size - start, 0):,} more; the file is truncated"
            )
        places[key] = Place(None, start, storage.nbytes)
        position = start + storage.nbytes
    return Loaded(
        parsed.value,
        declared,
        places,
        "legacy",
        byteorder,
        None,
        parsed.foreign,
        parsed.foreign_capped,
        parsed.unlisted,
    )
