"""A Hugging Face checkpoint directory is a stranger's too: its config.json and its shard index
are hostile input. Each kind of attack is built from a real fixture (fixtures/hf/) by a case
below and must end in one line and exit 2 (or, where the weights still read, in a report that
never used what it could not trust): shard names out of the directory, links out, FIFOs, broken
or oversized JSON, absurd dimensions, shards missing or holding a tensor twice."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import FIXTURES, run_main
from inspector import inspect_file
from inspector.formats.hf import reader

SHARDED = FIXTURES / "hf" / "mamba_sharded"
SINGLE = FIXTURES / "hf" / "mamba"
INDEX = "model.safetensors.index.json"


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "checkpoint"
    shutil.copytree(source, target)
    return target


def _edit_index(directory: Path, edit: Callable[[dict], object]) -> None:
    path = directory / INDEX
    document = json.loads(path.read_text())
    path.write_text(json.dumps(edit(document)))


def _first_shard(directory: Path) -> str:
    return str(json.loads((directory / INDEX).read_text())["weight_map"]["backbone.norm_f.weight"])


def _remap(directory: Path, shard: str) -> None:
    """Point every tensor of the first shard at `shard` instead."""
    first = _first_shard(directory)
    _edit_index(
        directory,
        lambda d: {
            **d,
            "weight_map": {k: (shard if v == first else v) for k, v in d["weight_map"].items()},
        },
    )


def _outside(directory: Path) -> Path:
    """A valid shard outside the checkpoint: were it opened, the read would succeed."""
    target = directory.parent / "outside.safetensors"
    shutil.copy(directory / _first_shard(directory), target)
    return target


def parent_path(d: Path) -> None:
    _outside(d)
    _remap(d, "../outside.safetensors")


def absolute_path(d: Path) -> None:
    _remap(d, str(_outside(d)))


def dotdot_inside(d: Path) -> None:
    _outside(d)
    _remap(d, "sub/../../outside.safetensors")


def link_out(d: Path) -> None:
    first = _first_shard(d)
    outside = _outside(d)
    (d / first).unlink()
    (d / first).symlink_to(outside)


def config_link_out(d: Path) -> None:
    outside = d.parent / "config.json"
    shutil.copy(d / "config.json", outside)
    (d / "config.json").unlink()
    (d / "config.json").symlink_to(outside)


def fifo_shard(d: Path) -> None:
    first = _first_shard(d)
    (d / first).unlink()
    os.mkfifo(d / first)


def missing_shard(d: Path) -> None:
    (d / _first_shard(d)).unlink()


def control_characters(d: Path) -> None:
    _remap(d, "model\x1b[31m\r.safetensors")


def not_a_name(d: Path) -> None:
    _edit_index(d, lambda doc: {**doc, "weight_map": {"backbone.norm_f.weight": ["x"]}})


def no_weight_map(d: Path) -> None:
    _edit_index(d, lambda doc: {"metadata": doc["metadata"]})


def index_is_a_list(d: Path) -> None:
    _edit_index(d, lambda doc: [doc])


def index_nested(d: Path) -> None:
    (d / INDEX).write_text("[" * 100_000 + "]" * 100_000)


def too_many_shards(d: Path) -> None:
    weight_map = {f"t{i}": f"shard-{i}.safetensors" for i in range(reader.MAX_SHARDS + 1)}
    _edit_index(d, lambda doc: {**doc, "weight_map": weight_map})


def tensor_twice(d: Path) -> None:
    shards = sorted(set(json.loads((d / INDEX).read_text())["weight_map"].values()))
    shutil.copy(d / shards[0], d / shards[1])


def config_not_json(d: Path) -> None:
    (d / "config.json").write_text('{"model_type": "mamba", ')


def config_a_list(d: Path) -> None:
    (d / "config.json").write_text("[1, 2]")


def config_too_many_items(d: Path) -> None:
    (d / "config.json").write_text(json.dumps({"model_type": "mamba", "x": [0] * 600_000}))


REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "parent path": (parent_path, "out of the checkpoint directory"),
    "absolute path": (absolute_path, "out of the checkpoint directory"),
    "dotdot inside": (dotdot_inside, "out of the checkpoint directory"),
    "link out": (link_out, "symbolic link out of the checkpoint directory"),
    "config link out": (config_link_out, "symbolic link out of the checkpoint directory"),
    "fifo shard": (fifo_shard, "not a regular file"),
    "missing shard": (missing_shard, "missing"),
    "control characters": (control_characters, "missing"),
    "not a name": (not_a_name, "not a file name"),
    "no weight map": (no_weight_map, "no 'weight_map'"),
    "index is a list": (index_is_a_list, "no 'weight_map'"),
    "index nested": (index_nested, "nests JSON more than about 1,000 levels deep"),
    "too many shards": (too_many_shards, "over the 10,000 limit"),
    "tensor twice": (tensor_twice, "in another shard too"),
    "config not json": (config_not_json, "not valid JSON"),
    "config a list": (config_a_list, "not a JSON object"),
    "config too many items": (config_too_many_items, "JSON elements"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_in_one_line(case: str, tmp_path: Path) -> None:
    build, words = REFUSED[case]
    directory = _copy(SHARDED, tmp_path)
    build(directory)
    ran = run_main([str(directory)])
    assert ran.code == 2, (ran.stdout, ran.stderr)
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnninspect: error: "), ran.stderr
    assert words in lines[0]
    assert "Traceback" not in ran.stderr and "internal error" not in ran.stderr
    assert not any(c in ran.stderr for c in ("\x1b", "\r")), repr(ran.stderr)


def test_a_link_inside_the_directory_is_read(tmp_path: Path) -> None:
    directory = _copy(SHARDED, tmp_path)
    first = _first_shard(directory)
    (directory / first).rename(directory / "kept.safetensors")
    (directory / first).symlink_to("kept.safetensors")
    assert inspect_file(directory).totals.total == inspect_file(SHARDED).totals.total


@pytest.mark.parametrize(
    ("key", "value"),
    [("state_size", 10**40), ("state_size", -3), ("state_size", "auto"), ("hidden_size", 1.5)],
)
def test_absurd_dimensions_are_taken_from_the_tensors(
    key: str, value: object, tmp_path: Path
) -> None:
    directory = _copy(SINGLE, tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config[key] = value
    (directory / "config.json").write_text(json.dumps(config))
    report = inspect_file(directory)
    truth = inspect_file(SINGLE)
    assert report.totals.total == truth.totals.total
    # the state size the tensors give; the width a float cannot be
    assert [dict(c.layer.cell.dims)["d_state"] for c in report.checks] == [4, 4]


def test_a_config_beside_a_file_that_links_out_is_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(FIXTURES / "hf" / "files" / "mamba2.safetensors", folder / "model.safetensors")
    config = json.loads((FIXTURES / "hf" / "mamba2" / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_groups": 1}))
    (folder / "config.json").symlink_to(tmp_path / "config.json")
    report = inspect_file(folder / "model.safetensors")
    assert {c.layer.input_dim_source.value for c in report.checks} == {"tensor"}
    assert any("a link out of the folder; not read" in w for w in report.model.warnings)


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_a_config_beside_the_weights_that_is_no_file_is_said_to_be_skipped(
    kind: str, tmp_path: Path
) -> None:
    """Never opened (a FIFO blocks the reader), never silently skipped either: the report says
    the dimensions came from the tensors because config.json could not be read."""
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(FIXTURES / "hf" / "files" / "mamba2.safetensors", folder / "model.safetensors")
    config = folder / "config.json"
    if kind == "fifo":
        os.mkfifo(config)
    elif kind == "folder":
        config.mkdir()
    else:
        config.symlink_to("/dev/null")
    ran = run_main([str(folder / "model.safetensors"), "--timeout", "10"])
    assert ran.code == 0, ran.stderr
    assert "config.json: not a regular file; not read" in ran.stdout, ran.stdout
    scan = run_main([str(folder), "--timeout", "10", "-f", "json"])  # a folder, scanned
    assert scan.code == 0, scan.stderr
    (report,) = json.loads(scan.stdout)
    assert any("not a regular file; not read" in w for w in report["warnings"])
