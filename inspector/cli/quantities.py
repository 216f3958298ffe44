"""Human forms of counts and byte sizes on the command line: `1.5M`, `200k`, `50MB`, `2GiB`.

Decimal prefixes (k, M, G, T, with or without B) are powers of 1000, binary prefixes (Ki, Mi,
Gi, Ti, with or without B) powers of 1024, as IEC 80000-13 defines them. A count takes the
decimal prefixes only; `B` after a count means billion (`7B` parameters).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from inspector.errors import UsageError

_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}

COUNT_SUFFIXES: Mapping[str, int] = MappingProxyType({**_DECIMAL, "b": 10**9})
SIZE_SUFFIXES: Mapping[str, int] = MappingProxyType(
    {
        **{prefix: factor for prefix, factor in _DECIMAL.items()},
        **{prefix + "b": factor for prefix, factor in _DECIMAL.items()},
        **_BINARY,
        **{prefix + "b": factor for prefix, factor in _BINARY.items()},
    }
)

_FORM = re.compile(
    r"^\s*(?P<number>[0-9][0-9_,]*(?:\.[0-9]+)?|\.[0-9]+)\s*(?P<suffix>[a-zA-Z]*)\s*$"
)


def parse_count(text: str, option: str = "a count") -> int:
    """`1.5M` -> 1500000, `200k` -> 200000, `1_000` -> 1000."""
    return _parse(text, COUNT_SUFFIXES, option, "a parameter count such as 250000, 200k or 1.5M")


def parse_size(text: str, option: str = "a size") -> int:
    """`50MB` -> 50000000, `2GiB` -> 2147483648, `200k` -> 200000 bytes."""
    return _parse(text, SIZE_SUFFIXES, option, "a size such as 800000, 50MB, 1.5GB or 2GiB")


def _parse(text: str, suffixes: Mapping[str, int], option: str, expected: str) -> int:
    match = _FORM.match(text)
    factor = suffixes.get(match.group("suffix").lower()) if match else None
    if match is None or factor is None:
        raise UsageError(f"{option}: expected {expected}, found '{text}'")
    whole, _, fraction = match.group("number").replace("_", "").replace(",", "").partition(".")
    try:  # exact in integers (no float, and no decimal module to import at start-up)
        scaled = (int(whole or "0") * 10 ** len(fraction) + int(fraction or "0")) * factor
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise UsageError(f"{option}: expected {expected}, found '{text}'") from None
    # Measured counts and byte sizes are whole numbers, so `measured <= limit` holds exactly
    # when `measured <= floor(limit)`: 1.3MiB allows 1,363,148 bytes.
    return scaled // 10 ** len(fraction)
