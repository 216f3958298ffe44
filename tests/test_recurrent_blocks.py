"""The recurrent blocks of language models, held to transformers' own numbers.

Every fixture of fixtures/hf/ (fixtures/generate_recurrent_llm.py: tiny models of every
architecture transformers 5.25 offers with a state-space or linear-recurrent block) records
`model.num_parameters()`, each stored tensor's `numel()`, each recurrent module's parameter
count by its class, and the cache a real forward pass leaves. The reports must match them:
totals, tensors, one recurrent layer per recurrent module with its formula check ok, and the
state per sequence (elements and bytes, per-stream dtypes included) and the attention layers'
KV cache per token.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from crafted import safetensors_file

from conftest import FIXTURES, manifest_entries
from inspector import inspect_file
from inspector.blocks import BLOCKS, MAMBA
from inspector.model import CellKind, Check, WidthSource

ENTRIES = manifest_entries("hf-checkpoint", "hf-file")
# Fixtures whose dimensions the tensors alone cannot give: the report assumes a value and says so
# (Mamba-2 stores d_inner + 2·n_groups·d_state channels, not n_groups and d_state apart).
# OLMo-Hybrid's key heads are narrower than its value heads (d_k_head 4, d_v_head 8).
ASSUMED = {
    "hf/files/mamba2.safetensors": "n_groups = 1 is assumed",
    "hf/files/olmo_hybrid.safetensors": "d_k_head = d_v_head is assumed",
}


def _id(entry: dict) -> str:
    return str(entry["file"])


def test_every_architecture_is_there() -> None:
    model_types = {entry["model_type"] for entry in ENTRIES}
    assert {
        "mamba",
        "falcon_mamba",
        "mamba2",
        "rwkv",
        "jamba",
        "zamba",
        "zamba2",
        "bamba",
        "falcon_h1",
        "granitemoehybrid",
        "nemotron_h",
        "recurrent_gemma",
        "xlstm",
        "lfm2",
        "qwen3_next",
        "qwen3_5_text",
        "olmo_hybrid",
        "kimi_linear",
        "bailing_hybrid",
        "glm5_next_text",
    } <= model_types
    assert {entry["format"] for entry in ENTRIES} == {"hf-checkpoint", "hf-file"}


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_totals_and_tensors_match_transformers(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"])
    # num_parameters() leaves out the persistent buffers a file stores beside the weights
    # (DeepSeek-V3's router bias in Kimi Linear); the report counts every stored tensor
    assert report.totals.total == entry["params"] + sum(entry["buffers"].values())
    layers = report.model.layers
    stored = {t.name: t for layer in layers for t in layer.tensors}
    stored.update({s.tensor.name: s.tensor for layer in layers for s in layer.shared})  # tied
    for name, truth in entry["tensors"].items():
        assert name in stored, name
        assert list(stored[name].shape) == truth["shape"]
        assert stored[name].params == truth["numel"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_one_block_per_recurrent_module(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"])
    found = Counter((c.layer.cell.block, c.layer.params) for c in report.checks)
    truth = Counter((b["spec"], b["params"]) for b in entry["blocks"].values())
    assert found == truth
    for check in report.checks:
        assert check.status is Check.OK, (check.layer.name, check.reason)
        assert check.expected == check.layer.params
    # save_pretrained keeps the module names, bar NemotronH's (its original checkpoint's
    # "backbone." prefix, transformers' conversion mapping) and Bailing-Hybrid's (its
    # ".attention." for the module's ".self_attn.", conversion_mapping.py)
    names = set(entry["blocks"])
    if entry["model_type"] == "bailing_hybrid" and entry["format"] == "hf-checkpoint":
        names = {name.replace(".self_attn", ".attention") for name in names}
    if entry["model_type"] != "nemotron_h":
        assert {c.layer.name for c in report.checks} == names


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_state_per_sequence_is_the_forward_pass_cache(entry: dict) -> None:
    state = entry["state"]
    report = replace(inspect_file(FIXTURES / entry["file"]), context=state["tokens"])
    deployment = report.deployment
    assert deployment.kv_elements == state["kv_elements_per_token"] * state["tokens"]
    assert sum(item.count for item in deployment.kv) == state["kv_layers"]
    note = ASSUMED.get(entry["file"])
    if note is not None:  # an assumed dimension: said, and the state follows the assumption
        assert any(note in n for c in report.checks for n in c.layer.notes)
        return
    assert deployment.state_elements == state["elements"]
    assert deployment.state_bytes == state["bytes"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_the_decoder_is_the_models(entry: dict) -> None:
    decoder = inspect_file(FIXTURES / entry["file"]).model.decoder
    assert decoder is not None
    assert decoder.width == entry["hidden_size"]
    assert decoder.depth == entry["num_hidden_layers"]


def test_dimensions_from_the_config_or_the_tensors() -> None:
    """The same model as a checkpoint directory (config.json) and as a bare file (the tensors):
    the same dimensions either way."""
    directory = inspect_file(FIXTURES / "hf" / "mamba")
    single = inspect_file(FIXTURES / "hf" / "files" / "mamba.safetensors")
    dims = []
    for report, source in ((directory, WidthSource.CONFIG), (single, WidthSource.TENSOR)):
        assert {c.layer.input_dim_source for c in report.checks} == {source}
        assert {c.layer.cell.kind for c in report.checks} == {CellKind.MAMBA}
        dims.append(
            [{k: v for k, v in c.layer.cell.dims if k in MAMBA.dims} for c in report.checks]
        )
    assert dims[0] == dims[1]
    assert dims[0][0] == {"d_model": 16, "d_inner": 32, "d_state": 4, "d_conv": 4, "dt_rank": 1}


def test_the_block_table_reads() -> None:
    """Every expression of the table parses and reads only the spec's own names."""
    from inspector.dims import names

    for spec in BLOCKS:
        known = set(spec.dims) | {name for name, _ in spec.derived}
        flags = {m.flag for m in spec.members if m.flag}
        for member in spec.members:
            for axis in (*member.shape, *(member.resaved or ())):
                assert names(axis) <= known, (spec.name, member.name, axis)
        for stream in spec.state:
            for axis in stream.shape:
                assert names(axis) <= known, (spec.name, stream.name)
        assert names(spec.scan_macs) <= known
        for _name, expression in spec.derived:
            assert names(expression) <= known
        members = {m.name for m in spec.members}
        for item in spec.read_off:
            assert item.dim in known
            assert names(item.expression) <= known | members, (spec.name, item.expression)
        assert spec.units in known and spec.model_width in known
        assert not flags & known


def _resplit(source: Path, target: Path, widths: dict[str, int]) -> None:
    """A copy of a checkpoint directory whose `*_conv1d.weight` tensors have the channel counts
    `widths` gives by leaf name (the same total), payload zeroed (inspect reads no values)."""
    shutil.copytree(source, target)
    raw = (source / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    offset = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        leaf = name.rpartition(".")[0].rpartition(".")[2]
        if leaf in widths:
            info["shape"] = [widths[leaf], *info["shape"][1:]]
        size = 4 if info["dtype"] == "F32" else 2
        for axis in info["shape"]:
            size *= axis
        info["data_offsets"] = [offset, offset + size]
        offset += size
    safetensors_file(target / "model.safetensors", header, bytes(offset))


def test_olmo_hybrid_conv_pieces_at_their_widths_or_as_save_pretrained_chunks(
    tmp_path: Path,
) -> None:
    """OLMo-Hybrid's original checkpoints store q/k/v_conv1d at the key and value widths;
    transformers' save_pretrained writes them back as torch.chunk's equal pieces (the fixture:
    11/11/10 of 32). Both check ok (the second said); any other split is a mismatch."""
    source = FIXTURES / "hf" / "olmo_hybrid"
    config = json.loads((source / "config.json").read_text())
    key = config["linear_num_key_heads"] * config["linear_key_head_dim"]
    value = config["linear_num_value_heads"] * config["linear_value_head_dim"]
    chunked = inspect_file(source)
    (check,) = chunked.checks
    assert check.status is Check.OK
    assert any("torch.chunk" in note for note in check.layer.notes)
    assert {t.member: t.tensor.shape[0] for t in check.layer.tensors if "conv" in t.member} == {
        "q_conv1d.weight": 11,
        "k_conv1d.weight": 11,
        "v_conv1d.weight": 10,
    }
    _resplit(source, tmp_path / "original", {"q_conv1d": key, "k_conv1d": key, "v_conv1d": value})
    (check,) = inspect_file(tmp_path / "original").checks
    assert check.status is Check.OK, check.reason
    assert not any("torch.chunk" in note for note in check.layer.notes)
    assert check.layer.params == chunked.checks[0].layer.params
    _resplit(source, tmp_path / "other", {"q_conv1d": 12, "k_conv1d": 10, "v_conv1d": 10})
    (check,) = inspect_file(tmp_path / "other").checks
    assert check.status is Check.MISMATCH
    assert "q_conv1d.weight is (12, 1, 4)" in (check.reason or "")
