"""The protobuf wire walker held to the onnx package's own parser: every ONNX fixture (and
every real ONNX file in ../shared/realworld) read both ways, field by field.

`onnx` is a test dependency only: it is the reference, as tabulate is for the table writer.
The expected `ModelMeta` is built from the ModelProto onnx parsed, in our own dataclasses, so
one equality covers the model fields, opsets, metadata, functions, every graph and subgraph,
every node with its attributes, every initializer, sparse initializer and value info. What
only the wire knows (where a tensor and its raw data lie in the file, bounds on a varint
count) is checked against the file's bytes instead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES, REALWORLD
from inspector.formats.onnx.wire import (
    MAX_DECODED_LIST,
    SMALL_INT_VALUES,
    Attribute,
    Function,
    Graph,
    ModelMeta,
    Node,
    SparseMeta,
    TensorMeta,
    ValueInfo,
    parse_model,
)

_INTEGER_TYPES = frozenset(
    {
        TensorProto.UINT8,
        TensorProto.INT8,
        TensorProto.UINT16,
        TensorProto.INT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.BOOL,
        TensorProto.UINT32,
        TensorProto.UINT64,
    }
)
_S_BYTES = 4096  # AttributeProto.s keeps its first 4 KiB (wire.py)


def _onnx_files() -> list[Path]:
    files = sorted(FIXTURES.rglob("*.onnx"))
    if (REALWORLD / "files").is_dir():
        files += sorted((REALWORLD / "files").glob("*.onnx"))
    return files


@pytest.mark.parametrize("path", _onnx_files(), ids=lambda p: p.name)
def test_the_wire_reader_reads_what_onnx_reads(path: Path) -> None:
    data = path.read_bytes()
    proto = onnx.load_from_string(data)  # external data is never loaded from a string
    ours = parse_model(data)
    _check_positions(ours, data)
    assert _without_positions(ours) == _expected_model(proto)


def test_the_comparison_sees_every_kind_of_field() -> None:
    """One crafted model holding each field the fixtures may lack (a sparse initializer, a
    function, metadata, string/tensor/graph attributes, a long list, int32/int64/double
    data, a symbolic and an unknown dimension): compared as the fixtures are, and a change to
    any one field is seen."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="inner")],
        "body",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    node = helper.make_node(
        "Custom",
        ["a", "b"],
        ["c"],
        name="n",
        domain="example",
        label="text",
        weight=numpy_helper.from_array(np.arange(6, dtype=np.float64).reshape(2, 3), "w"),
        body=body,
        bodies=[body, body],
        scales=[0.5] * (MAX_DECODED_LIST + 3),
        sizes=list(range(10)),
        names=["p", "q"],
    )
    graph = helper.make_graph(
        [node],
        "main",
        [helper.make_tensor_value_info("a", TensorProto.INT64, ["batch", 3])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 3])],
        [
            helper.make_tensor("i32", TensorProto.INT32, [3], [1, -2, 3]),
            helper.make_tensor("i64", TensorProto.INT64, [2], [7, -8]),
            helper.make_tensor("d", TensorProto.DOUBLE, [2], [1.0, 2.0]),
            helper.make_tensor("s", TensorProto.STRING, [2], [b"x", b"y"]),
            numpy_helper.from_array(np.arange(SMALL_INT_VALUES + 1, dtype=np.int64), "long"),
        ],
        value_info=[helper.make_tensor_value_info("b", TensorProto.FLOAT16, [4])],
        sparse_initializer=[
            helper.make_sparse_tensor(
                numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "sv"),
                numpy_helper.from_array(np.array([0, 5], np.int64), "si"),
                [2, 3],
            )
        ],
    )
    function = onnx.FunctionProto(
        name="f", domain="example", node=[helper.make_node("Abs", ["u"], ["v"])]
    )
    model = helper.make_model(
        graph,
        producer_name="test",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example", 1)],
        functions=[function],
    )
    helper.set_model_props(model, {"author": "me"})
    model.model_version = 3
    data = model.SerializeToString()
    ours = parse_model(data)
    _check_positions(ours, data)
    expected = _expected_model(onnx.load_from_string(data))
    assert _without_positions(ours) == expected
    assert ours.graph is not None and ours.graph.sparse_initializers and ours.functions
    attributes = {a.name: a for a in ours.graph.nodes[0].attributes}
    assert attributes["scales"].list_count == MAX_DECODED_LIST + 3
    assert len(attributes["bodies"].graphs) == 2
    # The comparison is not blind: one changed field anywhere makes it fail.
    changed = onnx.load_from_string(data)
    (body_attribute,) = [a for a in changed.graph.node[0].attribute if a.name == "body"]
    body_attribute.g.node[0].name = "other"
    assert _without_positions(ours) != _expected_model(changed)


# --- what only the wire knows: positions in the file -------------------------------------


def _check_positions(meta: ModelMeta, data: bytes) -> None:
    for tensor in _tensors(meta):
        start, end = tensor.span
        reparsed = TensorProto.FromString(data[start:end])
        assert (reparsed.name, tuple(reparsed.dims)) == (tensor.name, tensor.dims)
        if tensor.raw_offset is not None:
            assert tensor.raw_bytes is not None
            raw = data[tensor.raw_offset : tensor.raw_offset + tensor.raw_bytes]
            assert raw == reparsed.raw_data
        ints = len(reparsed.int32_data) + len(reparsed.int64_data) + len(reparsed.uint64_data)
        assert tensor.varint_min <= ints <= tensor.varint_max


def _tensors(value: object) -> list[TensorMeta]:
    if isinstance(value, TensorMeta):
        return [value]
    if isinstance(value, tuple):
        return [t for item in value for t in _tensors(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for f in dataclasses.fields(value) for t in _tensors(getattr(value, f.name))]
    return []


def _without_positions(value: object) -> object:
    """`value` with the wire-only fields of every tensor reset (checked by _check_positions)."""
    if isinstance(value, TensorMeta):
        return dataclasses.replace(value, raw_offset=None, span=(0, 0), varint_min=0, varint_max=0)
    if isinstance(value, tuple):
        return tuple(_without_positions(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _without_positions(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)  # type: ignore[type-var]
    return value


# --- the same model as onnx parsed it, in our dataclasses --------------------------------


def _optional(message: object, field: str) -> object:
    return getattr(message, field) if message.HasField(field) else None  # type: ignore[attr-defined]


def _expected_model(proto: onnx.ModelProto) -> ModelMeta:
    return ModelMeta(
        ir_version=_optional(proto, "ir_version"),  # type: ignore[arg-type]
        producer_name=proto.producer_name,
        producer_version=proto.producer_version,
        domain=proto.domain,
        model_version=_optional(proto, "model_version"),  # type: ignore[arg-type]
        opsets=tuple((o.domain, o.version) for o in proto.opset_import),
        graph=_graph(proto.graph) if proto.HasField("graph") else None,
        functions=tuple(
            Function(f.name, f.domain, tuple(_node(n) for n in f.node)) for f in proto.functions
        ),
        metadata=tuple((p.key, p.value) for p in proto.metadata_props),
        has_training_info=len(proto.training_info) > 0,
    )


def _graph(graph: onnx.GraphProto) -> Graph:
    return Graph(
        name=graph.name,
        nodes=tuple(_node(n) for n in graph.node),
        initializers=tuple(_tensor(t) for t in graph.initializer),
        sparse_initializers=tuple(_sparse(s) for s in graph.sparse_initializer),
        inputs=tuple(_value_info(v) for v in graph.input),
        outputs=tuple(_value_info(v) for v in graph.output),
        value_info=tuple(_value_info(v) for v in graph.value_info),
    )


def _node(node: onnx.NodeProto) -> Node:
    return Node(
        node.name,
        node.op_type,
        node.domain,
        tuple(node.input),
        tuple(node.output),
        tuple(_attribute(a) for a in node.attribute),
    )


def _attribute(attr: onnx.AttributeProto) -> Attribute:
    s = attr.s[:_S_BYTES] if attr.HasField("s") else None
    return Attribute(
        name=attr.name,
        type=attr.type,
        i=_optional(attr, "i"),  # type: ignore[arg-type]
        f=_optional(attr, "f"),  # type: ignore[arg-type]
        s=s,
        ints=tuple(attr.ints[:MAX_DECODED_LIST]),
        floats=tuple(attr.floats[:MAX_DECODED_LIST]),
        list_count=len(attr.ints) + len(attr.floats) + len(attr.strings),
        t=_tensor(attr.t) if attr.HasField("t") else None,
        tensors=tuple(_tensor(t) for t in attr.tensors),
        g=_graph(attr.g) if attr.HasField("g") else None,
        graphs=tuple(_graph(g) for g in attr.graphs),
        sparse=tuple(
            _sparse(s)
            for s in ([attr.sparse_tensor] if attr.HasField("sparse_tensor") else [])
            + list(attr.sparse_tensors)
        ),
    )


def _tensor(tensor: TensorProto) -> TensorMeta:
    fixed = len(tensor.float_data) + len(tensor.double_data)
    return TensorMeta(
        name=tensor.name,
        dims=tuple(tensor.dims),
        data_type=tensor.data_type,
        external=tuple((e.key, e.value) for e in tensor.external_data),
        data_location=tensor.data_location,
        raw_bytes=len(tensor.raw_data) if tensor.HasField("raw_data") else None,
        fixed_count=fixed or None,
        string_count=len(tensor.string_data),
        has_segment=tensor.HasField("segment"),
        int_values=_small_ints(tensor),
    )


def _small_ints(tensor: TensorProto) -> tuple[int, ...] | None:
    if tensor.data_type not in _INTEGER_TYPES:
        return None
    if tensor.HasField("raw_data"):
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        if len(tensor.raw_data) % dtype.itemsize:
            return None
        values = np.frombuffer(tensor.raw_data, dtype.newbyteorder("<"))
        return tuple(values.tolist()) if values.size <= SMALL_INT_VALUES else None
    stored = [*tensor.int32_data, *tensor.int64_data, *tensor.uint64_data]
    if not stored or len(stored) > SMALL_INT_VALUES:
        return None
    return tuple(stored)


def _sparse(sparse: onnx.SparseTensorProto) -> SparseMeta:
    return SparseMeta(
        _tensor(sparse.values) if sparse.HasField("values") else None,
        _tensor(sparse.indices) if sparse.HasField("indices") else None,
        tuple(sparse.dims),
    )


def _value_info(info: onnx.ValueInfoProto) -> ValueInfo:
    kind = info.type.WhichOneof("value") if info.HasField("type") else None
    if kind not in ("tensor_type", "sparse_tensor_type"):
        return ValueInfo(info.name, None, None)
    tensor_type = getattr(info.type, kind)
    shape = tuple(_dim(d) for d in tensor_type.shape.dim) if tensor_type.HasField("shape") else None
    return ValueInfo(info.name, _optional(tensor_type, "elem_type"), shape)  # type: ignore[arg-type]


def _dim(dim: onnx.TensorShapeProto.Dimension) -> int | str | None:
    if dim.HasField("dim_value"):
        return dim.dim_value if dim.dim_value >= 0 else None
    if dim.HasField("dim_param"):
        return dim.dim_param
    return None
