"""PyTorch state dicts saved as .safetensors: read from the header alone, detected by the
header's shape, recurrent modules split by PyTorch's parameter names. Counts come from the
manifest (PyTorch `numel()`)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries
from inspector.cli.app import app

runner = CliRunner()
CELLS = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN", "RNNCell": "SimpleRNN"}
SOURCES = {
    e["source"]["file"]: e["source"]
    for e in manifest_entries("onnx")
    if (e.get("source") or {}).get("file_format") == "safetensors"
}


def inspect(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [*args, "--format", "json"])
    payload = json.loads(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, payload, result.stderr


@pytest.mark.parametrize("file", sorted(SOURCES), ids=lambda f: f.split("/")[-1])
def test_counts_match_pytorch(file: str) -> None:
    truth = SOURCES[file]
    code, report, errors = inspect(str(FIXTURES / file))
    assert code == 0, errors
    assert report is not None
    assert report["format"] == "safetensors"
    # a state dict holds the buffers too (BatchNorm's running statistics and step counter)
    assert report["total_params"] == truth.get("state_dict_elements", truth["total_params"])
    recurrent = [m for m in truth["modules"] if m["class"] in CELLS]
    assert sum(layer["params"] for layer in report["recurrent_layers"]) == sum(
        m["params"] for m in recurrent
    )
    (module,) = recurrent
    config = module["config"]
    layers = report["recurrent_layers"]
    assert len(layers) == config.get("num_layers", 1)  # a cell (nn.RNNCell) has one
    for layer in layers:
        assert layer["cell"] == CELLS[module["class"]]
        assert layer["units"] == config["hidden_size"]
        assert layer["directions"] == (2 if config.get("bidirectional") else 1)
        assert layer["use_bias"] == config["bias"]
    first = layers[0]
    assert first["input_dim"] == config["input_size"]
    assert {layer["check"] for layer in layers} == {"ok"}
    assert {layer["proj_size"] for layer in layers} == {config.get("proj_size") or None}


def test_pytorch_gate_order_is_explained() -> None:
    result = runner.invoke(
        app, ["explain", str(FIXTURES / "onnx/torch_lstm_h16_d8.safetensors"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    (layer,) = json.loads(result.stdout)
    assert layer["convention"] == "pytorch"
    assert layer["gate_order"] == ["i", "f", "g", "o"]
    assert layer["params"] == SOURCES["onnx/torch_lstm_h16_d8.safetensors"]["total_params"]


def test_projection_is_a_tensor_of_its_own() -> None:
    file = "onnx/torch_lstm_proj_h16_p4_d8.safetensors"
    truth = SOURCES[file]["modules"][0]["parameters"]
    code, report, _ = inspect(str(FIXTURES / file))
    assert code == 0 and report is not None
    (layer,) = report["recurrent_layers"]
    projection = next(t for t in layer["tensors"] if t["role"] == "projection")
    hr = next(p for p in truth if p["name"] == "weight_hr_l0")
    assert projection["name"] == hr["key"] and projection["params"] == hr["numel"]


def test_detected_by_header_whatever_the_extension(tmp_path: Path) -> None:
    renamed = tmp_path / "state_dict.bin"
    shutil.copy(FIXTURES / "onnx/torch_gru_h16_d8.safetensors", renamed)
    code, report, _ = inspect(str(renamed))
    assert code == 0 and report is not None and report["format"] == "safetensors"


def _write(path: Path, header: object, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "expected"),
    [
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 16"),
        ({"w": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "dtype"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "shape"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "damaged"),
        (["not", "an", "object"], b"", "not a JSON object"),
    ],
    ids=["short-data", "unknown-dtype", "negative-dim", "truncated", "not-object"],
)
def test_damaged_headers_exit_2_with_one_line(
    tmp_path: Path, header: object, data: bytes, expected: str
) -> None:
    path = _write(tmp_path / "bad.safetensors", header, data)
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_header_length_beyond_the_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    path.write_bytes(struct.pack("<Q", 5000) + b'{"w": {')
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2
    assert "header claims 5,000 bytes" in result.stderr


def test_module_indices_order_the_rows_as_numbers(tmp_path: Path) -> None:
    """The writer sorts tensors by name, so `layers.10` is stored before `layers.2`: the rows
    follow the modules' indices (a model's order), never the text's."""
    names = [f"layers.{i}.weight" for i in (10, 2, 1, 0, 100, 11)] + ["head.weight"]
    header: dict[str, object] = {
        name: {"dtype": "F32", "shape": [2], "data_offsets": [8 * i, 8 * i + 8]}
        for i, name in enumerate(sorted(names))
    }
    path = _write(tmp_path / "stack.safetensors", header, b"\0" * 8 * len(names))
    code, report, _ = inspect(str(path))
    assert code == 0 and report is not None
    rows = [layer["name"] for layer in report["layers"]]
    assert rows == ["head", *(f"layers.{i}" for i in (0, 1, 2, 10, 11, 100))]


def test_plain_tensors_are_layers_by_module(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mlp.safetensors",
        {
            "fc.weight": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]},
            "fc.bias": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]},
            "__metadata__": {"format": "pt"},
        },
        b"\0" * 36,
    )
    code, report, _ = inspect(str(path))
    assert code == 0 and report is not None
    assert [(layer["name"], layer["params"]) for layer in report["layers"]] == [("fc", 9)]
    assert report["recurrent_layers"] == []
