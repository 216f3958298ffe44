"""Keras full-model HDF5 files against the counts Keras itself reported when it wrote them."""

from __future__ import annotations

import hashlib

import pytest

from conftest import FIXTURES, REALWORLD, entry_id, manifest_entries, realworld_entries
from inspector import inspect_file

H5_ENTRIES = manifest_entries("keras-h5")


def _recurrent_by_name(report: dict) -> dict[str, dict]:
    return {layer["name"]: layer for layer in report["recurrent_layers"]}


@pytest.mark.parametrize("entry", H5_ENTRIES, ids=entry_id)
def test_totals_match_keras(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    assert report["format"] == "keras-h5"
    assert report["total_params"] == entry["total_params"]
    assert report["trainable_params"] == entry["trainable_params"]
    assert report["non_trainable_params"] == entry["non_trainable_params"]
    assert report["weights_bytes"] == entry["weights_bytes"]


@pytest.mark.parametrize("entry", H5_ENTRIES, ids=entry_id)
def test_layers_match_keras(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    ours = {layer["name"]: layer for layer in report["layers"]}
    top_level = [layer for layer in entry["layers"] if "path" not in layer]
    assert sorted(ours) == sorted(layer["name"] for layer in top_level)
    for layer in top_level:
        assert ours[layer["name"]]["params"] == layer["params"], layer["name"]
        assert ours[layer["name"]]["trainable"] == layer["trainable"], layer["name"]
    assert sum(layer["params"] for layer in report["layers"]) >= report["total_params"]


@pytest.mark.parametrize(
    "entry",
    [e for e in H5_ENTRIES if all("cells" not in r for r in e["recurrent_layers"])],
    ids=entry_id,
)
def test_recurrent_layers_split_and_checked(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    ours = _recurrent_by_name(report)
    assert len(ours) == len(entry["recurrent_layers"])
    for truth in entry["recurrent_layers"]:
        layer = ours[truth.get("path", truth["name"])]
        assert layer["params"] == truth["params"]
        assert layer["units"] == truth["units"]
        assert layer["input_dim"] == truth["input_dim"]
        assert layer["directions"] == truth["directions"]
        assert layer["check"] == "ok", layer["reason"]
        assert layer["expected_params"] == truth["params"]
        assert layer["lowered"] is False
        stored = [(w.get("path", w["name"]), w["shape"]) for w in truth["weights"]]
        assert [(t["name"], t["shape"]) for t in layer["tensors"]] == stored
        assert sum(t["params"] for t in layer["tensors"]) == layer["params"]
        roles = [t["role"] for t in layer["tensors"]]
        per_direction = (
            ["kernel", "recurrent_kernel", "bias"]
            if truth["use_bias"]
            else ["kernel", "recurrent_kernel"]
        )
        gates = truth.get("gate_order") or [None]
        assert roles == per_direction * truth["directions"] * len(gates)
        assert layer["gate_order"] == (truth.get("gate_order") or layer["gate_order"])
        if truth["directions"] == 2:
            directions = [t["direction"] for t in layer["tensors"]]
            half = len(directions) // 2
            assert directions == ["forward"] * half + ["backward"] * half


@pytest.mark.parametrize("entry", [e for e in H5_ENTRIES if e["optimizer"]], ids=entry_id)
def test_optimizer_state_reported_apart(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    assert report["optimizer"]["values"] == entry["optimizer"]["saved_values"]
    assert report["optimizer"]["bytes"] == entry["optimizer"]["saved_bytes"]
    assert report["total_params"] == entry["total_params"]


def test_input_width_source_is_named() -> None:
    report = inspect_file(FIXTURES / "keras2/reshape_lstm.h5").to_dict()
    sources = {layer["input_dim_source"] for layer in report["recurrent_layers"]}
    assert sources <= {"config", "tensor"}
    assert (
        inspect_file(FIXTURES / "keras2/lstm_u16_d8.h5").to_dict()["recurrent_layers"][0][
            "input_dim_source"
        ]
        == "config"
    )


def test_inspection_never_changes_the_file() -> None:
    path = FIXTURES / "keras2/trained_adam.h5"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    inspect_file(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


# --------------------------------------------------------------- real files by other people

REAL_H5 = [
    e
    for e in realworld_entries("keras_h5_full_model")
    if e["ground_truth"].get("tf_keras_load", {}).get("ok")
]


@pytest.mark.skipif(not REALWORLD.exists(), reason="../shared/realworld is not present")
@pytest.mark.parametrize("entry", REAL_H5, ids=entry_id)
def test_realworld_keras_h5(entry: dict) -> None:
    truth = entry["ground_truth"]["tf_keras_load"]
    report = inspect_file(REALWORLD / "files" / entry["file"]).to_dict()
    assert report["total_params"] == truth["total_params"]
    assert report["trainable_params"] == truth["trainable_params"]
    assert report["non_trainable_params"] == truth["non_trainable_params"]
    ours = {layer["name"]: layer["params"] for layer in report["layers"]}
    for layer in truth["layers"]:
        if layer["class"] == "InputLayer" and layer["name"] not in ours:
            continue
        assert ours[layer["name"]] == layer["params"], layer["name"]
    recurrent = _recurrent_by_name(report)
    assert len(recurrent) == len(truth["recurrent_layers"])
    for layer in truth["recurrent_layers"]:
        assert recurrent[layer["name"]]["params"] == layer["count_params"]
        assert recurrent[layer["name"]]["check"] == "ok"
        shapes = [t["shape"] for t in recurrent[layer["name"]]["tensors"]]
        assert shapes == layer["weight_shapes"]
