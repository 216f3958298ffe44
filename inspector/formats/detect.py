"""Cheap signature checks: what a file is, from its first bytes (and its suffix where the bytes
cannot settle it). Nothing here imports a reader, so detection and `--help` stay light."""

from __future__ import annotations

from pathlib import Path

from inspector.errors import NotFoundError

HEAD_BYTES = 64 * 1024
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"


def is_hdf5(head: bytes, path: Path) -> bool:
    """HDF5 superblock at offset 0 or after a user block of 512·2^n bytes."""
    offset = 0
    while offset + len(HDF5_MAGIC) <= len(head):
        if head[offset : offset + len(HDF5_MAGIC)] == HDF5_MAGIC:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def is_zip(head: bytes, path: Path) -> bool:
    return head.startswith(ZIP_MAGIC)


def is_safetensors(head: bytes, path: Path) -> bool:
    """An 8-byte little-endian header length, then the JSON header's opening brace; the
    extension settles files whose header is damaged."""
    from inspector.formats.safetensors.reader import looks_like_safetensors

    return looks_like_safetensors(head) or path.suffix.lower() == ".safetensors"


def is_onnx(head: bytes, path: Path) -> bool:
    """ModelProto starts with field 1 (ir_version, varint: tag 0x08) in every exporter we know;
    the extension settles files that do not."""
    if path.suffix.lower() == ".onnx":
        return True
    return len(head) > 2 and head[0] == 0x08 and head[1] < 0x80 and head[2] in (0x12, 0x1A, 0x3A)


def describe(head: bytes) -> str:
    """A short guess of what a file that matched no reader is, for the error message."""
    if not head:
        return "an empty file"
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "a Python pickle (PyTorch .pt/.pth?), which rnninspect never unpickles"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON or text file"
    try:
        head[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of unknown format"
    return "a text file"


def read_head(path: Path) -> bytes:
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise NotFoundError(f"{path}: is a directory, expected a model file")
    try:
        with path.open("rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError as error:
        raise NotFoundError(f"{path}: cannot be read ({error.strerror or error})") from None
