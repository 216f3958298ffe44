"""Recurrent blocks in GGUF files (llama.cpp's names, the block table's llama.cpp column) and
`compare` of a Hugging Face checkpoint with its GGUF export, block by block.

Truth: fixtures/gguf/manifest.json (fixtures/generate_gguf.py): GGUFReader's tensor infos and
key/values, and the transformers model each file was converted from (num_parameters(), numel()
per parameter). Tampered exports are made from the fixtures here, one kind per test: a
requantized block, a missing tensor, a transposed tensor.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, manifest_entries, run_main
from inspector import inspect_file
from inspector.formats.gguf.container import read_container
from inspector.formats.source import LocalSource
from inspector.model import CellKind, Check

ENTRIES = {e["file"]: e for e in manifest_entries("gguf")}
RECURRENT = [f for f, e in ENTRIES.items() if e["architecture"] in ("mamba", "mamba2", "rwkv6")]
_BLOCK = re.compile(r"^(?:backbone|model)\.layers\.(\d+)\.mixer\.")


@pytest.mark.parametrize("file", RECURRENT)
def test_every_block_is_recognised_and_checked(file: str) -> None:
    entry = ENTRIES[file]
    report = inspect_file(FIXTURES / file)
    depth = entry["metadata"][f"{entry['architecture']}.block_count"]
    per_block = 2 if entry["architecture"] == "rwkv6" else 1
    assert len(report.checks) == depth * per_block
    for check in report.checks:
        assert check.status is Check.OK, (check.layer.name, check.reason)
        assert check.layer.cell.layout == "llama.cpp"
    # Every tensor GGUFReader lists in a block is in one recurrent block but the layer norms.
    held = {item.tensor.name for check in report.checks for item in check.layer.tensors}
    listed = {t["name"] for t in entry["tensors"] if t["name"].startswith("blk.")}
    assert held == {name for name in listed if ".attn_norm" not in name}
    decoder = report.model.decoder
    assert decoder is not None
    assert decoder.depth == depth
    assert decoder.width == entry["metadata"][f"{entry['architecture']}.embedding_length"]


@pytest.mark.parametrize("file", [f for f in RECURRENT if "source" in ENTRIES[f]])
def test_a_gguf_block_has_the_transformers_mixer_count(file: str) -> None:
    """Each blk.N.ssm holds as many parameters as the mixer transformers built (llama.cpp's
    converter reshapes and recomputes, but never adds or drops an element)."""
    source = ENTRIES[file]["source"]
    mixers: dict[int, int] = {}
    for parameter in source["parameters"]:
        found = _BLOCK.match(parameter["name"])
        if found is not None:
            mixers[int(found[1])] = mixers.get(int(found[1]), 0) + parameter["numel"]
    report = inspect_file(FIXTURES / file)
    assert {int(c.layer.name.split(".")[1]): c.layer.params for c in report.checks} == mixers
    assert report.totals.total == source["num_parameters"]


def test_the_dimensions_are_the_metadata() -> None:
    metadata = ENTRIES["gguf/mamba2_q8_0.gguf"]["metadata"]
    report = inspect_file(FIXTURES / "gguf/mamba2_q8_0.gguf")
    dims = dict(report.checks[0].layer.cell.dims)
    assert report.checks[0].layer.cell.kind is CellKind.MAMBA2
    assert dims["d_state"] == metadata["mamba2.ssm.state_size"]
    assert dims["n_groups"] == metadata["mamba2.ssm.group_count"]
    assert dims["n_heads"] == metadata["mamba2.ssm.time_step_rank"]
    assert dims["d_inner"] == metadata["mamba2.ssm.inner_size"]


def _compare(source: Path, export: Path) -> dict:
    ran = run_main(["compare", str(source), str(export), "--format", "json"])
    assert ran.code in (0, 1), ran.stderr
    return {pair["source"]: pair for pair in json.loads(ran.stdout)["pairs"]}


@pytest.mark.parametrize(
    "file", [f for f in RECURRENT if "source" in ENTRIES[f]] + ["gguf/mamba_q8_0_be.gguf"]
)
def test_an_export_is_faithful_block_by_block(file: str) -> None:
    source = ENTRIES[file].get("source") or ENTRIES["gguf/mamba_q8_0.gguf"]["source"]
    pairs = _compare(FIXTURES / source["folder"], FIXTURES / file)
    mixers = [pair for name, pair in pairs.items() if name.endswith(".mixer")]
    assert len(mixers) == ENTRIES[file]["metadata"][f"{ENTRIES[file]['architecture']}.block_count"]
    for pair in mixers:
        assert pair["status"] in ("identical", "equivalent"), pair
        assert pair["export"].endswith(".ssm")
        assert pair["values"]["compared"] == pair["source_params"]  # every element held


def test_a_requantized_block_names_its_tensor(tmp_path: Path) -> None:
    path = tmp_path / "requantized.gguf"
    shutil.copy(FIXTURES / "gguf/mamba_q8_0.gguf", path)
    tensors = read_container(LocalSource(path)).tensors
    info = next(t for t in tensors if t.name == "blk.1.ssm_in.weight")
    data = bytearray(path.read_bytes())
    scale = np.frombuffer(bytes(data[info.begin : info.begin + 2]), "<f2")[0]
    data[info.begin : info.begin + 2] = np.float16(scale * 3).tobytes()
    path.write_bytes(bytes(data))
    pairs = _compare(FIXTURES / "gguf/hf/mamba", path)
    assert pairs["backbone.layers.0.mixer"]["status"] == "equivalent"
    moved = pairs["backbone.layers.1.mixer"]
    assert moved["status"] == "values differ"
    assert [d["export_tensor"] for d in moved["differences"]] == ["blk.1.ssm_in.weight"]


def _renamed(tmp_path: Path, old: bytes, new: bytes) -> Path:
    """A tensor info's name replaced by one of the same length (GGUF strings: u64 length, then
    the bytes)."""
    path = tmp_path / "renamed.gguf"
    data = FIXTURES.joinpath("gguf/mamba_f32.gguf").read_bytes()
    length = struct.pack("<Q", len(old))
    assert len(old) == len(new) and data.count(length + old) == 1
    path.write_bytes(data.replace(length + old, length + new))
    return path


def test_a_missing_tensor_is_named(tmp_path: Path) -> None:
    path = _renamed(tmp_path, b"blk.0.ssm_d", b"blk.0.ssm_q")  # D no longer where llama.cpp looks
    report = inspect_file(path)
    check = next(c for c in report.checks if c.layer.name == "blk.0.ssm")
    assert check.status is Check.MISMATCH and "ssm_d is missing" in (check.reason or "")
    pair = _compare(FIXTURES / "gguf/hf/mamba", path)["backbone.layers.0.mixer"]
    assert pair["status"] == "shape differs"
    assert [u["tensor"] for u in pair["unmatched"]] == ["backbone.layers.0.mixer.D"]


def test_a_transposed_tensor_is_named(tmp_path: Path) -> None:
    """blk.0.ssm_x.weight's two dims swapped in its tensor info: stored (128, 36), not (36, 128)."""
    path = tmp_path / "transposed.gguf"
    data = bytearray(FIXTURES.joinpath("gguf/mamba_f32.gguf").read_bytes())
    name = struct.pack("<Q", 18) + b"blk.0.ssm_x.weight"
    at = data.index(name) + len(name)
    dims = struct.unpack_from("<IQQ", data, at)
    assert dims == (2, 128, 36)
    struct.pack_into("<IQQ", data, at, 2, 36, 128)
    path.write_bytes(bytes(data))
    check = next(c for c in inspect_file(path).checks if c.layer.name == "blk.0.ssm")
    assert check.status is Check.MISMATCH and "ssm_x.weight is (128, 36)" in (check.reason or "")
    pair = _compare(FIXTURES / "gguf/hf/mamba", path)["backbone.layers.0.mixer"]
    assert pair["status"] == "shape differs"
    assert any(m["field"] == "transposed" and "ssm_x" in m["export"] for m in pair["mismatches"])


def test_the_state_llama_cpp_keeps() -> None:
    """llama.cpp's recurrent memory per layer (llama-hparams.cpp n_embd_r, n_embd_s): Mamba's
    conv keeps d_conv - 1 inputs of d_inner, its SSM d_state·d_inner, all F32; RWKV-6 the two
    token shifts (2·n_embd) and n_embd·head_size of WKV state."""
    mamba = ENTRIES["gguf/mamba_f32.gguf"]["metadata"]
    report = inspect_file(FIXTURES / "gguf/mamba_q4_0.gguf")
    inner, conv = mamba["mamba.ssm.inner_size"], mamba["mamba.ssm.conv_kernel"]
    per_layer = (conv - 1) * inner + mamba["mamba.ssm.state_size"] * inner
    assert report.deployment.state_elements == 2 * per_layer
    assert report.deployment.state_bytes == 2 * per_layer * 4
    rwkv = ENTRIES["gguf/rwkv6_f32.gguf"]["metadata"]
    report = inspect_file(FIXTURES / "gguf/rwkv6_q8_0.gguf")
    width = rwkv["rwkv6.embedding_length"]
    per_layer = 2 * width + width * rwkv["rwkv6.wkv.head_size"]
    assert report.deployment.state_elements == rwkv["rwkv6.block_count"] * per_layer
