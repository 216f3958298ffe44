"""ONNX element types (TensorProto.DataType, onnx.proto3): name, width and kind of each code."""

from __future__ import annotations

from inspector.formats.opgraph import UNKNOWN_DTYPE, DKind, DType

__all__ = ["DTYPES", "UNKNOWN_DTYPE", "DKind", "DType", "dtype_of"]


# TensorProto.DataType (onnx.proto3).
DTYPES: dict[int, DType] = {
    1: DType("float32", 32, DKind.FLOAT),
    2: DType("uint8", 8, DKind.INT),
    3: DType("int8", 8, DKind.INT),
    4: DType("uint16", 16, DKind.INT),
    5: DType("int16", 16, DKind.INT),
    6: DType("int32", 32, DKind.INT),
    7: DType("int64", 64, DKind.INT),
    8: DType("string", 0, DKind.STRING),
    9: DType("bool", 8, DKind.BOOL),
    10: DType("float16", 16, DKind.FLOAT),
    11: DType("float64", 64, DKind.FLOAT),
    12: DType("uint32", 32, DKind.INT),
    13: DType("uint64", 64, DKind.INT),
    14: DType("complex64", 64, DKind.FLOAT),
    15: DType("complex128", 128, DKind.FLOAT),
    16: DType("bfloat16", 16, DKind.FLOAT),
    17: DType("float8e4m3fn", 8, DKind.FLOAT),
    18: DType("float8e4m3fnuz", 8, DKind.FLOAT),
    19: DType("float8e5m2", 8, DKind.FLOAT),
    20: DType("float8e5m2fnuz", 8, DKind.FLOAT),
    21: DType("uint4", 4, DKind.INT),
    22: DType("int4", 4, DKind.INT),
    23: DType("float4e2m1", 4, DKind.FLOAT),
    24: DType("float8e8m0", 8, DKind.FLOAT),
    25: DType("uint2", 2, DKind.INT),
    26: DType("int2", 2, DKind.INT),
}


def dtype_of(code: int | None) -> DType:
    return DTYPES.get(code or 0, UNKNOWN_DTYPE)
