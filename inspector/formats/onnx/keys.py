"""Names that tie a reader's tensors to bytes in the file: the keys of per-direction views of a
stacked ONNX W/R/B (so `compare` can read a view's values back), and the external data file a
tensor's `location` names, kept inside the model's folder (ONNX external data spec: a path
relative to the model file)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inspector.formats.source import Source

# A per-direction view of a stacked W/R/B is keyed `base[d]`, a bias half `base[d][:h]` (Wb) or
# `base[d][h:]` (Rb): `rnninspect compare` reads the values back through `split_view_key`.
_VIEW_SUFFIX = re.compile(r"\[(\d+)\](?:\[(?::(\d+)|(\d+):)\])?$")


@dataclass(frozen=True)
class View:
    """Where a view sits in its stacked tensor: direction `direction` along axis 0, then
    (for a bias half) elements [start, stop) of the last axis, stop None meaning the end."""

    base: str
    direction: int
    start: int = 0
    stop: int | None = None


def view_key(base: str, direction: int, part: int | None = None, half: int = 0) -> str:
    if part is None:
        return f"{base}[{direction}]"
    return f"{base}[{direction}][:{half}]" if part == 0 else f"{base}[{direction}][{half}:]"


def split_view_key(key: str) -> View | None:
    """The view a key made by `view_key` names, or None for a whole tensor's key."""
    found = _VIEW_SUFFIX.search(key)
    if found is None:
        return None
    direction, stop, start = found.groups()
    base = key[: found.start()]
    if stop is not None:
        return View(base, int(direction), 0, int(stop))
    return View(base, int(direction), int(start) if start is not None else 0, None)


def external_file(base: Source, location: str) -> Source | None:
    """The external data file `location` names inside the model's folder `base`, or None when
    it points outside it (absolute, drive-letter, `..`, or a link leading out)."""
    parts = re.split(r"[\\/]", location)
    if (
        location.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", location) is not None
        or ".." in parts
        or "\x00" in location  # no file has such a name; the OS would refuse it anyway
    ):
        return None
    target = base / location
    return target if target.inside() else None
