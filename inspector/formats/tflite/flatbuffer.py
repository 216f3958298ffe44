"""A small, bounded FlatBuffers reader: just enough to walk a TFLite model's tables.

Layout (flatbuffers docs, "FlatBuffers internals"): the buffer starts with a uoffset (uint32)
to the root table; TFLite puts its file identifier "TFL3" right after it. A table starts with
a soffset (int32) back to its vtable: `uint16 vtable size, uint16 table size, uint16 field
offsets...`; a field absent from the vtable (or at offset 0) takes its default. Reference
fields (tables, vectors, strings) hold a uoffset relative to where it is stored; a vector is
`uint32 length` then its elements; a string is a byte vector.

Every read is checked against the buffer's size, vector lengths are capped, and errors raise
`FlatError` with the byte offset, so a hostile file cannot make the reader loop, allocate
without bound or read outside the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from inspector.counts import NAME_LIMIT
from inspector.formats.ranges import Buffer

MAX_VECTOR = 10_000_000  # elements of one vector; far above real models' tensor counts
# Bytes of a string decoded: tensor names, custom-op codes, subgraph names. Converters write a
# few hundred at most (fused names joined with ';'); a longer one is shown shortened, its full
# length said, and the rest is never read (a 9 MB custom-op code once became a 594 MB table).
MAX_TEXT = NAME_LIMIT  # characters of a string kept (model.bounded keeps no more of a name)
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")


class FlatError(Exception):
    """The bytes are not a well-formed FlatBuffer (or exceed the reader's limits)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


def _unpack(fmt: struct.Struct, buf: Buffer, pos: int) -> int:
    if pos < 0 or pos + fmt.size > len(buf):
        raise FlatError(f"a {fmt.size}-byte value lies outside the {len(buf)}-byte file", pos)
    value: int = fmt.unpack(buf[pos : pos + fmt.size])[0]
    return value


@dataclass(frozen=True)
class Vector:
    """A vector's elements start at `start`; `length` elements of `width` bytes each."""

    buf: Buffer
    start: int
    length: int

    def int32(self, index: int) -> int:
        return _unpack(_I32, self.buf, self.start + 4 * index)

    def uint8(self, index: int) -> int:
        return self.buf[self.start + index]

    def float32(self, index: int) -> float:
        pos = self.start + 4 * index
        if pos + 4 > len(self.buf):
            raise FlatError("a float lies outside the file", pos)
        value: float = _F32.unpack(self.buf[pos : pos + 4])[0]
        return value

    def int64(self, index: int) -> int:
        return _unpack(_I64, self.buf, self.start + 8 * index)

    def table(self, index: int) -> Table:
        pos = self.start + 4 * index
        return Table.at(self.buf, pos + _unpack(_U32, self.buf, pos))

    def ints(self, limit: int) -> tuple[int, ...]:
        return tuple(self.int32(i) for i in range(min(self.length, limit)))


@dataclass(frozen=True)
class Table:
    buf: Buffer
    pos: int
    vtable: int
    vtable_size: int

    @staticmethod
    def at(buf: Buffer, pos: int) -> Table:
        vtable = pos - _unpack(_I32, buf, pos)
        size = _unpack(_U16, buf, vtable)
        if size < 4 or size % 2 or vtable + size > len(buf):
            raise FlatError(f"a table's vtable of {size} bytes is malformed", vtable)
        return Table(buf, pos, vtable, size)

    def _field(self, index: int) -> int | None:
        entry = 4 + 2 * index
        if entry + 2 > self.vtable_size:
            return None
        offset = _unpack(_U16, self.buf, self.vtable + entry)
        return self.pos + offset if offset else None

    def uint8(self, index: int, default: int = 0) -> int:
        pos = self._field(index)
        if pos is None:
            return default
        if pos >= len(self.buf):
            raise FlatError("a byte field lies outside the file", pos)
        return self.buf[pos]

    def int8(self, index: int, default: int = 0) -> int:
        value = self.uint8(index, default)
        return value - 256 if value > 127 else value

    def int32(self, index: int, default: int = 0) -> int:
        pos = self._field(index)
        return default if pos is None else _unpack(_I32, self.buf, pos)

    def uint32(self, index: int, default: int = 0) -> int:
        pos = self._field(index)
        return default if pos is None else _unpack(_U32, self.buf, pos)

    def uint64(self, index: int, default: int = 0) -> int:
        pos = self._field(index)
        return default if pos is None else _unpack(_I64, self.buf, pos) & (2**64 - 1)

    def _target(self, index: int) -> int | None:
        pos = self._field(index)
        return None if pos is None else pos + _unpack(_U32, self.buf, pos)

    def table(self, index: int) -> Table | None:
        target = self._target(index)
        return None if target is None else Table.at(self.buf, target)

    def vector(self, index: int, width: int) -> Vector | None:
        target = self._target(index)
        if target is None:
            return None
        length = _unpack(_U32, self.buf, target)
        if length > MAX_VECTOR:
            raise FlatError(f"a vector claims {length:,} elements (limit {MAX_VECTOR:,})", target)
        start = target + 4
        if start + length * width > len(self.buf):
            raise FlatError(
                f"a vector of {length:,} × {width} bytes runs past the end of the file", target
            )
        return Vector(self.buf, start, length)

    def vector_length(self, index: int, width: int) -> int:
        found = self.vector(index, width)
        return 0 if found is None else found.length

    def string(self, index: int) -> str:
        """The string field; one longer than MAX_TEXT bytes is its beginning, its full length and
        a digest of the whole, in MAX_TEXT characters (what `model.bounded` keeps of a name, so
        the length said is the file's; the digest keeps two long names that share a beginning
        apart). The string is never decoded whole: a custom-op code may be megabytes."""
        found = self.vector(index, 1)
        if found is None:
            return ""
        whole = self.buf[found.start : found.start + found.length]
        if found.length <= MAX_TEXT:
            return bytes(whole).decode("utf-8", "replace")
        import hashlib  # only for a string this long: every module is start-up time

        digest = hashlib.blake2b(whole, digest_size=8).hexdigest()
        tail = f"... ({found.length:,} bytes, #{digest})"
        head = bytes(whole[:MAX_TEXT]).decode("utf-8", "replace")
        return head[: MAX_TEXT - len(tail)] + tail


def root(buf: Buffer) -> Table:
    return Table.at(buf, _unpack(_U32, buf, 0))
