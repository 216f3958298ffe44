"""render/table.py writes what tabulate 0.10 wrote before it (issue 16: importing tabulate cost
~20 ms of start-up): byte for byte, over every table of every report of every fixture and over
seeded random tables. Wide characters and colour, where the writer counts columns as a terminal
shows them and tabulate (without wcwidth) counts characters, are checked against the rule.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from unittest import mock

import pytest
import tabulate

from conftest import FIXTURES, REALWORLD, ROOT, manifest_entries
from inspector import inspect_file
from inspector.errors import InspectorError
from inspector.render import blocks, fit, render_reports, render_summary
from inspector.render.blocks import Flavour
from inspector.render.report import LayerView
from inspector.render.table import GITHUB, SIMPLE, Ruling, display_width, write_table
from inspector.render.text import Style
from inspector.report.batch import Outcome

SUFFIXES = (".onnx", ".h5", ".keras", ".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".tflite")
REFUSED = {
    FIXTURES / e["file"]
    for e in manifest_entries("torch-zip", "torch-legacy-pickle")
    if e.get("refuse")
}
MODEL_FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in SUFFIXES and p not in REFUSED)
SAVEDMODELS = sorted(p.parent for p in FIXTURES.rglob("saved_model.pb"))
REAL_FILES = sorted(p for p in (REALWORLD / "files").glob("*") if p.suffix in SUFFIXES)
FORMATS: dict[Ruling, str] = {SIMPLE: "simple", GITHUB: "github"}

TableArgs = tuple[tuple[str, ...], tuple[tuple[str, ...], ...], tuple[str, ...]]


def tabulated(table: TableArgs, ruling: Ruling, padding: int) -> str:
    """The table as rnninspect had tabulate write it (render/blocks.py before issue 16)."""
    headers, rows, align = table
    saved = tabulate.MIN_PADDING
    tabulate.MIN_PADDING = padding
    try:
        return tabulate.tabulate(
            [list(row) for row in rows],
            headers=list(headers),
            colalign=align,
            tablefmt=FORMATS[ruling],
            disable_numparse=True,
        )
    finally:
        tabulate.MIN_PADDING = saved


def assert_as_tabulate(tables: Sequence[TableArgs]) -> None:
    for table in tables:
        for ruling in (SIMPLE, GITHUB):
            for padding in (2, 0):
                expected = tabulated(table, ruling, padding)
                assert write_table(*table, ruling, padding) == expected, (table, ruling, padding)


RECORDS_AT_80: list[tuple[str, ...]] = []  # headers of tables written as records at 80 columns


@pytest.fixture(scope="module")
def fixture_tables() -> list[TableArgs]:
    """Every table the renderer writes for every fixture and real file (where present): each
    report in text and Markdown, every layer view, plain and coloured, whole and fitted to a
    narrow terminal (which redraws tables without header padding and with notes cut), and the
    many-files summary."""
    reports, outcomes = [], []
    for path in [*MODEL_FILES, *SAVEDMODELS, *REAL_FILES]:
        try:
            report = inspect_file(path)
        except InspectorError as error:
            outcomes.append(Outcome(str(path), error=str(error)))
            continue
        reports.append(report)
        outcomes.append(Outcome(str(path), report))
    seen: dict[TableArgs, None] = {}
    drawn: set[tuple[Ruling, int]] = set()
    real_write = blocks.write_table

    def record(
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        align: Sequence[str],
        ruling: Ruling = SIMPLE,
        padding: int = 2,
    ) -> str:
        seen[(tuple(headers), tuple(tuple(row) for row in rows), tuple(align))] = None
        drawn.add((ruling, padding))
        return real_write(headers, rows, align, ruling, padding)

    real_records = fit._records

    def records(table: fit.Shape, width: int) -> str:
        if width == 80:
            RECORDS_AT_80.append(table.headers)
        return real_records(table, width)

    styles = (Style(), Style(colour=True, width=60))
    with (
        mock.patch.object(blocks, "write_table", record),
        mock.patch.object(fit, "write_table", record),
    ):
        for flavour in Flavour:
            for style in styles:
                render_summary(outcomes, flavour, style)
                render_reports(reports, flavour, LayerView.ALL, style)
        # The other views draw subsets of the same rows: once each, plain (the walk above has
        # every flavour and style; this keeps the default suite near its budget).
        for view in (LayerView.WEIGHTED, LayerView.RECURRENT):
            render_reports(reports, Flavour.TEXT, view, styles[0])
    with mock.patch.object(fit, "_records", records):  # the width issue 25 asks tables to keep
        terminal = Style(width=80)
        render_summary(outcomes, Flavour.TEXT, terminal)
        render_reports(reports, Flavour.TEXT, LayerView.ALL, terminal)
    assert len(reports) > 200  # the walk above must not silently find nothing
    # Markdown, the terminal, and tables fitted to the narrow terminal without header padding.
    assert drawn == {(GITHUB, 2), (SIMPLE, 2), (SIMPLE, 0)}
    return list(seen)


def test_every_fixture_table_is_written_as_tabulate_wrote_it(
    fixture_tables: list[TableArgs],
) -> None:
    assert len(fixture_tables) > 500
    assert_as_tabulate(fixture_tables)


def test_every_fixture_table_stays_a_table_at_80_columns(
    fixture_tables: list[TableArgs],
) -> None:
    """Narrowed (render/fit.py: short headers, no decoration, one value said once, notes under
    the row, names wrapped, low-value columns left out), never one record per row: every
    report and summary of every fixture and real file on an 80-column terminal."""
    assert fixture_tables
    assert RECORDS_AT_80 == []


def test_the_fixture_tables_hold_colour_and_empty_cells(
    fixture_tables: list[TableArgs],
) -> None:
    """The comparison above reaches the cases where the writer could differ."""
    cells = [cell for _, rows, _ in fixture_tables for row in rows for cell in row]
    assert any("\x1b[" in cell for cell in cells)  # coloured verdicts and bars
    assert any(not cell for cell in cells)
    assert any(len(rows) == 1 for _, rows, _ in fixture_tables)
    assert {side for _, _, align in fixture_tables for side in align} == {"left", "right"}


def _random_cell(rng: random.Random) -> str:
    text = "".join(rng.choice("abc XYZ-1,.:()_") for _ in range(rng.choice((0, 0, 1, 2, 5, 13))))
    if rng.random() < 0.1:
        text = " " * rng.randint(1, 3) + text + " " * rng.randint(0, 2)
    if rng.random() < 0.05:
        text = f"\x1b[31m{text}\x1b[0m"
    return text


def test_random_tables_are_written_as_tabulate_writes_them() -> None:
    rng = random.Random(16)
    tables: list[TableArgs] = []
    for _ in range(400):
        columns = rng.randint(0, 5)
        headers = tuple(_random_cell(rng) for _ in range(columns)) if rng.random() < 0.9 else ()
        rows = tuple(
            tuple(_random_cell(rng) for _ in range(columns))
            for _ in range(rng.choice((0, 1, 2, 3, 7)))
        )
        tables.append((headers, rows, tuple(rng.choice(("left", "right")) for _ in range(columns))))
    assert_as_tabulate(tables)


def test_wide_combining_and_coloured_cells_line_up() -> None:
    table = write_table(
        ("name", "n"),
        (("漢字", "1"), ("\x1b[31mred\x1b[0m", "22"), ("e\u0301x", "333")),
        ("left", "right"),
    )
    assert table.split("\n") == [
        "name      n",
        "------  ---",
        "漢字      1",
        "\x1b[31mred\x1b[0m      22",
        "e\u0301x      333",
    ]
    assert {display_width(line) for line in table.split("\n")} == {11}


def test_display_width() -> None:
    assert display_width("abc") == 3
    assert display_width("漢字") == 4
    assert display_width("ＡＢ") == 4  # fullwidth
    assert display_width("e\u0301") == 1  # a combining accent
    assert display_width("\x1b[1;36m█▏\x1b[0m") == 2  # the share bar: colour, ambiguous width
    assert display_width("") == 0


def test_a_line_break_in_a_cell_stays_in_its_row() -> None:
    """tabulate would split the cell into lines of their own; a cell is one line here."""
    for ruling in (SIMPLE, GITHUB):
        table = write_table(("a", "b"), (("x\ny", "z\r"), ("w", "v")), ("left", "left"), ruling)
        assert len(table.split("\n")) == 4
        assert "x\\x0ay" in table


def test_cells_must_fit_the_columns() -> None:
    with pytest.raises(ValueError):
        write_table(("a", "b"), (("x",),), ("left", "left"))
    with pytest.raises(ValueError):
        write_table(("a",), (("x",),), ("left", "right"))
    with pytest.raises(ValueError):
        write_table(("a",), (("x",),), ("centre",))


def test_rendering_a_report_imports_neither_tabulate_nor_importlib_metadata() -> None:
    model = FIXTURES / "keras2/embedding_lstm_dense.h5"
    code = (
        "import sys\n"
        "import inspector.render.report\n"
        "from inspector import inspect_file\n"
        "from inspector.render import Flavour, LayerView, Style, render_reports\n"
        f"report = inspect_file({str(model)!r})\n"
        "for flavour in Flavour:\n"
        "    for style in (Style(), Style(colour=True, width=60)):\n"
        "        assert '---' in render_reports([report], flavour, LayerView.ALL, style)\n"
        "heavy = ('tabulate', 'importlib.metadata', 'wcwidth')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"
