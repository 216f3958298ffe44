"""Cheap signature checks: what a file is, from its first bytes (and its suffix where the bytes
cannot settle it). Nothing here imports a reader, so detection and `--help` stay light."""

from __future__ import annotations

import stat
import struct
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from inspector.errors import NotFoundError

HEAD_BYTES = 64 * 1024
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"


class Place(Protocol):
    """What detection reads of where a file is, beyond its bytes: a local `Path` or a
    `formats.source.Source` (a URL's object) alike."""

    @property
    def name(self) -> str: ...

    @property
    def suffix(self) -> str: ...

    @property
    def parent(self) -> Place: ...

    def __truediv__(self, relative: str) -> Place: ...

    def is_file(self) -> bool: ...

    def is_dir(self) -> bool: ...

    def exists(self) -> bool: ...


def is_hdf5(head: bytes, path: Place) -> bool:
    """HDF5 superblock at offset 0 or after a user block of 512·2^n bytes."""
    offset = 0
    while offset + len(HDF5_MAGIC) <= len(head):
        if head[offset : offset + len(HDF5_MAGIC)] == HDF5_MAGIC:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def is_zip(head: bytes, path: Place) -> bool:
    return head.startswith(ZIP_MAGIC)


# safetensors: an 8-byte little-endian header length, then the JSON header
# (https://huggingface.co/docs/safetensors, "Format").
SAFETENSORS_HEADER_LENGTH = struct.Struct("<Q")
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit


def looks_like_safetensors(head: bytes) -> bool:
    """An 8-byte header length that fits the limit, then a JSON object of string keys."""
    if len(head) < 10:
        return False
    (length,) = SAFETENSORS_HEADER_LENGTH.unpack_from(head)
    return (
        2 <= length <= SAFETENSORS_MAX_HEADER and head[8:9] == b"{" and head[9:10] in (b'"', b"}")
    )


def is_safetensors(head: bytes, path: Place) -> bool:
    """The header's length and opening brace; the extension settles files whose header is
    damaged. A sharded checkpoint's `*.safetensors.index.json` is read as its shards."""
    return (
        looks_like_safetensors(head)
        or path.suffix.lower() == ".safetensors"
        or path.name.lower().endswith(".safetensors.index.json")
    )


# torch.save's legacy format starts with its magic number pickled (torch/serialization.py,
# MAGIC_NUMBER 0x1950a86a20f9469cfc6c): LONG1 of 10 bytes, after PROTO and, from protocol 4,
# a FRAME header; protocols 0 and 1 write it as text.
_TORCH_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_TORCH_MAGIC_TEXT = b"L119547037146038801333356L"
_TORCH_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt", ".tar"})
_ZIP_NAME = struct.Struct("<26xHH")  # local file header up to the name and extra lengths
_TAR_TORCH_MEMBERS = (b"sys_info", b"pickle", b"storages", b"tensors")


def first_zip_member(head: bytes) -> str | None:
    """The name in a zip's first local file header."""
    if not head.startswith(ZIP_MAGIC) or len(head) < _ZIP_NAME.size:
        return None
    length, _extra = _ZIP_NAME.unpack_from(head)
    return head[_ZIP_NAME.size : _ZIP_NAME.size + length].decode("utf-8", "replace")


def is_torch(head: bytes, path: Place) -> bool:
    """A torch.save file: the zip whose first member is `<archive>/data.pkl` (the default since
    torch 1.6), a legacy file starting with torch's pickled magic number, or the tar layout of
    torch < 0.4. A zip named like a checkpoint holding `data.pkl` settles repacked archives."""
    first = first_zip_member(head)
    if first is not None:
        if first.rpartition("/")[2] == "data.pkl":
            return True
        return path.suffix.lower() in _TORCH_SUFFIXES and b"data.pkl" in head
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        body = head[11:] if head[2:3] == b"\x95" else head[2:]  # skip a FRAME header
        return body.startswith(_TORCH_MAGIC)
    if head.startswith(_TORCH_MAGIC_TEXT):
        return True
    name = head[:100].split(b"\0", 1)[0]
    return head[257:262] == b"ustar" and name in _TAR_TORCH_MEMBERS


def is_onnx(head: bytes, path: Place) -> bool:
    """ModelProto starts with field 1 (ir_version, varint: tag 0x08) in every exporter we know;
    the extension settles files that do not. A TensorFlow SavedModel protobuf starts alike
    (schema version 1, then a MetaGraphDef) and is never taken for ONNX."""
    if path.suffix.lower() == ".onnx":
        return True
    if is_savedmodel(head, path):
        return False
    return len(head) > 2 and head[0] == 0x08 and head[1] < 0x80 and head[2] in (0x12, 0x1A, 0x3A)


def is_savedmodel_dir(path: Place) -> bool:
    """A TensorFlow SavedModel directory: `saved_model.pb` beside `variables/` or
    `keras_metadata.pb` (tensorflow/python/saved_model/constants.py names the files); over
    HTTP, where a folder cannot be seen, `variables/variables.index` tells."""
    graph = path / "saved_model.pb"
    # Any saved_model.pb but a folder: one that is a FIFO is the SavedModel's to refuse by
    # name (stat only; nothing is opened here).
    return (
        path.is_dir()
        and graph.exists()
        and not graph.is_dir()
        and (
            (path / "variables").is_dir()
            or (path / "keras_metadata.pb").exists()
            or (path / "variables/variables.index").exists()
        )
    )


# A Hugging Face `save_pretrained` directory: config.json beside the weights, one file or an
# index of shards (transformers/utils/__init__.py: SAFE_WEIGHTS_NAME, WEIGHTS_NAME, *_INDEX_NAME).
HF_CONFIG = "config.json"
HF_WEIGHTS = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)


def is_hf_checkpoint_dir(path: Place) -> bool:
    """A Hugging Face checkpoint directory: config.json and the weights (or their index)."""
    return (
        path.is_dir()
        and (path / HF_CONFIG).is_file()
        and any((path / name).is_file() for name in HF_WEIGHTS)
    )


def is_hf_checkpoint(head: bytes, path: Place) -> bool:
    """A checkpoint directory, or the index of its shards given as the file to read; a
    safetensors index without a config.json beside it is a sharded state dict, the
    safetensors reader's."""
    if path.name == HF_WEIGHTS[0]:
        return head.lstrip()[:1] == b"{" and (path.parent / HF_CONFIG).is_file()
    if path.name == HF_WEIGHTS[2]:
        return head.lstrip()[:1] == b"{"
    return not head and is_hf_checkpoint_dir(path)


def is_model_dir(path: Place) -> bool:
    """A directory that is one model (read as one, never scanned): a TensorFlow SavedModel or
    a Hugging Face checkpoint."""
    return is_savedmodel_dir(path) or is_hf_checkpoint_dir(path)


def _savedmodel_proto(head: bytes) -> bool:
    """SavedModel { int64 saved_model_schema_version = 1 (always 1); repeated MetaGraphDef
    meta_graphs = 2; } and a MetaGraphDef opens with meta_info_def (field 1, tag 0x0A), where
    an ONNX ModelProto has its producer name."""
    if not head.startswith(b"\x08\x01\x12"):
        return False
    pos = 3
    while pos < len(head) and head[pos] & 0x80 and pos < 8:  # skip the length varint
        pos += 1
    return pos + 1 < len(head) and head[pos + 1] == 0x0A


def is_savedmodel(head: bytes, path: Place) -> bool:
    """A SavedModel directory, or its `saved_model.pb` (by name beside `variables/`, or by its
    protobuf header)."""
    if is_savedmodel_dir(path):
        return True
    if path.name == "saved_model.pb" and is_savedmodel_dir(path.parent):
        return True
    return _savedmodel_proto(head)


def is_tflite(head: bytes, path: Place) -> bool:
    """A TFLite flatbuffer: the file identifier "TFL3" right after the root offset
    (tensorflow/lite/schema/schema.fbs, `file_identifier "TFL3"`); the extension settles
    files too damaged to carry it."""
    return head[4:8] == b"TFL3" or path.suffix.lower() == ".tflite"


def is_gguf(head: bytes, path: Place) -> bool:
    """llama.cpp's GGUF: the magic "GGUF" at offset 0, in little- and big-endian files alike
    (ggml/docs/gguf.md); the extension settles files too damaged to carry it."""
    return head.startswith(b"GGUF") or path.suffix.lower() == ".gguf"


# llama.cpp's formats before GGUF (2023): a uint32 magic 'ggml', 'ggmf' or 'ggjt' written
# little-endian (llama.cpp convert_llama_ggml_to_gguf.py, GGMLFormat).
_LEGACY_GGML = (b"lmgg", b"fmgg", b"tjgg")


LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def is_lfs_pointer(head: bytes) -> bool:
    """A Git LFS pointer file (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md):
    a few lines of text standing in for a file that was not downloaded."""
    return head.startswith(LFS_POINTER)


def refusal(head: bytes, path: Place) -> str | None:
    """What a file that resembles a model format but is something else really is, or None."""
    if is_lfs_pointer(head):
        return (
            "a Git LFS pointer, not the model itself: the file was never downloaded "
            "(run `git lfs pull`)"
        )
    if head[:4] in _LEGACY_GGML:
        return (
            f"a legacy llama.cpp {head[3::-1].decode()} file (before GGUF), which rnninspect "
            "does not read: convert it with llama.cpp's convert_llama_ggml_to_gguf.py"
        )
    return None


def describe(head: bytes) -> str:
    """A short guess of what a file that matched no reader is, for the error message."""
    if not head:
        return "an empty file"
    if is_lfs_pointer(head):
        return "a Git LFS pointer (the model itself was not downloaded: run `git lfs pull`)"
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "a Python pickle that is not a torch.save file, which rnninspect never unpickles"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON or text file"
    try:
        head[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of unknown format"
    return "a text file"


def read_head(path: Path) -> bytes:
    """The first HEAD_BYTES of a regular file (nothing for a SavedModel directory or a Hugging
    Face checkpoint directory, which are read as one). A FIFO, a device (/dev/zero behind a
    symlink) or a socket is refused before it is opened: reading one could block or never end."""
    with suppress(OSError):  # an unsearchable path is reported by require_regular
        if is_model_dir(path):
            return b""
    require_regular(path)
    try:
        with path.open("rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError as error:
        raise NotFoundError(f"{path}: cannot be read ({error.strerror or error})") from None


def require_regular(path: Path) -> None:
    """Raise NotFoundError unless `path` is (a link to) a regular file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or error
        raise NotFoundError(f"{path}: cannot be read ({reason})") from None
    if stat.S_ISDIR(mode):
        raise NotFoundError(f"{path}: is a directory, expected a model file")
    if not stat.S_ISREG(mode):
        raise NotFoundError(
            f"{path}: is not a regular file (a device, FIFO or socket); only files are read"
        )
