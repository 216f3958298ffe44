"""Output formats through the command line: CSV, Markdown, --output, layer views, colour."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries, run_main, simple_tables
from inspector.cli.app import app

runner = CliRunner()
TRUTH = {e["file"]: e for e in manifest_entries("keras-h5")}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FILES = ["keras2/embedding_lstm_dense.h5", "keras2/bidir_gru_concat.h5", "keras2/dropout_lstm.h5"]


def run(*args: str):
    return runner.invoke(app, list(args))


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every GitHub-flavoured table in `text`, as rows of {header: cell}."""
    tables: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if (
            lines[i].startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|[-|: ]+\|$", lines[i + 1])
        ):
            headers = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip("|").split("|")]
                assert len(cells) == len(headers), lines[i]
                rows.append(dict(zip(headers, cells, strict=True)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


@pytest.mark.parametrize("file", FILES)
def test_csv_has_one_row_per_layer_with_the_file_name(file: str) -> None:
    result = run(str(FIXTURES / file), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    truth = TRUTH[file]
    assert [(r["layer"], number(r["params"])) for r in rows] == [
        (layer["name"], layer["params"]) for layer in truth["layers"]
    ]
    assert {r["file"] for r in rows} == {str(FIXTURES / file)}
    assert sum(number(r["params"]) for r in rows) == truth["total_params"]
    recurrent = {layer["name"]: layer for layer in truth["recurrent_layers"]}
    for row in rows:
        assert (row["recurrent"] == "true") == (row["layer"] in recurrent)
        if row["layer"] in recurrent:
            assert row["check"] == "ok"
            assert number(row["units"]) == recurrent[row["layer"]]["units"]
            assert number(row["expected_params"]) == recurrent[row["layer"]]["params"]


def test_csv_of_several_files_stacks_under_one_header() -> None:
    result = run("--format", "csv", *(str(FIXTURES / f) for f in FILES))
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    for file in FILES:
        mine = [r for r in rows if r["file"] == str(FIXTURES / file)]
        assert sum(number(r["params"]) for r in mine) == TRUTH[file]["total_params"]
    assert result.stdout.count("file,format,layer") == 1


@pytest.mark.parametrize("file", FILES)
def test_markdown_tables_hold_the_layers_and_tensors(file: str) -> None:
    result = run(str(FIXTURES / file), "--format", "markdown", "--all-layers")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"### `{FIXTURES / file}`")
    layers, tensors, compute = markdown_tables(result.stdout)
    truth = TRUTH[file]
    assert [r["layer"] for r in compute] == [r["name"] for r in truth["recurrent_layers"]]
    assert [(r["layer"], number(r["params"])) for r in layers] == [
        (layer["name"], layer["params"]) for layer in truth["layers"]
    ]
    for recurrent in truth["recurrent_layers"]:
        mine = [r for r in tensors if r["layer"] == recurrent["name"]]
        assert [
            json.loads(r["shape"].replace("(", "[").replace(",)", "]").replace(")", "]"))
            for r in mine
        ] == [w["shape"] for w in recurrent["weights"]]
        assert sum(number(r["params"]) for r in mine) == recurrent["params"]
    total = f"- Total params: {truth['total_params']:,} ("
    assert any(line.startswith(total) for line in result.stdout.splitlines())
    assert not ANSI.search(result.stdout)


def test_output_file_gets_what_stdout_would(tmp_path: Path) -> None:
    file = str(FIXTURES / FILES[0])
    for fmt in ("table", "json", "csv", "markdown"):
        target = tmp_path / f"report.{fmt}"
        written = run(file, "--format", fmt, "--output", str(target))
        assert written.exit_code == 0
        assert written.stdout == ""
        assert target.read_text(encoding="utf-8") == run(file, "--format", fmt).stdout
    assert (
        json.loads((tmp_path / "report.json").read_text())["total_params"]
        == TRUTH[FILES[0]]["total_params"]
    )


def test_output_to_an_impossible_place_is_a_usage_error(tmp_path: Path) -> None:
    result = run(str(FIXTURES / FILES[0]), "--output", str(tmp_path / "missing" / "r.md"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rnninspect: error: --output")


def _layer_rows(stdout: str) -> dict[str, int]:
    """The first table of the text output: layer name -> params."""
    return {row["layer"]: number(row["params"]) for row in simple_tables(stdout)[0]}


def test_layer_views_choose_rows_and_keep_totals() -> None:
    file = "keras2/dropout_lstm.h5"
    truth = TRUTH[file]
    everything = {layer["name"]: layer["params"] for layer in truth["layers"]}
    weighted = {name: p for name, p in everything.items() if p}
    assert weighted != everything  # the fixture has a layer without parameters
    default = run(str(FIXTURES / file))
    assert _layer_rows(default.stdout) == everything  # every layer's count, by default
    assert _layer_rows(run(str(FIXTURES / file), "--all-layers").stdout) == everything
    compact = run(str(FIXTURES / file), "--weighted-only")
    assert _layer_rows(compact.stdout) == weighted
    assert "drop --weighted-only to list them" in compact.stdout
    only = run(str(FIXTURES / file), "--recurrent-only")
    recurrent = {layer["name"] for layer in truth["recurrent_layers"]}
    assert set(_layer_rows(only.stdout)) == recurrent
    total_line = f"Total params: {truth['total_params']:,} "
    for result in (default, compact, only):
        assert any(line.startswith(total_line) for line in result.stdout.splitlines())
    for pair in (("--all-layers", "--recurrent-only"), ("--weighted-only", "--recurrent-only")):
        assert run(str(FIXTURES / file), *pair).exit_code == 2


def test_share_column_has_a_bar_proportional_to_the_share() -> None:
    file = "keras2/embedding_lstm_dense.h5"
    rows = {row["layer"]: row for row in simple_tables(run(str(FIXTURES / file)).stdout)[0]}
    truth = TRUTH[file]
    for layer in truth["layers"]:
        row = rows[layer["name"]]
        fraction = layer["params"] / truth["total_params"]
        assert row["share"] == f"{100 * fraction:.1f}%"
        bar = row["share bar"]
        width = bar.count("█") + (0.5 if bar and bar[-1] != "█" else 0)
        assert abs(width - 10 * fraction) <= 1


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    file = str(FIXTURES / "keras2/embedding_lstm_dense.h5")
    wide = {"NO_COLOR": "", "COLUMNS": "300"}  # wide enough that nothing is fitted
    coloured = run_main([file], stdout_tty=True, env=wide)
    assert coloured.code == 0, coloured.stderr
    assert ANSI.search(coloured.stdout)
    piped = run_main([file], env=wide)
    assert not ANSI.search(piped.stdout)
    assert ANSI.sub("", coloured.stdout) == piped.stdout
    assert not ANSI.search(run_main([file], stdout_tty=True, env={"NO_COLOR": "1"}).stdout)
    markdown = run_main([file, "--format", "markdown"], stdout_tty=True, env=wide)
    assert not ANSI.search(markdown.stdout)
    target = tmp_path / "out.txt"
    assert run_main([file, "--output", str(target)], stdout_tty=True, env=wide).code == 0
    assert not ANSI.search(target.read_text(encoding="utf-8"))


@pytest.mark.parametrize("output_format", ["json", "csv", "table", "markdown"])
def test_no_output_imports_tabulate(output_format: str) -> None:
    """tabulate reads its own version through importlib.metadata when imported (issue 16):
    tables are written by render/table.py instead."""
    model = FIXTURES / "keras2/embedding_lstm_dense.h5"
    code = (
        "import sys; from inspector.cli.app import main; "
        f"sys.argv = ['rnninspect', {str(model)!r}, '-f', {output_format!r}, '--timeout', '0']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('tabulate' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.split() == ["False"]
