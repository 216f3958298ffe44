"""Fit plain-text output to a terminal's width.

Only the terminal flavour is fitted, and only when the CLI passes a width (stdout is a terminal,
or COLUMNS was set): files and pipes keep every line whole. Lines wrap at spaces only, so a
number, a shape or a path is never split. A table that is too wide is drawn in up to three
narrower forms, each tried in turn: without the header padding; with its free-text columns
(`Table.notes`: errors, verdicts) cut to their first word and written in full under the row;
and as one record per row (the `Table.keys` columns on a line, every other column below it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inspector.render.table import display_width

CONTINUATION = "    "  # a wrapped line's rest sits this much deeper than its start

Rows = tuple[tuple[str, ...], ...]
Draw = Callable[[Rows, int], str]  # the table with these rows, drawn with this header padding


@dataclass(frozen=True)
class Shape:
    """What fitting needs to know of a table (render/blocks.py: Table)."""

    headers: tuple[str, ...]
    rows: Rows
    notes: tuple[int, ...]
    keys: tuple[int, ...]
    attached: tuple[int, ...] = ()


def widest(text: str) -> int:
    return max((display_width(line) for line in text.splitlines()), default=0)


def wrap(text: str, width: int, extra: str = CONTINUATION) -> str:
    """Each line wrapped at spaces to `width`; continuation lines keep the line's own indent
    plus `extra`. A word longer than the width (a long path) is left whole."""
    out: list[str] = []
    for line in text.split("\n"):
        if display_width(line) <= width:
            out.append(line)
            continue
        import textwrap  # only when a line is too long: start-up time otherwise

        lead = line[: len(line) - len(line.lstrip(" "))]
        out.extend(
            textwrap.wrap(
                line,
                width,
                subsequent_indent=lead + extra,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [line]
        )
    return "\n".join(out)


def fit_table(table: Shape, width: int, draw: Draw) -> str:
    for padding in (2, 0):
        text = draw(table.rows, padding)
        if widest(text) <= width:
            return text
    if table.notes:
        narrow, notes = _notes_below(table)
        text = draw(narrow, 0)
        if widest(text) <= width:
            return _with_notes(text, notes, width)
    return _records(table, width)


def _notes_below(table: Shape) -> tuple[Rows, list[list[str]]]:
    """The table with each long free-text cell cut to its first word, and per row the cells in
    full as `header: text` lines."""
    rows = []
    notes: list[list[str]] = []
    for row in table.rows:
        cells = list(row)
        below = []
        for index in table.notes:
            cell = cells[index]
            if display_width(cell) > len(table.headers[index]):
                cells[index] = cell.split(" ", 1)[0].rstrip(":,")
                below.append(f"{table.headers[index]}: {cell}")
        rows.append(tuple(cells))
        notes.append(below)
    return tuple(rows), notes


def _with_notes(text: str, notes: Sequence[list[str]], width: int) -> str:
    lines = text.split("\n")
    head, body = lines[:2], lines[2:]  # render/table.py SIMPLE: header, rule, one line per row
    out = list(head)
    for line, below in zip(body, notes, strict=False):
        out.append(line)
        out.extend(wrap(CONTINUATION + note, width) for note in below)
    return "\n".join(out)


def _records(table: Shape, width: int) -> str:
    """One record per row: its key columns on one line, each other column on its own."""
    out = []
    for row in table.rows:
        key = ", ".join(
            f"{table.headers[i]} {row[i]}".strip() if table.headers[i] else row[i]
            for i in table.keys
        )
        lines: list[str] = []
        for index, (header, cell) in enumerate(zip(table.headers, row, strict=True)):
            if index in table.keys or not cell.strip():
                continue
            if index in table.attached and lines:
                lines[-1] += f"  {cell}"
                continue
            label = f"{header}: " if header else ""
            lines.append(f"{CONTINUATION}{label}{cell}")
        out.append(wrap(key, width))
        out.extend(wrap(line, width) for line in lines)
    return "\n".join(out)
