"""Fit plain-text output to a terminal's width.

Only the terminal flavour is fitted, and only when the CLI passes a width (stdout is a terminal,
or COLUMNS was set): files and pipes keep every line whole. Lines wrap at spaces only, so a
number, a shape or a path is never split.

A table too wide for the terminal stays a table as long as it can. It is narrowed one step at a
time, each step kept, until it fits:

1. no header padding, and the columns' short headers (`Table.short`);
2. decoration left out (`Table.decoration`: the share bar, which repeats the share);
3. columns holding one value in every row left out, the value said once under the table;
4. long free-text cells (`Table.notes`: errors, verdicts) cut to their first word and written in
   full under their row;
5. name columns (`Table.wrap`) wrapped inside their cells, at spaces and after `/`, `_`, `.`
   or `-` (never inside brackets or a number);
6. low-value columns (`Table.optional`, first to go first) left out, named under the table.

Only when none of this fits is the table written as one record per row (the `Table.keys` columns
on a line, every other column below it, each under its `Table.labels` name). Every step draws the
table once and the steps are a fixed few: fitting is linear in the table's size (tests count the
characters it handles).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspector.render.table import SIMPLE, display_width, write_table

CONTINUATION = "    "  # a wrapped line's rest sits this much deeper than its start
_BREAK_AFTER = frozenset("/_.-")  # inside a name, except between two digits (1.5)
_MIN_WRAP = 8  # a wrapped column narrower than this reads worse than a record
_GROUP = 40  # the longest bracketed group kept whole: `kernel[:, 1024:2048]`

Rows = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Shape:
    """What fitting needs to know of a table (render/blocks.py: Table)."""

    headers: tuple[str, ...]
    rows: Rows
    align: tuple[str, ...]
    notes: tuple[int, ...] = ()
    keys: tuple[int, ...] = (0,)
    attached: tuple[int, ...] = ()
    short: tuple[str, ...] = ()
    decoration: tuple[int, ...] = ()
    optional: tuple[int, ...] = ()
    wrap: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()


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


@dataclass
class _Layout:
    """The table as it is being narrowed: the columns kept, their headers, the rows (free-text
    cells possibly cut), what goes under each row and under the table, and the width of each
    wrapped column."""

    columns: list[int]
    headers: list[str]
    rows: Rows
    below: list[list[str]] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    widths: dict[int, int] = field(default_factory=dict)
    drawn_width: int = 0  # the widest line of the last draw


def fit_table(table: Shape, width: int) -> str:
    """The table drawn in the first of the forms above that fits `width` columns."""
    layout = _Layout(list(range(len(table.headers))), list(table.headers), table.rows)
    text = _draw(table, layout, width, padding=2)
    if layout.drawn_width <= width:
        return text
    steps = (_short_headers, _no_decoration, _no_uniform, _notes_below, _wrapped)
    for step in steps:
        if step(table, layout, width):
            text = _draw(table, layout, width)
            if layout.drawn_width <= width:
                return _with_after(text, layout, width)
    for index in table.optional:
        if index in layout.columns:
            _leave_out(table, layout, index)
            layout.omitted.append(_label(table, index))
            _wrapped(table, layout, width)
            text = _draw(table, layout, width)
            if layout.drawn_width <= width:
                return _with_after(text, layout, width)
    return _records(table, width)


# --- the steps: each changes the layout and says whether it changed anything -------------


def _short_headers(table: Shape, layout: _Layout, width: int) -> bool:
    """No header padding (every draw from here on), and the short headers."""
    for position, index in enumerate(layout.columns):
        if index < len(table.short) and table.short[index]:
            layout.headers[position] = table.short[index]
    return True


def _no_decoration(table: Shape, layout: _Layout, width: int) -> bool:
    for index in table.decoration:
        _leave_out(table, layout, index)
    return bool(table.decoration)


def _no_uniform(table: Shape, layout: _Layout, width: int) -> bool:
    """Columns (other than the row's names) with one value in every row: said once."""
    if len(table.rows) < 2:
        return False
    said = []
    for index in list(layout.columns):
        if index in table.keys:
            continue
        first = table.rows[0][index]
        if all(row[index] == first for row in table.rows):
            _leave_out(table, layout, index)
            if first.strip() not in ("", "-"):
                said.append(f"{_label(table, index)} {first}")
    if said:
        layout.after.append(f"({', '.join(said)} in every row)")
    return len(layout.columns) < len(table.headers)


def _notes_below(table: Shape, layout: _Layout, width: int) -> bool:
    """Each long free-text cell cut to its first word, and written in full under its row."""
    notes = [index for index in table.notes if index in layout.columns]
    if not notes:
        return False
    rows = []
    below: list[list[str]] = []
    for row in layout.rows:
        cells = list(row)
        moved = []
        for index in notes:
            cell = cells[index]
            if display_width(cell) > display_width(table.headers[index]):
                cells[index] = cell.split(" ", 1)[0].rstrip(":,")
                moved.append(f"{_label(table, index)}: {cell}")
        rows.append(tuple(cells))
        below.append(moved)
    layout.rows, layout.below = tuple(rows), below
    return True


def _wrapped(table: Shape, layout: _Layout, width: int) -> bool:
    """Widths for the wrap columns that share what the other columns leave of `width`; none
    when even their longest unbreakable pieces do not fit."""
    wrapping = [index for index in table.wrap if index in layout.columns]
    layout.widths = {}
    if not wrapping:
        return False
    position = {index: p for p, index in enumerate(layout.columns)}
    fixed = sum(
        max(
            display_width(layout.headers[position[index]]),
            max((display_width(row[index]) for row in layout.rows), default=0),
        )
        for index in layout.columns
        if index not in wrapping
    )
    budget = width - fixed - len(SIMPLE.gap) * (len(layout.columns) - 1)
    least: dict[int, int] = {}
    natural: dict[int, int] = {}
    for index in wrapping:
        head = display_width(layout.headers[position[index]])
        least[index] = max(
            _MIN_WRAP,
            head,
            max((_longest_piece(row[index]) for row in layout.rows), default=0),
        )
        natural[index] = max([head, *(display_width(row[index]) for row in layout.rows)])
    if sum(min(least[i], natural[i]) for i in wrapping) > budget:
        return False
    widths = {index: min(least[index], natural[index]) for index in wrapping}
    spare = budget - sum(widths.values())
    # The narrowest needs are met first; what is left goes to the others in equal shares.
    ordered = sorted(wrapping, key=lambda i: natural[i] - widths[i])
    for left, index in enumerate(ordered):
        give = min(natural[index] - widths[index], spare // (len(ordered) - left))
        widths[index] += give
        spare -= give
    layout.widths = {index: w for index, w in widths.items() if w < natural[index]}
    return bool(layout.widths)


def _leave_out(table: Shape, layout: _Layout, index: int) -> None:
    if index in layout.columns:
        position = layout.columns.index(index)
        del layout.columns[position]
        del layout.headers[position]


def _label(table: Shape, index: int) -> str:
    return (table.labels[index] if table.labels else "") or table.headers[index]


# --- drawing ---------------------------------------------------------------------------


def _draw(table: Shape, layout: _Layout, width: int, padding: int = 0) -> str:
    """The layout as a table: a row whose wrapped cells take several lines takes as many,
    its other cells on the first; the notes of a row under its last line, wrapped to `width`."""
    lines: list[tuple[str, ...]] = []
    heights = []
    for row in layout.rows:
        cells = [
            _cell_lines(row[index], layout.widths[index])
            if index in layout.widths
            else [row[index]]
            for index in layout.columns
        ]
        height = max(len(cell) for cell in cells)
        heights.append(height)
        lines.extend(
            tuple(cell[line] if line < len(cell) else "" for cell in cells)
            for line in range(height)
        )
    align = tuple(table.align[index] for index in layout.columns)
    text = write_table(layout.headers, lines, align, SIMPLE, padding)
    # Every line of a SIMPLE table is at most as wide as its rule (the second line, dashes
    # over each column): the table's width, without measuring every line.
    layout.drawn_width = len(text.split("\n", 2)[1]) if "\n" in text else display_width(text)
    if not any(layout.below):
        return text
    drawn = text.split("\n")
    out = drawn[:2]  # SIMPLE: header, rule, one line per drawn row
    at = 2
    for height, below in zip(heights, layout.below, strict=True):
        out.extend(drawn[at : at + height])
        at += height
        for note in below:
            wrapped = wrap(CONTINUATION + note, width)
            layout.drawn_width = max(layout.drawn_width, widest(wrapped))
            out.append(wrapped)
    return "\n".join(out)


def _with_after(text: str, layout: _Layout, width: int) -> str:
    """The table, then what the narrowing left to say once: one value in every row, the
    columns left out."""
    after = list(layout.after)
    if layout.omitted:
        after.append(f"({', '.join(layout.omitted)} left out to fit {width} columns)")
    return "\n".join([text, *(wrap(line, width) for line in after)])


def _pieces(cell: str) -> list[str]:
    """The cell cut where it may wrap: after each run of spaces, and after a run of `/`, `_`,
    `.` or `-` (not between two digits: `1.5`). Never inside square brackets (a slice
    `kernel[:, 0:8]`, up to _GROUP characters: a bracket a name leaves open protects nothing),
    before one (a gate: `kernel [i]`), or after a comma inside parentheses (a shape:
    `(None, 8)`). Joined, the pieces are the cell."""
    inside = _in_brackets(cell)
    pieces = []
    start = round_ = 0
    for at, char in enumerate(cell):
        round_ += (char == "(") - (char == ")")
        if inside[at]:
            continue
        previous = cell[at - 1] if at else ""
        following = cell[at + 1] if at + 1 < len(cell) else ""
        space = char == " " and following not in (" ", "[") and not (previous == "," and round_ > 0)
        joint = (
            char in _BREAK_AFTER
            and following not in _BREAK_AFTER
            and following not in (" ", "")
            and previous not in (" ", "(", "")
            and not (previous.isdigit() and following.isdigit())
        )
        if space or joint:
            pieces.append(cell[start : at + 1])
            start = at + 1
    if start < len(cell):
        pieces.append(cell[start:])
    return pieces


def _in_brackets(cell: str) -> bytearray:
    """Per character, whether it lies inside a pair of square brackets at most _GROUP apart."""
    inside = bytearray(len(cell))
    opened: list[int] = []
    for at, char in enumerate(cell):
        if char == "[":
            opened.append(at)
        elif char == "]" and opened:
            start = opened.pop()
            if at - start <= _GROUP:
                inside[start:at] = b"\x01" * (at - start)
    return inside


def _longest_piece(cell: str) -> int:
    return max((display_width(piece.rstrip(" ")) for piece in _pieces(cell)), default=0)


def _cell_lines(cell: str, width: int) -> list[str]:
    """The cell's pieces packed into lines of at most `width` columns (a piece longer than
    that on a line of its own)."""
    if display_width(cell) <= width:
        return [cell]
    lines: list[str] = []
    line, used = "", 0
    for piece in _pieces(cell):
        size = display_width(piece.rstrip(" "))
        if line and used + size > width:
            lines.append(line.rstrip(" "))
            line, used = "", 0
        line += piece
        used += display_width(piece)
    if line.strip(" "):
        lines.append(line.rstrip(" "))
    return lines or [cell]


# --- the last resort -------------------------------------------------------------------


def _records(table: Shape, width: int) -> str:
    """One record per row: its key columns on one line, each other column on its own."""
    out = []
    for row in table.rows:
        key = ", ".join(
            f"{_label(table, i)} {row[i]}".strip() if table.headers[i] else row[i]
            for i in table.keys
        )
        lines: list[str] = []
        for index, cell in enumerate(row):
            if index in table.keys or not cell.strip():
                continue
            if index in table.attached and lines:
                lines[-1] += f"  {cell}"
                continue
            label = _label(table, index)
            lines.append(f"{CONTINUATION}{label}: {cell}" if label else f"{CONTINUATION}{cell}")
        out.append(wrap(key, width))
        out.extend(wrap(line, width) for line in lines)
    return "\n".join(out)
