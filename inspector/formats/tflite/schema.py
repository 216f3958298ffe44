"""The few TFLite schema tables a report needs, decoded from the flatbuffer
(tensorflow/lite/schema/schema.fbs, schema version 3; field numbers are vtable slots):

    Model        { version:uint (0); operator_codes:[OperatorCode] (1); subgraphs:[SubGraph] (2);
                   description:string (3); buffers:[Buffer] (4); ... }
    SubGraph     { tensors:[Tensor] (0); inputs:[int] (1); outputs:[int] (2);
                   operators:[Operator] (3); name:string (4); }
    Tensor       { shape:[int] (0); type:TensorType (1); buffer:uint (2); name:string (3);
                   quantization:QuantizationParameters (4); is_variable:bool (5); ...
                   shape_signature:[int] (7); }
    QuantizationParameters { min (0); max (1); scale:[float] (2); zero_point:[long] (3); ...
                   quantized_dimension:int (6); }
    Operator     { opcode_index:uint (0); inputs:[int] (1); outputs:[int] (2);
                   builtin_options_type:ubyte (3); builtin_options (4);
                   custom_options:[ubyte] (5); ... }
    OperatorCode { deprecated_builtin_code:byte (0); custom_code:string (1); version:int (2);
                   builtin_code:BuiltinOperator (3); }
    Buffer       { data:[ubyte] (0); offset:ulong (1); size:ulong (2); }
    WhileOptions { cond_subgraph_index:int (0); body_subgraph_index:int (1); }
    CallOnceOptions { init_subgraph_index:int (0); }
    VarHandleOptions { container:string (0); shared_name:string (1); }

An operator's code is max(deprecated_builtin_code, builtin_code): schema 3a moved codes past 127
into the int32 field and left the int8 one at 127 (schema.fbs, OperatorCode comment).
Buffer contents are read only on request (`buffer_content`); parsing reads their lengths: a
constant whose shape needs more bytes than its buffer holds is refused (a 764-byte file once
declared 64 dimensions of 2^31 each).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from inspector.formats.tflite import flex
from inspector.formats.tflite.flatbuffer import Buffer, FlatError, Table, Vector, root

IDENTIFIER = b"TFL3"
MAX_TENSORS = 2_000_000  # over all subgraphs
MAX_OPERATOR_IO = 4096  # inputs/outputs kept per operator
# Everything decoded (subgraphs, tensors, operators, their input/output indices, buffers,
# operator codes) over the whole file. Flatbuffer offsets may alias: a 1.6 MB file whose
# 200,000 subgraphs all point at one table of 200,000 operators asks for 4e10 operators. A
# real model decodes a few elements per tensor (a large one: tens of thousands); 2 million cost
# about 350 MB and a few seconds at most.
MAX_ELEMENTS = 2_000_000
MAX_RANK = 64
# BuiltinOptions union members (schema.fbs) whose fields a report needs.
WHILE_OPTIONS = 93
CALL_ONCE_OPTIONS = 103
VAR_HANDLE_OPTIONS = 111


@dataclass(frozen=True)
class DType:
    name: str
    itemsize: int  # bytes per element; 0 where not fixed (string, resource, variant)
    is_float: bool = False
    bits: int | None = None  # stored bits per element where not 8·itemsize (packed int4, int2)

    @property
    def stored_bits(self) -> int:
        return self.bits if self.bits is not None else 8 * self.itemsize


# TensorType (schema.fbs). INT4/UINT4/INT2 are packed below a byte; counted at one byte.
DTYPES: Mapping[int, DType] = MappingProxyType(
    {
        0: DType("float32", 4, True),
        1: DType("float16", 2, True),
        2: DType("int32", 4),
        3: DType("uint8", 1),
        4: DType("int64", 8),
        5: DType("string", 0),
        6: DType("bool", 1),
        7: DType("int16", 2),
        8: DType("complex64", 8, True),
        9: DType("int8", 1),
        10: DType("float64", 8, True),
        11: DType("complex128", 16, True),
        12: DType("uint64", 8),
        13: DType("resource", 0),
        14: DType("variant", 0),
        15: DType("uint32", 4),
        16: DType("uint16", 2),
        17: DType("int4", 1, bits=4),
        18: DType("bfloat16", 2, True),
        19: DType("int2", 1, bits=2),
        20: DType("uint4", 1, bits=4),
    }
)

# BuiltinOperator names by code (schema.fbs enum BuiltinOperator, codes 0..209).
_BUILTIN_NAMES = (
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE",
    "DEQUANTIZE",
    "EMBEDDING_LOOKUP",
    "FLOOR",
    "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION",
    "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC",
    "LSH_PROJECTION",
    "LSTM",
    "MAX_POOL_2D",
    "MUL",
    "RELU",
    "RELU_N1_TO_1",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "RNN",
    "SOFTMAX",
    "SPACE_TO_DEPTH",
    "SVDF",
    "TANH",
    "CONCAT_EMBEDDINGS",
    "SKIP_GRAM",
    "CALL",
    "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE",
    "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "GATHER",
    "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND",
    "TRANSPOSE",
    "MEAN",
    "SUB",
    "DIV",
    "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "EXP",
    "TOPK_V2",
    "SPLIT",
    "LOG_SOFTMAX",
    "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "CAST",
    "PRELU",
    "MAXIMUM",
    "ARG_MAX",
    "MINIMUM",
    "LESS",
    "NEG",
    "PADV2",
    "GREATER",
    "GREATER_EQUAL",
    "LESS_EQUAL",
    "SELECT",
    "SLICE",
    "SIN",
    "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE",
    "TILE",
    "EXPAND_DIMS",
    "EQUAL",
    "NOT_EQUAL",
    "LOG",
    "SUM",
    "SQRT",
    "RSQRT",
    "SHAPE",
    "POW",
    "ARG_MIN",
    "FAKE_QUANT",
    "REDUCE_PROD",
    "REDUCE_MAX",
    "PACK",
    "LOGICAL_OR",
    "ONE_HOT",
    "LOGICAL_AND",
    "LOGICAL_NOT",
    "UNPACK",
    "REDUCE_MIN",
    "FLOOR_DIV",
    "REDUCE_ANY",
    "SQUARE",
    "ZEROS_LIKE",
    "FILL",
    "FLOOR_MOD",
    "RANGE",
    "RESIZE_NEAREST_NEIGHBOR",
    "LEAKY_RELU",
    "SQUARED_DIFFERENCE",
    "MIRROR_PAD",
    "ABS",
    "SPLIT_V",
    "UNIQUE",
    "CEIL",
    "REVERSE_V2",
    "ADD_N",
    "GATHER_ND",
    "COS",
    "WHERE",
    "RANK",
    "ELU",
    "REVERSE_SEQUENCE",
    "MATRIX_DIAG",
    "QUANTIZE",
    "MATRIX_SET_DIAG",
    "ROUND",
    "HARD_SWISH",
    "IF",
    "WHILE",
    "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND",
    "SELECT_V2",
    "DENSIFY",
    "SEGMENT_SUM",
    "BATCH_MATMUL",
    "PLACEHOLDER_FOR_GREATER_OP_CODES",
    "CUMSUM",
    "CALL_ONCE",
    "BROADCAST_TO",
    "RFFT2D",
    "CONV_3D",
    "IMAG",
    "REAL",
    "COMPLEX_ABS",
    "HASHTABLE",
    "HASHTABLE_FIND",
    "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE",
    "REDUCE_ALL",
    "CONV_3D_TRANSPOSE",
    "VAR_HANDLE",
    "READ_VARIABLE",
    "ASSIGN_VARIABLE",
    "BROADCAST_ARGS",
    "RANDOM_STANDARD_NORMAL",
    "BUCKETIZE",
    "RANDOM_UNIFORM",
    "MULTINOMIAL",
    "GELU",
    "DYNAMIC_UPDATE_SLICE",
    "RELU_0_TO_1",
    "UNSORTED_SEGMENT_PROD",
    "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM",
    "ATAN2",
    "UNSORTED_SEGMENT_MIN",
    "SIGN",
    "BITCAST",
    "BITWISE_XOR",
    "RIGHT_SHIFT",
    "STABLEHLO_LOGISTIC",
    "STABLEHLO_ADD",
    "STABLEHLO_DIVIDE",
    "STABLEHLO_MULTIPLY",
    "STABLEHLO_MAXIMUM",
    "STABLEHLO_RESHAPE",
    "STABLEHLO_CLAMP",
    "STABLEHLO_CONCATENATE",
    "STABLEHLO_BROADCAST_IN_DIM",
    "STABLEHLO_CONVOLUTION",
    "STABLEHLO_SLICE",
    "STABLEHLO_CUSTOM_CALL",
    "STABLEHLO_REDUCE",
    "STABLEHLO_ABS",
    "STABLEHLO_AND",
    "STABLEHLO_COSINE",
    "STABLEHLO_EXPONENTIAL",
    "STABLEHLO_FLOOR",
    "STABLEHLO_LOG",
    "STABLEHLO_MINIMUM",
    "STABLEHLO_NEGATE",
    "STABLEHLO_OR",
    "STABLEHLO_POWER",
    "STABLEHLO_REMAINDER",
    "STABLEHLO_RSQRT",
    "STABLEHLO_SELECT",
    "STABLEHLO_SUBTRACT",
    "STABLEHLO_TANH",
    "STABLEHLO_SCATTER",
    "STABLEHLO_COMPARE",
    "STABLEHLO_CONVERT",
    "STABLEHLO_DYNAMIC_SLICE",
    "STABLEHLO_DYNAMIC_UPDATE_SLICE",
    "STABLEHLO_PAD",
    "STABLEHLO_IOTA",
    "STABLEHLO_DOT_GENERAL",
    "STABLEHLO_REDUCE_WINDOW",
    "STABLEHLO_SORT",
    "STABLEHLO_WHILE",
    "STABLEHLO_GATHER",
    "STABLEHLO_TRANSPOSE",
    "DILATE",
    "STABLEHLO_RNG_BIT_GENERATOR",
    "REDUCE_WINDOW",
    "STABLEHLO_COMPOSITE",
    "STABLEHLO_SHIFT_LEFT",
    "STABLEHLO_CBRT",
    "STABLEHLO_CASE",
)


BUILTIN_NAMES = frozenset(_BUILTIN_NAMES)


def op_name(code: int) -> str:
    if 0 <= code < len(_BUILTIN_NAMES) and _BUILTIN_NAMES[code]:
        return _BUILTIN_NAMES[code]
    return f"BUILTIN_{code}"


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: DType
    buffer: int
    scales: int  # quantization scales stored (0: not quantized)
    is_variable: bool
    shape_signature: tuple[int, ...] | None = None  # -1 where a dimension is dynamic


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    op: str  # builtin name, or the custom code
    inputs: tuple[int, ...]  # -1: optional input left out
    outputs: tuple[int, ...]
    body: int | None = None  # WHILE: body subgraph index
    cond: int | None = None
    init: int | None = None  # CALL_ONCE: the subgraph it runs once (variable initialisers)
    variable: tuple[str, str] | None = None  # VAR_HANDLE: (container, shared_name)
    # A Flex op: its NodeDef's boolean attributes that are true (`flex.py`); None for other ops
    # and where the custom options cannot be read.
    flex_true: frozenset[str] | None = None


@dataclass(frozen=True)
class SubGraphInfo:
    index: int
    name: str
    tensors: tuple[TensorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[OperatorInfo, ...]


@dataclass(frozen=True)
class ModelInfo:
    version: int
    description: str
    subgraphs: tuple[SubGraphInfo, ...]
    buffer_bytes: tuple[int, ...]  # stored length of each buffer (inline data or offset/size)


def has_identifier(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == IDENTIFIER


def parse(buf: Buffer) -> ModelInfo:
    """Raises FlatError for malformed or over-limit input."""
    if not has_identifier(bytes(buf[:8])):
        raise FlatError("no TFL3 identifier at byte 4", 4)
    model = root(buf)
    elements = _Elements(model.pos)
    codes = _opcodes(model.vector(1, 4), elements)
    buffers = model.vector(4, 4)
    elements.take(buffers.length if buffers else 0)
    buffer_bytes = (
        tuple(_buffer_bytes(buffers.table(i), len(buf)) for i in range(buffers.length))
        if buffers
        else ()
    )
    graphs = model.vector(2, 4)
    elements.take(graphs.length if graphs else 0)
    subgraphs: list[SubGraphInfo] = []
    budget = [MAX_TENSORS]
    for index in range(graphs.length if graphs else 0):
        assert graphs is not None
        subgraphs.append(_subgraph(graphs.table(index), index, codes, budget, elements))
    for graph in subgraphs:
        for tensor in graph.tensors:
            _check_fits(graph, tensor, buffer_bytes)
    return ModelInfo(model.uint32(0), model.string(3), tuple(subgraphs), buffer_bytes)


def buffer_content(buf: Buffer, buffer_index: int, needed: int) -> bytes | int | None:
    """The first `needed` bytes of buffer `buffer_index`: its inline data, or (models past
    2 GB) the bytes its offset/size place in the file. None where there is no such buffer;
    an int where the bytes are not there: the length it holds, or -1 when it lies past the end
    of the file."""
    buffers = root(buf).vector(4, 4)
    if buffers is None or not 0 < buffer_index < buffers.length:
        return None
    table = buffers.table(buffer_index)
    inline = table.vector(0, 1)
    if inline is not None and inline.length:
        start, length = inline.start, inline.length
    else:
        start, length = table.uint64(1), table.uint64(2)
        if start + length > len(buf):
            return -1
    if length < needed:
        return length
    return bytes(buf[start : start + needed])


def _check_fits(graph: SubGraphInfo, tensor: TensorInfo, buffer_bytes: tuple[int, ...]) -> None:
    """A constant's shape must fit its buffer: more elements than the file could hold is a
    damaged file, refused here rather than counted (every count downstream is then bounded by
    the file's size); so is a shape of no elements over stored bytes (a negative dimension,
    which an activation's shape may hold, is read as 0: the constant would count 0)."""
    stored = buffer_bytes[tensor.buffer] if 0 < tensor.buffer < len(buffer_bytes) else 0
    bits = tensor.dtype.stored_bits
    if not stored or not bits:
        return
    needed = 1
    for dim in tensor.shape:
        needed *= dim
        if needed * bits > 8 * stored:
            raise FlatError(
                f"tensor {tensor.index} of subgraph {graph.index} declares a shape (rank "
                f"{len(tensor.shape)}) needing more than the {stored:,} bytes its buffer holds",
                0,
            )
    if not needed:  # a negative dimension (read as 0) or a zero one: the bytes would not count
        raise FlatError(
            f"tensor {tensor.index} of subgraph {graph.index} declares a shape of no elements "
            f"(a zero or negative dimension) but its buffer holds {stored:,} bytes",
            0,
        )


class _Elements:
    """The count of decoded elements left (MAX_ELEMENTS), taken before each is decoded."""

    def __init__(self, offset: int) -> None:
        self.left = MAX_ELEMENTS
        self.offset = offset

    def take(self, count: int, offset: int | None = None) -> None:
        self.left -= count
        if self.left < 0:
            raise FlatError(
                f"more than {MAX_ELEMENTS:,} subgraphs, tensors, operators and operator "
                "inputs/outputs in all (offsets pointing at the same tables again and again?)",
                self.offset if offset is None else offset,
            )


def _opcodes(vector: Vector | None, elements: _Elements) -> tuple[str, ...]:
    elements.take(vector.length if vector else 0)
    names = []
    for index in range(vector.length if vector else 0):
        assert vector is not None
        table = vector.table(index)
        custom = table.string(1)
        code = max(table.int8(0), table.int32(3))
        names.append(custom if custom else op_name(code))
    return tuple(names)


def _buffer_bytes(table: Table, file_size: int) -> int:
    """A buffer's stored length: its inline data, or (models past 2 GB) the `size` its
    `offset` places after the flatbuffer, which must lie inside the file."""
    inline = table.vector_length(0, 1)
    if inline:
        return inline
    offset, size = table.uint64(1), table.uint64(2)
    if size and offset + size > file_size:
        raise FlatError(
            f"a buffer of {size:,} bytes at offset {offset:,} lies past the end of the file",
            table.pos,
        )
    return size


def _subgraph(
    table: Table, index: int, codes: tuple[str, ...], budget: list[int], elements: _Elements
) -> SubGraphInfo:
    tensors_vector = table.vector(0, 4)
    count = tensors_vector.length if tensors_vector else 0
    budget[0] -= count
    if budget[0] < 0:
        raise FlatError(f"more than {MAX_TENSORS:,} tensors", table.pos)
    elements.take(count, table.pos)
    tensors = tuple(
        _tensor(tensors_vector.table(i), i) for i in range(count) if tensors_vector is not None
    )
    operators_vector = table.vector(3, 4)
    elements.take(operators_vector.length if operators_vector else 0, table.pos)
    operators = tuple(
        _operator(operators_vector.table(i), i, codes, elements)
        for i in range(operators_vector.length if operators_vector else 0)
        if operators_vector is not None
    )
    return SubGraphInfo(
        index,
        table.string(4),
        tensors,
        _ints(table.vector(1, 4), elements),
        _ints(table.vector(2, 4), elements),
        operators,
    )


def _ints(vector: Vector | None, elements: _Elements | None = None) -> tuple[int, ...]:
    if vector is None:
        return ()
    if elements is not None:
        elements.take(min(vector.length, MAX_OPERATOR_IO), vector.start)
    return vector.ints(MAX_OPERATOR_IO)


def _tensor(table: Table, index: int) -> TensorInfo:
    shape_vector = table.vector(0, 4)
    if shape_vector is not None and shape_vector.length > MAX_RANK:
        raise FlatError(f"tensor {index} has {shape_vector.length} dimensions", table.pos)
    shape = _ints(shape_vector)
    code = table.uint8(1)
    dtype = DTYPES.get(code)
    if dtype is None:
        raise FlatError(f"tensor {index} has unknown TensorType {code}", table.pos)
    quantization = table.table(4)
    scales = quantization.vector_length(2, 4) if quantization is not None else 0
    return TensorInfo(
        index,
        table.string(3),
        tuple(max(dim, 0) for dim in shape),
        dtype,
        table.uint32(2),
        scales,
        bool(table.uint8(5)),
        _signature(table.vector(7, 4), index, table.pos),
    )


def _signature(vector: Vector | None, index: int, offset: int) -> tuple[int, ...] | None:
    if vector is None:
        return None
    if vector.length > MAX_RANK:
        raise FlatError(f"tensor {index} has a shape signature of rank {vector.length}", offset)
    return vector.ints(MAX_RANK)


def _operator(
    table: Table, index: int, codes: tuple[str, ...], elements: _Elements
) -> OperatorInfo:
    opcode = table.uint32(0)
    if opcode >= len(codes):
        raise FlatError(f"operator {index} names operator code {opcode} of {len(codes)}", table.pos)
    body = cond = init = None
    variable = None
    kind = table.uint8(3)
    options = (
        table.table(4) if kind in (WHILE_OPTIONS, CALL_ONCE_OPTIONS, VAR_HANDLE_OPTIONS) else None
    )
    if options is not None and kind == WHILE_OPTIONS:
        cond, body = options.int32(0), options.int32(1)
    elif options is not None and kind == CALL_ONCE_OPTIONS:
        init = options.int32(0)
    elif options is not None and kind == VAR_HANDLE_OPTIONS:
        variable = (options.string(0), options.string(1))
    flex_true = None
    if codes[opcode].startswith("Flex"):
        custom = table.vector(5, 1)
        if custom is not None and 0 < custom.length <= flex.MAX_OPTIONS:
            raw = bytes(custom.buf[custom.start : custom.start + custom.length])
            flex_true = flex.true_attributes(raw) if flex.is_node_def(raw) else None
    return OperatorInfo(
        index,
        codes[opcode],
        _ints(table.vector(1, 4), elements),
        _ints(table.vector(2, 4), elements),
        body,
        cond,
        init,
        variable,
        flex_true,
    )
