"""JSON from a model file, parsed only when its size and element count are bounded.

`json.loads` of a 60 MB document of nested empty lists builds 20 million Python lists (about
1.6 GB): the text is small, the objects are not. Counting the characters that open a container
or separate elements (one pass each, in C) bounds the number of objects before any is built.
"""

from __future__ import annotations

import json
import sys

from inspector.errors import CorruptModelError

MAX_JSON_BYTES = 64 * 1024 * 1024
# Containers and elements: a 1,000-layer Keras config holds about 200,000; a safetensors
# header about 12 per tensor. Two million cost at most ~200 MB as Python objects.
MAX_JSON_ITEMS = 2_000_000


def check_json_size(size: int, where: str, max_bytes: int = MAX_JSON_BYTES) -> None:
    """Refuse a JSON text that claims more than `max_bytes`, before it is read."""
    if size > max_bytes:
        raise CorruptModelError(
            f"{where} is {size:,} bytes, over the {max_bytes:,}-byte limit for JSON; refused"
        )


def load_json(
    raw: bytes | str,
    where: str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_items: int = MAX_JSON_ITEMS,
) -> object:
    """The parsed document. Raises CorruptModelError when the text is over the limits or is
    not valid JSON; `where` starts the message ("model.keras: 'config.json'")."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    check_json_size(len(data), where, max_bytes)
    items = data.count(b"[") + data.count(b"{") + data.count(b",")
    if items > max_items:
        raise CorruptModelError(
            f"{where} holds about {items:,} JSON elements, over the {max_items:,} limit; refused"
        )
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:  # json's C scanner stops at the interpreter's recursion limit
        raise CorruptModelError(
            f"{where} nests JSON more than about {sys.getrecursionlimit():,} levels deep; refused"
        ) from None
    except ValueError as error:  # also integers beyond Python's digit limit
        raise CorruptModelError(f"{where} is not valid JSON ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
