"""Counts and text a file supplies, bounded where they are read (issue 23).

A shape, a length or a number of entries is a claim the file makes: a crafted file claims 64
dimensions of 2^62, a 4,000-digit dimension, a million entries in 700 bytes; a name can be a
mebibyte long. Readers check every count with `checked_shape` / `checked_count` where they read
it, so a bad one is one line and exit code 2 for that file alone, never an OverflowError or
Python's int-to-text limit ("Exceeds the limit (4300 digits)") further down; `quoted` writes a
count from a file into a message. `model.bounded` shortens every text a report keeps
(`shortened`, NAME_LIMIT, TEXT_LIMIT). No I/O: part of the data model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from inspector.errors import CorruptModelError

# Text a file supplies is kept to this many characters in a report (issue 23: a 1 MiB
# state-dict key padded every row of a table to 527 MB of output). Real names stay far below:
# the longest among the fixtures and the real-world files is under 200 characters.
NAME_LIMIT = 256  # a name, a type, a dtype, a producer: what a table cell shows
TEXT_LIMIT = 1024  # a warning, a note, a detail, a reason: a sentence that may quote names
# No framework stores a tensor of 2^63 elements or more: PyTorch's numel, ONNX dims and TF
# shapes are int64. A count at or beyond it is a damaged or crafted file, never a model, and
# a bound on every count keeps the arithmetic downstream (floats, int-to-text) in range.
MAX_ELEMENTS = 1 << 63
# Units and input widths at or beyond this describe no layer that can exist (a crafted
# 4,000-digit `units`): the formula and the compute figures are not derived from them.
MAX_WIDTH = 1 << 31


def shortened(text: str, limit: int = NAME_LIMIT) -> str:
    """`text` itself when it fits in `limit` characters; else its beginning, its full length and
    a short digest of the whole (two long names that share a beginning stay apart), in exactly
    `limit` characters, so shortening it again changes nothing."""
    if len(text) <= limit:
        return text
    import hashlib  # only for text this long: every module is start-up time (issue 16)

    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    tail = f"... ({len(text):,} characters, #{digest})"
    return text[: max(limit - len(tail), 0)] + tail


def quoted(value: int, *, grouped: bool = True) -> str:
    """A count from a file for a message: exact while it is short (`grouped`: with thousands
    separators), else its order of magnitude (`about 10^4,000`): formatting a 5,000-digit int
    raises ValueError (Python's int-to-text limit), and a thousand digits say nothing to a
    reader."""
    if abs(value).bit_length() <= 64:
        return f"{value:,}" if grouped else str(value)
    sign = "-" if value < 0 else ""
    return f"{sign}about 10^{int((abs(value).bit_length() - 1) * 0.30103):,}"


def plausible_width(value: int | None) -> int | None:
    """A layer's width (units, input width) as something to compute with: the value when a
    layer can have it (0 < value < MAX_WIDTH), else None, unknown. A file's `units` of 4,300
    digits is kept in the model for the check to quote, but a product of it (`4·units`) is
    beyond Python's int-to-text limit, so no split, diagram or formula is derived from it."""
    return value if value is not None and 0 < value < MAX_WIDTH else None


def checked_shape(
    dims: Iterable[object], what: str, *, bits: int = 8, room: int | None = None
) -> tuple[int, ...]:
    """The range check of a count a file supplies (issue 23), which every reader calls where it
    reads a tensor's shape: `dims` as a shape, every dimension a whole number in [0, 2^63),
    their product (the elements) below 2^63 (MAX_ELEMENTS), and, where `room` is given, the
    elements' `bits` fitting in `room` bytes: what the file (or the member or record holding the
    tensor) has for its data. `room` None: the data is not in the file and the file says so (a
    view of another tensor such as a stride-0 torch view, ONNX external data, a structure-only
    file). `model.Tensor` checks the absolute bound again on every shape it is given.

    `what` names the tensor in the message ("safetensors tensor 'rnn.weight_ih_l0'"). Raises
    CorruptModelError: one line (exit code 2 for that file alone), which never prints a huge
    number whole, so a bad count never becomes an OverflowError or Python's int-to-text limit
    ("Exceeds the limit (4300 digits)") further down."""
    shape = tuple(dims)
    for dim in shape:
        if type(dim) is not int or not 0 <= dim < MAX_ELEMENTS:
            found = (
                f"a dimension of type {type(dim).__name__}"
                if type(dim) is not int
                else f"a negative dimension {quoted(dim)}"
                if dim < 0
                else f"a dimension of {quoted(dim)}"
            )
            raise CorruptModelError(
                f"{what} has {found} in its shape: no tensor has that size; the file is "
                "damaged or crafted"
            )
    elements = math.prod(shape)  # type: ignore[arg-type]
    if elements >= MAX_ELEMENTS:
        raise CorruptModelError(
            f"{what} of {len(shape)} dimensions holds {quoted(elements)} elements, more than "
            "any framework stores (2^63): the file is damaged or crafted"
        )
    needed = -(-elements * bits // 8)
    if room is not None and needed > room:
        raise CorruptModelError(
            f"{what} declares {quoted(elements)} elements ({quoted(needed)} bytes) but the file "
            f"has {quoted(room)} bytes for it: the file is damaged or crafted"
        )
    return shape  # type: ignore[return-value]


def checked_count(value: object, what: str, *, most: int) -> int:
    """A count or a length a file supplies (entries, a string's bytes, a version number),
    checked where it is read: a whole number in [0, `most`]. Raises CorruptModelError with one
    line otherwise."""
    if type(value) is not int or not 0 <= value <= most:
        found = quoted(value) if type(value) is int else f"a {type(value).__name__}"
        raise CorruptModelError(
            f"{what} is {found}, expected a count of at most {most:,}: the file is damaged "
            "or crafted"
        )
    return value
