"""A TensorFlow tensor bundle's index (`variables/variables.index`): one SSTable entry per saved
tensor, key = checkpoint key, value = `BundleEntryProto`; the entry with the empty key is the
`BundleHeaderProto` (tensorflow/core/protobuf/tensor_bundle.proto):

    BundleHeaderProto { int32 num_shards = 1; Endianness endianness = 2; VersionDef version = 3; }
    BundleEntryProto  { DataType dtype = 1; TensorShapeProto shape = 2; int32 shard_id = 3;
                        int64 offset = 4; int64 size = 5; fixed32 crc32c = 6;
                        repeated TensorSliceProto slices = 7; }
    TensorShapeProto  { repeated Dim dim = 2 { int64 size = 1; string name = 2; };
                        bool unknown_rank = 3; }

Shapes and dtypes come from here; the data shards are never read for a report, except the one
small string tensor `_CHECKPOINTABLE_OBJECT_GRAPH` (see `objects.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from inspector.formats.protobuf import (
    FIXED32,
    LENGTH,
    VARINT,
    Buffer,
    WireError,
    expect,
    fields,
    integer,
    signed,
)
from inspector.formats.savedmodel.sstable import TableError, entries
from inspector.formats.shown import shown

MAX_RANK = 64


@dataclass(frozen=True)
class DType:
    name: str  # numpy's name, as reports show dtypes
    itemsize: int  # 0: not a fixed-size element (strings, resources, variants)


# tensorflow/core/framework/types.proto, DataType.
DTYPES: Mapping[int, DType] = MappingProxyType(
    {
        1: DType("float32", 4),
        2: DType("float64", 8),
        3: DType("int32", 4),
        4: DType("uint8", 1),
        5: DType("int16", 2),
        6: DType("int8", 1),
        7: DType("string", 0),
        8: DType("complex64", 8),
        9: DType("int64", 8),
        10: DType("bool", 1),
        11: DType("qint8", 1),
        12: DType("quint8", 1),
        13: DType("qint32", 4),
        14: DType("bfloat16", 2),
        15: DType("qint16", 2),
        16: DType("quint16", 2),
        17: DType("uint16", 2),
        18: DType("complex128", 16),
        19: DType("float16", 2),
        20: DType("resource", 0),
        21: DType("variant", 0),
        22: DType("uint32", 4),
        23: DType("uint64", 8),
        24: DType("float8_e5m2", 1),
        25: DType("float8_e4m3fn", 1),
    }
)


@dataclass(frozen=True)
class BundleEntry:
    key: str
    dtype: DType
    shape: tuple[int, ...] | None  # None: unknown rank
    shard_id: int
    offset: int
    size: int
    sliced: bool  # saved as slices of a partitioned variable


@dataclass(frozen=True)
class Bundle:
    num_shards: int
    entries: tuple[BundleEntry, ...]


class BundleError(Exception):
    """The index is not a readable tensor bundle."""


def read_bundle(buf: Buffer) -> Bundle:
    """Parse the whole index. Raises BundleError with what is wrong and where."""
    num_shards = 1
    found: list[BundleEntry] = []
    try:
        for raw_key, start, end in entries(buf):
            key = raw_key.decode("utf-8", errors="replace")
            if not raw_key:
                num_shards = _header(buf, start, end)
            else:
                found.append(_entry(buf, key, start, end))
    except TableError as error:
        raise BundleError(str(error)) from None
    except WireError as error:
        raise BundleError(f"damaged entry ({error} at byte {error.offset})") from None
    return Bundle(num_shards, tuple(found))


def _header(buf: Buffer, start: int, end: int) -> int:
    num_shards = 1
    for item in fields(buf, start, end):
        if item.number == 1:
            num_shards = integer(item, "BundleHeaderProto.num_shards")
        elif item.number == 2 and integer(item, "BundleHeaderProto.endianness") != 0:
            raise BundleError("the bundle is big-endian; only little-endian bundles are read")
    if not 1 <= num_shards <= 100_000:
        raise BundleError(f"the bundle header claims {num_shards} shards")
    return num_shards


def _entry(buf: Buffer, key: str, start: int, end: int) -> BundleEntry:
    dtype_code, shard_id, offset, size = 0, 0, 0, 0
    shape: tuple[int, ...] | None = ()
    sliced = False
    for item in fields(buf, start, end):
        n = item.number
        if n == 1:
            dtype_code = integer(item, "BundleEntryProto.dtype")
        elif n == 2:
            expect(item, LENGTH, "BundleEntryProto.shape")
            shape = _shape(buf, item.value, item.end, key)
        elif n == 3:
            shard_id = integer(item, "BundleEntryProto.shard_id")
        elif n == 4:
            offset = integer(item, "BundleEntryProto.offset")
        elif n == 5:
            size = integer(item, "BundleEntryProto.size")
        elif n == 6:
            expect(item, FIXED32, "BundleEntryProto.crc32c")
        elif n == 7:
            sliced = True
    dtype = DTYPES.get(dtype_code)
    if dtype is None:
        raise BundleError(f"tensor '{shown(key)}' has unknown DataType {dtype_code}")
    if offset < 0 or size < 0 or shard_id < 0:
        raise BundleError(f"tensor '{shown(key)}' has a negative offset, size or shard")
    if dtype.itemsize and shape is not None and not sliced:
        _check_size(key, shape, dtype.itemsize, size)
    return BundleEntry(key, dtype, shape, shard_id, offset, size, sliced)


def _check_size(key: str, shape: tuple[int, ...], itemsize: int, size: int) -> None:
    """A fixed-size tensor stores exactly its elements (tensor_bundle.cc writes `size` as the
    bytes of its data): a shape claiming more is a bad file, found without ever forming a
    product larger than the stored size (64 dims of 2^62 would be a 4,000-bit count)."""
    needed = itemsize
    for dim in shape:
        needed *= dim
        if needed > size:
            break
    if needed != size:
        raise BundleError(
            f"tensor '{shown(key)}' has a shape of {len(shape)} dimension(s) that does not match "
            f"the {size:,} bytes it stores"
        )


def _shape(buf: Buffer, start: int, end: int, key: str) -> tuple[int, ...] | None:
    dims: list[int] = []
    for item in fields(buf, start, end):
        if item.number == 2:
            expect(item, LENGTH, "TensorShapeProto.dim")
            size = 0
            for dim_field in fields(buf, item.value, item.end):
                if dim_field.number == 1:
                    expect(dim_field, VARINT, "TensorShapeProto.Dim.size")
                    size = signed(dim_field.value)
            if size < 0:
                raise BundleError(f"tensor '{shown(key)}' has an unknown dimension ({size})")
            dims.append(size)
            if len(dims) > MAX_RANK:
                raise BundleError(f"tensor '{shown(key)}' has more than {MAX_RANK} dimensions")
        elif item.number == 3 and integer(item, "TensorShapeProto.unknown_rank"):
            return None
    return tuple(dims)


def shard_name(prefix: str, shard_id: int, num_shards: int) -> str:
    """tensor_bundle.cc DataFilename: `<prefix>.data-00000-of-00001`."""
    return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"
