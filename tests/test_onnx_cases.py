"""The ONNX case fixtures (fixtures/cases/, written by PyTorch 2.13, tf2onnx and onnxruntime's
quantizer; truth in fixtures/cases/manifest.json, measured by fixtures/generate_cases.py from the
framework and the saved file): single-step cells and quantized models."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, entry_id
from inspector import inspect_file
from inspector.cli.app import app

MANIFEST = json.loads((FIXTURES / "cases" / "manifest.json").read_text())["fixtures"]
CELLS = [e for e in MANIFEST if "cell" in e]
KIND = {"LSTMCell": "LSTM", "GRUCell": "GRU", "RNNCell": "SimpleRNN"}
runner = CliRunner()


def _cell_class(entry: dict) -> str:
    found = entry["cell"]["cell_class"]
    return (found[0] if isinstance(found, list) else found).split()[0]


def _cell_params(entry: dict) -> int:
    cell = entry["cell"]
    return cell.get("torch_cell_params", cell.get("keras_cell_params"))


def test_the_single_step_cases_are_there() -> None:
    assert {_cell_class(e) for e in CELLS} == set(KIND)


@pytest.mark.parametrize("entry", CELLS, ids=entry_id)
def test_a_single_step_cell_is_one_lowered_recurrence(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    (layer,) = report["recurrent_layers"]
    assert layer["lowered"]
    assert layer["cell"] == KIND[_cell_class(entry)]
    assert layer["params"] == _cell_params(entry)
    assert layer["check"] == "ok"
    roles = entry["cell"]["roles"]
    by_role: dict[str, set[str]] = {}
    for tensor in layer["tensors"]:
        by_role.setdefault(tensor["role"], set()).add(tensor["name"])
    assert by_role["kernel"] == {t["tensor"] for t in roles["input_matrix"]}
    assert by_role["recurrent_kernel"] == {t["tensor"] for t in roles["state_matrix"]}
    if "bias" in roles:  # Keras: one bias
        assert by_role["bias"] == {t["tensor"] for t in roles["bias"]}
    else:  # PyTorch: bias_ih, bias_hh
        assert by_role["input_bias"] == {t["tensor"] for t in roles["input_bias"]}
        assert by_role["recurrent_bias"] == {t["tensor"] for t in roles["state_bias"]}
    assert report["total_params"] == entry["onnx_truth"]["float_initializer_elements"]


def test_torch_lstmcell_exports_show_one_lowered_lstm_of_448() -> None:
    """The issue's own example: LSTMCell(4, 8), legacy and dynamo (448 = torch's numel sum)."""
    entries = [e for e in CELLS if "lstmcell_h8_d4" in e["file"] and "torch" in e["file"]]
    assert len(entries) == 2  # legacy and dynamo
    for entry in entries:
        (layer,) = inspect_file(FIXTURES / entry["file"]).to_dict()["recurrent_layers"]
        assert (layer["cell"], layer["params"]) == ("LSTM", entry["source"]["total_params"])


NOT_RECURRENT = [
    e for e in MANIFEST if e["format"] == "onnx" and e["source"].get("recurrent_params") == 0
]


@pytest.mark.parametrize("entry", NOT_RECURRENT, ids=entry_id)
def test_a_model_without_recurrence_shows_none(entry: dict) -> None:
    """Linear and convolution layers on a graph input (torch's MLP and convnet, float and
    quantized) are not single-step cells."""
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    assert report["recurrent_layers"] == []
    assert report["total_params"] == entry["source"]["total_params"]


@pytest.mark.parametrize("entry", CELLS, ids=entry_id)
def test_compare_pairs_a_single_step_cell_as_lowered_in_export(entry: dict) -> None:
    source = FIXTURES / entry["source"]["file"]
    result = runner.invoke(
        app, ["compare", str(source), str(FIXTURES / entry["file"]), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["faithful"]
    recurrent = [pair for pair in document["pairs"] if pair["kind"] == "recurrent"]
    assert [pair["status"] for pair in recurrent] == ["lowered in export"]
    assert recurrent[0]["source_params"] == recurrent[0]["export_params"] == _cell_params(entry)


# --- quantized models (onnxruntime.quantization) -----------------------------------------

QUANTIZED = [e for e in MANIFEST if "quantization" in e]
ITEMSIZE = {"float32": 4, "int8": 1, "uint8": 1, "int32": 4, "float16": 2}


def test_the_quantized_cases_are_there() -> None:
    ops = {op for e in QUANTIZED for op in e["quantization"]["com_microsoft_op_types"]}
    assert {"DynamicQuantizeLSTM", "DynamicQuantizeMatMul", "QLinearAdd"} <= ops
    assert len(QUANTIZED) >= 8


@pytest.mark.parametrize("entry", QUANTIZED, ids=entry_id)
def test_quantized_weights_are_parameters_at_their_own_itemsize(entry: dict) -> None:
    """The total is the framework's parameter count (torch numel of the float model): every
    weight the quantized ops read, integer or float, and no scale or zero point."""
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    roles = entry["quantization"]["initializer_elements_by_role"]
    assert report["total_params"] == entry["source"]["total_params"]
    weights = roles["data"]["by_dtype"]
    assert report["weights_bytes"] == sum(n * ITEMSIZE[dtype] for dtype, n in weights.items())
    metadata = [e for e in report["excluded"] if e["reason"].startswith("scales and zero points")]
    assert sum(e["params"] for e in metadata) == (
        roles["scale"]["elements"] + roles["zero_point"]["elements"]
    )


@pytest.mark.parametrize("entry", QUANTIZED, ids=entry_id)
def test_no_warning_says_counted_of_what_is_not(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    excluded = {name for item in report["excluded"] for name in item["tensors"]}
    for warning in report["warnings"]:
        if "counted" in warning and "not counted" not in warning.lower():
            assert not any(f"'{name}'" in warning for name in excluded), warning
    assert not [w for w in report["warnings"] if "outside the ONNX standard" in w]


LSTM_NODES = [
    (entry, node) for entry in QUANTIZED for node in entry["quantization"]["dynamic_quantize_lstm"]
]


@pytest.mark.parametrize(
    ("entry", "node"), LSTM_NODES, ids=[f"{e['file']}:{n['node']}" for e, n in LSTM_NODES]
)
def test_dynamic_quantize_lstm_is_a_recurrent_layer(entry: dict, node: dict) -> None:
    """W [dirs, input, 4·h] and R [dirs, h, 4·h]: transposed against ONNX LSTM (onnxruntime's
    ContribOperators.md), int8/uint8, split per direction and checked by the formula."""
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    layer = next(r for r in report["recurrent_layers"] if r["name"] == node["node"])
    assert (layer["type"], layer["cell"]) == ("DynamicQuantizeLSTM", "LSTM")
    assert layer["units"] == node["hidden_size"]
    assert layer["params"] == node["W_R_B_elements"]
    assert layer["check"] == "ok", layer["reason"]
    directions = node["W"]["shape"][0]
    assert layer["directions"] == directions
    assert layer["input_dim"] == node["W"]["shape"][1]
    for label, role in (("W", "kernel"), ("R", "recurrent_kernel")):
        tensors = [t for t in layer["tensors"] if t["role"] == role]
        assert [t["shape"] for t in tensors] == [node[label]["shape"][1:]] * directions
        assert {t["dtype"] for t in tensors} == {node[label]["dtype"]}


@pytest.mark.parametrize("entry", QUANTIZED, ids=entry_id)
def test_max_params_gate_sees_the_quantized_weights(entry: dict) -> None:
    total = entry["source"]["total_params"]
    path = str(FIXTURES / entry["file"])
    assert runner.invoke(app, [path, "--max-params", str(total - 1)]).exit_code == 1
    assert runner.invoke(app, [path, "--max-params", str(total)]).exit_code == 0


@pytest.mark.parametrize(
    "entry", [e for e in QUANTIZED if e["quantization"]["dynamic_quantize_lstm"]], ids=entry_id
)
def test_compare_with_a_quantized_export_pairs_but_does_not_claim_values(entry: dict) -> None:
    """The float source and its DynamicQuantizeLSTM pair with equal counts; int8 values are
    not compared as stored, so the pair is 'not verified' rather than 'values differ'."""
    source = FIXTURES / entry["source"]["file"]
    result = runner.invoke(
        app, ["compare", str(source), str(FIXTURES / entry["file"]), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    recurrent = [pair for pair in document["pairs"] if pair["kind"] == "recurrent"]
    nodes = entry["quantization"]["dynamic_quantize_lstm"]
    assert [pair["status"] for pair in recurrent] == ["not verified"] * len(nodes)
    assert [pair["export_params"] for pair in recurrent] == [n["W_R_B_elements"] for n in nodes]
    assert all("quantized" in pair["not_verified"][0] for pair in recurrent)
