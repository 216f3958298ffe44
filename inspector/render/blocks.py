"""A report as a list of blocks, written out as a plain-text table or as Markdown.

Builders describe *what* to show (headings, tables, lines); the two writers below decide how it
looks, so the terminal table and the Markdown report can never drift apart in content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from tabulate import tabulate


@dataclass(frozen=True)
class Heading:
    text: str
    code: bool = False  # a file path: monospace in Markdown


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: tuple[str, ...]  # "left" / "right" per column


@dataclass(frozen=True)
class Lines:
    lines: tuple[str, ...]
    indent: bool = True  # indented under a heading in text; a bullet list in Markdown
    bullets: bool = False  # a bullet list in text too


Block = Heading | Table | Lines


class Flavour(Enum):
    TEXT = "text"
    MARKDOWN = "markdown"


# tabulate's formats: "simple" for the terminal; "github" pastes into a pull request.
_TABLE_FORMAT = {Flavour.TEXT: "simple", Flavour.MARKDOWN: "github"}


def write(blocks: Sequence[Block], flavour: Flavour) -> str:
    out: list[str] = []
    previous: Block | None = None
    for block in blocks:
        text = _write(block, flavour)
        if not text:
            continue
        if out:
            # In the terminal a heading sits right on top of what it heads.
            tight = isinstance(previous, Heading) and flavour is Flavour.TEXT
            out.append("\n" if tight else "\n\n")
        out.append(text)
        previous = block
    return "".join(out)


def _write(block: Block, flavour: Flavour) -> str:
    if isinstance(block, Table):
        return tabulate(
            [list(row) for row in block.rows],
            headers=list(block.headers),
            colalign=block.align,
            tablefmt=_TABLE_FORMAT[flavour],
            disable_numparse=True,
        )
    markdown = flavour is Flavour.MARKDOWN
    if isinstance(block, Heading):
        if not markdown:
            return block.text
        return f"### `{block.text}`" if block.code else f"#### {block.text}"
    if markdown:
        return "\n".join(_bullet(line) for line in block.lines)
    prefix = ("  " if block.indent else "") + ("- " if block.bullets else "")
    return "\n".join(prefix + line for line in block.lines)


def _bullet(line: str) -> str:
    """A Markdown list item; a line indented further than its neighbours nests under them."""
    nested = line.startswith("    ")
    return ("  - " if nested else "- ") + line.strip()
