"""Readable at any width (issue 13): on a terminal (a fake one, in process) the README's
examples fit 80 columns, tables shrink, move long notes under their row or become records, and no
number is ever split; files and pipes keep every line whole unless COLUMNS is set."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, run_main, simple_tables

NUMBER = re.compile(r"\d[\d,.]*\d|\d")
ONNX = FIXTURES / "onnx"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `models/` relative, as in the README


def _models(tmp_path: Path) -> Path:
    """The README's directory example: `models/` holding copies of three fixtures."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    for name in (
        "keras2/bidir_gru_concat.h5",
        "keras2/lstm_u16_d8.h5",
        "keras3/stacked_lstm.keras",
    ):
        shutil.copy(FIXTURES / name, models / Path(name).name)
    return models


def readme_examples(tmp_path: Path) -> list[list[str]]:
    return [
        [str(FIXTURES / "keras2/embedding_lstm_dense.h5")],
        [_models(tmp_path).name, "--max-params", "1.5k", "--max-size", "8KB"],
        [str(FIXTURES / "keras2/bidir_gru_concat.h5"), "--format", "markdown"],
        ["formula", "simplernn", "--units", "2", "--input-dim", "1"],
        ["explain", str(FIXTURES / "keras2/gru_u8_d4_reset_after.h5")],
        ["compare", str(ONNX / "keras_lstm_h16_d8.h5"), str(ONNX / "tf2onnx_lstm_h16_d8.onnx")],
        [
            "compare",
            str(ONNX / "torch_lstm_proj_h16_p4_d8.safetensors"),
            str(ONNX / "torch_dynamo_lstm_proj_h16_p4_d8.onnx"),
        ],
    ]


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _widest(text: str) -> int:
    """Columns on screen: colour codes take none."""
    return max((len(ANSI.sub("", line)) for line in text.splitlines()), default=0)


def test_readme_examples_fit_an_80_column_terminal(tmp_path: Path) -> None:
    for args in readme_examples(tmp_path):
        if "markdown" in args:
            continue  # Markdown is for pasting, never fitted (a table row must stay one line)
        on_terminal = run_main(args, stdout_tty=True, stderr_tty=True, env={"COLUMNS": "80"})
        assert on_terminal.code in (0, 1), on_terminal.stderr
        assert _widest(on_terminal.stdout) <= 80, (args, on_terminal.stdout)
        assert _widest(on_terminal.stderr) <= 80, (args, on_terminal.stderr)
        piped = run_main(args)
        assert piped.code == on_terminal.code
        # Fitting only moves text: every number of the full-width output is there, whole.
        assert set(NUMBER.findall(piped.stdout)) <= set(NUMBER.findall(on_terminal.stdout))


def test_pipes_and_files_keep_full_width(tmp_path: Path) -> None:
    explain = ["explain", str(FIXTURES / "keras2/gru_u8_d4_reset_after.h5")]
    piped = run_main(explain)
    assert _widest(piped.stdout) > 120  # the explain table is wide
    out = tmp_path / "explain.txt"
    assert run_main([*explain, "-o", str(out)], stdout_tty=True, env={"COLUMNS": "80"}).code == 0
    assert out.read_text().rstrip("\n") == piped.stdout.rstrip("\n")
    honoured = run_main(explain, env={"COLUMNS": "80"})  # set explicitly: honoured in a pipe
    assert _widest(honoured.stdout) <= 80


@pytest.mark.parametrize("columns", [40, 60, 100])
def test_no_number_is_ever_split(tmp_path: Path, columns: int) -> None:
    """Every number of the full-width output is there, whole, unless its column was left out
    to fit, which the output says; and no number appears that was not there (a split one)."""
    for args in readme_examples(tmp_path):
        wide = run_main(args).stdout
        narrow = ANSI.sub("", run_main(args, stdout_tty=True, env={"COLUMNS": str(columns)}).stdout)
        left_out = _left_out(narrow, columns)
        dropped = {
            number
            for table in simple_tables(wide)
            for row in table
            for header, cell in row.items()
            if header in left_out
            for number in NUMBER.findall(cell)
        }
        assert set(NUMBER.findall(wide)) - dropped <= set(NUMBER.findall(narrow)), args
        assert set(NUMBER.findall(narrow)) - {str(columns)} <= set(NUMBER.findall(wide)), args


def _left_out(text: str, columns: int) -> set[str]:
    """The columns a narrow table says it left out: `(share, output shape left out to fit 40
    columns)`."""
    said = re.findall(rf"\(([^()]*) left out to fit {columns} columns\)", " ".join(text.split()))
    return {name.strip() for line in said for name in line.split(",")}


def test_an_unreadable_file_error_moves_under_its_row(tmp_path: Path) -> None:
    models = _models(tmp_path)
    (models / "junk.h5").write_bytes(b"not a model at all, but named like one" * 4)
    env = {"COLUMNS": "80", "NO_COLOR": "1"}
    result = run_main([models.name], stdout_tty=True, env=env)
    assert result.code == 2
    assert _widest(result.stdout) <= 80
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("junk.h5"))
    assert lines[row].split()[-1] == "error"
    assert lines[row + 1].strip().startswith("checks: error: not a model file")
    assert lines[0] == "files under models/"


def test_summary_paths_are_shortened_only_on_a_terminal(tmp_path: Path) -> None:
    models = _models(tmp_path)
    piped = run_main([str(models)]).stdout
    assert f"{models}/lstm_u16_d8.h5" in piped and "files under" not in piped
    wide_terminal = run_main([str(models)], stdout_tty=True, env={"COLUMNS": "200"}).stdout
    assert "\nlstm_u16_d8.h5 " in wide_terminal
