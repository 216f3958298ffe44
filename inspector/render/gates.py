"""Gate verdicts: one line per failure (stderr, and the reports' failure lists), a table of every
limit for a file's report, and a one-cell verdict for the summary and CSV rows."""

from __future__ import annotations

from inspector.model import Check
from inspector.render.blocks import Table
from inspector.render.text import Style, count, exact_bytes, listed, paint, percent_over
from inspector.report.analysis import Report
from inspector.report.gates import GATE_BY_OPTION
from inspector.report.verdicts import GateResult, Over, Unit

PASS, FAIL = "pass", "FAIL"
# Lines one gate or a file's checks give on stderr; the rest is one line that counts them. A
# model of 100,000 layers over --max-layer-params would otherwise give 100,000 lines (the JSON
# `gates` list keeps every subject).
MAX_LINES = 10


def gate_messages(report: Report, *, with_file: bool = True) -> list[str]:
    """One line per subject over a limit, MAX_LINES per limit at most: which limit, the
    measured value, and by how much."""
    prefix = f"{report.model.path}: " if with_file else ""
    lines = []
    for gate in report.gates:
        lines += [prefix + _message(gate, over) for over in gate.over[:MAX_LINES]]
        if len(gate.over) > MAX_LINES:
            more = f"{len(gate.over) - MAX_LINES:,} more layers"
            what = "whose check is not ok" if gate.unit is Unit.LAYERS else "over the limit"
            lines.append(f"{prefix}{gate.limit}: and {more} {what}")
    return lines


def check_messages(report: Report) -> list[str]:
    """One line per recurrent layer whose stored count does not match the formula, MAX_LINES
    at most."""
    failed = [check for check in report.checks if check.status is Check.MISMATCH]
    lines = [
        f"{report.model.path}: layer '{check.layer.name}' is a {check.status.value}"
        + (f": {check.reason}" if check.reason else "")
        for check in failed[:MAX_LINES]
    ]
    if len(failed) > MAX_LINES:
        lines.append(f"{report.model.path}: and {len(failed) - MAX_LINES:,} more mismatches")
    return lines


def _message(gate: GateResult, over: Over) -> str:
    if gate.unit is Unit.LAYERS:
        return f"{gate.limit}: layer '{over.layer}' check is {over.note}"
    if over.note:  # a limit the file cannot be held to (its weights are not in it)
        return f"{gate.limit} {_limit(gate.allowed, gate.unit)}: {over.note}"
    who = GATE_BY_OPTION[gate.limit].label if over.layer is None else f"layer '{over.layer}' has"
    excess = over.measured - gate.allowed
    return (
        f"{gate.limit} {_limit(gate.allowed, gate.unit)}: {who} "
        f"{_value(over.measured, gate.unit)}, {_excess(excess, gate.unit)} over the limit "
        f"({percent_over(excess, gate.allowed)})"
    )


def _limit(value: int, unit: Unit) -> str:
    return exact_bytes(value) if unit is Unit.BYTES else count(value)


def _value(value: int, unit: Unit) -> str:
    if unit is Unit.BYTES:
        return exact_bytes(value)
    return f"{count(value)} {unit.value}"


def _excess(value: int, unit: Unit) -> str:
    return f"{value:,} bytes" if unit is Unit.BYTES else count(value)


def gate_table(report: Report, style: Style) -> Table:
    """Every limit set for this file: the limit, the measured value, pass or FAIL."""
    rows = []
    for gate in report.gates:
        if gate.unit is Unit.LAYERS:
            allowed = f"{gate.allowed} not ok"
            measured = f"{gate.measured} not ok"
        else:
            allowed, measured = _cell(gate.allowed, gate.unit), _cell(gate.measured, gate.unit)
            if gate.layer is not None:
                measured += f" ({gate.layer})"
        result = paint(PASS, "green", style) if gate.passed else _failed(gate, style)
        rows.append((gate.limit, allowed, measured, result))
    return Table(
        ("gate", "limit", "measured", "result"),
        tuple(rows),
        ("left", "right", "right", "left"),
    )


def _cell(value: int, unit: Unit) -> str:
    return f"{value:,} bytes" if unit is Unit.BYTES else count(value)


def _failed(gate: GateResult, style: Style) -> str:
    word = paint(FAIL, "red", style)
    if gate.unit is Unit.LAYERS:
        return f"{word}: " + listed([f"{over.layer}" for over in gate.over])
    if gate.layer is not None and len(gate.over) > 1:
        return f"{word}: {len(gate.over)} layers over"
    if gate.over and gate.over[0].note:
        return f"{word} (weights not in the file)"
    return f"{word} ({percent_over(gate.excess, gate.allowed)})"


def gate_cell(report: Report, style: Style) -> str:
    """The summary's verdict for one file: `-` without limits, `pass`, or the limits failed."""
    if not report.gates:
        return "-"
    failed = [gate.limit for gate in report.gates if not gate.passed]
    if not failed:
        return paint(PASS, "green", style)
    return f"{paint(FAIL, 'red', style)} {', '.join(failed)}"
