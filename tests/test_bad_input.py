"""Files that cannot be inspected: exit 2 with one line on stderr, never a traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES
from inspector.cli.app import app

runner = CliRunner()
SOURCE = FIXTURES / "keras2/lstm_u16_d8.h5"


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("this is not a model\n")


def _truncated(path: Path) -> None:
    path.write_bytes(SOURCE.read_bytes()[:3000])


def _no_config(path: Path) -> None:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data", data=[1.0, 2.0])


def _bad_json(path: Path) -> None:
    shutil.copy(SOURCE, path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["model_config"] = "{not json"


def _config_wrong_type(path: Path) -> None:
    shutil.copy(SOURCE, path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["model_config"] = json.dumps([1, 2, 3])


def _config_numeric(path: Path) -> None:
    shutil.copy(SOURCE, path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["model_config"] = 42


def _pickle(path: Path) -> None:
    path.write_bytes(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.")


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (_empty, "empty file"),
    "text": (_text, "text file"),
    "truncated": (_truncated, "truncated"),
    "no-config": (_no_config, "model_config"),
    "bad-json": (_bad_json, "not valid JSON"),
    "config-list": (_config_wrong_type, "class_name"),
    "config-number": (_config_numeric, "model_config"),
    "pickle": (_pickle, "never unpickles"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    path = tmp_path / f"{case}.h5"
    make(path)
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rnninspect: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for target, expected in ((tmp_path / "nope.h5", "no such file"), (tmp_path, "directory")):
        result = runner.invoke(app, [str(target)])
        assert result.exit_code == 2
        assert expected in result.stderr


def test_one_bad_file_among_good_ones_still_reports_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    _text(bad)
    result = runner.invoke(app, ["--format", "json", str(SOURCE), str(bad)])
    assert result.exit_code == 2
    reports = json.loads(result.stdout)
    assert [r["file"] for r in reports] == [str(SOURCE)]
    assert "bad.h5" in result.stderr


def test_unknown_reader_is_a_usage_error() -> None:
    result = runner.invoke(app, [str(SOURCE), "--reader", "nope"])
    assert result.exit_code == 2
    assert "unknown reader" in result.stderr
