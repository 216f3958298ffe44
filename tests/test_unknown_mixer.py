"""A recurrent or linear-attention mixer the block table does not know is said, never read
silently as plain layers: the tensors only such a mixer stores (A_log, dt_bias, slope_rate, ...)
outside every recognised block, or a configuration whose model_type has no row but whose layer
types or keys mark such a mixer, give a warning naming it. Known architectures never get it.

fixtures/generate_recurrent_llm.py writes the unknown ones (format "hf-unknown-mixer", today
MiniMax's lightning attention) with the modules transformers builds of the unknown class.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from crafted import safetensors_file

from conftest import FIXTURES, manifest_entries
from inspector import inspect_file
from inspector.formats.blocks import MIXER_MARKERS

UNKNOWN = manifest_entries("hf-unknown-mixer")
KNOWN = manifest_entries("hf-checkpoint", "hf-file")
SAID = "a recurrent or linear-attention mixer the block table does not know"


def _unknown_warnings(path: Path) -> list[str]:
    return [w for w in inspect_file(path).model.warnings if SAID in w]


def _id(entry: dict) -> str:
    return str(entry["file"])


def test_there_is_an_unknown_mixer_fixture() -> None:
    assert UNKNOWN and all(entry["unknown_mixers"] for entry in UNKNOWN)


@pytest.mark.parametrize("entry", UNKNOWN, ids=_id)
def test_an_unknown_mixer_is_named_not_read_silently(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"])
    (warning,) = [w for w in report.model.warnings if SAID in w]
    for module in entry["unknown_mixers"]:
        assert module in warning
    assert f"model_type {entry['model_type']}" in warning
    # every parameter still counted (the stored buffers beside them too), none in a block
    assert report.totals.total == entry["params"] + sum(entry["buffers"].values())
    assert not any(layer.name in entry["unknown_mixers"] for layer in report.model.recurrent_layers)


@pytest.mark.parametrize("entry", KNOWN, ids=_id)
def test_a_known_architecture_gets_no_such_warning(entry: dict) -> None:
    assert _unknown_warnings(FIXTURES / entry["file"]) == []


@pytest.mark.parametrize("marker", sorted(MIXER_MARKERS))
def test_a_marker_tensor_outside_every_block_is_said(tmp_path: Path, marker: str) -> None:
    """A bare safetensors file: a module holding a marker beside plain projections."""
    header = {
        "model.layers.0.mixer.in_proj.weight": {
            "dtype": "F32",
            "shape": [4, 2],
            "data_offsets": [0, 32],
        },
        f"model.layers.0.mixer.{marker}": {"dtype": "F32", "shape": [2], "data_offsets": [32, 40]},
    }
    path = tmp_path / "model.safetensors"
    safetensors_file(path, header, bytes(40))
    (warning,) = _unknown_warnings(path)
    assert warning.startswith(f"model.layers.0.mixer holds {marker}: ")
    assert inspect_file(path).totals.total == 10


def test_a_configuration_marking_linear_attention_layers_is_said(tmp_path: Path) -> None:
    """No marker tensor at all, but config.json names a model_type without a row whose layer
    types include linear attention: said from the configuration."""
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    config = {
        "model_type": "someday_hybrid",
        "hidden_size": 2,
        "num_hidden_layers": 2,
        # a stranger's list: entries that are no layer type are passed over, not an error
        "layer_types": [{"a": 1}, ["x"], "linear_attention", "full_attention"],
    }
    (directory / "config.json").write_text(json.dumps(config))
    header = {
        "model.layers.0.mixer.qkv_proj.weight": {
            "dtype": "F32",
            "shape": [6, 2],
            "data_offsets": [0, 48],
        }
    }
    safetensors_file(directory / "model.safetensors", header, bytes(48))
    (warning,) = _unknown_warnings(directory)
    assert "lists 'linear_attention' layers (layer_types)" in warning
    assert "model_type someday_hybrid" in warning
    # the same layer types under a model_type the table knows: no such warning
    known = tmp_path / "known"
    shutil.copytree(directory, known)
    (known / "config.json").write_text(json.dumps({**config, "model_type": "olmo_hybrid"}))
    assert _unknown_warnings(known) == []


@pytest.mark.parametrize(
    ("model_type", "layer_types"),
    # transformers 5.25's configuration_zaya.py and configuration_inkling2.py defaults: each
    # layer's cache (LinearAttentionAnd{Full,SlidingWindow}AttentionLayer) keeps conv states
    # beside the keys and values, which the block table does not describe yet
    [("zaya", ["hybrid", "hybrid"]), ("inkling2_text", ["hybrid_sliding", "hybrid"])],
)
def test_hybrid_layers_of_an_unknown_model_type_are_said(
    tmp_path: Path, model_type: str, layer_types: list[str]
) -> None:
    config = {"model_type": model_type, "hidden_size": 2, "num_hidden_layers": 2}
    (tmp_path / "config.json").write_text(json.dumps({**config, "layer_types": layer_types}))
    header = {
        "model.layers.0.self_attn.q_proj.weight": {
            "dtype": "F32",
            "shape": [2, 2],
            "data_offsets": [0, 16],
        }
    }
    safetensors_file(tmp_path / "model.safetensors", header, bytes(16))
    (warning,) = _unknown_warnings(tmp_path)
    assert all(f"{kind!r}" in warning.partition(" layers ")[0] for kind in layer_types)
    assert f"model_type {model_type}" in warning
