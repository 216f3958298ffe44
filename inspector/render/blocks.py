"""A report as a list of blocks, written out as a plain-text table or as Markdown.

Builders describe *what* to show (headings, tables, lines); the two writers below decide how it
looks, so the terminal table and the Markdown report can never drift apart in content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from inspector.render.fit import Shape, fit_table, wrap
from inspector.render.table import GITHUB, SIMPLE, write_table
from inspector.render.text import markdown_code, markdown_safe


@dataclass(frozen=True)
class Heading:
    text: str
    code: bool = False  # a file path: monospace in Markdown


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: tuple[str, ...]  # "left" / "right" per column
    # For fitting to a narrow terminal (render/fit.py): free-text columns whose long cells may
    # move under their row, and the columns that name a row when it is drawn as a record.
    notes: tuple[int, ...] = ()
    keys: tuple[int, ...] = (0,)
    attached: tuple[int, ...] = ()  # in a record, written on the previous column's line
    # How a narrow terminal keeps it a table (render/fit.py, in this order): a shorter header
    # per column ("" keeps it), columns that only decorate, columns whose cells may wrap (names),
    # columns that may be left out (first to go first); and each column's name in a record
    # where its header alone is ambiguous ("type" of the source or of the export).
    short: tuple[str, ...] = ()
    decoration: tuple[int, ...] = ()
    wrap: tuple[int, ...] = ()
    optional: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lines:
    lines: tuple[str, ...]
    indent: bool = True  # indented under a heading in text; a bullet list in Markdown
    bullets: bool = False  # a bullet list in text too


Block = Heading | Table | Lines


class Flavour(Enum):
    TEXT = "text"
    MARKDOWN = "markdown"


# "simple" for the terminal; "github" pastes into a pull request (render/table.py).
_RULING = {Flavour.TEXT: SIMPLE, Flavour.MARKDOWN: GITHUB}


def write(blocks: Sequence[Block], flavour: Flavour, width: int | None = None) -> str:
    """The blocks as text; with a `width`, terminal text is fitted to it (render/fit.py)."""
    out: list[str] = []
    previous: Block | None = None
    for block in blocks:
        fitted = width is not None and flavour is Flavour.TEXT
        text = _fit(block, width) if fitted and width is not None else _write(block, flavour)
        if not text:
            continue
        if out:
            # In the terminal a heading sits right on top of what it heads.
            tight = isinstance(previous, Heading) and flavour is Flavour.TEXT
            out.append("\n" if tight else "\n\n")
        out.append(text)
        previous = block
    return "".join(out)


def _fit(block: Block, width: int) -> str:
    if not isinstance(block, Table):
        return wrap(_write(block, Flavour.TEXT), width)
    shape = Shape(
        block.headers,
        block.rows,
        block.align,
        notes=block.notes,
        keys=block.keys,
        attached=block.attached,
        short=block.short,
        decoration=block.decoration,
        optional=block.optional,
        wrap=block.wrap,
        labels=block.labels,
    )
    return fit_table(shape, width)


def _write(block: Block, flavour: Flavour) -> str:
    markdown = flavour is Flavour.MARKDOWN
    if isinstance(block, Table):
        rows = block.rows
        if markdown:  # every cell, so that no name from a file adds a column or a link
            rows = tuple(tuple(markdown_safe(cell) for cell in row) for row in rows)
        return write_table(block.headers, rows, block.align, _RULING[flavour])
    if isinstance(block, Heading):
        if not markdown:
            return block.text
        if block.code:
            return f"### {markdown_code(block.text)}"
        return f"#### {markdown_safe(block.text)}"
    if markdown:
        return "\n".join(_bullet(markdown_safe(line)) for line in block.lines)
    prefix = ("  " if block.indent else "") + ("- " if block.bullets else "")
    return "\n".join(prefix + line for line in block.lines)


def _bullet(line: str) -> str:
    """A Markdown list item; a line indented further than its neighbours nests under them."""
    nested = line.startswith("    ")
    return ("  - " if nested else "- ") + line.strip()
