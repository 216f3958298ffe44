"""The error an invalid ONNX graph structure raises, with its message kept to one line."""

from __future__ import annotations


class GraphError(Exception):
    """The graph structure is invalid (message is one line for the user)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: str, limit: int = 600) -> str:
    """Names come from the file and may hold newlines or control characters: escape them so a
    message stays one line, and cap its length."""
    cleaned = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
