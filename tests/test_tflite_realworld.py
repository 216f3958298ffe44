"""The real TFLite files of ../shared/realworld (wave 3: WHILE loops with the bias added after the
products, unrolled int8 LSTMs, buffers shared across subgraphs, dead copies, resource variables),
against the truth their manifest records (TF's own schema reader, Keras) and their compare
verdicts. Skipped when the folder is absent."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import REALWORLD, entry_id, realworld_entries
from inspector import inspect_file
from inspector.cli.app import app

runner = CliRunner()
ENTRIES = [
    e
    for e in realworld_entries("tflite")
    if e.get("wave") == 3 and (REALWORLD / "files" / e["file"]).exists()
]
PAIRS = [(e, pair) for e in ENTRIES for pair in e.get("compare", [])]


def _report(entry: dict) -> dict:
    return inspect_file(REALWORLD / "files" / entry["file"]).to_dict()


@pytest.mark.skipif(not ENTRIES, reason="../shared/realworld is not present")
@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_counts_are_the_recorded_truth(entry: dict) -> None:
    """The total is the model's parameters as stored (each buffer once, dead copies and initial
    states apart), each recurrent layer is found with its bias, and its check is ok."""
    truth = entry["truth"]
    report = _report(entry)
    implied = truth.get("graph_implies")
    if implied is not None:  # the weights are resource variables: nothing stored
        assert report["total_params"] == truth["total_stored_weights"] == 0
        assert sum(t["params"] for t in report["unstored"]) == sum(implied.values())
        expected = [params for name, params in implied.items() if "LSTM" in name]
    else:
        assert report["total_params"] == truth.get("total", truth.get("model_params"))
        expected = list(truth["recurrent"].values())
    layers = report["recurrent_layers"]
    assert sorted(layer["params"] for layer in layers) == sorted(expected)
    for layer in layers:
        assert layer["check"] == "ok" and layer["use_bias"], layer
    assert sum(row["params"] for row in report["layers"]) == report["total_params"]


@pytest.mark.skipif(not PAIRS, reason="../shared/realworld is not present")
@pytest.mark.parametrize("item", PAIRS, ids=lambda item: f"{item[1]['source']}->{item[0]['file']}")
def test_compare_gives_the_recorded_verdict(item: tuple[dict, dict]) -> None:
    entry, pair = item
    source = REALWORLD / "files" / pair["source"]
    result = runner.invoke(app, ["compare", str(source), str(REALWORLD / "files" / entry["file"])])
    faithful = "Result: faithful" in result.output
    assert faithful == pair["faithful"], result.output
    assert result.exit_code == (0 if pair["faithful"] else 1)
    if not pair["faithful"]:
        assert "values differ in kernel" in result.output
