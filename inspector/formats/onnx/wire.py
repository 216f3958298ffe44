"""Read an ONNX ModelProto by walking the protobuf wire format, without reading weights.

`onnx.load` materialises every tensor; a report needs only names, shapes, dtypes, attributes
and graph structure. This module decodes every ModelProto field a report uses and skips bulk
tensor data (raw_data, float_data, int64_data ...) by its length, so a 268 MB model is
described while its weight pages stay untouched in the memory map.

Field numbers follow onnx/onnx.proto3 (IR version 10); unknown fields are skipped by wire
type, as protobuf requires. Malformed input raises `WireError` with the byte offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from inspector.formats.protobuf import (
    FIXED32,
    FIXED64,
    LENGTH,
    VARINT,
    Buffer,
    WireError,
)
from inspector.formats.protobuf import Field as _Field
from inspector.formats.protobuf import expect as _expect
from inspector.formats.protobuf import fields as _fields
from inspector.formats.protobuf import integer as _int
from inspector.formats.protobuf import packed_varints as _packed_varints
from inspector.formats.protobuf import signed as _signed
from inspector.formats.protobuf import text as _text
from inspector.formats.protobuf import varint as _varint

MAX_GRAPH_DEPTH = 48  # nested subgraphs; real exporters stay below 10
MAX_TYPE_DEPTH = 32  # nested sequence/optional/map types
# Every repeated element a report keeps costs memory, here and in the reader after it: a
# stored tensor (initializer, sparse or attribute tensor) TENSOR units, a node, value info or
# graph HEAVY units, each input/output name, attribute, dimension, opset, metadata entry or
# function one unit. Measured on files of a single kind at the limit, the whole inspection
# stays under ~300 MB (a graph of a million empty nodes is 2 MB on the wire, and 1.4 GB as
# Python objects); the largest real exports (transformer graphs of ~50,000 nodes and a few
# thousand initializers) use a fraction of the budget.
MAX_ITEMS = 2_000_000
HEAVY = 4
TENSOR = 16
MAX_DECODED_LIST = 4096  # attribute ints/floats kept; longer lists keep only their length
SMALL_INT_VALUES = 64
# struct formats of the integer TensorProto data types (onnx.proto3 DataType).
_INT_FORMATS = {2: "B", 3: "b", 4: "H", 5: "h", 6: "i", 7: "q", 9: "?", 12: "I", 13: "Q"}


class TooLargeError(Exception):
    """Well-formed so far, but beyond the limits a report is allowed to use."""


@dataclass(frozen=True)
class TensorMeta:
    """A TensorProto without its data: what is stored and how much of it."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    external: tuple[tuple[str, str], ...] = ()
    data_location: int = 0  # 1: EXTERNAL
    raw_bytes: int | None = None  # length of raw_data when present
    fixed_count: int | None = None  # elements in float/double data (fixed width on the wire)
    varint_min: int = 0  # int32/int64/uint64 data: varints, so only bounds on the count
    varint_max: int = 0
    string_count: int = 0
    has_segment: bool = False
    raw_offset: int | None = None  # where raw_data starts in the file
    int_values: tuple[int, ...] | None = None  # values of a small integer tensor (shapes, axes)
    span: tuple[int, int] = (0, 0)  # where the TensorProto lies in the file (value comparison)

    @property
    def is_external(self) -> bool:
        return self.data_location == 1

    @property
    def has_data(self) -> bool:
        return (
            self.raw_bytes is not None
            or self.fixed_count is not None
            or self.varint_max > 0
            or self.string_count > 0
        )


@dataclass(frozen=True)
class ValueInfo:
    name: str
    elem_type: int | None  # None: not a tensor type (sequence, map, ...) or not declared
    shape: tuple[int | str | None, ...] | None  # None: rank unknown; str: symbolic dimension


@dataclass(frozen=True)
class Attribute:
    name: str
    type: int
    i: int | None = None
    f: float | None = None
    s: bytes | None = None
    ints: tuple[int, ...] = ()
    floats: tuple[float, ...] = ()
    list_count: int = 0  # length of ints/floats/strings, also when too long to keep
    t: TensorMeta | None = None
    tensors: tuple[TensorMeta, ...] = ()
    g: Graph | None = None
    graphs: tuple[Graph, ...] = ()
    sparse: tuple[SparseMeta, ...] = ()


@dataclass(frozen=True)
class Node:
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None

    def subgraphs(self) -> Iterator[tuple[str, Graph]]:
        """(label, graph) for every graph attribute, e.g. ('then_branch', g) or ('graphs[1]', g)."""
        for attr in self.attributes:
            if attr.g is not None:
                yield attr.name, attr.g
            for position, graph in enumerate(attr.graphs):
                yield f"{attr.name}[{position}]", graph


@dataclass(frozen=True)
class SparseMeta:
    values: TensorMeta | None
    indices: TensorMeta | None
    dims: tuple[int, ...]


@dataclass(frozen=True)
class Graph:
    name: str
    nodes: tuple[Node, ...]
    initializers: tuple[TensorMeta, ...]
    sparse_initializers: tuple[SparseMeta, ...]
    inputs: tuple[ValueInfo, ...]
    outputs: tuple[ValueInfo, ...]
    value_info: tuple[ValueInfo, ...]


@dataclass(frozen=True)
class Function:
    name: str
    domain: str
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class ModelMeta:
    ir_version: int | None
    producer_name: str
    producer_version: str
    domain: str
    model_version: int | None
    opsets: tuple[tuple[str, int], ...]
    graph: Graph | None
    functions: tuple[Function, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    has_training_info: bool = False


# --- low-level wire walking -------------------------------------------------------------

# --- message decoders ---------------------------------------------------------------------
# One function per message of onnx.proto3, in four groups: the model and its small messages;
# graphs and their value infos and types; nodes and attributes; tensors. All share a _Reader:
# the file's bytes and the item budget.


class _Reader:
    def __init__(self, buf: Buffer) -> None:
        self.buf = buf
        self.items = 0

    def count(self, offset: int, units: int = 1) -> None:
        self.items += units
        if self.items > MAX_ITEMS:
            raise TooLargeError(
                f"more than {MAX_ITEMS:,} graph elements (nodes, tensors, value infos, names, "
                f"attributes, dimensions, opsets, metadata entries; at byte {offset})"
            )

    def room(self) -> int:
        """How many more single-unit elements the budget allows."""
        return MAX_ITEMS - self.items


# --- the model: opsets, metadata entries, functions


def _model(r: _Reader, start: int, end: int) -> ModelMeta:
    buf = r.buf
    ir_version = model_version = None
    producer_name = producer_version = domain = ""
    opsets: list[tuple[str, int]] = []
    graph: Graph | None = None
    functions: list[Function] = []
    metadata: list[tuple[str, str]] = []
    training = False
    for item in _fields(buf, start, end):
        n = item.number
        if n == 1:
            ir_version = _int(item, "ModelProto.ir_version")
        elif n == 2:
            producer_name = _text(buf, item, "ModelProto.producer_name")
        elif n == 3:
            producer_version = _text(buf, item, "ModelProto.producer_version")
        elif n == 4:
            domain = _text(buf, item, "ModelProto.domain")
        elif n == 5:
            model_version = _int(item, "ModelProto.model_version")
        elif n == 7:
            _expect(item, LENGTH, "ModelProto.graph")
            graph = _graph(r, item.value, item.end, 0)
        elif n == 8:
            _expect(item, LENGTH, "ModelProto.opset_import")
            r.count(item.start)
            opsets.append(_opset(r, item.value, item.end))
        elif n == 14:
            _expect(item, LENGTH, "ModelProto.metadata_props")
            r.count(item.start)
            metadata.append(_entry(r, item.value, item.end))
        elif n == 20:
            _expect(item, LENGTH, "ModelProto.training_info")
            training = True
        elif n == 25:
            _expect(item, LENGTH, "ModelProto.functions")
            r.count(item.start)
            functions.append(_function(r, item.value, item.end))
        elif n in (6, 26):
            _expect(item, LENGTH, "ModelProto")
    return ModelMeta(
        ir_version=ir_version,
        producer_name=producer_name,
        producer_version=producer_version,
        domain=domain,
        model_version=model_version,
        opsets=tuple(opsets),
        graph=graph,
        functions=tuple(functions),
        metadata=tuple(metadata),
        has_training_info=training,
    )


def _opset(r: _Reader, start: int, end: int) -> tuple[str, int]:
    domain, version = "", 0
    for item in _fields(r.buf, start, end):
        if item.number == 1:
            domain = _text(r.buf, item, "OperatorSetIdProto.domain")
        elif item.number == 2:
            version = _int(item, "OperatorSetIdProto.version")
    return domain, version


def _entry(r: _Reader, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    for item in _fields(r.buf, start, end):
        if item.number == 1:
            key = _text(r.buf, item, "StringStringEntryProto.key")
        elif item.number == 2:
            value = _text(r.buf, item, "StringStringEntryProto.value")
    return key, value


def _function(r: _Reader, start: int, end: int) -> Function:
    name = domain = ""
    nodes: list[Node] = []
    for item in _fields(r.buf, start, end):
        if item.number == 1:
            name = _text(r.buf, item, "FunctionProto.name")
        elif item.number == 10:
            domain = _text(r.buf, item, "FunctionProto.domain")
        elif item.number == 7:
            _expect(item, LENGTH, "FunctionProto.node")
            nodes.append(_node(r, item.value, item.end, 1))
    return Function(name, domain, tuple(nodes))


# --- graphs: value infos, types, shapes


def _graph(r: _Reader, start: int, end: int, depth: int) -> Graph:
    if depth > MAX_GRAPH_DEPTH:
        raise WireError(f"subgraphs nested more than {MAX_GRAPH_DEPTH} levels deep", start)
    r.count(start, HEAVY)
    buf = r.buf
    name = ""
    nodes: list[Node] = []
    initializers: list[TensorMeta] = []
    sparse: list[SparseMeta] = []
    inputs: list[ValueInfo] = []
    outputs: list[ValueInfo] = []
    value_info: list[ValueInfo] = []
    for item in _fields(buf, start, end):
        n = item.number
        if n == 1:
            _expect(item, LENGTH, "GraphProto.node")
            nodes.append(_node(r, item.value, item.end, depth))
        elif n == 2:
            name = _text(buf, item, "GraphProto.name")
        elif n == 5:
            _expect(item, LENGTH, "GraphProto.initializer")
            initializers.append(_tensor(r, item.value, item.end))
        elif n == 15:
            _expect(item, LENGTH, "GraphProto.sparse_initializer")
            r.count(item.start, TENSOR)
            sparse.append(_sparse(r, item.value, item.end))
        elif n in (11, 12, 13):
            _expect(item, LENGTH, "GraphProto.input/output/value_info")
            info = _value_info(r, item.value, item.end)
            (inputs if n == 11 else outputs if n == 12 else value_info).append(info)
    return Graph(
        name=name,
        nodes=tuple(nodes),
        initializers=tuple(initializers),
        sparse_initializers=tuple(sparse),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        value_info=tuple(value_info),
    )


# --- nodes and attributes


def _node(r: _Reader, start: int, end: int, depth: int) -> Node:
    r.count(start, HEAVY)
    buf = r.buf
    name = op_type = domain = ""
    inputs: list[str] = []
    outputs: list[str] = []
    attributes: list[Attribute] = []
    for item in _fields(buf, start, end):
        n = item.number
        if n == 1:
            r.count(item.start)
            inputs.append(_text(buf, item, "NodeProto.input"))
        elif n == 2:
            r.count(item.start)
            outputs.append(_text(buf, item, "NodeProto.output"))
        elif n == 3:
            name = _text(buf, item, "NodeProto.name")
        elif n == 4:
            op_type = _text(buf, item, "NodeProto.op_type")
        elif n == 7:
            domain = _text(buf, item, "NodeProto.domain")
        elif n == 5:
            _expect(item, LENGTH, "NodeProto.attribute")
            r.count(item.start)
            attributes.append(_attribute(r, item.value, item.end, depth))
    return Node(name, op_type, domain, tuple(inputs), tuple(outputs), tuple(attributes))


def _attribute(r: _Reader, start: int, end: int, depth: int) -> Attribute:
    buf = r.buf
    name = ""
    kind = 0
    i: int | None = None
    f: float | None = None
    s: bytes | None = None
    ints: list[int] = []
    floats: list[float] = []
    count = 0
    t: TensorMeta | None = None
    tensors: list[TensorMeta] = []
    g: Graph | None = None
    graphs: list[Graph] = []
    sparse: list[SparseMeta] = []
    for item in _fields(buf, start, end):
        n = item.number
        if n == 1:
            name = _text(buf, item, "AttributeProto.name")
        elif n == 20:
            kind = _int(item, "AttributeProto.type")
        elif n == 2:
            _expect(item, FIXED32, "AttributeProto.f")
            f = _float32(buf, item.value)
        elif n == 3:
            i = _int(item, "AttributeProto.i")
        elif n == 4:
            _expect(item, LENGTH, "AttributeProto.s")
            s = bytes(buf[item.value : min(item.end, item.value + 4096)])
        elif n == 5:
            _expect(item, LENGTH, "AttributeProto.t")
            t = _tensor(r, item.value, item.end)
        elif n == 6:
            _expect(item, LENGTH, "AttributeProto.g")
            g = _graph(r, item.value, item.end, depth + 1)
        elif n == 7:
            got, seen = _packed_floats(buf, item, MAX_DECODED_LIST - len(floats))
            floats.extend(got)
            count += seen
        elif n == 8:
            values, seen = _packed_varints(
                buf, item, "AttributeProto.ints", MAX_DECODED_LIST - len(ints)
            )
            ints.extend(values)
            count += seen
        elif n == 9:
            _expect(item, LENGTH, "AttributeProto.strings")
            r.count(item.start)
            count += 1
        elif n == 10:
            _expect(item, LENGTH, "AttributeProto.tensors")
            tensors.append(_tensor(r, item.value, item.end))
        elif n == 11:
            _expect(item, LENGTH, "AttributeProto.graphs")
            graphs.append(_graph(r, item.value, item.end, depth + 1))
        elif n in (22, 23):
            _expect(item, LENGTH, "AttributeProto.sparse_tensor")
            r.count(item.start, TENSOR)
            sparse.append(_sparse(r, item.value, item.end))
    return Attribute(
        name=name,
        type=kind,
        i=i,
        f=f,
        s=s,
        ints=tuple(ints),
        floats=tuple(floats),
        list_count=count,
        t=t,
        tensors=tuple(tensors),
        g=g,
        graphs=tuple(graphs),
        sparse=tuple(sparse),
    )


# --- tensors


def _tensor(r: _Reader, start: int, end: int) -> TensorMeta:
    r.count(start, TENSOR)
    buf = r.buf
    name = ""
    dims: list[int] = []
    data_type = 0
    external: list[tuple[str, str]] = []
    location = 0
    raw_bytes = raw_offset = fixed = None
    varint_min = varint_max = strings = 0
    segment = False
    int_fields: list[_Field] = []
    for item in _fields(buf, start, end):
        n = item.number
        if n == 1:
            values, seen = _packed_varints(buf, item, "TensorProto.dims", r.room() + 1)
            r.count(item.start, seen)
            dims.extend(values)
        elif n == 2:
            data_type = _int(item, "TensorProto.data_type")
        elif n == 8:
            name = _text(buf, item, "TensorProto.name")
        elif n == 9:
            _expect(item, LENGTH, "TensorProto.raw_data")
            raw_bytes = item.end - item.value
            raw_offset = item.value
        elif n in (4, 10):  # float_data, double_data: fixed width, packed or not
            width = 4 if n == 4 else 8
            if item.wire == LENGTH:
                fixed = (fixed or 0) + (item.end - item.value) // width
            else:
                _expect(item, FIXED32 if n == 4 else FIXED64, "TensorProto.float_data")
                fixed = (fixed or 0) + 1
        elif n in (5, 7, 11):  # int32_data, int64_data, uint64_data: varints
            int_fields.append(item)
            if item.wire == LENGTH:  # packed: 1 to 10 bytes per value
                varint_min += -(-(item.end - item.value) // 10)
                varint_max += item.end - item.value
            else:
                _expect(item, VARINT, "TensorProto.int_data")
                varint_min += 1
                varint_max += 1
        elif n == 6:
            _expect(item, LENGTH, "TensorProto.string_data")
            strings += 1
        elif n == 13:
            _expect(item, LENGTH, "TensorProto.external_data")
            r.count(item.start)
            external.append(_entry(r, item.value, item.end))
        elif n == 14:
            location = _int(item, "TensorProto.data_location")
        elif n == 3:
            _expect(item, LENGTH, "TensorProto.segment")
            segment = True
    return TensorMeta(
        name=name,
        dims=tuple(dims),
        data_type=data_type,
        external=tuple(external),
        data_location=location,
        raw_bytes=raw_bytes,
        fixed_count=fixed,
        varint_min=varint_min,
        varint_max=varint_max,
        string_count=strings,
        has_segment=segment,
        raw_offset=raw_offset,
        int_values=_small_ints(r, data_type, raw_offset, raw_bytes, int_fields),
        span=(start, end),
    )


def _small_ints(
    r: _Reader, data_type: int, raw_offset: int | None, raw_bytes: int | None, fields: list[_Field]
) -> tuple[int, ...] | None:
    """The values of an integer tensor of at most SMALL_INT_VALUES elements: shape, axes
    and index operands, which shape propagation needs (weights are never decoded)."""
    fmt = _INT_FORMATS.get(data_type)
    if fmt is None:
        return None
    if raw_offset is not None and raw_bytes is not None:
        width = struct.calcsize(fmt)
        if raw_bytes % width or raw_bytes // width > SMALL_INT_VALUES:
            return None
        count = raw_bytes // width
        return tuple(struct.unpack(f"<{count}{fmt}", r.buf[raw_offset : raw_offset + raw_bytes]))
    values: list[int] = []
    for item in fields:
        if item.wire == VARINT:
            values.append(_signed(item.value))
        elif item.end - item.value > SMALL_INT_VALUES * 10:
            return None
        else:
            got, _ = _packed_varints(r.buf, item, "TensorProto.int_data", SMALL_INT_VALUES)
            values.extend(got)
        if len(values) > SMALL_INT_VALUES:
            return None
    return tuple(values) if fields else None


def _sparse(r: _Reader, start: int, end: int) -> SparseMeta:
    values = indices = None
    dims: list[int] = []
    for item in _fields(r.buf, start, end):
        if item.number == 1:
            _expect(item, LENGTH, "SparseTensorProto.values")
            values = _tensor(r, item.value, item.end)
        elif item.number == 2:
            _expect(item, LENGTH, "SparseTensorProto.indices")
            indices = _tensor(r, item.value, item.end)
        elif item.number == 3:
            got, seen = _packed_varints(r.buf, item, "SparseTensorProto.dims", r.room() + 1)
            r.count(item.start, seen)
            dims.extend(got)
    return SparseMeta(values, indices, tuple(dims))


def _value_info(r: _Reader, start: int, end: int) -> ValueInfo:
    r.count(start, HEAVY)
    name = ""
    elem_type: int | None = None
    shape: tuple[int | str | None, ...] | None = None
    for item in _fields(r.buf, start, end):
        if item.number == 1:
            name = _text(r.buf, item, "ValueInfoProto.name")
        elif item.number == 2:
            _expect(item, LENGTH, "ValueInfoProto.type")
            elem_type, shape = _type(r, item.value, item.end, 0)
    return ValueInfo(name, elem_type, shape)


def _type(
    r: _Reader, start: int, end: int, depth: int
) -> tuple[int | None, tuple[int | str | None, ...] | None]:
    if depth > MAX_TYPE_DEPTH:
        raise WireError(f"types nested more than {MAX_TYPE_DEPTH} levels deep", start)
    elem_type: int | None = None
    shape: tuple[int | str | None, ...] | None = None
    for item in _fields(r.buf, start, end):
        if item.number in (1, 8):  # tensor_type, sparse_tensor_type
            _expect(item, LENGTH, "TypeProto.tensor_type")
            for inner in _fields(r.buf, item.value, item.end):
                if inner.number == 1:
                    elem_type = _int(inner, "TypeProto.Tensor.elem_type")
                elif inner.number == 2:
                    _expect(inner, LENGTH, "TypeProto.Tensor.shape")
                    shape = _shape(r, inner.value, inner.end)
        elif item.number in (4, 5, 9):  # sequence, map, optional: walk for validity only
            _expect(item, LENGTH, "TypeProto")
            for inner in _fields(r.buf, item.value, item.end):
                if inner.wire == LENGTH and inner.number in (1, 2):
                    _type(r, inner.value, inner.end, depth + 1)
    return elem_type, shape


def _shape(r: _Reader, start: int, end: int) -> tuple[int | str | None, ...]:
    dims: list[int | str | None] = []
    for item in _fields(r.buf, start, end):
        if item.number != 1:
            continue
        _expect(item, LENGTH, "TensorShapeProto.dim")
        r.count(item.start)
        dim: int | str | None = None
        for inner in _fields(r.buf, item.value, item.end):
            if inner.number == 1:
                value = _int(inner, "Dimension.dim_value")
                dim = value if value >= 0 else None
            elif inner.number == 2:
                dim = _text(r.buf, inner, "Dimension.dim_param")
        dims.append(dim)
    return tuple(dims)


def _float32(buf: Buffer, pos: int) -> float:
    value: float = struct.unpack("<f", buf[pos : pos + 4])[0]
    return value


def _packed_floats(buf: Buffer, item: _Field, limit: int) -> tuple[list[float], int]:
    if item.wire == FIXED32:  # proto2 `repeated float` is not packed: one field per value
        return ([_float32(buf, item.value)] if limit > 0 else []), 1
    _expect(item, LENGTH, "AttributeProto.floats")
    count = (item.end - item.value) // 4
    keep = max(0, min(count, limit))
    return list(struct.unpack(f"<{keep}f", buf[item.value : item.value + 4 * keep])), count


def parse_model(buf: Buffer) -> ModelMeta:
    """Decode a serialized ModelProto. Raises WireError or TooLargeError."""
    return _model(_Reader(buf), 0, len(buf))


# --- tensor values (read only for `rnninspect compare`) -------------------------------------

# TensorProto fields that carry values in typed form (onnx.proto3): float_data, int32_data,
# int64_data, double_data, uint64_data.
TYPED_DATA_FIELDS = frozenset({4, 5, 7, 10, 11})


@dataclass(frozen=True)
class DataField:
    """One typed-data field of a TensorProto: packed (LENGTH) or a single value."""

    number: int
    wire: int
    start: int  # payload start (the value itself for a VARINT)
    end: int


def data_fields(buf: Buffer, meta: TensorMeta) -> list[DataField]:
    """The typed-data fields of a tensor, in file order. Raises WireError."""
    start, end = meta.span
    return [
        DataField(item.number, item.wire, item.value, item.end)
        for item in _fields(buf, start, end)
        if item.number in TYPED_DATA_FIELDS
    ]


def varints(buf: Buffer, start: int, end: int) -> list[int]:
    """The varints packed in buf[start:end], as signed 64-bit values. Raises WireError."""
    values = []
    pos = start
    while pos < end:
        value, pos = _varint(buf, pos, end)
        values.append(_signed(value))
    return values


def first_field(buf: Buffer) -> tuple[int, int] | None:
    """(field number, wire type) of the first field, or None when it cannot be decoded."""
    try:
        key, _ = _varint(buf, 0, min(len(buf), 10))
    except WireError:
        return None
    return key >> 3, key & 7
