"""`--recurrent-only` (issue 13): a directory summary leaves out the files without a recurrent
layer (controls), and a single such file gets one clear line instead of an empty table. Which
files have recurrent layers comes from the generators' manifests (PyTorch's module list, Keras's
layers), not from our reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries
from inspector.cli.app import app

runner = CliRunner()
CONTROL = "cases/torch_legacy_convnet.onnx"  # Conv2d + Linear: no recurrence
RECURRENT = "keras2/lstm_u16_d8.h5"


def _control_truth() -> dict:
    entries = json.loads((FIXTURES / "cases/manifest.json").read_text())["fixtures"]
    entry = next(e for e in entries if e.get("file") == CONTROL)
    assert entry["source"]["recurrent_params"] == 0
    return entry


def run(*args: str):
    return runner.invoke(app, list(args))


def test_a_single_file_without_recurrence_gets_a_line_not_an_empty_table() -> None:
    truth = _control_truth()
    result = run(str(FIXTURES / CONTROL), "--recurrent-only")
    assert result.exit_code == 0, result.stderr
    assert "No recurrent layers: --recurrent-only lists none of its" in result.stdout
    assert "layer    type" not in result.stdout and "-------" not in result.stdout
    assert f"Total params: {truth['source']['total_params']:,}" in result.stdout
    assert "No recurrent layers found." not in result.stdout  # said once


def test_a_directory_summary_lists_only_files_with_recurrent_layers(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / CONTROL, tmp_path / "control.onnx")
    shutil.copy(FIXTURES / RECURRENT, tmp_path / "lstm.h5")
    everything = run(str(tmp_path))
    assert "control.onnx" in everything.stdout
    result = run(str(tmp_path), "--recurrent-only")
    assert result.exit_code == 0
    assert "control.onnx" not in result.stdout
    assert "lstm.h5" in result.stdout
    assert "(1 file without recurrent layers not shown; the total counts every file)" in (
        result.stdout
    )
    lstm = next(e for e in manifest_entries("keras-h5") if e["file"] == RECURRENT)
    total = lstm["total_params"] + _control_truth()["source"]["total_params"]
    total_row = next(line for line in result.stdout.splitlines() if line.startswith("total:"))
    assert f" {total:,} " in total_row
