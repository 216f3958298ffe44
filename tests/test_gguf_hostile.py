"""Crafted GGUF files, one per kind of attack on a header (huge counts, strings and arrays,
nesting, dimensions whose product overflows, offsets past the end, overlapping or misaligned,
unknown types, duplicates): each is one line on stderr and exit 2, read in bounded memory and
time. Then a generator of random headers: whatever the fields hold, the reader either reads the
file or refuses it with an InspectorError; `pytest -m fuzz` runs the long campaign."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

import crafted
import pytest
from crafted import GGUF

from conftest import run_main
from inspector.errors import InspectorError
from inspector.formats.gguf.container import (
    MAX_ITEMS,
    MAX_KEPT_ARRAY,
    MAX_KEPT_ELEMENTS,
    read_container,
)
from inspector.formats.source import LocalSource

BIG = 1 << 62


def _nested(depth: int) -> bytes:
    """An array of arrays `depth` deep, built from the inside out."""
    g = GGUF()
    inner = g.pack("I", 4) + g.length(0)
    for _ in range(depth - 1):
        inner = g.pack("I", 9) + g.length(1) + inner
    return g.string("deep") + g.pack("I", 9) + inner


def _f32(name: str = "w", dims: tuple[int, ...] = (4,), offset: int = 0) -> GGUF:
    return GGUF().kv("general.architecture", 8, "llama").tensor(name, list(dims), 0, offset)


# (kind, bytes, what the one line says)
CASES: list[tuple[str, Callable[[], bytes], str]] = [
    ("tensor-count", lambda: GGUF().build(counts=(BIG, 0)), "entries (tensor count)"),
    ("key-count", lambda: GGUF().build(counts=(0, BIG)), "entries (key/value count)"),
    (
        "key-length",
        lambda: GGUF().raw_kv(GGUF().length(BIG) + b"k").build(counts=(0, 1)),
        "metadata key of",
    ),
    (
        "string-length",
        lambda: (
            GGUF().raw_kv(GGUF().string("k") + struct.pack("<I", 8) + GGUF().length(BIG)).build()
        ),
        "needs 4,611,686,018,427,387,904 bytes",
    ),
    (
        "array-length",
        lambda: (
            GGUF()
            .raw_kv(GGUF().string("k") + struct.pack("<II", 9, 0) + GGUF().length(BIG))
            .build()
        ),
        "array 'k'",
    ),
    (
        "string-array-length",
        lambda: (
            GGUF()
            .raw_kv(GGUF().string("k") + struct.pack("<II", 9, 8) + GGUF().length(BIG))
            .build()
        ),
        "array 'k'",
    ),
    ("nesting", lambda: GGUF().raw_kv(_nested(100)).build(), "nests arrays"),
    (
        "value-type",
        lambda: GGUF().raw_kv(GGUF().string("k") + struct.pack("<IB", 13, 1)).build(),
        "value type 13",
    ),
    ("duplicate-key", lambda: GGUF().kv("k", 4, 1).kv("k", 4, 2).build(), "appears twice"),
    ("alignment-not-power", lambda: GGUF().kv("general.alignment", 4, 48).build(), "power of two"),
    ("alignment-type", lambda: GGUF().kv("general.alignment", 10, 64).build(), "UINT32"),
    ("alignment-zero", lambda: GGUF().kv("general.alignment", 4, 0).build(), "power of two"),
    ("name-length", lambda: _f32("n" * 70_000).build(bytes(16)), "name of 70,000 bytes"),
    ("n-dims", lambda: GGUF().tensor("w", [1] * 5).build(bytes(32)), "5 dimensions"),
    (
        "dims-overflow",
        lambda: GGUF().tensor("w", [1 << 32, 1 << 32]).build(bytes(32)),
        "beyond what ggml can address",
    ),
    ("dim-negative", lambda: GGUF().tensor("w", [(1 << 64) - 1]).build(bytes(32)), "2^63"),
    ("unknown-type", lambda: GGUF().tensor("w", [4], 99).build(bytes(32)), "unknown ggml type 99"),
    ("removed-type", lambda: GGUF().tensor("w", [32], 31).build(bytes(32)), "Q4_0_4_4"),
    ("partial-block", lambda: GGUF().tensor("w", [33], 8).build(bytes(64)), "not a whole number"),
    ("offset-past-end", lambda: _f32(offset=BIG).build(bytes(16)), "the file ends at byte"),
    ("data-past-end", lambda: _f32(dims=(1 << 40,)).build(bytes(16)), "the file ends at byte"),
    (
        "misaligned",
        lambda: _f32(offset=4).build(bytes(32)),
        "not a multiple of the file's alignment",
    ),
    (
        "overlap",
        lambda: _f32().tensor("v", [8], 0, 0).build(bytes(64)),
        "overlap",
    ),
    ("duplicate-tensor", lambda: _f32().tensor("w", [4], 0, 32).build(bytes(64)), "appears twice"),
    ("version-4", lambda: GGUF(version=4).build(), "GGUF version 4"),
    ("version-0", lambda: GGUF(version=0).build(), "GGUF version 0"),
    ("truncated-kv", lambda: GGUF().kv("general.name", 8, "x" * 100).build()[:60], "truncated"),
    ("magic-only", lambda: b"GGUF", "too short"),
    ("wrong-magic", lambda: b"GGUX" + bytes(60), "not a GGUF file"),
]


@pytest.mark.parametrize(("kind", "build", "says"), CASES, ids=[c[0] for c in CASES])
def test_crafted_header_is_one_line_and_exit_2(
    tmp_path: Path, kind: str, build: Callable[[], bytes], says: str
) -> None:
    path = tmp_path / f"{kind}.gguf"
    path.write_bytes(build())
    ran = run_main([str(path), "--timeout", "0"])
    assert ran.code == 2, (ran.stdout, ran.stderr)
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert "internal error" not in lines[0]
    assert says in lines[0], lines[0]


def test_more_strings_than_the_cap_are_refused_before_walking(tmp_path: Path) -> None:
    path = tmp_path / "strings.gguf"
    crafted.gguf_many_strings(path)
    with pytest.raises(InspectorError, match=f"more than {MAX_ITEMS:,} strings"):
        read_container(LocalSource(path))


def test_metadata_kept_for_analysis_is_bounded(tmp_path: Path) -> None:
    """Many arrays each short enough to keep: past the file's budget they are walked over."""
    g = GGUF()
    array = g.pack("I", 4) + g.length(MAX_KEPT_ARRAY) + bytes(4 * MAX_KEPT_ARRAY)
    keys = MAX_KEPT_ELEMENTS // MAX_KEPT_ARRAY + 8
    for index in range(keys):
        g.raw_kv(g.string(f"a{index}") + g.pack("I", 9) + array)
    path = tmp_path / "arrays.gguf"
    path.write_bytes(g.build())
    kept = read_container(LocalSource(path)).metadata
    assert sum(len(v) for v in kept.values() if isinstance(v, tuple)) <= MAX_KEPT_ELEMENTS
    assert len(kept) == MAX_KEPT_ELEMENTS // MAX_KEPT_ARRAY < keys


def test_names_with_control_characters_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "escapes.gguf"
    crafted.gguf_escapes(path)
    for fmt in ("table", "markdown", "csv", "json"):
        ran = run_main([str(path), "--format", fmt])
        assert ran.code == 0, ran.stderr
        for hidden in ("\x1b", "\x07", "\r", "\u202e"):
            assert hidden not in ran.stdout, (fmt, hidden)


# --- random headers ------------------------------------------------------------------------


def _random_header(rng: random.Random) -> bytes:
    """A header whose fields are drawn from values that break careless readers: zero, one, the
    edges of 32 and 64 bits, lengths just past the file."""
    edges = [
        0,
        1,
        2,
        4,
        31,
        32,
        33,
        255,
        256,
        (1 << 31) - 1,
        1 << 32,
        (1 << 63) - 1,
        1 << 63,
        (1 << 64) - 1,
    ]
    version = rng.choice([1, 2, 3, 3, 3])
    g = GGUF(version, rng.choice("<>"))
    wide = "Q" if version >= 2 else "I"
    limit = (1 << 64) - 1 if version >= 2 else (1 << 32) - 1

    def n() -> int:
        return min(rng.choice([*edges, rng.randrange(0, 64)]), limit)

    for index in range(rng.randrange(0, 4)):
        kind = rng.choice([0, 4, 6, 7, 8, 9, 10, 12, 13, rng.randrange(0, 1 << 32)])
        key = g.string(f"k{index}")
        if kind == 8:
            g.raw_kv(key + g.pack("I", 8) + g.pack(wide, n()) + rng.randbytes(rng.randrange(8)))
        elif kind == 9:
            inner = rng.choice([0, 8, 9, 10, rng.randrange(0, 1 << 32)])
            g.raw_kv(key + g.pack("II", 9, inner) + g.pack(wide, n()) + rng.randbytes(16))
        else:
            g.raw_kv(key + g.pack("I", kind) + rng.randbytes(rng.choice([0, 1, 4, 8])))
    if rng.random() < 0.3:
        g.kv("general.alignment", 4, rng.choice([1, 16, 32, 48, 1 << 31]))
    for index in range(rng.randrange(0, 4)):
        dims = [n() for _ in range(rng.choice([0, 1, 2, 4, 5]))]
        kind = rng.choice([0, 1, 2, 8, 12, 30, 31, 99, rng.randrange(0, 1 << 32)])
        g.tensor(f"t{index % 3}", dims, kind, rng.choice([0, 32, 64, n()]))
    counts = (rng.choice([None, None, n()]), rng.choice([None, None, n()]))
    data = rng.randbytes(rng.choice([0, 16, 64, 4096]))
    raw = g.build(data, counts=counts)
    return raw[: rng.randrange(len(raw) + 1)] if rng.random() < 0.2 else raw


def _campaign(tmp_path: Path, cases: int, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "case.gguf"
    read = refused = 0
    for _ in range(cases):
        path.write_bytes(_random_header(rng))
        try:
            read_container(LocalSource(path))
            read += 1
        except InspectorError:
            refused += 1
    assert read + refused == cases
    assert refused > cases // 2  # the generator mostly makes broken files: it tests the checks


def test_random_headers_are_read_or_refused(tmp_path: Path) -> None:
    _campaign(tmp_path, 400, 20261207)


@pytest.mark.fuzz
def test_random_headers_long_campaign(tmp_path: Path) -> None:
    _campaign(tmp_path, 50_000, 20261208)
