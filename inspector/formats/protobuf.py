"""Protobuf wire-format primitives shared by the readers that walk protobuf messages without a
generated schema (ONNX ModelProto, TF SavedModel's keras_metadata.pb and tensor bundle entries).

Encoding per the protobuf spec ("Encoding", developers.google.com/protocol-buffers): a field is a
varint key `number << 3 | wire type`, then a varint, a length-delimited payload, or 4 / 8 fixed
bytes. Every read is bounded by the enclosing message's end; malformed input raises `WireError`
with the byte offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from inspector.formats.ranges import Buffer  # the file's bytes, usually memory-mapped

# Wire types (protobuf encoding spec).
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

INT64_SIGN = 1 << 63


class WireError(Exception):
    """The bytes are not a well-formed protobuf message."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the varint at `pos`, read no further than `end`."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint", pos)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes", pos)


def signed(value: int) -> int:
    """int64/int32 fields are sent as 64-bit two's complement varints."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value & INT64_SIGN else value


@dataclass
class Field:
    number: int
    wire: int
    value: int  # the varint, or the start of a length-delimited / fixed payload
    end: int  # end of the payload (== value for varints)
    start: int  # where the field's key starts (for re-encoding)


def fields(buf: Buffer, start: int, end: int) -> Iterator[Field]:
    """The fields of the message in `buf[start:end]`, in stored order."""
    pos = start
    while pos < end:
        key_start = pos
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0", key_start)
        if wire == VARINT:
            value, pos = varint(buf, pos, end)
            yield Field(number, wire, value, pos, key_start)
        elif wire == LENGTH:
            length, pos = varint(buf, pos, end)
            if length > end - pos:
                raise WireError(
                    f"field {number} claims {length} bytes but only {end - pos} remain", pos
                )
            yield Field(number, wire, pos, pos + length, key_start)
            pos += length
        elif wire == FIXED64:
            if end - pos < 8:
                raise WireError("truncated 64-bit field", pos)
            yield Field(number, wire, pos, pos + 8, key_start)
            pos += 8
        elif wire == FIXED32:
            if end - pos < 4:
                raise WireError("truncated 32-bit field", pos)
            yield Field(number, wire, pos, pos + 4, key_start)
            pos += 4
        else:
            raise WireError(f"field {number} has invalid wire type {wire}", key_start)


_WIRE_NAMES = {VARINT: "varint", FIXED64: "64-bit", LENGTH: "length-delimited", FIXED32: "32-bit"}


def expect(item: Field, wire: int, message: str) -> None:
    if item.wire != wire:
        raise WireError(
            f"{message} field {item.number} is {_WIRE_NAMES.get(item.wire, '?')}, "
            f"expected {_WIRE_NAMES[wire]}",
            item.start,
        )


def text(buf: Buffer, item: Field, message: str) -> str:
    expect(item, LENGTH, message)
    return bytes(buf[item.value : item.end]).decode("utf-8", errors="replace")


def integer(item: Field, message: str) -> int:
    expect(item, VARINT, message)
    return signed(item.value)


def packed_varints(buf: Buffer, item: Field, message: str, limit: int) -> tuple[list[int], int]:
    """Repeated int64 sent packed (one length-delimited field) or one by one: the first
    `limit` values and the count of all."""
    if item.wire == VARINT:  # one by one: the limit holds across the fields too
        return ([signed(item.value)] if limit > 0 else []), 1
    expect(item, LENGTH, message)
    values: list[int] = []
    pos, count = item.value, 0
    while pos < item.end:
        value, pos = varint(buf, pos, item.end)
        count += 1
        if count <= limit:
            values.append(signed(value))
    return values, count
