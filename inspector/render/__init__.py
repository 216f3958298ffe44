"""The one renderer: every table, number format and JSON layout lives in this package.

- `text`: numbers, byte sizes, shapes, share bars, colour
- `blocks`: headings / tables / lines written as a terminal table or as Markdown (tabulate)
- `report`, `csv_rows`, `summary`: a file's report, CSV rows, the many-files summary
- `gates`, `formula`, `explain`: the gate verdicts and the two explanatory commands
- `compare`: an export audited against its source, pair by pair
"""

from __future__ import annotations

from collections.abc import Sequence

from inspector.analysis import Report
from inspector.render.blocks import Flavour, write
from inspector.render.compare import render_compare, render_compare_json
from inspector.render.csv_rows import render_csv
from inspector.render.explain import render_explain, render_explain_json
from inspector.render.formula import render_formula, render_formula_json
from inspector.render.gates import gate_message
from inspector.render.report import LayerView, render_json, report_blocks
from inspector.render.summary import render_summary
from inspector.render.text import PLAIN, Style, progress_line


def render_reports(
    reports: Sequence[Report], flavour: Flavour, view: LayerView, style: Style = PLAIN
) -> str:
    separator = "\n\n---\n\n" if flavour is Flavour.MARKDOWN else "\n\n"
    return separator.join(write(report_blocks(r, view, flavour, style), flavour) for r in reports)


__all__ = [
    "PLAIN",
    "Flavour",
    "LayerView",
    "Style",
    "gate_message",
    "progress_line",
    "render_compare",
    "render_compare_json",
    "render_csv",
    "render_explain",
    "render_explain_json",
    "render_formula",
    "render_formula_json",
    "render_json",
    "render_reports",
    "render_summary",
]
