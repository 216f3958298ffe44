"""Formatting primitives shared by every output: numbers, byte sizes, shapes, share bars,
colour. Nothing else in the package formats a number by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    return "n/a" if value is None else f"{value:,}"


def plural(number: int, word: str, words: str | None = None) -> str:
    """`1 file`, `3 files`, `1,024 bytes`."""
    return f"{number:,} {word if number == 1 else (words or word + 's')}"


def real(value: float) -> str:
    """A measured difference or value: three significant digits (`0.0123`, `1.19e-07`)."""
    return f"{value:.3g}"


def index(position: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in position) + "]"


def human_bytes(size: int) -> str:
    """Binary units, labelled as such (1 KiB = 1024 bytes), like Keras's summary numbers."""
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
    return f"+{100 * excess / allowed:.1f}%" if allowed else "over a zero limit"


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


def shape(dims: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def progress_line(done: int, total: int, label: str, columns: int = 80, bar: int = 24) -> str:
    """`[######..........] 10/40  25% models/lstm.h5`: the bar, the count, the percentage and the
    file being read, cut from the left to fit `columns` so the line never wraps."""
    filled = round(bar * done / total) if total else bar
    percent = 100 * done // total if total else 100
    head = f"[{'#' * filled}{'.' * (bar - filled)}] {done}/{total} {percent:3d}% "
    room = max(columns - len(head), 4)
    if len(label) > room:
        label = "..." + label[-(room - 3) :]
    return head + label
