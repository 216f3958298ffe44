"""Every Keras file format against the counts Keras itself reported when it wrote the file:
full-model HDF5 (Keras 1 layout, tf_keras, Keras 3 legacy), `.keras` archives (tf_keras, Keras 3
with the TensorFlow and torch backends) and weights-only files."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from conftest import FIXTURES, REALWORLD, entry_id, manifest_entries, realworld_entries
from inspector import inspect_file

FULL = ("keras-h5", "keras-v3")
WEIGHTS_ONLY = ("keras-h5-weights", "keras-v3-weights")
ENTRIES = manifest_entries(*FULL, *WEIGHTS_ONLY)


def _report(entry: dict) -> dict:
    return inspect_file(FIXTURES / entry["file"]).to_dict()


def _truth_recurrent(entry: dict) -> list[dict]:
    """Per-cell truth: a stacked RNN's manifest entry lists its cells."""
    out = []
    for layer in entry["recurrent_layers"]:
        if "cells" in layer:
            continue
        out.append(layer)
    return out


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_totals(entry: dict) -> None:
    report = _report(entry)
    assert report["format"] == entry["format"]
    assert report["total_params"] == entry["total_params"]
    assert report["weights_bytes"] == entry["weights_bytes"]
    if entry["format"] in FULL:
        assert report["trainable_params"] == entry["trainable_params"]
        assert report["non_trainable_params"] == entry["non_trainable_params"]
    else:  # a weights-only file does not record which weights are trainable
        assert report["trainable_params"] is None
        assert report["non_trainable_params"] is None


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_layers(entry: dict) -> None:
    report = _report(entry)
    top_level = [layer for layer in entry["layers"] if "path" not in layer]
    if entry["format"] in FULL:
        ours = {layer["name"]: layer for layer in report["layers"]}
        assert sorted(ours) == sorted(layer["name"] for layer in top_level)
        for layer in top_level:
            assert ours[layer["name"]]["params"] == layer["params"], layer["name"]
            assert ours[layer["name"]]["trainable"] == layer["trainable"], layer["name"]
    else:  # weights-only groups are named by the writer, not after the config
        ours_params = Counter(layer["params"] for layer in report["layers"] if layer["params"])
        assert ours_params == Counter(layer["params"] for layer in top_level if layer["params"])


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["format"] in FULL], ids=entry_id)
def test_recurrent_layers_of_full_models(entry: dict) -> None:
    report = _report(entry)
    ours = {layer["name"]: layer for layer in report["recurrent_layers"]}
    expected_entries = 0
    for truth in entry["recurrent_layers"]:
        name = truth.get("path", truth["name"])
        if "cells" in truth:  # RNN([cells]): one entry per cell, named layer/cell
            cells = [layer for key, layer in ours.items() if key.startswith(f"{name}/")]
            assert len(cells) == len(truth["cells"])
            assert [c["units"] for c in cells] == [c["units"] for c in truth["cells"]]
            assert sum(c["params"] for c in cells) == truth["params"]
            assert all(c["check"] == "ok" for c in cells), [c["reason"] for c in cells]
            assert cells[0]["input_dim"] == truth["input_dim"]
            expected_entries += len(cells)
            continue
        expected_entries += 1
        layer = ours[name]
        assert layer["params"] == truth["params"]
        assert layer["units"] == truth["units"]
        assert layer["input_dim"] == truth["input_dim"]
        assert layer["directions"] == truth["directions"]
        assert layer["check"] == "ok", layer["reason"]
        assert layer["expected_params"] == truth["params"]
        assert layer["lowered"] is False
        assert [t["shape"] for t in layer["tensors"]] == [w["shape"] for w in truth["weights"]]
        assert [t["dtype"] for t in layer["tensors"]] == [w["dtype"] for w in truth["weights"]]
        if entry["format"] == "keras-h5":  # stored names are Keras's weight names
            names = [w.get("path", w["name"]) for w in truth["weights"]]
            assert [t["name"] for t in layer["tensors"]] == names
        roles = [t["role"] for t in layer["tensors"]]
        per_direction = ["kernel", "recurrent_kernel"] + (["bias"] if truth["use_bias"] else [])
        gates = truth.get("gate_order") or [None]
        assert roles == per_direction * truth["directions"] * len(gates)
        if truth.get("gate_order"):
            assert layer["gate_order"] == truth["gate_order"]
        if truth["directions"] == 2:
            directions = [t["direction"] for t in layer["tensors"]]
            half = len(directions) // 2
            assert directions == ["forward"] * half + ["backward"] * half
    assert len(ours) == expected_entries


CHANNELS_FIRST = [
    e
    for e in ENTRIES
    if e["format"] in FULL
    and any(t.get("data_format") == "channels_first" for t in e["recurrent_layers"])
]


@pytest.mark.parametrize("entry", CHANNELS_FIRST, ids=entry_id)
def test_channels_first_width_comes_from_the_config(entry: dict) -> None:
    """The channel axis is found in the propagated shape, not merely read off the kernel:
    a check against the kernel's own width could not fail."""
    ours = {layer["name"]: layer for layer in _report(entry)["recurrent_layers"]}
    for truth in entry["recurrent_layers"]:
        layer = ours[truth["name"]]
        assert (layer["input_dim"], layer["input_dim_source"]) == (truth["input_dim"], "config")


@pytest.mark.parametrize("entry", manifest_entries(*WEIGHTS_ONLY), ids=entry_id)
def test_weights_only_cells_are_inferred(entry: dict) -> None:
    report = _report(entry)
    ours = report["recurrent_layers"]
    truth: list[tuple[int, int]] = []
    for layer in entry["recurrent_layers"]:
        for cell in layer.get("cells") or [layer]:
            truth.append((cell["units"], layer["directions"]))
    assert sorted((r["units"], r["directions"]) for r in ours) == sorted(truth)
    assert sum(r["params"] for r in ours) == sum(r["params"] for r in entry["recurrent_layers"])
    for layer in ours:
        assert layer["check"] == "ok", layer["reason"]
        assert "inferred" in layer["type"]
        assert layer["input_dim_source"] == "tensor"
    assert any("inferred" in warning for warning in report["warnings"])


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["optimizer"]], ids=entry_id)
def test_optimizer_state_reported_apart(entry: dict) -> None:
    report = _report(entry)
    saved = entry["optimizer"]["saved_values"]
    if saved:
        assert report["optimizer"]["values"] == saved
        assert report["optimizer"]["bytes"] == entry["optimizer"]["saved_bytes"]
    else:
        assert report["optimizer"] is None
    assert report["total_params"] == entry["total_params"]


def test_input_width_source_is_named() -> None:
    lstm = inspect_file(FIXTURES / "keras2/lstm_u16_d8.h5").to_dict()["recurrent_layers"][0]
    assert lstm["input_dim_source"] == "config"
    weights = inspect_file(FIXTURES / "keras2/lstm_u16_d8_weights.h5").to_dict()
    assert weights["recurrent_layers"][0]["input_dim_source"] == "tensor"


@pytest.mark.parametrize(
    "name",
    ["keras2/trained_adam.h5", "keras3/trained_adam.keras", "keras3/stacked_lstm.weights.h5"],
)
def test_inspection_never_changes_the_file(name: str) -> None:
    path = FIXTURES / name
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    inspect_file(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_extra_root_dataset_is_ignored_with_a_note() -> None:
    report = inspect_file(FIXTURES / "keras2/extra_root_dataset.h5").to_dict()
    assert any("ignored non-Keras entries" in w for w in report["warnings"])


# --------------------------------------------------------------- real files by other people

needs_realworld = pytest.mark.skipif(
    not REALWORLD.exists(), reason="../shared/realworld is not present"
)


def _real(entry: dict) -> dict:
    return inspect_file(REALWORLD / "files" / entry["file"]).to_dict()


def _loaded(entry: dict) -> dict | None:
    """The truth of the first framework that could load the file."""
    for key in ("tf_keras_load", "keras3_load"):
        truth = entry["ground_truth"].get(key)
        if isinstance(truth, dict) and truth.get("ok"):
            return truth
    return None


REAL_KERAS = realworld_entries(
    "keras_h5_full_model", "keras_v3_zip", "keras_h5_weights_only", "keras3_weights_h5"
)


@needs_realworld
@pytest.mark.parametrize("entry", REAL_KERAS, ids=entry_id)
def test_realworld_keras(entry: dict) -> None:
    report = _real(entry)
    summary = entry["summary"]
    assert report["total_params"] == summary["total_params"]
    loaded = _loaded(entry)
    if loaded is not None:
        assert report["trainable_params"] == loaded["trainable_params"]
        assert report["non_trainable_params"] == loaded["non_trainable_params"]
        ours = {layer["name"]: layer["params"] for layer in report["layers"]}
        for layer in loaded["layers"]:
            if layer["class"] == "InputLayer" and layer["name"] not in ours:
                continue
            assert ours[layer["name"]] == layer["params"], layer["name"]
    elif "per_layer" in entry["ground_truth"]:  # count_params() per layer, recorded by name
        truth_total = entry["ground_truth"]["tf_keras_count_params"]
        assert report["total_params"] == truth_total
        ours = {layer["name"]: layer["params"] for layer in report["layers"]}
        for name, params in entry["ground_truth"]["per_layer"].items():
            assert ours[name] == params, name
    else:  # no loader could open it: truth is the stored arrays per layer group
        groups = entry["ground_truth"]["h5_weight_elements_per_layer_group"]
        ours_params = Counter(layer["params"] for layer in report["layers"] if layer["params"])
        assert ours_params == Counter(g["elements"] for g in groups.values() if g["elements"])
    recurrent = report["recurrent_layers"]
    assert len(recurrent) == len(summary["recurrent_layers"])
    for ours, truth in zip(recurrent, summary["recurrent_layers"], strict=True):
        assert ours["params"] == truth["count_params"]
        if "units" in truth or "filters" in truth:
            assert ours["units"] == truth.get("units", truth.get("filters"))
        assert ours["check"] == "ok", ours["reason"]
        if "name" in truth:
            assert ours["name"] == truth["name"]
    if loaded is not None:
        for ours, truth in zip(recurrent, loaded["recurrent_layers"], strict=True):
            assert [t["shape"] for t in ours["tensors"]] == truth["weight_shapes"]


@needs_realworld
@pytest.mark.parametrize("entry", realworld_entries("keras_h5_full_model"), ids=entry_id)
def test_realworld_controls_and_optimizer(entry: dict) -> None:
    report = _real(entry)
    if entry["is_control"]:
        assert report["recurrent_layers"] == []
    if "optimizer_weights" in entry["ground_truth"].get("root_keys", ()):
        assert report["optimizer"] is not None and report["optimizer"]["values"] > 0
