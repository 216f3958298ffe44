"""Weights several layers share count once, in one row (fixtures/shared/, written by PyTorch and
safetensors; truth in fixtures/shared/manifest.json from torch's own parameter lists and the
saved file)."""

from __future__ import annotations

import json

from conftest import FIXTURES
from inspector import inspect_file

MANIFEST = {
    e["file"]: e
    for e in json.loads((FIXTURES / "shared" / "manifest.json").read_text())["fixtures"]
}


def test_tied_safetensors_weight_counts_once_in_the_row_that_stores_it() -> None:
    """save_model stores a tied tensor once and names the dropped key in __metadata__: the
    module whose key was dropped shows the tensor as shared with the module that holds it."""
    entry = MANIFEST["shared/torch_tied_lm.safetensors"]
    stored = entry["file_contents"]["tensors"]
    dropped = entry["file_contents"]["metadata"]
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    assert report["total_params"] == entry["torch"]["total_params"]
    rows = {row["name"]: row for row in report["layers"]}
    assert dropped  # the file records the tie
    for module in entry["torch"]["modules"]:
        if module["class"] == "LSTM":
            continue  # its row is the recurrent layer, named per layer index
        own = [p for p in module["parameters"] if p["key"] in stored]
        row = rows[module["name"]]
        assert row["params"] == sum(p["numel"] for p in own)
        holders = sorted(
            {
                dropped[p["key"]].rpartition(".")[0]
                for p in module["parameters"]
                if p["key"] in dropped
            }
        )
        assert row["shared_with"] == holders
    assert sum(row["params"] for row in report["layers"]) == report["total_params"]


def test_one_lstm_applied_twice_is_one_row_and_two_checked_layers() -> None:
    entry = MANIFEST["shared/torch_legacy_shared_lstm.onnx"]
    nodes = entry["file_contents"]["lstm_nodes"]
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    assert report["total_params"] == entry["torch"]["total_params"]
    assert report["total_params"] == entry["file_contents"]["float_initializer_elements"]
    layers = {layer["name"]: layer for layer in report["recurrent_layers"]}
    rows = {row["name"]: row for row in report["layers"]}
    first, second = nodes
    assert first["W_R_B_initializers"] == second["W_R_B_initializers"]  # one weight set
    for node in nodes:
        assert layers[node["name"]]["params"] == node["W_R_B_elements"]
        assert layers[node["name"]]["check"] == "ok"
    assert rows[first["name"]]["params"] == first["W_R_B_elements"]
    assert rows[first["name"]]["shared_with"] == []
    assert rows[second["name"]]["params"] == 0
    assert rows[second["name"]]["shared_with"] == [first["name"]]
    assert {t["shared_with"] for t in layers[second["name"]]["tensors"]} == {first["name"]}
    assert {t["shared_with"] for t in layers[first["name"]]["tensors"]} == {None}
