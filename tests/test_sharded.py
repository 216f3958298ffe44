"""Sharded safetensors checkpoints read from their `model.safetensors.index.json`: counts from
PyTorch (fixtures/generate_sharded.py), the same values as the unsharded file, and an index
never reaches a file outside its folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries
from inspector import inspect_file
from inspector.cli.app import app
from inspector.cli.discover import model_files
from inspector.errors import CorruptModelError, UnsupportedModelError

ENTRIES = manifest_entries("safetensors-sharded")
runner = CliRunner()


def test_the_fixtures_are_there() -> None:
    assert len(ENTRIES) == 2


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"].split("/")[1])
def test_counts_match_pytorch(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    assert report["format"] == "safetensors"
    assert report["total_params"] == entry["total_params"]
    for truth in entry["recurrent_layers"]:
        rows = [r for r in report["recurrent_layers"] if r["name"].startswith(truth["name"] + ".")]
        assert sum(r["params"] for r in rows) == truth["params"]
    stored = sum((FIXTURES / f).stat().st_size for f in [entry["file"], *entry["shards"]])
    assert report["file_bytes"] == stored  # --max-file-size sees every shard


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"].split("/")[1])
def test_shards_compare_identical_to_the_single_file(entry: dict) -> None:
    result = runner.invoke(
        app,
        ["compare", str(FIXTURES / entry["file"]), str(FIXTURES / entry["single_file"])],
    )
    assert result.exit_code == 0, result.output
    assert "all bit-identical" in result.stdout


def test_a_scan_reads_the_index_not_the_shards() -> None:
    found = {p.relative_to(FIXTURES).as_posix() for p in model_files(FIXTURES / "sharded")}
    expected = {e["file"] for e in ENTRIES} | {e["single_file"] for e in ENTRIES}
    assert found == expected


def _index(tmp_path: Path, weight_map: dict[str, str]) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(FIXTURES / "sharded" / "lstm_head", folder)
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


# Every way a shard's name can point outside the index's folder.
ESCAPES = ["../model.safetensors", "/etc/passwd", "a/../../x.safetensors", "C:\\x", "x\x00y"]


@pytest.mark.parametrize("name", ESCAPES)
def test_a_shard_named_outside_the_folder_is_never_opened(tmp_path: Path, name: str) -> None:
    index = _index(tmp_path, {"encoder.weight_hh_l0": name})
    with pytest.raises(UnsupportedModelError, match="outside this directory"):
        inspect_file(index)


def test_a_shard_that_links_out_is_never_opened(tmp_path: Path) -> None:
    index = _index(tmp_path, {"head.bias": "linked.safetensors"})
    outside = tmp_path / "outside.safetensors"
    shutil.copy(FIXTURES / "sharded" / "lstm_head" / "model.safetensors", outside)
    (index.parent / "linked.safetensors").symlink_to(outside)
    with pytest.raises(UnsupportedModelError, match="link out"):
        inspect_file(index)


@pytest.mark.parametrize(
    "document",
    [
        {"weight_map": []},
        {"weight_map": {"head.bias": 3}},
        {"metadata": {}},
        {"weight_map": {"head.bias": "model-00001-of-00004.safetensors"}},  # not in that shard
    ],
    ids=["list", "not-a-name", "no-map", "wrong-shard"],
)
def test_a_damaged_index_is_one_line(tmp_path: Path, document: dict) -> None:
    index = _index(tmp_path, {})
    index.write_text(json.dumps(document))
    with pytest.raises(CorruptModelError):
        inspect_file(index)
