"""Invalid computed weights never pass as ok: shape propagation checks each op's operands
(Concat ranks and non-axis dims, MatMul and Gemm inner dims, Reshape element counts, Transpose
perms) and a fused node's operands against its spec; an inconsistent one fails the check with
the reason. Truth for the framework-written file is onnxruntime's own refusal, recorded in
fixtures/invalid/manifest.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from conftest import FIXTURES, entry_id, manifest_entries
from inspector import inspect_file

REFUSED = manifest_entries("onnx-refused")
ONNX = [e for e in manifest_entries("onnx") if e["file"] and e["file"].endswith(".onnx")]


@pytest.mark.parametrize("entry", REFUSED, ids=entry_id)
def test_refused_export_fails_its_check_with_the_reason(entry: dict) -> None:
    assert entry["ort"]["loads"] is False  # the truth: onnxruntime refuses the graph
    layers = {
        layer["name"]: layer
        for layer in inspect_file(FIXTURES / entry["file"]).to_dict()["recurrent_layers"]
    }
    for node in entry["recurrent_nodes"]:
        layer = layers[node["name"]]
        assert layer["check"] == "mismatch"
        for label, operand in node["operands"].items():
            if operand.get("evaluation_error"):  # onnx's evaluator refuses it too
                assert f"{label} is " in layer["reason"], layer["reason"]
        assert "onnxruntime would refuse this graph" in layer["reason"]


def test_the_issue_example_is_named_with_both_shapes() -> None:
    (entry,) = [e for e in REFUSED if "bilstm2_proj" in e["file"]]
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    first = report["recurrent_layers"][0]["reason"]
    assert "W is Concat 'node_Concat_108' of [1,12,6] and [1,3,8]" in first
    assert "non-axis dims differ; onnxruntime would refuse this graph" in first


@pytest.mark.parametrize("entry", ONNX, ids=entry_id)
def test_files_onnxruntime_runs_have_no_defect(entry: dict) -> None:
    """No false alarm: a file onnxruntime loads and runs has no operand defect."""
    ort = entry.get("ort") or {}
    if not (ort.get("loads") and ort.get("runs")):
        return
    for layer in inspect_file(FIXTURES / entry["file"]).model.recurrent_layers:
        assert layer.defects == (), layer.defects


# ------------------------------------------------------- hand-built graphs, one bad operand each

H, D = 2, 3  # hidden size, input width of the LSTM each graph feeds
GH = 4 * H


def _const(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name)


def _lstm_file(tmp_path: Path, w_nodes: list, inits: list, w_name: str = "W") -> Path:
    """An LSTM whose W is computed by `w_nodes`; R and B are stored and valid."""
    inits = [
        *inits,
        _const("R", np.zeros((1, GH, H), np.float32)),
        _const("B", np.zeros((1, 2 * GH), np.float32)),
    ]
    lstm = helper.make_node("LSTM", ["X", w_name, "R", "B"], ["Y"], hidden_size=H, name="lstm")
    graph = helper.make_graph(
        [*w_nodes, lstm],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, D])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    path = tmp_path / "bad.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


CASES = {
    "Concat ranks": (
        [helper.make_node("Concat", ["a", "b"], ["W"], axis=1, name="cat")],
        [_const("a", _f32(1, GH, D)), _const("b", _f32(GH, D))],
        "W is Concat 'cat' of [1,8,3] and [8,3]: ranks differ",
    ),
    "Concat non-axis dims": (
        [helper.make_node("Concat", ["a", "b"], ["W"], axis=1, name="cat")],
        [_const("a", _f32(1, 4, D)), _const("b", _f32(1, 4, D + 1))],
        "W is Concat 'cat' of [1,4,3] and [1,4,4] on axis 1: non-axis dims differ",
    ),
    "MatMul inner dims": (
        [helper.make_node("MatMul", ["a", "b"], ["W"], name="mm")],
        [_const("a", _f32(1, GH, 5)), _const("b", _f32(4, D))],
        "W is MatMul 'mm' of [1,8,5] and [4,3]: inner dims differ (5 vs 4)",
    ),
    "Gemm inner dims": (
        [
            helper.make_node("Gemm", ["a", "b"], ["g"], name="gemm"),
            helper.make_node("Unsqueeze", ["g", "axes"], ["W"], name="unsq"),
        ],
        [_const("a", _f32(GH, 5)), _const("b", _f32(4, D)), _const("axes", np.array([0]))],
        "W is computed from Gemm 'gemm' of [8,5] and [4,3]: inner dims differ (5 vs 4)",
    ),
    "Reshape element counts": (
        [helper.make_node("Reshape", ["a", "shape"], ["W"], name="rs")],
        [_const("a", _f32(GH, D + 1)), _const("shape", np.array([1, GH, D]))],
        "W is Reshape 'rs' of [8,4] to [1, 8, 3]: element counts differ (32 vs 24)",
    ),
    "Transpose perm": (
        [helper.make_node("Transpose", ["a"], ["W"], perm=[0, 2, 2], name="tr")],
        [_const("a", _f32(1, D, GH))],
        "W is Transpose 'tr' of [1,3,8] with perm [0, 2, 2]: perm is not a permutation",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_operand_fails_the_check(tmp_path: Path, case: str) -> None:
    nodes, inits, words = CASES[case]
    (layer,) = inspect_file(_lstm_file(tmp_path, nodes, inits)).to_dict()["recurrent_layers"]
    assert layer["check"] == "mismatch"
    assert words in layer["reason"], layer["reason"]
    assert "onnxruntime would refuse this graph" in layer["reason"]


def test_the_same_graph_with_good_operands_is_ok(tmp_path: Path) -> None:
    """The cases above fail only by their bad operand: a valid Concat of the same kind is ok."""
    nodes = [helper.make_node("Concat", ["a", "b"], ["W"], axis=1, name="cat")]
    inits = [_const("a", _f32(1, 4, D)), _const("b", _f32(1, 4, D))]
    (layer,) = inspect_file(_lstm_file(tmp_path, nodes, inits)).to_dict()["recurrent_layers"]
    assert layer["check"] == "ok", layer["reason"]
