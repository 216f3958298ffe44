"""The protobuf wire walker against the onnx package's own parser, on crafted models."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES
from inspector.formats.onnx.wire import KEEP_PAYLOAD_BYTES, parse_model, strip_payloads


def _model() -> onnx.ModelProto:
    big = numpy_helper.from_array(np.ones((64, 512), np.float32), "big")  # 128 KB of raw_data
    small = numpy_helper.from_array(np.array([2, -1], np.int64), "shape")
    listed = helper.make_tensor("listed", TensorProto.INT64, [3], [7, -8, 9])  # int64_data
    node = helper.make_node(
        "Reshape",
        ["big", "shape"],
        ["y"],
        name="r",
        allowzero=0,
    )
    const = helper.make_node("Constant", [], ["c"], value_floats=[0.5, 1.5], name="c")
    graph = helper.make_graph(
        [node, const],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 256])],
        [big, small, listed],
    )
    model = helper.make_model(
        graph, producer_name="test", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


def test_fields_match_the_onnx_parser() -> None:
    proto = _model()
    meta = parse_model(proto.SerializeToString())
    assert (meta.ir_version, meta.producer_name, meta.opsets) == (8, "test", (("", 17),))
    assert meta.graph is not None
    tensors = {t.name: t for t in meta.graph.initializers}
    assert tensors["big"].dims == (64, 512)
    assert tensors["big"].raw_bytes == 64 * 512 * 4
    assert tensors["big"].int_values is None
    assert tensors["shape"].int_values == (2, -1)
    assert tensors["listed"].int_values == (7, -8, 9)
    reshape, const = meta.graph.nodes
    assert (reshape.op_type, reshape.inputs, reshape.outputs) == (
        "Reshape",
        ("big", "shape"),
        ("y",),
    )
    assert const.attribute("value_floats").floats == (0.5, 1.5)  # type: ignore[union-attr]
    assert meta.graph.outputs[0].shape == ("batch", 256)


def test_stripped_copy_keeps_structure_and_small_values() -> None:
    proto = _model()
    stripped = onnx.ModelProto.FromString(strip_payloads(proto.SerializeToString()))
    assert [n.op_type for n in stripped.graph.node] == ["Reshape", "Constant"]
    by_name = {t.name: t for t in stripped.graph.initializer}
    assert list(by_name["big"].dims) == [64, 512] and not by_name["big"].raw_data
    assert numpy_helper.to_array(by_name["shape"]).tolist() == [2, -1]
    assert len(strip_payloads(proto.SerializeToString())) < KEEP_PAYLOAD_BYTES


def test_every_fixture_parses_like_onnx() -> None:
    for path in sorted((FIXTURES / "onnx").glob("*.onnx")):
        proto = onnx.load(str(path), load_external_data=False)
        meta = parse_model(path.read_bytes())
        assert meta.graph is not None
        assert [n.op_type for n in meta.graph.nodes] == [n.op_type for n in proto.graph.node]
        assert [t.dims for t in meta.graph.initializers] == [
            tuple(t.dims) for t in proto.graph.initializer
        ]
