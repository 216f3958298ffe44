"""Many files at once (`rnninspect DIR`): one summary row per file, then the totals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from inspector.model import Check
from inspector.render.blocks import Block, Flavour, Heading, Lines, Table, write
from inspector.render.gates import FAIL, PASS, gate_cell, gate_messages
from inspector.render.report import CHECK_COLOUR
from inspector.render.text import Style, count, human_bytes, paint, plural
from inspector.report.analysis import Report
from inspector.report.batch import Outcome

# Worst first, so a failing check is the first word of the cell.
_CHECK_ORDER = (Check.MISMATCH, Check.UNVERIFIED, Check.OK)
_HEADERS = ("file", "format", "params", "size", "recurrent", "checks", "gates")
_ALIGN = ("left", "left", "right", "right", "right", "left", "left")


def render_summary(outcomes: Sequence[Outcome], flavour: Flavour, style: Style) -> str:
    return write(summary_blocks(outcomes, style, flavour), flavour)


def summary_blocks(
    outcomes: Sequence[Outcome], style: Style, flavour: Flavour = Flavour.TEXT
) -> list[Block]:
    rows = [_row(outcome, style) for outcome in outcomes]
    reports = [o.report for o in outcomes if o.report is not None]
    checks: Counter[Check] = Counter()
    for outcome in outcomes:
        checks.update(outcome.checks)
    unreadable = sum(1 for o in outcomes if o.report is None and not o.directory)
    label = f"total: {plural(len(reports), 'file')}" + (
        f", {unreadable} unreadable" if unreadable else ""
    )
    rows.append(
        (
            label,
            "",
            count(sum(r.totals.total for r in reports)),
            human_bytes(sum(r.totals.weights_bytes for r in reports)),
            count(sum(len(r.checks) for r in reports)),
            _checks(checks, style),
            _gates_total(reports, style),
        )
    )
    blocks: list[Block] = [Table(_HEADERS, tuple(rows), _ALIGN)]
    if not outcomes:
        blocks.append(Lines(("No model files found.",), indent=False))
    # The Markdown artifact says why a gate failed; on a terminal stderr already does.
    failures = [message for report in reports for message in gate_messages(report)]
    if failures and flavour is Flavour.MARKDOWN:
        blocks += [Heading("Gate failures"), Lines(tuple(failures), bullets=True)]
    return blocks


def _gates_total(reports: Sequence[Report], style: Style) -> str:
    gated = [report for report in reports if report.gates]
    if not gated:
        return "-"
    failed = sum(report.gates_failed for report in gated)
    if failed:
        return f"{paint(FAIL, 'red', style)} {failed} of {len(gated)}"
    return paint(PASS, "green", style)


def _row(outcome: Outcome, style: Style) -> tuple[str, ...]:
    report = outcome.report
    if report is None:
        error = paint("error", "red", style)
        message = (outcome.error or "").removeprefix(f"{outcome.path}: ")
        return (outcome.path, "-", "", "", "", f"{error}: {message}", "")
    return (
        outcome.path,
        report.model.format.value,
        count(report.totals.total),
        human_bytes(report.totals.weights_bytes),
        count(len(report.checks)),
        _checks(outcome.checks, style),
        gate_cell(report, style),
    )


def _checks(checks: Counter[Check], style: Style) -> str:
    parts = [
        f"{checks[status]} {paint(status.value, CHECK_COLOUR[status], style)}"
        for status in _CHECK_ORDER
        if checks[status]
    ]
    return ", ".join(parts) or "-"
