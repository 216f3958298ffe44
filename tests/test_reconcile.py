"""Row, split and total reconcile in every report, on every fixture and real file: what is in
one and not the other is listed by name (report/reconcile.py, compare/sides.py).

    total  = Σ rows
    row    = Σ its recurrent layers' row_recurrent_params + Σ row_other_tensors
    split  = split_in_row + Σ split_outside_row
    a side of compare = paired_params + Σ outside_pairs

The truths are the files' own: these are identities between numbers the report shows, which
must hold whatever the counts are (the counts themselves are checked against the frameworks'
manifests elsewhere).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REALWORLD, manifest_entries
from inspector import inspect_file
from inspector.cli.app import app
from inspector.errors import InspectorError
from inspector.model import TensorRole

runner = CliRunner()
BIAS_ROLES = {TensorRole.BIAS.value, TensorRole.INPUT_BIAS.value, TensorRole.RECURRENT_BIAS.value}


def _files() -> list[Path]:
    found: set[Path] = set()
    for manifest in sorted(FIXTURES.glob("*/manifest.json")):
        for entry in json.loads(manifest.read_text())["fixtures"]:
            name = entry.get("file")
            if name and (FIXTURES / name).is_file():
                found.add(FIXTURES / name)
    if (REALWORLD / "files").is_dir():
        found |= {p for p in (REALWORLD / "files").iterdir() if p.is_file()}
    return sorted(found)


FILES = _files()


@functools.cache  # each file is inspected once for both tests
def _report(path: Path) -> dict | None:
    try:
        return inspect_file(path).to_dict()
    except InspectorError:
        return None  # a file rnninspect refuses has no report to reconcile


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_row_split_and_total_reconcile(path: Path) -> None:
    report = _report(path)
    if report is None:
        return
    assert report["total_params"] == sum(layer["params"] for layer in report["layers"])
    rows = {layer["name"]: layer["params"] for layer in report["layers"]}
    members: dict[str, list[dict]] = {}
    for layer in report["recurrent_layers"]:
        outside = sum(item["params"] for item in layer["split_outside_row"])
        assert layer["params"] == layer["split_in_row"] + outside, layer["name"]
        for item in layer["split_outside_row"]:
            assert item["held_by"] is None or item["held_by"] in rows
        if layer["row"] is not None:
            assert layer["row_params"] == rows[layer["row"]]
            members.setdefault(layer["row"], []).append(layer)
        if not layer["use_bias"]:
            assert not [t for t in layer["tensors"] if t["role"] in BIAS_ROLES], layer["name"]
    for row, layers in members.items():
        others = sum(t["params"] for t in layers[0]["row_other_tensors"])
        assert rows[row] == sum(layer["row_recurrent_params"] for layer in layers) + others


GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_ok_formula_leaves_a_stored_bias_out(path: Path) -> None:
    """A split without a bias whose row holds a bias-sized tensor (g·u or 2·g·u elements) beside
    it: the formula would say 'ok' for a cell it checked without its bias (a WHILE loop's bias
    added after the products once went unseen this way)."""
    report = _report(path)
    if report is None:
        return
    for layer in report["recurrent_layers"]:
        gates, units = GATES.get(layer["cell"]), layer["units"]
        if layer["check"] != "ok" or not gates or not units:
            continue
        if any(t["role"] in BIAS_ROLES for t in layer["tensors"]):
            continue
        sizes = {gates * units, 2 * gates * units}
        left_out = [t["name"] for t in layer["row_other_tensors"] if t["params"] in sizes]
        assert not left_out, (layer["name"], left_out)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_text_names_what_is_outside_the_split(path: Path) -> None:
    report = _report(path)
    if report is None or not any(
        layer["row_other_tensors"] or layer["split_outside_row"]
        for layer in report["recurrent_layers"]
    ):
        return
    table = runner.invoke(app, [str(path)]).stdout
    explained = runner.invoke(app, ["explain", str(path)]).stdout
    for layer in report["recurrent_layers"]:
        names = [t["name"] for t in layer["row_other_tensors"][:6]]
        names += [t["name"] for t in layer["split_outside_row"][:6]]
        for name in names:
            assert name in table, (layer["name"], name)
            assert name in explained, (layer["name"], name)


def test_the_tf2onnx_gru_loop_says_what_the_row_adds() -> None:
    """The issue's example: row 1,202, recurrent 1,200, total 1,203; each difference named."""
    path = FIXTURES / "onnx/tf2onnx_gru_resetbefore_h16_d8.onnx"
    report = inspect_file(path).to_dict()
    (layer,) = report["recurrent_layers"]
    others = layer["row_other_tensors"]
    assert layer["row_params"] == layer["params"] + sum(t["params"] for t in others)
    assert others and all(t["name"] in runner.invoke(app, [str(path)]).stdout for t in others)
    line = f"row {layer['row_params']:,} = recurrent {layer['params']:,} + "
    assert line in runner.invoke(app, [str(path)]).stdout


PAIRS = [
    e
    for e in manifest_entries("onnx")
    if (e.get("file") or "").startswith("onnx/") and (e.get("source") or {}).get("file")
]


@pytest.mark.parametrize("entry", PAIRS, ids=lambda e: e["file"].split("/")[-1])
def test_compare_sides_reconcile(entry: dict) -> None:
    source, export = FIXTURES / entry["source"]["file"], FIXTURES / entry["file"]
    result = runner.invoke(app, ["compare", str(source), str(export), "--format", "json"])
    payload = json.loads(result.stdout)
    for side in ("source", "export"):
        data = payload[side]
        listed = sum(item["params"] for item in data["outside_pairs"])
        assert data["params"] == data["paired_params"] + listed, side
        assert not [i for i in data["outside_pairs"] if i["name"] == "not attributed"]
    text = runner.invoke(app, ["compare", str(source), str(export)]).stdout
    for side in ("source", "export"):
        for item in payload[side]["outside_pairs"][:8]:
            assert item["name"] in text
