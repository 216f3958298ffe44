"""The one renderer: every table, number format and JSON layout lives in this package.

- `text`: numbers, byte sizes, shapes, share bars, colour
- `blocks`: headings / tables / lines written as a terminal table or as Markdown
- `table`: the table writer (tabulate's "simple" and "github" layouts) and display width
- `report`, `csv_rows`, `summary`: a file's report, CSV rows, the many-files summary
- `gates`, `formula`, `explain`: the gate and check verdicts and the two explanatory commands
- `svg`, `html`: cell diagrams and the self-contained HTML page
- `compare`: an export audited against its source, pair by pair
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspector.render.blocks import Flavour
    from inspector.render.compare import render_compare, render_compare_json
    from inspector.render.csv_rows import render_csv
    from inspector.render.explain import render_explain, render_explain_json
    from inspector.render.formula import render_formula, render_formula_json
    from inspector.render.gates import check_messages, gate_messages
    from inspector.render.report import render_json
    from inspector.render.summary import render_summary
    from inspector.render.text import PLAIN, Style, progress_line
    from inspector.render.view import LayerView
    from inspector.report.analysis import Report

# Each command needs one or two of these modules: load them on first use, so that a report
# does not pay for importing the comparison, explanation and formula renderers.
_HOME = {
    "Flavour": "blocks",
    "render_compare": "compare",
    "render_compare_json": "compare",
    "render_csv": "csv_rows",
    "render_explain": "explain",
    "render_explain_json": "explain",
    "render_formula": "formula",
    "render_formula_json": "formula",
    "check_messages": "gates",
    "gate_messages": "gates",
    "LayerView": "view",
    "render_json": "report",
    "render_summary": "summary",
    "PLAIN": "text",
    "Style": "text",
    "progress_line": "text",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'inspector.render' has no attribute '{name}'")
    return getattr(importlib.import_module(f"inspector.render.{home}"), name)


def render_reports(
    reports: Sequence[Report], flavour: Flavour, view: LayerView, style: Style | None = None
) -> str:
    from inspector.render.blocks import Flavour, write
    from inspector.render.report import report_blocks
    from inspector.render.text import PLAIN, escaped

    reports = escaped(reports)
    separator = "\n\n---\n\n" if flavour is Flavour.MARKDOWN else "\n\n"
    chosen = PLAIN if style is None else style
    return separator.join(
        write(report_blocks(r, view, flavour, chosen), flavour, chosen.width) for r in reports
    )


__all__ = [
    "PLAIN",
    "Flavour",
    "LayerView",
    "Style",
    "check_messages",
    "gate_messages",
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
