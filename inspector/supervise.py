"""A time bound per file that holds even when a library loops inside C code.

A damaged HDF5 file can send libhdf5 into a loop that never returns to Python, holding the GIL,
so neither signals nor threads can stop it in-process. The CLI therefore runs its work in a
forked child that reports each file it starts on a pipe; the parent waits, and if one file takes
longer than the limit it kills the child and says so in one line (exit code 2). The child inherits
stdout and stderr, so output is written exactly as without supervision.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections.abc import Callable

Started = Callable[[str], None]
EXIT_UNREADABLE = 2


def _has_real_streams() -> bool:
    try:
        sys.stdout.fileno()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def run_bounded(work: Callable[[Started], int], seconds: float) -> int:
    """Run `work(started)`, where `started(label)` marks the start of the next file, giving
    each file at most `seconds`. Returns the exit code of the work."""
    if seconds <= 0 or not hasattr(os, "fork") or not _has_real_streams():
        return work(lambda label: None)
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child does the work
        os.close(read_fd)
        code = EXIT_UNREADABLE
        try:
            code = work(lambda label: _report_start(write_fd, label))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else EXIT_UNREADABLE
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_fd)
    try:
        return _wait(pid, read_fd, seconds)
    except KeyboardInterrupt:
        _kill(pid)
        if sys.stderr.isatty():  # the child may have been killed mid-way through a progress bar
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        raise
    finally:
        os.close(read_fd)


def _report_start(write_fd: int, label: str) -> None:
    os.write(write_fd, label.replace("\n", " ").encode("utf-8", "replace") + b"\n")


def _wait(pid: int, read_fd: int, seconds: float) -> int:
    current = "input"
    pending = b""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill(pid)
            sys.stdout.flush()
            print(
                f"rnninspect: error: {current}: gave up after {seconds:g} s: reading this file "
                "does not finish (a damaged file can make the HDF5 library loop); "
                "raise --timeout if the file is merely huge",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break  # the child closed the pipe: it is exiting
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if lines:
            current = lines[-1].decode("utf-8", "replace")
            deadline = time.monotonic() + seconds
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal (out of memory, a crash inside a library)
        print(f"rnninspect: error: {current}: the reader died with signal {-code}", file=sys.stderr)
        return EXIT_UNREADABLE
    return code


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
