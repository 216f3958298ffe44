"""Many files at once (`rnninspect DIR`): one summary row per file, then the totals."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

from inspector.model import Check
from inspector.render.blocks import Block, Flavour, Heading, Lines, Table, write
from inspector.render.gates import FAIL, PASS, gate_cell, gate_messages
from inspector.render.report import CHECK_COLOUR, LayerView
from inspector.render.text import Style, count, escaped, human_bytes, paint, plural
from inspector.report.analysis import Report
from inspector.report.batch import Outcome

# Worst first, so a failing check is the first word of the cell.
_CHECK_ORDER = (Check.MISMATCH, Check.UNVERIFIED, Check.OK)
_HEADERS = ("file", "format", "params", "size", "recurrent", "checks", "gates")
_ALIGN = ("left", "left", "right", "right", "right", "left", "left")
_SHORT = ("", "", "", "", "recur.", "", "")


def render_summary(
    outcomes: Sequence[Outcome],
    flavour: Flavour,
    style: Style,
    view: LayerView = LayerView.ALL,
) -> str | None:
    """One row per file and the totals; None when no file was found at all (a directory
    without model files says so on stderr, and a table of nothing would say nothing more)."""
    files = [outcome for outcome in outcomes if not outcome.directory]
    if not files:
        return None
    return write(summary_blocks(escaped(files), style, flavour, view), flavour, style.width)


def summary_blocks(
    outcomes: Sequence[Outcome],  # files: a directory without model files is not a row
    style: Style,
    flavour: Flavour = Flavour.TEXT,
    view: LayerView = LayerView.ALL,
) -> list[Block]:
    root, names = _short_names(outcomes, style)
    # --recurrent-only leaves out the files without a recurrent layer (controls, plain MLPs);
    # the total row still counts every file, as a report's totals count every layer.
    listed = [
        (outcome, name)
        for outcome, name in zip(outcomes, names, strict=True)
        if view is not LayerView.RECURRENT or outcome.report is None or outcome.report.checks
    ]
    rows = [_row(outcome, name, style) for outcome, name in listed]
    reports = [o.report for o in outcomes if o.report is not None]
    checks: Counter[Check] = Counter()
    for outcome in outcomes:
        checks.update(outcome.checks)
    # Every file a row stands for, the unreadable ones too.
    unreadable = sum(1 for outcome in outcomes if outcome.report is None)
    label = f"total: {plural(len(outcomes), 'file')}" + (
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
    blocks: list[Block] = [Lines((f"files under {root}{os.sep}",), indent=False)] if root else []
    gated = any(report.gates for report in reports)
    columns = len(_HEADERS) if gated else len(_HEADERS) - 1  # no limit set: no gates column
    blocks.append(
        Table(
            _HEADERS[:columns],
            tuple(row[:columns] for row in rows),
            _ALIGN[:columns],
            notes=(5, 6)[: columns - 5],
            # A narrow terminal wraps the file names and leaves out the size, then the format.
            wrap=(0,),
            short=_SHORT[:columns],
            optional=(3, 1),
        )
    )
    hidden = len(outcomes) - len(listed)
    if hidden:
        some = plural(hidden, "file")
        blocks.append(
            Lines(
                (f"({some} without recurrent layers not shown; the total counts every file)",),
                indent=False,
            )
        )
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


def _short_names(outcomes: Sequence[Outcome], style: Style) -> tuple[str | None, list[str]]:
    """On a terminal (a width to fit), paths relative to the folder they share, and that folder;
    elsewhere the paths as given."""
    paths = [outcome.path for outcome in outcomes]
    if style.width is None or len(paths) < 2:
        return None, paths
    try:
        root = os.path.commonpath(paths)
    except ValueError:  # absolute and relative paths mixed
        return None, paths
    if root in paths:  # one of them is the folder itself (a directory with no model file)
        root = os.path.dirname(root)
    if root in ("", ".", os.sep):
        return None, paths
    return root, [path[len(root) :].lstrip(os.sep) for path in paths]


def _row(outcome: Outcome, name: str, style: Style) -> tuple[str, ...]:
    report = outcome.report
    if report is None:
        error = paint("error", "red", style)
        message = (outcome.error or "").removeprefix(f"{outcome.path}: ")
        return (name, "-", "", "", "", f"{error}: {message}", "")
    return (
        name,
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
