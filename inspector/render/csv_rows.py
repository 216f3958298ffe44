"""CSV: one row per layer, the file name a column, so rows of many files stack into one sheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from inspector.render.report import LayerView, recurrent_rows, shown_layers
from inspector.render.text import escaped, spreadsheet_safe
from inspector.report.analysis import RecurrentCheck, Report

COLUMNS = (
    "file",
    "format",
    "layer",
    "type",
    "params",
    "trainable",
    "share",
    "recurrent",  # the layer is, or (a nested model) contains, a recurrent layer
    "cell",
    "units",
    "input_dim",
    "directions",
    "expected_params",
    "check",
    "gates",  # the file's gates: empty without limits, "pass", or "fail: " and the limits failed
    "shared_with",  # rows holding tensors this one reads too, counted there ("; "-separated)
)


def render_csv(reports: Sequence[Report], view: LayerView) -> str:
    lines = (csv_lines(report, view) for report in reports)
    return "\n".join([csv_header(), *(text for text in lines if text)])


def csv_header() -> str:
    return _written([COLUMNS])


def csv_lines(report: Report, view: LayerView) -> str:
    """One file's rows, without a final newline ("" for none): the rows of many files are
    written one file at a time under one header."""
    return _written(_rows(escaped(report), view))


def _written(rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().removesuffix("\n")


def _rows(report: Report, view: LayerView) -> list[list[object]]:
    checks = {check.layer.name: check for check in report.checks}
    total = report.totals.total
    gates = _gates(report)
    recurrent = recurrent_rows(report)
    rows = []
    for layer in shown_layers(report, view):
        check = checks.get(layer.name)
        rows.append(
            [
                spreadsheet_safe(report.model.path),
                report.model.format.value,
                spreadsheet_safe(layer.name),
                spreadsheet_safe(layer.type),
                layer.params,
                _flag(layer.trainable),
                f"{layer.params / total:.6f}" if total else "",
                _flag(layer.name in recurrent),
                *_recurrent_columns(check),
                gates,
                "; ".join(layer.shared_with),
            ]
        )
    return rows


def _recurrent_columns(check: RecurrentCheck | None) -> list[object]:
    if check is None:
        return ["", "", "", "", "", ""]
    layer = check.layer
    return [
        layer.cell.kind.value,
        _blank(layer.cell.units),
        _blank(layer.input_dim),
        layer.directions,
        _blank(check.expected),
        check.status.value,
    ]


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def _blank(value: int | None) -> object:
    return "" if value is None else value


def _gates(report: Report) -> str:
    if not report.gates:
        return ""
    failed = [gate.limit for gate in report.gates if not gate.passed]
    return "fail: " + " ".join(failed) if failed else "pass"
