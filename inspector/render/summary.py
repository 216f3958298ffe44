"""Many files at once (`rnninspect DIR`): one summary row per file, then the totals."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

from inspector.model import Check
from inspector.render.blocks import Block, Flavour, Heading, Lines, Table, write
from inspector.render.gates import FAIL, PASS, gate_cell, gate_messages
from inspector.render.report import CHECK_COLOUR, LayerView
from inspector.render.text import Style, count, human_bytes, paint, plural, printable
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
    summary = Summary(style, view)
    for outcome in outcomes:
        summary.add(outcome)
    return summary.render(flavour)


class Summary:
    """The many-files summary, built a file at a time as the outcomes arrive: of each file it
    keeps its path and its row (its report is not kept), so a scan's memory grows with the
    number of files, never with their reports."""

    def __init__(self, style: Style, view: LayerView = LayerView.ALL) -> None:
        self.style = style
        self.view = view
        self.paths: list[str] = []
        self.rows: list[tuple[int, tuple[str, ...]]] = []  # (index in paths, cells but the name)
        self.files = self.unreadable = self.total = self.weights = self.recurrent = 0
        self.checks: Counter[Check] = Counter()
        self.gated = self.gates_failed = 0
        self.failures: list[str] = []  # each failed gate's line, for the Markdown summary

    def add(self, outcome: Outcome) -> None:
        if outcome.directory:  # a directory without model files is not a row
            return
        # Only text from a file is escaped (paths, errors, layer names in the gate lines): the
        # rest of a row is numbers and rnninspect's own words, so the report is not copied.
        self.paths.append(printable(outcome.path))
        report = outcome.report
        if report is None:
            self.unreadable += 1
        else:
            self.files += 1
            self.total += report.totals.total
            self.weights += report.totals.weights_bytes
            self.recurrent += len(report.checks)
            if report.gates:
                self.gated += 1
                self.gates_failed += report.gates_failed
                self.failures += [printable(line) for line in gate_messages(report)]
        self.checks.update(outcome.checks)
        # --recurrent-only leaves out the files without a recurrent layer (controls, plain
        # MLPs); the total row still counts every file, as a report's totals count every layer.
        if self.view is not LayerView.RECURRENT or report is None or report.checks:
            self.rows.append((len(self.paths) - 1, _cells(outcome, self.style)))

    def render(self, flavour: Flavour) -> str | None:
        """The summary; None when no file was added (nothing to tabulate)."""
        if not self.paths:
            return None
        return write(self.blocks(flavour), flavour, self.style.width)

    def blocks(self, flavour: Flavour = Flavour.TEXT) -> list[Block]:
        style = self.style
        root, names = _short_names(self.paths, style)
        rows = [(names[index], *cells) for index, cells in self.rows]
        # Every file a row stands for, the unreadable ones too.
        label = f"total: {plural(len(self.paths), 'file')}" + (
            f", {self.unreadable} unreadable" if self.unreadable else ""
        )
        rows.append(
            (
                label,
                "",
                count(self.total),
                human_bytes(self.weights),
                count(self.recurrent),
                _checks(self.checks, style),
                self._gates_total(),
            )
        )
        blocks: list[Block] = (
            [Lines((f"files under {root}{os.sep}",), indent=False)] if root else []
        )
        columns = len(_HEADERS) if self.gated else len(_HEADERS) - 1  # no limit: no gates
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
        hidden = len(self.paths) - len(self.rows)
        if hidden:
            some = plural(hidden, "file")
            blocks.append(
                Lines(
                    (f"({some} without recurrent layers not shown; the total counts every file)",),
                    indent=False,
                )
            )
        # The Markdown artifact says why a gate failed; on a terminal stderr already does.
        if self.failures and flavour is Flavour.MARKDOWN:
            blocks += [Heading("Gate failures"), Lines(tuple(self.failures), bullets=True)]
        return blocks

    def _gates_total(self) -> str:
        if not self.gated:
            return "-"
        if self.gates_failed:
            return f"{paint(FAIL, 'red', self.style)} {self.gates_failed} of {self.gated}"
        return paint(PASS, "green", self.style)


def _short_names(paths: Sequence[str], style: Style) -> tuple[str | None, Sequence[str]]:
    """On a terminal (a width to fit), paths relative to the folder they share, and that folder;
    elsewhere the paths as given."""
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


def _cells(outcome: Outcome, style: Style) -> tuple[str, ...]:
    """A file's row but its name (a terminal shows it relative to the files' common folder)."""
    report = outcome.report
    if report is None:
        error = paint("error", "red", style)
        message = printable((outcome.error or "").removeprefix(f"{outcome.path}: "))
        return ("-", "", "", "", f"{error}: {message}", "")
    return (
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
