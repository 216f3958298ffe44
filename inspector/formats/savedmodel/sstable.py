"""A bounded reader of the SSTable (LevelDB table) files TensorFlow writes as a tensor bundle's
`.index` (tensorflow/tsl/lib/io/table_format.h, format.cc, block.cc; the same layout as LevelDB's
doc/table_format.md):

    [data block 1] ... [data block n] [metaindex block] [index block] [footer: 48 bytes]

The footer holds the metaindex and index block handles (two varints each, offset and size),
zero padding to 40 bytes and the magic number 0xdb4775248b80fb57 (little-endian). Every block is
followed by a 5-byte trailer: a compression type (0 none, 1 snappy) and a masked crc32c. A block
is a run of entries `varint shared, varint non_shared, varint value_length, key suffix, value`
(keys prefix-compressed against the previous key) followed by the restart offsets (uint32 each)
and their count (uint32). The index block maps the last key of each data block to its handle.

TensorFlow writes bundle indexes uncompressed (tensor_bundle.cc sets `kNoCompression`); a
snappy block is refused with a message rather than decoded. Every handle is checked against the
file size, entry and block counts are capped, and so are the bytes of the keys: one key (a
prefix-compressed key can grow by a byte per entry, its copies quadratically) and all keys
together. Data blocks follow each other in the file (table_builder.cc writes them in key order),
so an index naming one block twice, or blocks that overlap or go backwards, is refused: each
byte of the file is read as a key at most once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from inspector.formats.protobuf import Buffer, WireError, varint

MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
TRAILER_BYTES = 5
MAX_ENTRIES = 1_000_000  # a bundle of a million variables is far beyond any real model
MAX_BLOCKS = 100_000
MAX_KEY_BYTES = 64 * 1024  # one key: a variable's checkpoint path, ~100 bytes in real bundles
MAX_KEY_TOTAL = 64 * 1024 * 1024  # all keys: a million variables with 64-byte names
_UINT32 = struct.Struct("<I")


class TableError(Exception):
    """The bytes are not a well-formed, uncompressed SSTable."""


@dataclass(frozen=True)
class Handle:
    offset: int
    size: int


def _handle(buf: Buffer, pos: int, end: int) -> tuple[Handle, int]:
    offset, pos = varint(buf, pos, end)
    size, pos = varint(buf, pos, end)
    return Handle(offset, size), pos


def footer(buf: Buffer) -> tuple[Handle, Handle]:
    """(metaindex, index) handles from the footer. Raises TableError."""
    if len(buf) < FOOTER_BYTES:
        raise TableError(f"{len(buf)} bytes: too short for an SSTable footer ({FOOTER_BYTES})")
    start = len(buf) - FOOTER_BYTES
    (magic,) = struct.unpack("<Q", buf[len(buf) - 8 :])
    if magic != MAGIC:
        raise TableError(f"no SSTable magic number at the end of the file (found {magic:#x})")
    try:
        metaindex, pos = _handle(buf, start, len(buf) - 8)
        index, _ = _handle(buf, pos, len(buf) - 8)
    except WireError as error:
        raise TableError(f"damaged footer ({error})") from None
    return metaindex, index


def block_entries(buf: Buffer, handle: Handle, what: str) -> Iterator[tuple[bytes, int, int]]:
    """(key, value start, value end) of each entry of the block at `handle`."""
    limit = len(buf) - FOOTER_BYTES
    if handle.offset + handle.size + TRAILER_BYTES > limit or handle.size < 4:
        raise TableError(
            f"{what} block handle (offset {handle.offset}, size {handle.size}) lies outside "
            f"the {len(buf)}-byte file"
        )
    compression = buf[handle.offset + handle.size]
    if compression != 0:
        kind = "snappy" if compression == 1 else f"type {compression}"
        raise TableError(
            f"{what} block is {kind}-compressed; TensorFlow writes bundle indexes uncompressed "
            "and rnninspect does not decompress them"
        )
    start, end = handle.offset, handle.offset + handle.size
    (restarts,) = _UINT32.unpack(buf[end - 4 : end])
    data_end = end - 4 - 4 * restarts
    if restarts == 0 or data_end < start:
        raise TableError(f"{what} block claims {restarts} restart points in {handle.size} bytes")
    pos = start
    key = b""
    try:
        while pos < data_end:
            shared, pos = varint(buf, pos, data_end)
            unshared, pos = varint(buf, pos, data_end)
            length, pos = varint(buf, pos, data_end)
            if shared > len(key) or unshared + length > data_end - pos:
                raise TableError(f"{what} block entry at byte {pos} overruns its block")
            if shared + unshared > MAX_KEY_BYTES:
                raise TableError(
                    f"{what} block entry at byte {pos} has a key of {shared + unshared:,} bytes "
                    f"(limit {MAX_KEY_BYTES:,})"
                )
            key = key[:shared] + bytes(buf[pos : pos + unshared])
            pos += unshared
            yield key, pos, pos + length
            pos += length
    except WireError as error:
        raise TableError(f"{what} block: {error} at byte {error.offset}") from None


def entries(buf: Buffer) -> Iterator[tuple[bytes, int, int]]:
    """Every (key, value start, value end) of the table, in key order. Raises TableError."""
    _, index = footer(buf)
    count = 0
    key_bytes = 0
    next_block = 0  # where the next data block may start: blocks never overlap or repeat
    for blocks, (_, value, value_end) in enumerate(block_entries(buf, index, "index")):
        if blocks >= MAX_BLOCKS:
            raise TableError(f"more than {MAX_BLOCKS:,} data blocks")
        try:
            handle, _ = _handle(buf, value, value_end)
        except WireError as error:
            raise TableError(f"damaged block handle in the index ({error})") from None
        if handle.offset < next_block:
            raise TableError(
                f"the index names a data block at byte {handle.offset:,}, before the end of the "
                f"previous one ({next_block:,}): blocks repeat or overlap"
            )
        next_block = handle.offset + handle.size + TRAILER_BYTES
        for item in block_entries(buf, handle, "data"):
            count += 1
            if count > MAX_ENTRIES:
                raise TableError(f"more than {MAX_ENTRIES:,} entries")
            key_bytes += len(item[0])
            if key_bytes > MAX_KEY_TOTAL:
                raise TableError(f"keys longer than {MAX_KEY_TOTAL:,} bytes in all")
            yield item
