"""`rnninspect DIR`: model files found by signature and extension, one summary row per file,
unreadable files listed with their error and exit code 2."""

from __future__ import annotations

import csv
import inspect
import io
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries, run_main
from inspector.cli import inspection
from inspector.cli.app import app
from inspector.cli.discover import is_candidate, model_files
from inspector.errors import InspectorError

runner = CliRunner()
TRUTH = {e["file"]: e for e in manifest_entries("keras-h5", "keras-v3")}
MODELS = {
    "lstm.h5": "keras2/lstm_u16_d8.h5",
    "sub/bidir.h5": "keras2/bidir_gru_concat.h5",
    "sub/deeper/stacked.keras": "keras2/stacked_lstm.keras",
    "renamed_model": "keras2/embedding_lstm_dense.h5",  # no extension: found by signature
    "weights.hdf5": "keras2/gru_u8_d4_reset_after.h5",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, source in MODELS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / source, tmp_path / name)
    (tmp_path / "junk.h5").write_text("not a model at all\n")
    (tmp_path / "notes.txt").write_text("a text file is not a model\n")
    shutil.make_archive(str(tmp_path / "bundle"), "zip", tmp_path / "sub")  # not a Keras archive
    (tmp_path / ".git").mkdir()
    shutil.copy(FIXTURES / "keras2/lstm_u16_d8.h5", tmp_path / ".git" / "hidden.h5")
    return tmp_path


def run(*args: str):
    return runner.invoke(app, list(args))


def table_rows(text: str) -> list[dict[str, str]]:
    """The Markdown summary table as rows of {header: cell}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    headers = [c.strip() for c in lines[0].strip("|").split("|")]
    return [
        dict(zip(headers, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def test_discovery_by_signature_and_extension(folder: Path) -> None:
    found = {path.relative_to(folder).as_posix() for path in model_files(folder)}
    assert found == {*MODELS, "junk.h5"}
    assert not is_candidate(folder / "bundle.zip")
    assert is_candidate(folder / "renamed_model")


def test_a_keras_archive_and_an_onnx_model_are_found_without_their_extension(
    tmp_path: Path,
) -> None:
    shutil.copy(FIXTURES / "keras2/lstm_u16_d8.keras", tmp_path / "archive")
    onnx = sorted((FIXTURES / "onnx").glob("*.onnx"))
    if onnx:
        shutil.copy(onnx[0], tmp_path / "graph")
    found = {path.name for path in model_files(tmp_path)}
    assert found == ({"archive", "graph"} if onnx else {"archive"})


def test_a_safetensors_state_dict_is_found_by_its_extension(tmp_path: Path) -> None:
    source = sorted((FIXTURES / "onnx").glob("*.safetensors"))[0]
    shutil.copy(source, tmp_path / source.name)
    (tmp_path / "notes.json").write_text("{}")
    assert [path.name for path in model_files(tmp_path)] == [source.name]
    result = run(str(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [report["format"] for report in json.loads(result.stdout)] == ["safetensors"]


def test_summary_rows_totals_and_exit_2_for_the_unreadable(folder: Path) -> None:
    result = run(str(folder), "--format", "markdown")
    assert result.exit_code == 2
    rows = table_rows(result.stdout)
    by_file = {Path(row["file"]).relative_to(folder).as_posix(): row for row in rows[:-1]}
    assert set(by_file) == {*MODELS, "junk.h5"}
    for name, source in MODELS.items():
        row, truth = by_file[name], TRUTH[source]
        assert int(row["params"].replace(",", "")) == truth["total_params"]
        assert int(row["recurrent"]) == len(truth["recurrent_layers"])
        assert row["checks"] == f"{len(truth['recurrent_layers'])} ok"
        assert row["format"] == truth["format"]
    assert by_file["junk.h5"]["checks"].startswith("error: not a model file")
    total = rows[-1]
    assert total["file"] == f"total: {len(rows) - 1} files, 1 unreadable"  # the rows it counts
    assert len(rows) - 1 == len(MODELS) + 1
    assert int(total["params"].replace(",", "")) == sum(
        TRUTH[source]["total_params"] for source in MODELS.values()
    )
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith(f"rnninspect: error: {folder / 'junk.h5'}: not a model file")


def test_text_summary_has_one_line_per_file_and_no_progress_off_a_terminal(folder: Path) -> None:
    result = run(str(folder))
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "format", "params", "size", "recurrent", "checks"]
    assert len(lines) == 2 + len(MODELS) + 1 + 1  # header, rule, files, junk, totals
    assert "\r" not in result.stderr and "[#" not in result.stderr


def test_json_for_a_directory_is_an_array_of_reports(folder: Path) -> None:
    result = run(str(folder), "--format", "json")
    assert result.exit_code == 2
    reports = json.loads(result.stdout)
    got = {Path(r["file"]).relative_to(folder).as_posix(): r["total_params"] for r in reports}
    assert got == {name: TRUTH[source]["total_params"] for name, source in MODELS.items()}
    assert "junk.h5" in result.stderr


def test_csv_for_a_directory_lists_every_layer_of_every_file(folder: Path) -> None:
    result = run(str(folder), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    for name, source in MODELS.items():
        mine = [r for r in rows if r["file"] == str(folder / name)]
        assert len(mine) == len(TRUTH[source]["layers"])


def test_a_clean_directory_passes_and_gates_apply_per_file(tmp_path: Path) -> None:
    sources = ["keras2/simplernn_u1_f1.h5", "keras2/simplernn_u2_f1.h5"]
    for source in sources:
        shutil.copy(FIXTURES / source, tmp_path / Path(source).name)
    assert run(str(tmp_path)).exit_code == 0
    gated = run(str(tmp_path), "--max-params", "5", "--format", "json")
    assert gated.exit_code == 1
    assert len(json.loads(gated.stdout)) == 2
    (verdict,) = gated.stderr.strip().splitlines()
    assert "simplernn_u2_f1.h5: --max-params 5: the model has 8 params" in verdict


def test_an_empty_directory_is_an_error_and_nothing_else(tmp_path: Path) -> None:
    """Its one line on stderr, exit 2, and no table of nothing on stdout (JSON keeps its
    contract: always an array). Beside a folder with a model, it is not a row: the summary
    counts the files it lists."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for fmt, expected in (("table", ""), ("markdown", ""), ("csv", ""), ("json", "[]\n")):
        result = run(str(empty), "--format", fmt)
        assert result.exit_code == 2, fmt
        assert result.stdout == expected, fmt
        (line,) = result.stderr.splitlines()
        assert "empty: directory holds no model files" in line
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(FIXTURES / "keras2/lstm_u16_d8.h5", models)
    both = run(str(empty), str(models), "--format", "markdown")
    assert both.exit_code == 2 and "holds no model files" in both.stderr
    rows = table_rows(both.stdout)
    assert [row["file"] for row in rows] == [str(models / "lstm_u16_d8.h5"), "total: 1 file"]


def test_progress_bar_on_a_terminal_only_for_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with stderr a (fake) terminal and the threshold lowered to three files."""
    monkeypatch.setattr("inspector.cli.inspection.PROGRESS_MIN_FILES", 3)
    many, few = tmp_path / "many", tmp_path / "few"
    many.mkdir()
    few.mkdir()
    for index in range(3):
        shutil.copy(FIXTURES / "keras2/simplernn_u1_f1.h5", many / f"m{index:02}.h5")
    shutil.copy(FIXTURES / "keras2/simplernn_u1_f1.h5", few / "one.h5")
    progress = run_main([str(many)], stderr_tty=True)
    assert progress.code == 0, progress.stderr
    frames = progress.stderr.split("\r\x1b[K")
    assert frames[0] == "" and frames[-1] == ""  # the bar is wiped once the scan is done
    for index, frame in enumerate(frames[1:-1]):  # before each file: count, percent, its name
        assert f"] {index}/3 {100 * index // 3:3d}% " in frame
        assert frame.endswith(f"/m{index:02}.h5")  # the path, cut from the left to fit
    assert run_main([str(few)], stderr_tty=True).stderr == ""
    assert run_main([str(many)]).stderr == ""  # not on a pipe


def test_progress_bar_is_erased_on_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inspector.cli.inspection.PROGRESS_MIN_FILES", 3)
    for index in range(3):
        shutil.copy(FIXTURES / "keras2/simplernn_u1_f1.h5", tmp_path / f"m{index:02}.h5")
    real = inspection._inspect_each

    def interrupted(
        files: list[Path], reader: str | None, limits: object, **options: object
    ) -> Iterator[object]:
        read = real(files, reader, limits, **options)  # type: ignore[arg-type]
        yield next(read)
        read.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(inspection, "_inspect_each", interrupted)
    result = run_main([str(tmp_path)], stderr_tty=True)
    assert result.code == 130
    assert result.stderr.endswith("\r\x1b[K") and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_progress_line_never_wraps() -> None:
    from inspector.render.text import progress_line

    long_name = "/deep/" * 40 + "model.h5"
    line = progress_line(7, 40, long_name, 60)
    assert len(line) <= 60
    assert line.endswith("model.h5") and " 7/40  17% ..." in line


def test_a_tree_nested_deeper_than_the_recursion_limit_is_scanned(tmp_path: Path) -> None:
    """Walking a directory costs no stack per level (os.walk recursed: a tree nested deeper
    than the recursion limit ended in an internal error). The limit is lowered to 150 frames
    above the test's own instead of building 1,000 levels, which no recursive `rmtree` (pytest
    cleaning its temporary directories) could remove."""
    deepest = tmp_path
    for _ in range(300):
        deepest = deepest / "d"
    deepest.mkdir(parents=True)
    shutil.copy(FIXTURES / "keras2/lstm_u16_d8.h5", deepest / "model.h5")
    here = len(inspect.stack(0))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(here + 150)
    try:
        found = model_files(tmp_path)
    finally:
        sys.setrecursionlimit(limit)
    assert found == [deepest / "model.h5"]


# --- issue 23: a file's part of the output is written as it arrives -----------------------------


def _assembled(outcomes: list, output_format: str, scanned: bool, style: object) -> str | None:
    from inspector.render.assembly import Assembly
    from inspector.render.view import LayerView

    assembly = Assembly(
        output_format, LayerView.ALL, style, scanned=scanned, several=len(outcomes) > 1
    )
    parts = [assembly.add(outcome) for outcome in outcomes] + [assembly.end()]
    written = [part for part in parts if part is not None]
    joiner = "" if output_format == "html" else "\n"  # the HTML's only whitespace between tags
    return joiner.join(written) if written else None


@pytest.mark.parametrize("scanned", [True, False])
def test_each_file_s_part_is_what_rendering_every_report_at_the_end_gives(
    folder: Path, scanned: bool
) -> None:
    """The command writes each file's part as its outcome arrives and lets the report go: the
    text it writes is, byte for byte, what rendering every report at the end gave, in every
    format, with unreadable files among the readable ones, for one file and for many."""
    from inspector import inspect_file
    from inspector.render import Flavour, LayerView, render_csv, render_json, render_reports
    from inspector.render.html import render_html
    from inspector.render.summary import render_summary
    from inspector.render.text import Style
    from inspector.report.batch import Outcome

    style = Style(colour=True)
    files = sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix != ".txt")
    outcomes = []
    for path in files:
        try:
            outcomes.append(Outcome(str(path), report=inspect_file(path)))
        except InspectorError as failed:  # junk.h5: its outcome is an error
            outcomes.append(Outcome(str(path), error=str(failed)))
    for chosen in (outcomes, outcomes[:1], [o for o in outcomes if o.report is None]):
        reports = [outcome.report for outcome in chosen if outcome.report is not None]
        several = len(chosen) > 1
        expected = {
            "json": render_json(reports, as_array=True)
            if scanned
            else (render_json(reports, as_array=several) if reports else None),
            "csv": render_csv(reports, LayerView.ALL) if reports or (scanned and chosen) else None,
            # A directory's page, or several files', lists every file, unreadable ones too.
            "html": render_html(chosen, index=scanned or several) if reports or scanned else None,
        }
        for name, flavour in (("table", Flavour.TEXT), ("markdown", Flavour.MARKDOWN)):
            summary = render_summary(chosen, flavour, style, LayerView.ALL)
            separator = "\n\n---\n\n" if flavour is Flavour.MARKDOWN else "\n\n"
            parts = [render_reports(reports, flavour, LayerView.ALL, style)] if reports else []
            expected[name] = (
                summary
                if scanned
                else separator.join([*parts, *([summary] if summary else [])])
                if several
                else (parts[0] if parts else None)
            )
        for output_format, text in expected.items():
            assert _assembled(chosen, output_format, scanned, style) == text, output_format
