"""The default table and the Markdown report, against golden files, plus invariants that do not
depend on the golden text: layer rows sum to the total, tensor rows sum to their layer.

Regenerate the golden files after an intended change of layout with
    RNNINSPECT_REGENERATE=1 python -m pytest tests/test_render_golden.py
and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, ROOT, manifest_entries, simple_tables
from inspector.cli.app import app

runner = CliRunner()
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("RNNINSPECT_REGENERATE") == "1"
GOLDEN_FIXTURES = [
    "keras2/embedding_lstm_dense.h5",
    "keras2/bidir_gru_concat.h5",
    "keras2/trained_adam.h5",
    "keras1/lstm_u3_d2.h5",
]
FORMATS = {"table": "txt", "markdown": "md"}


def run_relative(*args: str):
    """Run with paths relative to the repository, as the README shows them."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return runner.invoke(app, list(args))
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("fixture", GOLDEN_FIXTURES)
def test_golden_output(fixture: str, fmt: str) -> None:
    result = run_relative(f"fixtures/{fixture}", "--format", fmt)
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{fixture.replace('/', '__').rsplit('.', 1)[0]}.{FORMATS[fmt]}"
    if REGENERATE:
        golden.write_text(result.stdout, encoding="utf-8")
    assert golden.exists(), f"{golden} missing: run with RNNINSPECT_REGENERATE=1"
    assert result.stdout == golden.read_text(encoding="utf-8")


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


ENTRIES = manifest_entries("keras-h5", "keras-v3")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_rows_sum_to_the_total_and_tensors_to_their_layer(entry: dict) -> None:
    result = runner.invoke(app, [str(FIXTURES / entry["file"]), "--all-layers"])
    assert result.exit_code == 0, result.output
    layers, *rest = simple_tables(result.stdout)
    truth = {layer["name"]: layer for layer in entry["layers"]}
    for row in layers:  # the manifest also lists the layers inside nested models
        assert number(row["params"]) == truth[row["layer"]]["params"]
        if "trainable" in row:  # shown where some parameters do not train: which they are
            assert row["trainable"] == _trainable(truth[row["layer"]]), row
    assert ("trainable" in layers[0]) == bool(entry["non_trainable_params"])
    assert sum(number(row["params"]) for row in layers) == entry["total_params"]
    shares = sum(float(row["share"].rstrip("%")) for row in layers)
    assert abs(shares - 100.0) < 0.1 * len(layers) + 0.01 or not entry["total_params"]
    total_line = next(line for line in result.stdout.splitlines() if line.startswith("Total"))
    assert number(total_line.split()[2]) == entry["total_params"]
    if not entry["recurrent_layers"]:
        return
    tensors, compute = rest  # the recurrent tensors, then compute per time step
    assert [row["layer"] for row in compute] == list(dict.fromkeys(r["layer"] for r in tensors))
    for recurrent in entry["recurrent_layers"]:
        name = recurrent.get("path", recurrent["name"])
        # A stacked RNN reports each of its cells as `rnn/<cell>`.
        mine = [r for r in tensors if r["layer"] == name or r["layer"].startswith(name + "/")]
        assert sum(number(row["params"]) for row in mine) == recurrent["params"]
        assert len(mine) == len(recurrent["weights"])


def _trainable(layer: dict) -> str:
    """The trainable cell Keras's own counts call for: yes, no, or how many of all train."""
    if not layer["params"]:
        return "-"
    if not layer["non_trainable_params"]:
        return "yes"
    if not layer["trainable_params"]:
        return "no"
    return f"{layer['trainable_params']:,} of {layer['params']:,}"


def _readme_block(after: str, fence: str = "```") -> str:
    """The first fenced block after the line containing `after` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n", text.index(fence, text.index(after))) + 1
    return text[start : text.index("\n```", start) + 1]


def test_readme_shows_real_output() -> None:
    quick = run_relative("fixtures/keras2/embedding_lstm_dense.h5")
    assert _readme_block("Output of the first command") == quick.stdout
    markdown = run_relative("fixtures/keras2/bidir_gru_concat.h5", "--format", "markdown")
    assert _readme_block("### Markdown report") == markdown.stdout
