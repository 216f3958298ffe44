"""Formatting primitives shared by every output: numbers, byte sizes, shapes, share bars,
colour. Nothing else in the package formats a number by hand."""

from __future__ import annotations

import copy
import dataclasses
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from inspector.model import Model, RecurrentLayer

_ANSI = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36", "dim": "2"}
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
BAR_WIDTH = 10


@dataclass(frozen=True)
class Style:
    """How the human-readable outputs may decorate: ANSI colour (a terminal that did not set
    NO_COLOR) and Unicode block characters (an output that can encode them)."""

    colour: bool = False
    unicode: bool = True
    width: int | None = None  # a terminal's columns to fit text to; None: lines stay whole


PLAIN = Style()


def paint(text: str, colour: str, style: Style) -> str:
    if not style.colour or not text:
        return text
    return f"\x1b[{_ANSI[colour]}m{text}\x1b[0m"


def count(value: int | None) -> str:
    if value is not None and abs(value).bit_length() > 10_000:  # past int-to-text limits
        return f"{'-' if value < 0 else ''}about 2^{abs(value).bit_length() - 1}"
    return "n/a" if value is None else f"{value:,}"


def listed(names: Sequence[str], shown: int = 6) -> str:
    """`a, b, c` or `a, b, c, d, e, f and 94 more`: a list of names in one cell or line, of
    bounded length however many rows a file makes share a tensor."""
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def plural(number: int, word: str, words: str | None = None) -> str:
    """`1 file`, `3 files`, `1,024 bytes`."""
    return f"{number:,} {word if number == 1 else (words or word + 's')}"


def real(value: float) -> str:
    """A measured difference or value: three significant digits (`0.0123`, `1.19e-07`)."""
    return f"{value:.3g}"


def index(position: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in position) + "]"


def human_bytes(size: int) -> str:
    """Binary units, labelled as such (1 KiB = 1024 bytes), like Keras's summary numbers.
    Sizes beyond a float (a crafted shape of 17 dims of 2^62) are written in powers of two."""
    if size >= 1 << 1000:
        return f"about 2^{size.bit_length() - 1} B"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def exact_bytes(size: int) -> str:
    """`1,512 bytes (1.48 KiB)`: exact, with the readable form beside it."""
    if size < 1024:
        return plural(size, "byte")
    return f"{size:,} bytes ({human_bytes(size)})"


def share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"


def percent_over(excess: int, allowed: int) -> str:
    return f"+{100 * excess / allowed:,.1f}%" if allowed else "over a zero limit"


def bar(part: int, total: int, style: Style, width: int = BAR_WIDTH) -> str:
    """A bar of `width` cells proportional to part/total, in eighths where Unicode is allowed."""
    if total <= 0 or part <= 0:
        return ""
    fraction = min(part / total, 1.0)
    if not style.unicode:
        return "#" * max(1, round(fraction * width))
    eighths = max(1, round(fraction * width * 8))
    full, rest = divmod(eighths, 8)
    return paint(_FULL * full + (_EIGHTHS[rest] if rest else ""), "cyan", style)


def shape(dims: Sequence[int | str | None]) -> str:
    """`(20,)`, `(None, 10, 8)`: a Python tuple, as Keras's summary() writes an output shape
    (None: a dimension the file leaves open, such as the batch; a name: a symbolic one)."""
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def progress_line(done: int, total: int, label: str, columns: int = 80, bar: int = 24) -> str:
    """`[######..........] 10/40  25% models/lstm.h5`: the bar, the count, the percentage and the
    file being read, cut from the left to fit `columns` so the line never wraps."""
    filled = round(bar * done / total) if total else bar
    percent = 100 * done // total if total else 100
    label = printable(label)
    head = f"[{'#' * filled}{'.' * (bar - filled)}] {done}/{total} {percent:3d}% "
    room = max(columns - len(head), 4)
    if len(label) > room:
        label = "..." + label[-(room - 3) :]
    return head + label


# --- text from a file: shown, never acted on ------------------------------------------------

# Unicode categories a terminal or a log viewer acts on instead of showing: control characters
# (C0, DEL, C1: ESC sequences, newlines, carriage returns), format characters (bidi overrides
# and isolates, zero-width marks: "Trojan Source", CVE-2021-42574), line and paragraph
# separators, and lone surrogates.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def printable(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape (`\\x1b`,
    `\\n` as `\\x0a`, `\\u202e`), so a name from a file can neither move the cursor, clear
    the screen, set a window title, nor forge a table row or a log line. Printable text,
    any script, is unchanged."""
    if text.isprintable():
        return text
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char == " " or unicodedata.category(char) not in _HIDDEN_CATEGORIES:
        return char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else (f"\\U{code:08x}")
    )


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A text cell from a file, neutralised for spreadsheets: a leading `'` before a cell that
    would start a formula (OWASP). Numbers rnninspect computes are written as numbers."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


# What Markdown (GitHub Flavored Markdown, CommonMark 0.31 "Backslash escapes") reads as
# structure: a cell separator, raw HTML, an entity, a code span, a link or image, emphasis.
# Each is written backslash-escaped (`<` and `&` as entities): it shows as itself. `>` opens
# nothing once `<` cannot (a blockquote needs it first on a line, where a list or cell is).
_MARKDOWN_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "*": "\\*",
        "<": "&lt;",
        "&": "&amp;",
    }
)


def markdown_safe(text: str) -> str:
    """`text` (already `printable`) as Markdown that renders as the same characters: a name
    from a file can neither add a table column (`|`), nor a link, an image, raw HTML or a
    code span to a report posted as a pull-request comment."""
    return text.translate(_MARKDOWN_ESCAPES)


def markdown_code(text: str) -> str:
    """`text` as a Markdown code span whatever backticks it holds: the fence is one backtick
    longer than its longest run of them (CommonMark 0.31 "Code spans")."""
    run = longest = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_Item = TypeVar("_Item")


def escaped(item: _Item) -> _Item:
    """A copy of a report (or any frozen data of it: outcomes, explanations, a comparison,
    a gate failure) in which every string is `printable`: what the text outputs render. The
    JSON output renders the original, exact strings."""
    result: _Item = _escaped(item, {}, 0)  # type: ignore[assignment]
    return result


# A report nests about 8 deep (a comparison, a report, its model, a layer, a tensor, a shape);
# a result rebuilt from a worker is checked to nest at most 32 (cli/supervise.py).
_MAX_DEPTH = 64


def _escaped(item: object, seen: dict[int, object], depth: int) -> object:
    if isinstance(item, str):
        return printable(item)
    if isinstance(item, Enum) or item is None or isinstance(item, (int, float, bytes)):
        return item
    known = seen.get(id(item))
    if known is not None:
        return known
    if depth > _MAX_DEPTH:
        raise ValueError(f"data nested more than {_MAX_DEPTH} deep is no report")
    inner = depth + 1
    result: object
    if isinstance(item, tuple) and not hasattr(item, "_fields"):
        result = tuple(_escaped(part, seen, inner) for part in item)
    elif isinstance(item, list):
        result = [_escaped(part, seen, inner) for part in item]
    elif isinstance(item, dict):
        result = {_escaped(k, seen, inner): _escaped(v, seen, inner) for k, v in item.items()}
    elif isinstance(item, Mapping):
        result = MappingProxyType(
            {_escaped(k, seen, inner): _escaped(v, seen, inner) for k, v in item.items()}
        )
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        result = copy.copy(item)
        for field in dataclasses.fields(item):
            value = getattr(item, field.name)
            object.__setattr__(result, field.name, _escaped(value, seen, inner))
    else:
        result = item
    seen[id(item)] = result
    return result


def split_held(layer: RecurrentLayer, model: Model) -> str:
    """What the split the formula is checked against counts: `stored N`, or, where the graph
    declares weights the file does not hold (TFLite resource variables, `Model.unstored`),
    `declared N (not in the file)` / `stored N + declared M (not in the file)`: the check then
    holds the graph's shapes, not stored values."""
    absent = {tensor.key for tensor in model.unstored}
    missing = sum(item.tensor.params for item in layer.tensors if item.tensor.key in absent)
    if not missing:
        return f"stored {count(layer.params)}"
    if missing >= layer.params:
        return f"declared {count(layer.params)} (not in the file)"
    return f"stored {count(layer.params - missing)} + declared {count(missing)} (not in the file)"
