"""Many files at once (`--jobs N`): N forked lanes, results in input order.

Lane k handles items k, k+N, k+2N, ... one after the other, exactly as a one-lane run would
(each lane runs under its own per-file bounds, see `inspector.cli.supervise`), and sends each result
back on its own pipe as soon as it has it: a frame of (item index, payload length) followed by
the pickled result. The parent waits on all pipes at once and files each result under its
index, so the output is in input order whatever finishes first. Items are dealt out in turn
rather than claimed from a queue so that which lane reads which file never depends on timing.

Results come from our own lanes, but a lane has parsed a stranger's file: the parent rebuilds
only rnninspect's own classes and plain builtins, and never calls anything else.
"""

from __future__ import annotations

import io
import os
import pickle
import select
import struct
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from inspector.cli.supervise import (
    OwnUnpickler,
    die_with_parent,
    flush_streams,
    fork_worker,
    kill_worker,
)

T = TypeVar("T")
R = TypeVar("R")

_FRAME = struct.Struct("<IQ")  # item index, payload bytes


class LaneFailed(Exception):
    """A lane stopped before sending all its results, or sent one that cannot be rebuilt.
    `code` is the exit code to leave with; `reported`: the lane already said why on stderr
    (a bound it hit)."""

    def __init__(self, message: str, code: int = 2, reported: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.reported = reported


def available() -> bool:
    """Lanes fork, and write nothing themselves: like the bounded worker, they are used only
    where the OS forks and stdout and stderr are real files (not an in-process test runner's
    buffers, which a forked lane could not share)."""
    if not hasattr(os, "fork"):
        return False
    try:
        sys.stdout.fileno()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def run_lanes(
    items: Sequence[T],
    lane: Callable[[Sequence[int], Callable[[int, R], None]], int],
    jobs: int,
    done: Callable[[int, R], None] = lambda index, result: None,
) -> list[R]:
    """Results of every item, in input order. `lane(indices, send)` runs in a forked lane: it
    handles the items at `indices` in that order, calls `send(index, result)` for each and
    returns the lane's exit code (nonzero: it stopped early). `done(index, result)` is called in
    this process as each result arrives. Raises `LaneFailed` (after stopping the other lanes)
    when a lane stops early."""
    count = min(jobs, len(items))
    flush_streams()
    lanes: dict[int, tuple[int, _Reader]] = {}  # read fd -> (pid, frame reader)
    parent = os.getpid()
    reaped: set[int] = set()
    try:
        for number in range(count):
            read_fd, write_fd = os.pipe()
            pid = fork_worker()
            if pid == 0:  # a lane, which dies with the command (no orphan keeps reading)
                die_with_parent(parent)
                os.close(read_fd)
                for other in lanes:
                    os.close(other)
                _run_lane(lane, range(number, len(items), count), write_fd)
            os.close(write_fd)
            lanes[read_fd] = (pid, _Reader())
        results: dict[int, object] = {}
        _collect(lanes, reaped, results, lambda index, result: done(index, cast(R, result)))
    except BaseException:
        for pid, _ in lanes.values():
            if pid not in reaped:
                kill_worker(pid)
        raise
    finally:
        for read_fd in lanes:
            os.close(read_fd)
    if len(results) != len(items):
        raise LaneFailed(f"lanes sent {len(results)} results for {len(items)} items")
    return [cast(R, results[index]) for index in range(len(items))]


def _run_lane(
    lane: Callable[[Sequence[int], Callable[[int, R], None]], int],
    indices: Sequence[int],
    write_fd: int,
) -> None:
    code = 2
    try:
        code = lane(indices, lambda index, result: _send(write_fd, index, result))
    except SystemExit as stopped:
        code = stopped.code if isinstance(stopped.code, int) else 2
    except BaseException:
        code = 2
    finally:
        flush_streams()
        os._exit(code)


def _send(write_fd: int, index: int, result: object) -> None:
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_FRAME.pack(index, len(payload)) + payload)
    while view:
        view = view[os.write(write_fd, view) :]


class _Reader:
    """Frames as they arrive on one lane's pipe."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, object]]:
        self.pending += chunk
        frames: list[tuple[int, object]] = []
        while len(self.pending) >= _FRAME.size:
            index, length = _FRAME.unpack_from(self.pending)
            end = _FRAME.size + length
            if len(self.pending) < end:
                break
            frames.append((index, _load(bytes(self.pending[_FRAME.size : end]))))
            del self.pending[:end]
        return frames


def _collect(
    lanes: dict[int, tuple[int, _Reader]],
    reaped: set[int],
    results: dict[int, object],
    done: Callable[[int, object], None],
) -> None:
    open_fds = set(lanes)
    while open_fds:
        ready, _, _ = select.select(sorted(open_fds), [], [])
        for read_fd in ready:
            pid, reader = lanes[read_fd]
            chunk = os.read(read_fd, 1 << 16)
            if chunk:
                for index, result in reader.feed(chunk):
                    results[index] = result
                    done(index, result)
                continue
            open_fds.discard(read_fd)
            _, status = os.waitpid(pid, 0)
            reaped.add(pid)
            code = os.waitstatus_to_exitcode(status)
            if code > 0:
                raise LaneFailed(f"a lane stopped with exit code {code}", code, reported=True)
            if code < 0 or reader.pending:
                raise LaneFailed(f"a lane died (status {code}) before sending all its results")


def _load(data: bytes) -> object:
    try:
        return OwnUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as error:
        raise LaneFailed(f"a lane's result cannot be rebuilt ({error})") from None
