"""`rnninspect formula`: counts without a file, checked against the counts Keras recorded for the
fixtures (the manifests), never against our own formula."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import manifest_entries
from inspector.cli.app import app

runner = CliRunner()

CELL_ARG = {
    "SimpleRNN": "simplernn",
    "SimpleRNNCell": "rnn",
    "LSTM": "lstm",
    "LSTMCell": "LSTM",
    "GRU": "gru",
    "GRUCell": "Gru",
    "ConvLSTM1D": "convlstm1d",
    "ConvLSTM2D": "convlstm2d",
    "ConvLSTM3D": "convlstm",
}


def run(*args: str):
    return runner.invoke(app, ["formula", *args])


def parse_table(output: str) -> tuple[str, int]:
    """The `params = <expression> = <count>` line of the table output."""
    (line,) = [line for line in output.splitlines() if line.startswith("params = ")]
    _, expression, total = line.split(" = ")
    return expression, int(total.replace(",", ""))


def args_for(layer: dict) -> list[str]:
    """The command line that describes a manifest layer, from what Keras recorded."""
    args = [CELL_ARG[layer["cell_class"]], "--units", str(layer["units"])]
    args += ["--input-dim", str(layer["input_dim"])]
    if layer["directions"] == 2:
        args.append("--bidirectional")
    if not layer["use_bias"]:
        args.append("--no-bias")
    if layer["cell_class"].startswith("GRU"):
        args.append("--reset-after" if layer["reset_after"] else "--no-reset-after")
    for size in layer.get("kernel_size") or []:
        args += ["--kernel-size", str(size)]
    return args


def manifest_layers() -> list[tuple[str, dict]]:
    """Every distinct recurrent layer of the Keras fixtures whose cell the command names."""
    seen: dict[tuple[str, ...], tuple[str, dict]] = {}
    for entry in manifest_entries("keras-h5", "keras-v3"):
        for layer in entry["recurrent_layers"]:
            if layer["cell_class"] not in CELL_ARG or "backward_cell_class" in layer:
                continue
            key = (*args_for(layer), str(layer["params"]))
            seen.setdefault(key, (f"{entry['file']}:{layer['name']}", layer))
    return list(seen.values())


LAYERS = manifest_layers()


def test_the_manifest_covers_every_kind_of_layer() -> None:
    classes = {layer["cell_class"] for _, layer in LAYERS}
    assert {"SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"} <= classes
    assert {layer["reset_after"] for _, layer in LAYERS if layer["cell_class"] == "GRU"} >= {
        True,
        False,
    }
    assert any(layer["directions"] == 2 for _, layer in LAYERS)
    assert any(not layer["use_bias"] for _, layer in LAYERS)


@pytest.mark.parametrize(
    ("file", "units", "features", "params", "expression"),
    [
        ("keras2/simplernn_u1_f1.h5", 1, 1, 3, "1·1 + 1·1 + 1"),
        ("keras2/simplernn_u2_f1.h5", 2, 1, 8, "2·1 + 2·2 + 2"),
        ("keras2/simplernn_u1_f3.h5", 1, 3, 5, "1·3 + 1·1 + 1"),
    ],
)
def test_the_seed_worked_examples(
    file: str, units: int, features: int, params: int, expression: str
) -> None:
    truth = {e["file"]: e for e in manifest_entries("keras-h5")}[file]
    assert truth["total_params"] == params  # what Keras counted for the same layer
    result = run("simplernn", "--units", str(units), "--input-dim", str(features))
    assert result.exit_code == 0, result.output
    assert parse_table(result.stdout) == (expression, params)
    assert "does not depend on the sequence length" in result.stdout


@pytest.mark.parametrize(("where", "layer"), LAYERS, ids=[where for where, _ in LAYERS])
def test_formula_matches_the_count_keras_recorded(where: str, layer: dict) -> None:
    result = run(*args_for(layer), "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["params"] == layer["params"]
    assert out["directions"] == layer["directions"]
    table = run(*args_for(layer))
    assert parse_table(table.stdout) == (out["formula"], layer["params"])


def test_keras_gru_defaults_to_reset_after() -> None:
    default = json.loads(run("gru", "-u", "8", "-d", "4", "-f", "json").stdout)
    (entry,) = [
        e for e in manifest_entries("keras-h5") if e["file"] == "keras2/gru_u8_d4_reset_after.h5"
    ]
    assert default["reset_after"] is True
    assert default["params"] == entry["total_params"]


@pytest.mark.parametrize("convention", ["onnx", "pytorch"])
def test_onnx_and_pytorch_keep_two_bias_vectors(convention: str) -> None:
    keras = json.loads(run("lstm", "-u", "16", "-d", "8", "-f", "json").stdout)
    other = json.loads(
        run("lstm", "-u", "16", "-d", "8", "--convention", convention, "-f", "json").stdout
    )
    assert other["bias_vectors"] == 2 and keras["bias_vectors"] == 1
    assert other["params"] - keras["params"] == 4 * 16  # one more g·u bias vector
    for flag in ("--reset-after", "--no-reset-after"):
        gru = run("gru", "-u", "8", "-d", "4", "--convention", convention, flag, "-f", "json")
        assert json.loads(gru.stdout)["bias_vectors"] == 2
    assert json.loads(
        run("lstm", "-u", "16", "-d", "8", "--convention", "onnx", "-f", "json").stdout
    )["gate_order"] == ["i", "o", "f", "c"]


def _projected_layers() -> list[tuple[dict, int]]:
    """(module config, layer index) of every PyTorch LSTM with proj_size in the torch fixtures."""
    return [
        (module, index)
        for entry in manifest_entries("torch-zip", "torch-legacy-pickle")
        if not entry.get("refuse")
        for module in entry["model"]["recurrent_modules"]
        if module["config"]["proj_size"]
        for index in range(module["config"]["num_layers"])
    ]


@pytest.mark.parametrize(("module", "index"), _projected_layers())
def test_projection_matches_the_count_torch_recorded(module: dict, index: int) -> None:
    config = module["config"]
    width = (
        config["input_size"]
        if index == 0
        else config["proj_size"] * (2 if config["bidirectional"] else 1)
    )
    args = ["lstm", "-u", str(config["hidden_size"]), "-d", str(width)]
    args += ["--convention", "pytorch", "--proj-size", str(config["proj_size"])]
    if config["bidirectional"]:
        args.append("--bidirectional")
    stored = sum(
        p["numel"]
        for p in module["parameters"]
        if p["name"].split("_l")[-1].removesuffix("_reverse") == str(index)
    )
    assert json.loads(run(*args, "-f", "json").stdout)["params"] == stored


def test_the_torch_manifest_has_a_projection() -> None:
    assert _projected_layers()


@pytest.mark.parametrize("kernel", [["3x3"], ["3,3"], ["3", "3"], ["3"]])
def test_kernel_size_forms(kernel: list[str]) -> None:
    (entry,) = [e for e in manifest_entries("keras-h5") if e["file"] == "keras2/convlstm2d.h5"]
    layer = entry["recurrent_layers"][0]
    args = ["convlstm2d", "-u", str(layer["units"]), "-d", str(layer["input_dim"])]
    for size in kernel:
        args += ["--kernel-size", size]
    assert json.loads(run(*args, "-f", "json").stdout)["params"] == layer["params"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cnn", "-u", "1", "-d", "1"], "unknown cell 'cnn'"),
        (["lstm", "-u", "0", "-d", "1"], "--units"),
        (["lstm", "-u", "1", "-d", "1", "--reset-after"], "GRU only"),
        (["lstm", "-u", "1", "-d", "1", "--kernel-size", "3"], "ConvLSTM only"),
        (["convlstm", "-u", "1", "-d", "1"], "needs --kernel-size"),
        (["convlstm2d", "-u", "1", "-d", "1", "-k", "3x3x3"], "takes 2 sizes"),
        (["convlstm2d", "-u", "1", "-d", "1", "-k", "3y3"], "--kernel-size"),
        (["convlstm2d", "-u", "1", "-d", "1", "-k", "3", "--convention", "onnx"], "no onnx"),
        (["lstm", "-u", "8", "-d", "1", "--proj-size", "4"], "PyTorch LSTM only"),
        (["gru", "-u", "8", "-d", "1", "--proj-size", "4", "--convention", "pytorch"], "LSTM"),
        (["lstm", "-u", "8", "-d", "1", "--proj-size", "8", "--convention", "pytorch"], "< units"),
    ],
)
def test_impossible_layers_are_one_line_usage_errors(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rnninspect: error: ") and message in line
