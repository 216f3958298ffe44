"""Decode one stored ONNX tensor's values: raw_data in the memory map, typed fields
(float_data, int32_data, ...) walked on the wire, or an external data file in the model's folder.

Encodings follow onnx/onnx.proto3 (TensorProto): raw_data is little-endian; float16 and
bfloat16 travel as their bit patterns in int32_data; uint32/uint64 in uint64_data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from inspector.errors import CorruptModelError, NotFoundError, ValuesUnavailableError
from inspector.formats.onnx import wire as onnx_wire
from inspector.formats.onnx.graph import Origin, Stored
from inspector.formats.onnx.keys import external_file
from inspector.formats.source import Source


@dataclass(frozen=True)
class Encoding:
    raw: str  # little-endian numpy type string of raw_data (and of external data)
    typed_field: int  # the TensorProto field holding typed values
    bits16: bool = False  # float16 / bfloat16 bit patterns carried in int32_data


_BFLOAT16 = "bfloat16"
# TensorProto.DataType -> how its values are stored.
ENCODINGS: Mapping[int, Encoding] = MappingProxyType(
    {
        1: Encoding("<f4", 4),
        2: Encoding("|u1", 5),
        3: Encoding("|i1", 5),
        4: Encoding("<u2", 5),
        5: Encoding("<i2", 5),
        6: Encoding("<i4", 5),
        7: Encoding("<i8", 7),
        9: Encoding("|b1", 5),
        10: Encoding("<f2", 5, bits16=True),
        11: Encoding("<f8", 10),
        12: Encoding("<u4", 11),
        13: Encoding("<u8", 11),
        16: Encoding(_BFLOAT16, 5, bits16=True),
    }
)


def decode(
    buf: onnx_wire.Buffer, stored: Stored, folder: Source, read_at: Callable[[int, int], bytes]
) -> np.ndarray:
    """The values of a stored tensor, shaped. `folder` is the model's folder (resolved);
    `read_at(offset, length)` reads the model file: bulk payloads are read, not paged in
    through the memory map, so they leave no mapped pages behind."""
    meta = stored.meta
    what = f"tensor '{stored.name}' in {stored.location}"
    if meta is None or stored.origin is Origin.SPARSE:
        raise ValuesUnavailableError(f"{what}: values not stored as a dense tensor")
    encoding = ENCODINGS.get(meta.data_type)
    if encoding is None:
        raise ValuesUnavailableError(
            f"{what}: {stored.dtype.name} values are not decoded for comparison"
        )
    if meta.has_segment:
        raise ValuesUnavailableError(f"{what}: segmented tensors are not decoded")
    count = math.prod(stored.shape)
    if meta.is_external:
        flat = _from_raw(_external_bytes(meta, folder, what, count, encoding), encoding)
    elif meta.raw_offset is not None and meta.raw_bytes is not None:
        flat = _from_raw(read_at(meta.raw_offset, meta.raw_bytes), encoding)
    else:
        flat = _typed(buf, meta, encoding, what)
    if flat.size != count:
        raise CorruptModelError(
            f"{what} declares shape {list(stored.shape)} ({count:,} elements) but stores "
            f"{flat.size:,} values: the file is damaged"
        )
    return flat.reshape(stored.shape)


def _from_raw(data: bytes, encoding: Encoding) -> np.ndarray:
    if encoding.raw == _BFLOAT16:
        return _widen_bfloat16(np.frombuffer(data[: len(data) // 2 * 2], dtype="<u2"))
    itemsize = np.dtype(encoding.raw).itemsize
    return np.frombuffer(data[: len(data) // itemsize * itemsize], dtype=encoding.raw)


def _widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _typed(
    buf: onnx_wire.Buffer, meta: onnx_wire.TensorMeta, encoding: Encoding, what: str
) -> np.ndarray:
    try:
        fields = [f for f in onnx_wire.data_fields(buf, meta) if f.number == encoding.typed_field]
        if encoding.typed_field in (4, 10):  # fixed width: float_data, double_data
            fmt = "<f4" if encoding.typed_field == 4 else "<f8"
            parts = [np.frombuffer(bytes(buf[f.start : f.end]), dtype=fmt) for f in fields]
            flat = np.concatenate(parts) if parts else np.zeros(0, dtype=fmt)
            return flat.astype(encoding.raw, copy=False)
        values: list[int] = []
        for item in fields:
            if item.wire == onnx_wire.VARINT:
                values.append(item.start)  # a single unpacked varint: `start` holds the value
            else:
                values.extend(onnx_wire.varints(buf, item.start, item.end))
    except onnx_wire.WireError as error:
        raise CorruptModelError(f"{what}: damaged typed data ({error})") from None
    ints = np.array(values, dtype=np.int64)
    if encoding.bits16:
        bits = ints.astype(np.uint16)
        if encoding.raw == _BFLOAT16:
            return _widen_bfloat16(bits)
        return bits.view("<f2")
    if encoding.raw in ("<u8", "<u4"):
        return ints.view(np.uint64).astype(encoding.raw)
    return ints.astype(encoding.raw)


def _external_bytes(
    meta: onnx_wire.TensorMeta, folder: Source, what: str, count: int, encoding: Encoding
) -> bytes:
    entries = dict(meta.external)
    location = entries.get("location", "")
    target = external_file(folder, location) if location else None
    if target is None:
        raise ValuesUnavailableError(
            f"{what}: external data '{location}' is outside the model's folder or unnamed; "
            "not opened"
        )
    itemsize = 2 if encoding.raw == _BFLOAT16 else np.dtype(encoding.raw).itemsize
    try:
        offset = int(entries.get("offset") or 0)
        length = int(entries["length"]) if entries.get("length") else count * itemsize
    except ValueError:
        raise CorruptModelError(f"{what}: unreadable external offset/length") from None
    if offset < 0 or length != count * itemsize:
        raise CorruptModelError(
            f"{what}: external offset {offset:,} / length {length:,} do not fit its shape "
            f"({count * itemsize:,} bytes)"
        )
    try:
        if not target.is_file():
            raise ValuesUnavailableError(f"{what}: external data '{location}' is not a file")
        if offset + length > target.size:  # checked before reading: never allocate a lie
            raise CorruptModelError(
                f"{what}: external data file '{location}' ends before byte {offset + length:,}"
            )
        with target.open() as handle:
            handle.seek(offset)
            data = handle.read(length)
    except (OSError, NotFoundError) as error:
        raise ValuesUnavailableError(
            f"{what}: external data file '{location}' cannot be read "
            f"({getattr(error, 'strerror', None) or error})"
        ) from None
    if len(data) < length:
        raise CorruptModelError(
            f"{what}: external data file '{location}' ends before byte {offset + length:,}"
        )
    return data
