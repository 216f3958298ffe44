"""The command line, in process through Typer's runner and once as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, ROOT, manifest_entries
from inspector.cli.app import app

runner = CliRunner()
TRUTH = {e["file"]: e for e in manifest_entries("keras-h5")}
LSTM = "keras2/lstm_u16_d8.h5"


def run(*args: str):
    return runner.invoke(app, list(args))


def test_default_table_shows_layers_tensors_check_and_totals() -> None:
    result = run(str(FIXTURES / "keras2/embedding_lstm_dense.h5"))
    assert result.exit_code == 0, result.output
    truth = TRUTH["keras2/embedding_lstm_dense.h5"]
    lines = result.output.splitlines()
    for layer in truth["layers"]:
        row = next(line for line in lines if line.startswith(layer["name"] + " "))
        assert f"{layer['params']:,}" in row.split()
    assert any(line.split()[:3] == ["lstm", "-", "recurrent_kernel"] for line in lines)
    assert f"Total params: {truth['total_params']:,}" in result.output
    check_line = next(line for line in lines if line.strip().startswith("lstm ("))
    assert check_line.rstrip().endswith(
        f"-> ok  (input width from the model config: {truth['recurrent_layers'][0]['input_dim']})"
    )


def test_json_contract_single_file() -> None:
    result = run(str(FIXTURES / LSTM), "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert set(report) >= {
        "file",
        "format",
        "producer",
        "total_params",
        "trainable_params",
        "non_trainable_params",
        "weights_bytes",
        "layers",
        "recurrent_layers",
        "warnings",
    }
    layer = report["recurrent_layers"][0]
    assert set(layer) >= {
        "name",
        "type",
        "cell",
        "units",
        "input_dim",
        "directions",
        "lowered",
        "params",
        "expected_params",
        "formula",
        "check",
        "tensors",
    }
    assert set(layer["tensors"][0]) >= {"name", "role", "direction", "shape", "dtype", "params"}
    assert report["total_params"] == TRUTH[LSTM]["total_params"]
    assert layer["cell"] == "LSTM" and layer["check"] == "ok" and layer["lowered"] is False
    assert report["producer"].startswith("keras 2.")


def test_json_array_for_several_files() -> None:
    files = ["keras2/simplernn_u1_f1.h5", "keras2/simplernn_u2_f1.h5", "keras2/simplernn_u1_f3.h5"]
    result = run("--format", "json", *(str(FIXTURES / f) for f in files))
    assert result.exit_code == 0
    reports = json.loads(result.output)
    assert [r["total_params"] for r in reports] == [TRUTH[f]["total_params"] for f in files]
    assert [r["total_params"] for r in reports] == [3, 8, 5]


def test_explicit_inspect_subcommand_and_module_entry_point() -> None:
    result = run("inspect", str(FIXTURES / LSTM), "--format", "json")
    assert json.loads(result.output)["total_params"] == TRUTH[LSTM]["total_params"]
    module = subprocess.run(
        [sys.executable, "-m", "inspector", str(FIXTURES / LSTM), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert module.returncode == 0, module.stderr
    assert json.loads(module.stdout)["total_params"] == TRUTH[LSTM]["total_params"]


def test_mismatch_exits_1(tmp_path: Path) -> None:
    """A file whose config claims a different input width than its kernel must fail."""
    path = tmp_path / "lied.h5"
    shutil.copy(FIXTURES / LSTM, path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        layers = config["config"]["layers"]
        layers[0]["config"]["batch_input_shape"][-1] = 9  # the kernel says 8
        handle.attrs["model_config"] = json.dumps(config)
    result = run(str(path), "--format", "json")
    assert result.exit_code == 1
    layer = json.loads(result.stdout)["recurrent_layers"][0]
    assert layer["check"] == "mismatch"
    assert layer["params"] == TRUTH[LSTM]["total_params"]
    assert layer["expected_params"] != layer["params"]


def test_help_and_version() -> None:
    assert "inspect" in run("--help").output
    assert run("--version").output.startswith("rnninspect ")
    assert "--format" in run("inspect", "--help").output


def test_installed_console_script() -> None:
    exe = shutil.which("rnninspect", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.fail("the rnninspect console script is not installed next to this python")
    done = subprocess.run(
        [exe, str(FIXTURES / LSTM), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == TRUTH[LSTM]["total_params"]


def test_pre_commit_hook_runs_the_console_script_on_model_files() -> None:
    """`.pre-commit-hooks.yaml` (read as the flat key: value list it is; no YAML library needed)."""
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    entries = [line for line in text.splitlines() if line and not line.startswith("#")]
    hook = dict(
        (key.strip(" -"), value.strip().strip("'"))
        for key, value in (line.split(":", 1) for line in entries)
    )
    assert hook["id"] == "rnninspect"
    assert hook["language"] == "python"
    assert 'rnninspect = "inspector.cli.entry:main"' in (ROOT / "pyproject.toml").read_text()
    assert hook["entry"] == "rnninspect"
    files = re.compile(hook["files"])
    for name in (
        "m.h5",
        "a/b.hdf5",
        "m.keras",
        "x/model.onnx",
        "lm/model.safetensors",
        "m.tflite",
        "ckpt/model.pt",
        "m.pth",
        "last.ckpt",
    ):
        assert files.search(name), name
    # .bin is anybody's binary: a torch.save file named so is inspected when named on the line
    for name in ("m.h5.txt", "model.bin", "notes.md", "onnx", "m.safetensors.json"):
        assert not files.search(name), name
