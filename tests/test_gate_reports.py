"""Gate results inside every report (issue 13): the JSON `gates` key, the table / Markdown gate
section, the CSV column, the one-row-per-file summary for several files, `--quiet`, and
`--max-file-size` against the file's size on disk. Limits come from the fixture manifests (the
counts Keras recorded) and from the filesystem, never from our own formula."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, framework_total, manifest_entries, run_main
from inspector.cli.app import app
from inspector.report.gates import GATES

runner = CliRunner()
TRUTH = {e["file"]: e for e in manifest_entries("keras-h5")}
LSTM = "keras2/lstm_u16_d8.h5"
ADAM = "keras2/trained_adam.h5"  # optimizer state: the file is far larger than its weights
SMALL = ["keras2/simplernn_u1_f1.h5", "keras2/simplernn_u2_f1.h5", "keras2/simplernn_u1_f3.h5"]


def run(*args: str):
    return runner.invoke(app, list(args))


def test_json_gates_hold_each_limit_the_measured_value_and_the_verdict() -> None:
    truth = TRUTH[LSTM]
    total, size = truth["total_params"], truth["weights_bytes"]
    heaviest = max(truth["layers"], key=lambda layer: layer["params"])
    result = run(
        str(FIXTURES / LSTM),
        "--format",
        "json",
        "--max-params",
        str(total - 1),
        "--max-size",
        str(size),
        "--max-layer-params",
        str(heaviest["params"]),
    )
    assert result.exit_code == 1
    gates = {gate["limit"]: gate for gate in json.loads(result.stdout)["gates"]}
    assert list(gates) == ["--max-params", "--max-size", "--max-layer-params"]  # GATES order
    assert gates["--max-params"] == {
        "limit": "--max-params",
        "unit": "params",
        "allowed": total - 1,
        "measured": total,
        "layer": None,
        "passed": False,
        "over": [{"layer": None, "measured": total, "note": None}],
    }
    assert gates["--max-size"]["measured"] == size and gates["--max-size"]["passed"] is True
    layer_gate = gates["--max-layer-params"]
    assert (layer_gate["measured"], layer_gate["layer"]) == (heaviest["params"], heaviest["name"])
    assert layer_gate["passed"] is True and layer_gate["over"] == []


def test_no_limit_no_gates_but_the_key_is_there() -> None:
    report = json.loads(run(str(FIXTURES / LSTM), "--format", "json").stdout)
    assert report["gates"] == []
    assert report["file_bytes"] == (FIXTURES / LSTM).stat().st_size


def test_max_file_size_counts_the_bytes_on_disk_optimizer_state_included() -> None:
    on_disk = (FIXTURES / ADAM).stat().st_size
    weights = TRUTH[ADAM]["weights_bytes"]
    assert weights < on_disk  # the optimizer state is in the file, not in the weights
    path = str(FIXTURES / ADAM)
    assert run(path, "--max-file-size", str(on_disk), "--max-size", str(weights)).exit_code == 0
    result = run(path, "--max-file-size", str(weights), "--format", "json")
    assert result.exit_code == 1
    (gate,) = json.loads(result.stdout)["gates"]
    assert (gate["limit"], gate["unit"], gate["measured"]) == ("--max-file-size", "bytes", on_disk)
    assert f"the file takes {on_disk:,} bytes" in result.stderr
    assert f"{on_disk - weights:,} bytes over the limit" in result.stderr


def test_markdown_report_file_shows_the_failed_gate(tmp_path: Path) -> None:
    """The artifact a CI job posts on a pull request is red when the job is."""
    total = TRUTH[LSTM]["total_params"]
    out = tmp_path / "report.md"
    result = run(
        str(FIXTURES / LSTM), "--max-params", str(total - 1), "--format", "markdown", "-o", str(out)
    )
    assert result.exit_code == 1
    text = out.read_text()
    assert "#### Gates" in text
    row = next(line for line in text.splitlines() if line.startswith("| --max-params"))
    assert f"{total:,}" in row and "FAIL" in row
    assert f"- --max-params {total - 1:,}: the model has {total:,} params, 1 over" in text


def test_markdown_summary_of_a_directory_shows_each_file_verdict(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in SMALL:
        shutil.copy(FIXTURES / name, models / Path(name).name)
    out = tmp_path / "report.md"
    result = run(str(models), "--max-params", "4", "--format", "markdown", "-o", str(out))
    assert result.exit_code == 1
    text = out.read_text()
    for name in SMALL:
        row = next(line for line in text.splitlines() if Path(name).name in line)
        verdict = "FAIL --max-params" if TRUTH[name]["total_params"] > 4 else "pass"
        assert row.rstrip(" |").endswith(verdict), row
    assert "Gate failures" in text


def test_several_files_end_with_one_row_per_file() -> None:
    result = run(*(str(FIXTURES / name) for name in SMALL), "--max-params", "4")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    header = max(i for i, line in enumerate(lines) if line.split()[:2] == ["file", "format"])
    rows = lines[header + 2 : header + 2 + len(SMALL)]
    for name, row in zip(SMALL, rows, strict=True):
        assert row.startswith(str(FIXTURES / name))
        assert f" {TRUTH[name]['total_params']:,} " in row
        assert row.rstrip().endswith(
            "FAIL --max-params" if TRUTH[name]["total_params"] > 4 else "pass"
        )
    assert lines[header + 2 + len(SMALL)].startswith(f"total: {len(SMALL)} files")


def test_csv_rows_carry_their_file_verdict() -> None:
    result = run(*(str(FIXTURES / name) for name in SMALL), "--max-params", "4", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["file"] for row in rows} == {str(FIXTURES / name) for name in SMALL}
    for row in rows:
        name = next(n for n in SMALL if row["file"].endswith(n))
        expected = "fail: --max-params" if TRUTH[name]["total_params"] > 4 else "pass"
        assert row["gates"] == expected
    plain = run(str(FIXTURES / LSTM), "--format", "csv")
    assert {row["gates"] for row in csv.DictReader(io.StringIO(plain.stdout))} == {""}


@pytest.mark.parametrize("output_format", ["table", "json", "markdown", "csv"])
def test_quiet_prints_only_failures(output_format: str) -> None:
    files = [str(FIXTURES / name) for name in SMALL]
    passing = run(*files, "--quiet", "--format", output_format)
    assert (passing.exit_code, passing.stdout, passing.stderr) == (0, "", "")
    failing = run(*files, "-q", "--max-params", "4", "--format", output_format)
    assert failing.exit_code == 1 and failing.stdout == ""
    over = [name for name in SMALL if TRUTH[name]["total_params"] > 4]
    lines = failing.stderr.strip().splitlines()
    assert len(lines) == len(over)
    assert all(line.startswith("rnninspect: gate failed: ") for line in lines)


def test_quiet_still_writes_the_output_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run(str(FIXTURES / LSTM), "-q", "--format", "json", "-o", str(out))
    assert (result.exit_code, result.stdout) == (0, "")
    assert json.loads(out.read_text())["total_params"] == TRUTH[LSTM]["total_params"]


def test_every_gate_has_its_option_on_the_command_line() -> None:
    """GATES is the one list: a limit there without an option (or the reverse) is a bug."""
    help_text = run("inspect", "--help").stdout
    for gate in GATES:
        assert gate.option in help_text, gate.option


def test_percentages_over_a_limit_have_thousands_separators() -> None:
    """The embedding fixture holds 378 parameters (tf_keras's count): 358 over a limit of 20
    is +1,790.0%, written as every other number is."""
    total = framework_total("keras2/embedding_lstm_dense.h5")
    ran = run_main([str(FIXTURES / "keras2/embedding_lstm_dense.h5"), "--max-params", "20"])
    assert ran.code == 1
    excess = 100 * (total - 20) / 20
    assert f"(+{excess:,.1f}%)" in ran.stderr and excess > 1000
