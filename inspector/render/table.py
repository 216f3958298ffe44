"""Write a table as terminal text or as a Markdown (GitHub) table.

The output is byte for byte what tabulate 0.10 writes with `tablefmt="simple"` or `"github"`,
`disable_numparse=True`, a `colalign` per column and `MIN_PADDING` set to `padding`, for cells
of one line whose characters each take one column (tests/test_table_writer.py compares the two).
rnninspect writes its own because importing tabulate reads tabulate's version through
importlib.metadata (~20 ms, issue 16), and so that a width never depends on whether the optional
wcwidth package happens to be installed. Two deliberate differences from tabulate:

- Width is what a terminal shows (`display_width`): East Asian wide and fullwidth characters take
  two columns, combining marks none, ANSI colour (SGR) codes none. tabulate counts characters
  unless wcwidth is installed.
- A cell is one line: a carriage return or line feed inside a cell is written as `\\x0d` / `\\x0a`
  (the escape of `text.printable`, which has already escaped every name from a file). tabulate
  would split such a cell into lines of its own, which could forge rows.
- A column is padded to at most PAD_LIMIT columns: a wider cell (a list of shared rows, a shape of
  hundreds of dimensions) is written whole and sticks out of its column, so that one cell never
  pads every other row of a table to its width (issue 23: 527 MB of output from a 60 KB file).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_SGR = re.compile(r"\x1b\[[0-9;]*m")  # what render/text.py's `paint` writes
_LINE_BREAKS = str.maketrans({"\r": "\\x0d", "\n": "\\x0a"})
_ALIGNMENTS = ("left", "right")
# The widest a column is padded to: a name at the data model's cap (`counts.NAME_LIMIT`, 256)
# and room for what a cell adds to it ("(shared with ...)").
PAD_LIMIT = 320


@dataclass(frozen=True)
class Ruling:
    """How a table is drawn: what starts, separates and ends a line, the spaces around each cell,
    and, for a table without headers, whether a rule of dashes opens and closes it."""

    edge: str
    gap: str
    pad: int
    open_rule: bool
    close_rule: bool


# tabulate's "simple" and "github" formats (tabulate/__init__.py, `_table_formats`).
SIMPLE = Ruling(edge="", gap="  ", pad=0, open_rule=True, close_rule=True)
GITHUB = Ruling(edge="|", gap="|", pad=1, open_rule=True, close_rule=False)


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal: East Asian wide (W) and fullwidth (F) characters 2,
    combining marks (categories Mn, Me) 0, ANSI SGR colour codes 0, everything else 1
    (Unicode UAX #11; ambiguous-width characters such as the share bar's blocks count 1)."""
    if "\x1b" in text:
        text = _SGR.sub("", text)
    if text.isascii():
        return len(text)
    # Below U+0300 (Latin-1 and Latin Extended) every character is one column wide: only the
    # others need Unicode's tables (a line of names with a share bar is mostly the former).
    return sum(1 if char < "\u0300" else _char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.category(char) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def write_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    align: Sequence[str],
    ruling: Ruling = SIMPLE,
    padding: int = 2,
) -> str:
    """The table as lines joined by "\\n" (no final newline); "" for one without columns or
    without both headers and rows.

    `align` gives the columns, "left" or "right" each; `headers` holds one per column or none
    (no header row); every row one cell per column. Each column is at least `padding` wider
    than its header (tabulate's MIN_PADDING). Cells lose surrounding whitespace, headers keep
    theirs; every line loses trailing whitespace. Raises ValueError for headers, rows or
    alignments that do not fit one another (a bug in the caller, never the input)."""
    columns = len(align)
    if len(headers) not in (0, columns) or any(len(row) != columns for row in rows):
        raise ValueError(f"{columns} alignments, so as many headers (or none) and cells a row")
    if any(side not in _ALIGNMENTS for side in align):
        raise ValueError(f"alignments are {_ALIGNMENTS}, not {tuple(align)}")
    if columns == 0 or not (headers or rows):
        return ""
    body = [[cell.strip().translate(_LINE_BREAKS) for cell in row] for row in rows]
    heads = [header.translate(_LINE_BREAKS) for header in headers]
    widths = [
        min(max((display_width(row[i]) for row in body), default=0), PAD_LIMIT)
        for i in range(columns)
    ]
    if heads:
        widths = [max(w, display_width(h) + padding) for w, h in zip(widths, heads, strict=True)]

    space = " " * ruling.pad

    def line(cells: Sequence[str]) -> str:
        inner = ruling.gap.join(space + cell + space for cell in cells)
        return (ruling.edge + inner + ruling.edge).rstrip()

    dashes = ruling.gap.join("-" * (width + 2 * ruling.pad) for width in widths)
    rule = (ruling.edge + dashes + ruling.edge).rstrip()
    lines = [line(_aligned(row, widths, align)) for row in body]
    if heads:
        # tabulate aligns the headers of a table without rows to the left, whatever `align` says.
        header_align = align if body else ("left",) * columns
        return "\n".join([line(_aligned(heads, widths, header_align)), rule, *lines])
    return "\n".join(
        ([rule] if ruling.open_rule else []) + lines + ([rule] if ruling.close_rule else [])
    )


def _aligned(cells: Sequence[str], widths: Sequence[int], align: Sequence[str]) -> list[str]:
    out = []
    for cell, width, side in zip(cells, widths, align, strict=True):
        fill = " " * max(width - display_width(cell), 0)  # a cell past PAD_LIMIT sticks out
        out.append(cell + fill if side == "left" else fill + cell)
    return out
