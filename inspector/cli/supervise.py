"""Bounds on what one file may cost: CPU time, memory, and time blocked on a read.

A damaged HDF5 file can send libhdf5 into a loop that never returns to Python, holding the GIL,
and a crafted file can make any library allocate without end, so neither signals nor threads can
stop the work in-process. The CLI therefore reads each file in a forked worker that has:

- a CPU-time limit (RLIMIT_CPU, `--timeout` seconds): time the worker itself spends computing,
  so a busy machine never cuts off a small file; the kernel stops the worker when it is spent;
- an address-space limit (RLIMIT_AS, `--max-memory`, default 2 GiB): an allocation beyond it
  fails inside the worker, never on the machine;
- no core dumps (RLIMIT_CORE 0: nothing is written but what `--output` names);
- PR_SET_PDEATHSIG on Linux: the worker is killed when the command dies, so none outlives it;
- SIGINT ignored (`fork_worker`): Ctrl-C reaches the whole process group, and the command
  answers it and stops its workers; a worker printing its own KeyboardInterrupt would not.

The parent waits with a generous wall-clock bound (WALL_FACTOR times the CPU limit) for the
case where the worker uses no CPU at all: a read that blocks. Whatever ends a worker early is
turned into one line naming what happened (CPU spent, memory, blocked on I/O, a crash).

`isolated(task)` runs one file's work and sends its result back on a pipe, so a directory scan
goes on after a file that hit a bound. `each_isolated(count, task)` does the same for a sequence
of files in one worker reused from file to file (a fork per file cost ~10 ms of CPU): the CPU
bound is re-armed and the wall bound restarted at each file, and a fresh worker follows any
failure and every REUSE_FILES files. `run_bounded(work)` runs a whole command (`compare`) in
one worker that writes its own output, the bounds re-armed at each file it starts.
"""

from __future__ import annotations

import contextlib
import enum
import io
import math
import os
import pickle
import resource
import select
import signal
import struct
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Generic, TypeVar

from inspector.errors import InspectorError

Started = Callable[[str], None]
T = TypeVar("T")
EXIT_UNREADABLE = 2
DEFAULT_MEMORY = 2 * 1024**3
WALL_FACTOR = 10  # wall-clock seconds allowed per CPU second before a read counts as blocked
MIN_WALL_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1
REUSE_FILES = 64  # files one worker reads before a fresh one: bounds what a leak can accumulate
RESULT_SHARE = 32  # a worker's result may take 1/32 of --max-memory (see Limits.result_bytes)
RESULT_BYTES_PER_SECOND = 1 << 20  # and 1 MiB per CPU second of --timeout
MAX_RESULT_DEPTH = 32  # a report nests about 8 deep (outcome, report, model, layer, tensor, ...)


@dataclass(frozen=True)
class Limits:
    """What one file may cost. `cpu_seconds` 0: no worker, no bounds (`--timeout 0`)."""

    cpu_seconds: float
    memory_bytes: int = DEFAULT_MEMORY

    @property
    def enabled(self) -> bool:
        return self.cpu_seconds > 0 and hasattr(os, "fork")

    @property
    def wall_seconds(self) -> float:
        return max(WALL_FACTOR * self.cpu_seconds, MIN_WALL_SECONDS)

    @property
    def result_bytes(self) -> int:
        """The most a worker's result may take on the pipe. The command rebuilds, gates and
        renders it in about 13 times that much memory and about 0.3 s of CPU per megabyte (on
        the machine the README's benchmarks ran on): 1/32 of --max-memory and 1 MiB per second
        of --timeout keep the command within both bounds too, with room for a slower machine."""
        by_memory = self.memory_bytes // RESULT_SHARE
        by_time = self.cpu_seconds * RESULT_BYTES_PER_SECOND  # inf for --timeout inf
        return max(int(min(by_memory, by_time)), 1 << 20)


class BoundExceeded(InspectorError):
    """A worker was stopped: it spent its CPU time, its memory, blocked too long or crashed."""


class ResultTooLarge(InspectorError):
    """A file's report is larger than a worker may send (`Limits.result_bytes`); reading the
    file again in a fresh worker would give the same report, so it is not retried."""


@dataclass(frozen=True)
class _Raised(Generic[T]):
    """What a worker sends back: its result, or the one-line error it raised."""

    value: T | None = None
    error: InspectorError | None = None


def isolated(task: Callable[[], T], label: str, limits: Limits) -> T:
    """`task()` run in a bounded worker, its result returned here. An `InspectorError` the task
    raises is raised again here; a worker stopped by a bound raises `BoundExceeded`. The task
    must turn every other exception into its result or an `InspectorError` itself."""
    if not limits.enabled:
        return task()
    read_fd, write_fd = os.pipe()
    flush_streams()
    parent = os.getpid()
    pid = fork_worker()
    if pid == 0:
        os.close(read_fd)
        code = 0
        try:
            _confine(limits, parent)
            try:
                outcome: _Raised[T] = _Raised(value=task())
            except InspectorError as error:
                outcome = _Raised(error=error)
            data = _encode(outcome, label, limits)
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(data)
        except MemoryError:
            code = _MEMORY_EXIT
        except BaseException:
            code = EXIT_UNREADABLE
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        data, status, cpu = _collect(pid, read_fd, limits, limit=limits.result_bytes)
    finally:
        os.close(read_fd)
    if status == _TOO_LARGE:
        raise BoundExceeded(f"{label}: {_oversized(limits)}")
    if status == 0 and data:
        received = _load(data)
        if received.error is not None:
            raise received.error
        return received.value  # type: ignore[return-value]
    raise BoundExceeded(f"{label}: {_why(status, cpu, limits)}")


def each_isolated(
    count: int,
    task: Callable[[int], T],
    label: Callable[[int], str],
    limits: Limits,
    redo: Callable[[T], bool] = lambda result: False,
    meanwhile: Callable[[], None] | None = None,
    setup: Callable[[], None] | None = None,
) -> Generator[T | InspectorError, None, None]:
    """`task(0)`, ..., `task(count - 1)` in order, each under the bounds `isolated` gives one
    task, in a worker reused from task to task: yields each result, or the `InspectorError`
    that task raised or the `BoundExceeded` that stopped it. After a failure (a bound, a crash,
    a result refused) the next task gets a fresh worker. A task that failed (other than by
    spending its CPU or wall time, bounds a fresh worker re-arms alike), or whose result `redo`
    marks as a failure, in a worker that had run other tasks first is run again in a fresh
    worker, so what a task gives never depends on the tasks before it (memory they left behind
    counts against --max-memory). Tasks run only as the results are asked for. `meanwhile()`
    runs here once, while the worker runs the first task (the command prepares its output in
    the time it would spend waiting). `setup()` runs in each worker before its bounds are set
    (importing the reader a file's signature names: numpy's OpenBLAS cannot start under a
    small address-space limit); whatever it raises is left for the tasks to meet."""
    if not limits.enabled:
        for index in range(count):
            try:
                yield task(index)
            except InspectorError as error:
                yield error
            if meanwhile is not None:
                meanwhile()
                meanwhile = None
        return
    worker: _Worker | None = None
    try:
        for index in range(count):
            while True:
                if worker is None or worker.served >= REUSE_FILES:
                    if worker is not None:
                        worker.stop()
                    worker = _Worker(task, label, limits, setup)
                reused = worker.served > 0
                first, meanwhile = meanwhile, None  # once, whatever the first task gives
                try:
                    result: T | InspectorError = worker.run(index, label(index), first)
                    # a report's size does not depend on the files read before it
                    failed = not isinstance(result, ResultTooLarge) and (
                        isinstance(result, InspectorError) or redo(result)
                    )
                except BoundExceeded as stopped:
                    # the CPU and wall bounds are the same in a fresh worker: no second try
                    failed = not worker.timed_out
                    worker.stop()
                    worker, result = None, stopped
                if not (reused and failed):
                    break
                if worker is not None:  # read it again in a fresh worker
                    worker.stop()
                    worker = None
            yield result
    finally:
        if worker is not None:
            worker.stop()


_REQUEST = struct.Struct("<Q")  # task index
_REPLY = struct.Struct("<Qd")  # payload bytes, CPU seconds the worker has used


class _Worker(Generic[T]):
    """One forked worker running `task(index)` for each index it is sent (see `each_isolated`)."""

    def __init__(
        self,
        task: Callable[[int], T],
        label: Callable[[int], str],
        limits: Limits,
        setup: Callable[[], None] | None = None,
    ) -> None:
        self.limits = limits
        self.served = 0
        self.cpu = 0.0  # CPU the worker had used when it sent its last result
        self.timed_out = False  # it was stopped by the CPU or the wall-clock bound
        request_read, self.requests = os.pipe()
        self.replies, reply_write = os.pipe()
        flush_streams()
        parent = os.getpid()
        self.pid = fork_worker()
        if self.pid == 0:
            os.close(self.requests)
            os.close(self.replies)
            code = 0
            try:
                _confine(limits, parent, setup)
                _serve(task, label, request_read, reply_write, limits)
            except MemoryError:
                code = _MEMORY_EXIT
            except BaseException:
                code = EXIT_UNREADABLE
            finally:
                os._exit(code)
        os.close(request_read)
        os.close(reply_write)

    def run(
        self, index: int, label: str, meanwhile: Callable[[], None] | None = None
    ) -> T | InspectorError:
        """The task's result or the error it raised; `BoundExceeded` when the worker stopped
        (the caller then stops it) or its result was refused. `meanwhile()` runs here after
        the task is sent, before waiting for its result."""
        self.served += 1
        with contextlib.suppress(BrokenPipeError):  # a dead worker: its reply tells why
            os.write(self.requests, _REQUEST.pack(index))
        if meanwhile is not None:
            meanwhile()
        deadline = time.monotonic() + self.limits.wall_seconds
        head, got = _receive(self.replies, _REPLY.size, deadline)
        if got < _REPLY.size:  # no reply: the worker died, or it is still at work
            status, total = self._end(blocked=got < 0)
            self.timed_out = status in (_BLOCKED, -signal.SIGXCPU)
            raise BoundExceeded(f"{label}: {_why(status, total - self.cpu, self.limits)}")
        length, cpu = _REPLY.unpack(head)
        if length > self.limits.result_bytes:  # never allocated: a worker cannot send this
            self.stop()
            raise BoundExceeded(f"{label}: {_oversized(self.limits)}")
        data, got = _receive(self.replies, length, deadline)
        if got != length:  # the result stopped arriving: say so, not "blocked on I/O"
            status, total = self._end(blocked=got < 0)
            if status == _BLOCKED:
                raise BoundExceeded(
                    f"{label}: its result stopped arriving ({-got - 1:,} of {length:,} bytes "
                    f"after {self.limits.wall_seconds:g} s)"
                )
            raise BoundExceeded(f"{label}: {_why(status, total - self.cpu, self.limits)}")
        self.cpu = cpu
        received = _load(data)
        if received.error is not None:
            return received.error
        return received.value  # type: ignore[return-value]

    def _end(self, blocked: bool) -> tuple[int, float]:
        """Stop and reap the worker: (exit status, or _BLOCKED; CPU seconds it used)."""
        if blocked:
            cpu = _cpu_of(self.pid)
            kill_worker(self.pid)
            self.pid = 0
            return _BLOCKED, cpu
        _, status, usage = os.wait4(self.pid, 0)
        self.pid = 0
        return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime

    def stop(self) -> None:
        """Close the pipes and end the worker; a second call does nothing (a descriptor
        closed twice could be one opened meanwhile)."""
        for fd in (self.requests, self.replies):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.requests = self.replies = -1
        if self.pid:
            kill_worker(self.pid)
            self.pid = 0


def _serve(
    task: Callable[[int], T],
    label: Callable[[int], str],
    requests: int,
    replies: int,
    limits: Limits,
) -> None:
    """The worker's loop: run each task it is sent, the CPU bound re-armed first, until the
    parent closes the request pipe."""
    while True:
        head = b""
        while len(head) < _REQUEST.size:
            chunk = os.read(requests, _REQUEST.size - len(head))
            if not chunk:
                return
            head += chunk
        _arm_cpu(limits)
        (index,) = _REQUEST.unpack(head)
        try:
            outcome: _Raised[T] = _Raised(value=task(index))
        except InspectorError as error:
            outcome = _Raised(error=error)
        data = _encode(outcome, label(index), limits)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        view = memoryview(_REPLY.pack(len(data), usage.ru_utime + usage.ru_stime) + data)
        while view:
            view = view[os.write(replies, view) :]


def _encode(outcome: _Raised[T], label: str, limits: Limits) -> bytes:
    """The worker's result as the bytes it sends: within `limits.result_bytes`, or a one-line
    error in its place (a report too large to send, or one that cannot be sent at all)."""
    try:
        data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as error:
        failed = InspectorError(f"{label}: internal error: result not transferable ({error})")
        return pickle.dumps(_Raised(error=failed))
    if len(data) <= limits.result_bytes:
        return data
    too_large = ResultTooLarge(f"{label}: {_oversized(limits, len(data))}")
    return pickle.dumps(_Raised(error=too_large), protocol=pickle.HIGHEST_PROTOCOL)


def _oversized(limits: Limits, size: int | None = None) -> str:
    takes = f" ({_size(size)})" if size is not None else ""
    return (
        f"its report is larger{takes} than the {_size(limits.result_bytes)} a file's report may "
        f"take under --max-memory {_size(limits.memory_bytes)} and --timeout "
        f"{limits.cpu_seconds:g} (the command holds, gates and renders the report within them "
        "too); refused (raise both if the model is merely huge)"
    )


def _receive(fd: int, size: int, deadline: float) -> tuple[bytearray, int]:
    """Up to `size` bytes from `fd`, read into one buffer (linear in `size`, whatever the
    chunks): (the buffer, how many arrived). Fewer than `size`: the writer closed the pipe;
    `-n - 1` where `n` had arrived when `deadline` passed."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return buffer, -got - 1
        ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if not ready:
            continue
        count = os.readv(fd, [view[got : got + (1 << 20)]])
        if not count:
            break
        got += count
    return buffer, got


def run_bounded(
    work: Callable[[Started], int], limits: Limits, setup: Callable[[], None] | None = None
) -> int:
    """Run `work(started)` in one worker that writes its own output, where `started(label)`
    marks the start of the next file: each file gets the CPU and wall bounds anew. Returns the
    exit code of the work; a bound that stops it prints one line and returns 2. `setup()`
    runs in the worker before its bounds (see `each_isolated`)."""
    if not limits.enabled or not _has_real_streams():
        return work(lambda label: None)
    flush_streams()
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = fork_worker()
    if pid == 0:
        os.close(read_fd)
        code = EXIT_UNREADABLE
        try:
            _confine(limits, parent, setup)
            code = work(lambda label: _report_start(write_fd, label, limits))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else EXIT_UNREADABLE
        except MemoryError:
            code = _MEMORY_EXIT
        except BaseException:
            code = EXIT_UNREADABLE
        finally:
            try:
                flush_streams()
            finally:
                os._exit(code)
    os.close(write_fd)
    current = ["input"]
    try:
        _, status, cpu = _collect(pid, read_fd, limits, current)
    finally:
        os.close(read_fd)
    if status >= 0 and status != _MEMORY_EXIT:
        return status
    flush_streams()
    print(f"rnninspect: error: {current[0]}: {_why(status, cpu, limits)}", file=sys.stderr)
    return EXIT_UNREADABLE


# --- the worker side ------------------------------------------------------------------------

_MEMORY_EXIT = 120  # a worker's exit code for MemoryError outside any per-file handler
_BLOCKED = -1000  # pseudo-status: the parent stopped a worker that was blocked
_TOO_LARGE = -1001  # pseudo-status: the parent stopped a worker sending too large a result


def _confine(limits: Limits, parent: int, setup: Callable[[], None] | None = None) -> None:
    """Applied in the worker right after fork; `setup()` runs before the memory and CPU limits
    (see `each_isolated`), after the parent tie and the core-dump limit: a crash while it
    imports writes no core file either."""
    die_with_parent(parent)
    _set_limit(resource.RLIMIT_CORE, 0)
    if setup is not None:
        with contextlib.suppress(Exception):
            setup()
    _set_limit(resource.RLIMIT_AS, limits.memory_bytes)
    _arm_cpu(limits)


def fork_worker() -> int:
    """os.fork() for a worker or a lane: 0 in the child, which ignores SIGINT, the child's pid
    here. Ctrl-C in a terminal signals every process of the group: a child that took it would
    print a KeyboardInterrupt traceback of its own (at fork, logging's after-fork hook) or
    stop with a status the parent reports as a crash. SIGINT is blocked across the fork, so it
    is left pending until the child ignores it; the parent takes its own Ctrl-C as usual."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pid


def die_with_parent(parent: int) -> None:
    """`parent` is the pid read before fork: the parent may die before prctl takes effect."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # in the worker only: the command's own start-up never needs it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(EXIT_UNREADABLE)


# setrlimit takes a signed 64-bit value (Python raises OverflowError beyond it); a bound at
# least this large (`--max-memory 8EiB`, `--timeout inf`) is no bound: RLIM_INFINITY.
_LARGEST_LIMIT = 2**63 - 1


def _set_limit(which: int, value: float) -> None:
    """The soft limit `which` set to `value` (rounded up), or to no limit when `value` is beyond
    what the kernel takes; never above the hard limit, which is left alone (a limit may only be
    lowered, and the next file re-arms it)."""
    _, hard = resource.getrlimit(which)
    soft = math.ceil(value) if value < _LARGEST_LIMIT else resource.RLIM_INFINITY
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        soft = hard
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (soft, hard))


def _arm_cpu(limits: Limits) -> None:
    """The CPU seconds used so far plus the allowance, as the soft limit: the kernel sends
    SIGXCPU, which ends the worker, when it is spent."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _set_limit(resource.RLIMIT_CPU, used + max(1.0, limits.cpu_seconds))


def _report_start(write_fd: int, label: str, limits: Limits) -> None:
    _arm_cpu(limits)
    os.write(write_fd, label.replace("\n", " ").encode("utf-8", "replace") + b"\n")


# --- the parent side ------------------------------------------------------------------------


def _collect(
    pid: int,
    read_fd: int,
    limits: Limits,
    current: list[str] | None = None,
    limit: int | None = None,
) -> tuple[bytes, int, float]:
    """Read the worker's pipe until it closes, then reap it: (bytes sent, exit status or
    -signal, CPU seconds the worker used). Stops a worker blocked beyond the wall bound, and
    one that sends more than `limit` bytes (status _TOO_LARGE)."""
    chunks: list[bytes] = []
    received = 0
    pending = b""
    deadline = time.monotonic() + limits.wall_seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                cpu = _cpu_of(pid)
                kill_worker(pid)
                return b"", _BLOCKED, cpu
            ready, _, _ = select.select([read_fd], [], [], min(remaining, 1.0))
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            if current is None:
                received += len(chunk)
                if limit is not None and received > limit:
                    cpu = _cpu_of(pid)
                    kill_worker(pid)
                    return b"", _TOO_LARGE, cpu
                chunks.append(chunk)
                continue
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()[-4096:]  # a label is a path: keep its end
            if lines:
                current[0] = lines[-1].decode("utf-8", "replace")
                deadline = time.monotonic() + limits.wall_seconds
    except BaseException:
        kill_worker(pid)
        raise
    _, status, usage = os.wait4(pid, 0)
    return b"".join(chunks), os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    """CPU seconds a running child has used (Linux /proc; 0 where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def memory_refusal(limits: Limits) -> str:
    """Why a file that ran out of memory has no report: the same words wherever the worker's
    allocation failed (in the reader, caught per file, or while it sends its result, when it
    exits with _MEMORY_EXIT): which of them fails first varies from run to run and with
    --jobs, and the output must not."""
    if not limits.enabled:
        return "needs more memory than is free to read; refused"
    return (
        f"needs more than {_size(limits.memory_bytes)} of memory to read; refused (raise "
        "--max-memory if the file is merely huge)"
    )


def _why(status: int, cpu: float, limits: Limits) -> str:
    """What stopped a worker, in words."""
    memory = _size(limits.memory_bytes)
    if status == _BLOCKED:
        return (
            f"gave up after {limits.wall_seconds:g} s blocked on I/O (the worker used "
            f"{cpu:.1f} s of CPU): a read does not return"
        )
    if status in (-signal.SIGXCPU, -signal.SIGKILL) and cpu >= limits.cpu_seconds - 1:
        return (
            f"gave up after {limits.cpu_seconds:g} s of CPU time: reading this file does not "
            "finish (a damaged file can make a parser loop); raise --timeout if the file is "
            "merely huge"
        )
    if status == _MEMORY_EXIT:
        return memory_refusal(limits)
    if status < 0:
        name = _signal_name(-status)
        return (
            f"the reader died with signal {-status} ({name}); a library may abort when it "
            f"runs out of the {memory} memory limit (--max-memory)"
        )
    return f"the reader stopped with exit code {status} before giving a result"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


class OwnUnpickler(pickle.Unpickler):
    """Results come from our own worker, but the worker has parsed a stranger's file: only
    rnninspect's own data classes, enum members and plain builtins may be rebuilt; nothing else
    is ever called."""

    _BUILTINS = frozenset({"frozenset", "set", "tuple", "list", "dict", "int", "str", "bytes"})

    def find_class(self, module: str, name: str) -> Callable[..., object]:
        if module == "builtins" and name == "getattr":
            # Early Python 3.11 releases (3.11.2, Debian 12's) pickle an enum member as
            # getattr(EnumClass, "NAME") (Lib/enum.py Enum.__reduce_ex__): only that use is
            # rebuilt, by a function that returns nothing but a member of our own enums.
            return _enum_member
        if module.startswith("inspector.") or (module == "builtins" and name in self._BUILTINS):
            found: type = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"refused to rebuild {module}.{name}")


def _enum_member(owner: object, name: object) -> enum.Enum:
    """A member of one of rnninspect's own enums by its name; anything else is refused."""
    if (
        isinstance(owner, enum.EnumMeta)
        and owner.__module__.startswith("inspector.")
        and isinstance(name, str)
        and name in owner.__members__
    ):
        return owner.__members__[name]
    raise pickle.UnpicklingError(f"refused to rebuild getattr({owner!r}, {name!r})")


def _load(data: bytes | bytearray) -> _Raised[object]:
    try:
        loaded = rebuild(data)
    except pickle.UnpicklingError as error:
        raise BoundExceeded(f"the worker's result is unreadable ({error})") from None
    if not isinstance(loaded, _Raised):
        raise BoundExceeded("the worker's result is unreadable")
    return loaded


def rebuild(data: bytes | bytearray) -> object:
    """A result from a worker or a lane, rebuilt by `OwnUnpickler` and checked to nest at
    most MAX_RESULT_DEPTH deep: the command walks it recursively (escaping, rendering), and a
    structure nested a million deep would overflow the stack there. Raises UnpicklingError."""
    try:
        loaded = OwnUnpickler(io.BytesIO(data)).load()
    except (EOFError, AttributeError, ValueError, TypeError, MemoryError) as error:
        raise pickle.UnpicklingError(str(error) or type(error).__name__) from None
    _check_depth(loaded, len(data))
    return loaded


_LEAVES = frozenset({str, int, float, bytes, bool, type(None)})
_SEQUENCES = frozenset({tuple, list, set, frozenset})


def _check_depth(root: object, size: int) -> None:
    """Raise UnpicklingError if `root` nests containers or objects more than MAX_RESULT_DEPTH
    deep, counting every path (a structure shared twice is walked twice: a shortcut to a deep
    object must not hide its depth), or if walking it meets more references than its `size` in
    bytes could hold (each reference takes at least a byte of the pickle; a list holding itself
    twice doubles at every level). Level by level, without recursion."""
    level: list[object] = [root]
    budget = 4 * size + 1024
    for _ in range(MAX_RESULT_DEPTH + 1):
        budget -= len(level)
        if budget < 0:
            raise pickle.UnpicklingError("it refers to more objects than its size holds")
        below: list[object] = []
        for item in level:
            kind = type(item)
            if kind in _LEAVES:
                continue
            if kind in _SEQUENCES:
                below.extend(item)  # type: ignore[arg-type]
            elif kind is dict:
                below.extend(item.keys())  # type: ignore[attr-defined]
                below.extend(item.values())  # type: ignore[attr-defined]
            elif not isinstance(item, (enum.Enum, type)):
                below.extend(getattr(item, "__dict__", {}).values())
        if not below:
            return
        level = below
    raise pickle.UnpicklingError(f"nested more than {MAX_RESULT_DEPTH} deep")


def kill_worker(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _has_real_streams() -> bool:
    try:
        sys.stdout.fileno()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
