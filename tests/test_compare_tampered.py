"""Tampered copies of faithful exports must be caught and named: the layer, the tensor, the gate
and the size of the difference. Copies are edited in tmp_path with the `onnx` package (ONNX),
numpy (safetensors) or h5py (Keras); the fixtures themselves are never touched."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries
from inspector.cli.app import app

runner = CliRunner()
ONNX = FIXTURES / "onnx"
TRUTH = {e["file"]: e for e in manifest_entries("onnx") if e.get("file")}
KERAS_LSTM_GATES = ("i", "f", "c", "o")  # keras/src/layers/rnn/lstm.py kernel split
PYTORCH_LSTM_GATES = ("i", "f", "g", "o")  # nn.LSTM docs: W_ii|W_if|W_ig|W_io
PYTORCH_GRU_GATES = ("r", "z", "n")  # nn.GRU docs: W_ir|W_iz|W_in


def compare_json(source: Path, export: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["compare", str(source), str(export), "--format", "json", *args])
    return result.exit_code, json.loads(result.stdout)


def edit_onnx(source: Path, target: Path, op: str, position: int, change) -> str:
    """Apply `change` to the initializer feeding input `position` of the first `op` node."""
    model = onnx.load(str(source))
    node = next(n for n in model.graph.node if n.op_type == op)
    name = node.input[position]
    tensor = next(t for t in model.graph.initializer if t.name == name)
    values = numpy_helper.to_array(tensor).copy()
    change(values)
    tensor.CopyFrom(numpy_helper.from_array(values, name))
    onnx.save(model, str(target))
    return name


def edit_safetensors(source: Path, target: Path, name: str, change) -> None:
    data = bytearray(source.read_bytes())
    (length,) = struct.unpack_from("<Q", data)
    entry = json.loads(data[8 : 8 + length])[name]
    begin, end = (8 + length + offset for offset in entry["data_offsets"])
    values = np.frombuffer(bytes(data[begin:end]), dtype="<f4").copy()
    change(values)
    data[begin:end] = values.tobytes()
    target.write_bytes(bytes(data))


def test_one_nudged_weight_is_named(tmp_path: Path) -> None:
    entry = TRUTH["onnx/tf2onnx_lstm_h16_d8.onnx"]
    (measured,) = entry["source_vs_onnx"]["per_direction"]
    blocks = measured["W_blocks_from_kernelT"]  # ONNX gate block k = Keras block blocks[k]
    units = entry["onnx_truth"]["recurrent_nodes"][0]["hidden_size"]
    row, col, nudge = 20, 3, 0.01
    tampered = tmp_path / "nudged.onnx"

    def change(w: np.ndarray) -> None:
        w[0, row, col] += nudge

    w_name = edit_onnx(ONNX / "tf2onnx_lstm_h16_d8.onnx", tampered, "LSTM", 1, change)
    code, report = compare_json(FIXTURES / entry["source"]["file"], tampered)
    assert code == 1
    (pair,) = report["pairs"]
    assert pair["source"] == "lstm" and pair["status"] == "values differ"
    (difference,) = pair["differences"]
    keras_block = blocks[row // units]
    assert difference["tensor"] == "kernel"
    assert difference["gate"] == KERAS_LSTM_GATES[keras_block]
    assert difference["max_abs"] == pytest.approx(nudge, rel=1e-4)
    assert difference["mismatched"] == 1 and difference["elements"] == units * 8
    # Where: the Keras kernel (d, 4·u) column of that gate's unit, and the ONNX W row.
    assert difference["source_index"] == [col, keras_block * units + row % units]
    assert difference["export_tensor"] == f"{w_name}[0]"
    assert difference["export_index"] == [row, col]
    table = runner.invoke(app, ["compare", str(FIXTURES / entry["source"]["file"]), str(tampered)])
    assert "values differ in kernel, gate " + KERAS_LSTM_GATES[keras_block] in table.stdout
    assert "max |Δ| 0.01" in table.stdout


def test_swapped_gate_blocks_are_named(tmp_path: Path) -> None:
    entry = TRUTH["onnx/torch_dynamo_lstm_h16_d8.onnx"]
    (node,) = entry["source_vs_onnx"]["per_node"]
    blocks = node["directions"][0]["W_blocks_from_source"]
    units = entry["onnx_truth"]["recurrent_nodes"][0]["hidden_size"]
    tampered = tmp_path / "swapped.onnx"

    def change(w: np.ndarray) -> None:  # swap ONNX gate blocks 2 and 3
        a, b = slice(2 * units, 3 * units), slice(3 * units, 4 * units)
        w[0, a], w[0, b] = w[0, b].copy(), w[0, a].copy()

    edit_onnx(ONNX / "torch_dynamo_lstm_h16_d8.onnx", tampered, "LSTM", 1, change)
    code, report = compare_json(FIXTURES / entry["source"]["file"], tampered)
    assert code == 1
    (pair,) = report["pairs"]
    assert pair["status"] == "values differ"
    gates = {d["gate"] for d in pair["differences"]}
    assert gates == {PYTORCH_LSTM_GATES[blocks[2]], PYTORCH_LSTM_GATES[blocks[3]]}
    assert all(d["tensor"] == "kernel" for d in pair["differences"])
    assert all(d["mismatched"] > 0 and d["max_abs"] > 0 for d in pair["differences"])


def test_zeroed_bias_is_named(tmp_path: Path) -> None:
    entry = TRUTH["onnx/torch_legacy_gru_h16_d8.onnx"]
    source = FIXTURES / entry["source"]["file"]
    tampered = tmp_path / "zeroed.safetensors"
    original: list[np.ndarray] = []

    def change(values: np.ndarray) -> None:
        original.append(values.copy())
        values[:] = 0

    edit_safetensors(source, tampered, "gru.bias_hh_l0", change)
    code, report = compare_json(tampered, FIXTURES / entry["file"])
    assert code == 1
    (pair,) = report["pairs"]
    assert pair["source"] == "gru.l0" and pair["status"] == "values differ"
    recurrent = [d for d in pair["differences"] if d["tensor"] == "recurrent_bias"]
    assert {d["gate"] for d in recurrent} == set(PYTORCH_GRU_GATES)
    units = entry["onnx_truth"]["recurrent_nodes"][0]["hidden_size"]
    for d in recurrent:
        block = original[0][PYTORCH_GRU_GATES.index(d["gate"]) * units :][:units]
        assert d["max_abs"] == pytest.approx(float(np.abs(block).max()))
        assert d["source_tensor"] == "gru.bias_hh_l0"


def test_zeroed_keras_bias_is_named(tmp_path: Path) -> None:
    entry = TRUTH["onnx/tf2onnx_lstm_h16_d8.onnx"]
    tampered = tmp_path / "keras_zero_bias.h5"
    shutil.copy(FIXTURES / entry["source"]["file"], tampered)
    with h5py.File(tampered, "r+") as handle:
        bias = handle["model_weights/lstm/lstm/lstm_cell/bias:0"]
        expected = float(np.abs(bias[()]).max())
        bias[...] = 0
    code, report = compare_json(tampered, FIXTURES / entry["file"])
    assert code == 1
    (pair,) = report["pairs"]
    assert {d["tensor"] for d in pair["differences"]} == {"bias"}
    assert {d["gate"] for d in pair["differences"]} == set(KERAS_LSTM_GATES)
    assert max(d["max_abs"] for d in pair["differences"]) == pytest.approx(expected)


def test_a_change_within_tolerance_is_equivalent(tmp_path: Path) -> None:
    entry = TRUTH["onnx/torch_legacy_lstm_h16_d8.onnx"]
    tampered = tmp_path / "rounded.onnx"

    def change(w: np.ndarray) -> None:
        w[0, 5, 1] = np.nextafter(w[0, 5, 1], np.float32(1))  # one unit in the last place

    edit_onnx(ONNX / "torch_legacy_lstm_h16_d8.onnx", tampered, "LSTM", 1, change)
    code, report = compare_json(FIXTURES / entry["source"]["file"], tampered)
    assert code == 0
    (pair,) = report["pairs"]
    assert pair["status"] == "equivalent"
    assert "within tolerance" in {c["what"] for c in pair["conventions"]}
    code, _ = compare_json(
        FIXTURES / entry["source"]["file"], tampered, "--atol", "0", "--rtol", "0"
    )
    assert code == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated-onnx"),
        pytest.param(lambda data: b"\x08\x07\x12" + b"\xff" * 64, id="junk-onnx"),
    ],
)
def test_corrupt_export_exits_2_with_one_line(tmp_path: Path, damage) -> None:
    entry = TRUTH["onnx/torch_dynamo_lstm_h16_d8.onnx"]
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(damage((FIXTURES / entry["file"]).read_bytes()))
    result = runner.invoke(app, ["compare", str(FIXTURES / entry["source"]["file"]), str(broken)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnninspect: error: "), result.stderr
    assert "Traceback" not in result.output


def test_corrupt_safetensors_source_exits_2_with_one_line(tmp_path: Path) -> None:
    source = FIXTURES / "onnx/torch_lstm_h16_d8.safetensors"
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(source.read_bytes()[:300])  # header cut short
    result = runner.invoke(
        app, ["compare", str(broken), str(FIXTURES / "onnx/torch_dynamo_lstm_h16_d8.onnx")]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "safetensors" in lines[0], result.stderr


def test_external_data_outside_the_folder_is_never_opened(tmp_path: Path) -> None:
    """The export points its weights at `../x.data`, where a copy of the real data waits: were
    the path followed, the values would match and the pair pass."""
    original = ONNX / "external/hand_lstm_external.onnx"
    shutil.copy(ONNX / "external/x.data", tmp_path / "x.data")
    folder = tmp_path / "model"
    folder.mkdir()
    model = onnx.load(str(original), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../x.data"
    crafted = folder / "escaping.onnx"
    onnx.save(model, str(crafted))
    code, report = compare_json(original, crafted)
    assert code == 1
    (pair,) = report["pairs"]
    assert pair["status"] == "not verified"
    assert all("outside the model's folder" in reason for reason in pair["not_verified"])


def test_a_nudged_weight_in_a_lowered_export_fails(tmp_path: Path) -> None:
    """A faithful Loop export passes as `lowered in export`; the same Loop with one weight
    changed must not."""
    entry = TRUTH["onnx/tf2onnx_simplernn_h16_d8.onnx"]
    model = onnx.load(str(ONNX / "tf2onnx_simplernn_h16_d8.onnx"))
    source = FIXTURES / entry["source"]["file"]
    faithful, _ = compare_json(source, ONNX / "tf2onnx_simplernn_h16_d8.onnx")
    assert faithful == 0
    module = next(m for m in entry["source"]["modules"] if m["params"])
    recurrent = next(w for w in module["parameters"] if "recurrent" in w["name"])
    tensor = next(t for t in model.graph.initializer if list(t.dims) == recurrent["shape"])
    values = numpy_helper.to_array(tensor).copy()
    values.flat[5] += 0.25
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    tampered = tmp_path / "lowered_nudged.onnx"
    onnx.save(model, str(tampered))
    code, report = compare_json(source, tampered)
    assert code == 1
    (pair,) = [p for p in report["pairs"] if p["kind"] == "recurrent"]
    assert pair["status"] == "values differ"
    (difference,) = pair["differences"]
    assert difference["tensor"] == "recurrent_kernel"
    assert difference["max_abs"] == pytest.approx(0.25, rel=1e-4)
