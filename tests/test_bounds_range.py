"""Every bound the command line accepts arms in the worker: setrlimit takes signed 64-bit
values, so a --max-memory or --timeout beyond them (`99999999TiB`, `inf`, `1e300`) means no
bound at all, never a worker that dies arming it ("the reader stopped with exit code 2")."""

from __future__ import annotations

import math
import resource

import pytest

from conftest import FIXTURES, run_main
from inspector.cli.supervise import Limits, isolated

SIMPLE = str(FIXTURES / "keras2/simplernn_u1_f1.h5")


def _armed() -> tuple[int, int]:
    return (
        resource.getrlimit(resource.RLIMIT_AS)[0],
        resource.getrlimit(resource.RLIMIT_CPU)[0],
    )


@pytest.mark.parametrize(
    ("cpu_seconds", "memory_bytes"),
    [(math.inf, 2**63), (1e300, 2**64), (2.0**63, 2**63 - 1), (5, 10**30)],
)
def test_bounds_beyond_what_setrlimit_takes_are_no_bound(
    cpu_seconds: float, memory_bytes: int
) -> None:
    memory, cpu = isolated(_armed, "task", Limits(cpu_seconds, memory_bytes))
    assert memory in (resource.RLIM_INFINITY, 2**63 - 1)
    if cpu_seconds > 2**62:
        assert cpu == resource.RLIM_INFINITY
    else:
        assert 0 < cpu < 2**62


def test_an_ordinary_bound_is_still_armed() -> None:
    memory, cpu = isolated(_armed, "task", Limits(7, 1 << 31))
    assert memory == 1 << 31 and 7 <= cpu < 7 + 3600


@pytest.mark.parametrize(
    "options",
    [
        ["--max-memory", "99999999TiB"],
        ["--max-memory", str(2**64)],
        ["--timeout", "inf"],  # typer's float (the fast path leaves it to typer)
        ["--timeout", "1e300"],
        ["--timeout", "999999999999"],  # the fast path's
    ],
)
def test_the_command_reads_under_any_bound_it_accepts(options: list[str]) -> None:
    for typer_only in (False, True):
        ran = run_main([SIMPLE, "-q", *options], typer_only=typer_only)
        assert (ran.code, ran.stderr) == (0, ""), (options, typer_only)
