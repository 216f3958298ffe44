"""Text a file chose, as a message shows it: one short printable line."""

from __future__ import annotations

MAX_SHOWN = 120  # characters of a file-chosen name shown in a message


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """A name chosen by the file as one short printable line: control characters escaped,
    and past `limit` its head and tail with the full length said."""
    if len(text) > limit:
        head, tail = text[: limit // 2], text[-(limit // 3) :]
        return f"{shown(head, limit)}...[{len(text):,} characters]...{shown(tail, limit)}"
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
