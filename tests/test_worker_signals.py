"""Ctrl-C in a terminal signals the whole process group: the command and every worker and lane
it forked. Only the command answers it (exit 130, one clean stderr); a child must neither take
it at fork (logging's after-fork hook printed "Exception ignored ... KeyboardInterrupt" on the
user's terminal) nor end on it (a worker's status read as a crash). Every fork in inspector/
goes through supervise.fork_worker, which blocks SIGINT across the fork and ignores it in the
child; each kind of worker is checked here by a task that signals itself."""

from __future__ import annotations

import ast
import os
import signal
from collections.abc import Callable, Sequence

from conftest import ROOT
from inspector.cli.lanes import run_lanes
from inspector.cli.supervise import Limits, each_isolated, isolated, run_bounded

LIMITS = Limits(cpu_seconds=30, memory_bytes=1 << 31)
_AT_FORK: list[bool] = []  # in each child: was SIGINT blocked while the after-fork hooks ran


def _record_at_fork() -> None:
    _AT_FORK[:] = [signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])]


os.register_at_fork(after_in_child=_record_at_fork)


def _ctrl_c_in_child() -> tuple[bool, bool, bool]:
    """In a child: (SIGINT blocked at fork, SIGINT ignored, survived a SIGINT to itself)."""
    os.kill(os.getpid(), signal.SIGINT)
    return (
        _AT_FORK == [True],
        signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
        True,
    )


def test_every_fork_in_inspector_is_fork_worker() -> None:
    forks = []
    for path in sorted((ROOT / "inspector").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Attribute) and node.attr in ("fork", "forkpty"):
                    forks.append((path.name, function.name))
    assert forks == [("supervise.py", "fork_worker")]


def test_an_isolated_worker_ignores_ctrl_c() -> None:
    assert isolated(_ctrl_c_in_child, "task", LIMITS) == (True, True, True)


def test_a_reused_worker_ignores_ctrl_c() -> None:
    results = list(each_isolated(3, lambda index: _ctrl_c_in_child(), str, LIMITS))
    assert results == [(True, True, True)] * 3


def test_a_bounded_command_ignores_ctrl_c_in_its_worker() -> None:
    assert (
        run_bounded(lambda started: 0 if _ctrl_c_in_child() == (True, True, True) else 3, LIMITS)
        == 0
    )


def test_a_lane_ignores_ctrl_c() -> None:
    def lane(indices: Sequence[int], send: Callable[[int, object], None]) -> int:
        for index in indices:
            send(index, _ctrl_c_in_child())
        return 0

    assert list(run_lanes([0, 1, 2], lane, 2)) == [(True, True, True)] * 3
