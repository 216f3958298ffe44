"""Many files at once (`--jobs N`): N forked lanes, results in input order.

Lane k handles items k, k+N, k+2N, ... one after the other, exactly as a one-lane run would
(each lane runs under its own per-file bounds, see `inspector.cli.supervise`), and sends each result
back on its own pipe as soon as it has it: a frame of (item index, payload length) followed by
the pickled result. The parent takes the results in input order, each from the pipe of the lane
that holds it, and hands each on before it reads the next: it keeps no result it has passed on,
and a lane that runs ahead waits on its full pipe (a pipe holds about a megabyte, many small
results), so the command's memory does not grow with the number of files. Items are dealt out
in turn rather than claimed from a queue so that which lane reads which file never depends on
timing. The lanes are forked before any result arrives: the workers they fork in turn never
inherit what the command has accumulated.

Results come from our own lanes, but a lane has parsed a stranger's file: the parent rebuilds
only rnninspect's own classes and plain builtins (`supervise.rebuild`), never calls anything
else, and refuses a frame longer than the bound it was given.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import struct
import sys
from collections.abc import Callable, Generator, Sequence
from typing import NoReturn, TypeVar, cast

from inspector.cli.supervise import (
    die_with_parent,
    flush_streams,
    fork_worker,
    kill_worker,
    rebuild,
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
    max_result: int = 1 << 30,
) -> Generator[R, None, None]:
    """The result of every item, in input order, each as soon as it and every one before it
    have arrived. `lane(indices, send)` runs in a forked lane: it handles the items at
    `indices`, calls `send(index, result)` for each and returns the lane's exit code (nonzero:
    it stopped early). Raises `LaneFailed` (after stopping the other lanes) when a lane stops
    early or sends a frame of more than `max_result` bytes; closing the generator early stops
    the lanes."""
    count = min(jobs, len(items))
    flush_streams()
    lanes: list[_Lane] = []
    parent = os.getpid()
    try:
        for number in range(count):
            read_fd, write_fd = os.pipe()
            _widen(write_fd)
            pid = fork_worker()
            if pid == 0:  # a lane, which dies with the command (no orphan keeps reading)
                die_with_parent(parent)
                os.close(read_fd)
                for other in lanes:
                    os.close(other.fd)
                _run_lane(lane, range(number, len(items), count), write_fd)
            os.close(write_fd)
            lanes.append(_Lane(read_fd, pid, max_result))
        for index in range(len(items)):
            result = cast(R, lanes[index % count].take(index))
            if index == len(items) - 1:  # every lane has sent all: each must end, and end well
                for each in lanes:
                    each.finish()
            yield result
    finally:
        for each in lanes:
            each.close()


def _widen(fd: int) -> None:
    """Let a lane run ahead by a megabyte of results (Linux pipes hold 64 KiB by default)."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)


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


class _Lane:
    """One lane's pipe, read as the results are taken: frames that arrive before their turn
    (a lane may send its items in any order) wait in `early`."""

    def __init__(self, fd: int, pid: int, max_result: int) -> None:
        self.fd = fd
        self.pid = pid
        self.max_result = max_result
        self.early: dict[int, object] = {}
        self.reaped = False

    def take(self, index: int) -> object:
        """The result for `index`, reading frames until it arrives."""
        while index not in self.early:
            head = self._read(_FRAME.size)
            if head is None:
                self._failed("before sending all its results")
            got, length = _FRAME.unpack(head)
            if length > self.max_result:
                raise LaneFailed(
                    f"a lane sent a result of {length:,} bytes, over the {self.max_result:,} "
                    "bytes a result may take"
                )
            payload = self._read(length)
            if payload is None:
                self._failed("in the middle of a result")
            self.early[got] = _load(payload)
        return self.early.pop(index)

    def finish(self) -> None:
        """After the last result: the lane must end, and end well."""
        if self._read(1) is not None:
            raise LaneFailed("a lane sent more results than it was given items")
        code = self._reap()
        if code > 0:
            raise LaneFailed(f"a lane stopped with exit code {code}", code, reported=True)
        if code < 0:
            raise LaneFailed(f"a lane died (status {code}) after its results")

    def _read(self, size: int) -> bytearray | None:
        """Exactly `size` bytes, read into one buffer (linear in `size`); None at the end of
        the pipe."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            count = os.readv(self.fd, [view[got : got + (1 << 20)]])
            if not count:
                return None
            got += count
        return buffer

    def _failed(self, why: str) -> NoReturn:
        """The pipe ended early: a lane that stopped with a code of its own has said why on
        stderr (a bound it hit); any other end is a lane that died."""
        code = self._reap()
        if code > 0:
            raise LaneFailed(f"a lane stopped with exit code {code}", code, reported=True)
        raise LaneFailed(f"a lane died (status {code}) {why}")

    def _reap(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if not self.reaped:
            kill_worker(self.pid)
            self.reaped = True


def _load(data: bytearray) -> object:
    try:
        return rebuild(data)
    except pickle.UnpicklingError as error:
        raise LaneFailed(f"a lane's result cannot be rebuilt ({error})") from None
