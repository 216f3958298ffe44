"""Issue 16: a directory scan reads its files in one bounded worker reused from file to file
(inspector.cli.supervise.each_isolated). Every per-file guarantee of issue 11 holds: a file that
spends its CPU time or exhausts its memory is reported with the same line as in a worker of its
own, the scan goes on in a fresh worker, and each good file after a bad one gives the report it
gives alone. Bounded by counts, never by time."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import crafted
import pytest

from conftest import FIXTURES, ROOT
from inspector.cli import supervise
from inspector.cli.supervise import BoundExceeded, Limits, each_isolated
from inspector.errors import InspectorError

GOOD = sorted([*(FIXTURES / "keras2").glob("*.h5"), *(FIXTURES / "onnx").glob("*.onnx")])[:6]
HANG_BLOCK = (2652, 154)  # tests/test_mutation.py: this zeroed block makes libhdf5 loop
MEMORY = "160MiB"  # the good files fit, the memory file below does not


def _rnninspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args, "--timeout", "1", "--max-memory", MEMORY],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def _looping(path: Path) -> None:
    data = bytearray((FIXTURES / "keras1/lstm_u3_d2.h5").read_bytes())
    data[HANG_BLOCK[0] : HANG_BLOCK[0] + HANG_BLOCK[1]] = bytes(HANG_BLOCK[1])
    path.write_bytes(bytes(data))


# Two lanes under -m fuzz: each run spends the looping file's whole CPU bound, and lanes keep
# their order and outputs in tests/test_jobs.py by default.
@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.fuzz)])
def test_good_files_after_a_looping_and_a_memory_bomb_file_read_as_alone(
    tmp_path: Path, jobs: str
) -> None:
    scan = tmp_path / "scan"
    scan.mkdir()
    for index, source in enumerate(GOOD):
        shutil.copy(source, scan / f"m{2 * index + 1:02}_{source.name}")
    _looping(scan / "m02_loops.h5")
    crafted.h5_huge_model_config(scan / "m06_memory.h5", 3)
    done = _rnninspect(str(scan), "-f", "json", "--jobs", jobs)
    assert done.returncode == 2, done.stderr
    reports = json.loads(done.stdout)
    names = [Path(report["file"]).name for report in reports]
    assert names == sorted(
        path.name
        for path in scan.iterdir()
        if "_loops" not in path.name and "_memory" not in path.name
    )
    for report in reports:  # each good file: the very report it gives when read alone
        alone = _rnninspect(report["file"], "-f", "json")
        assert alone.returncode == 0, alone.stderr
        assert json.loads(alone.stdout) == report
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("rnninspect: error: ") for line in lines)
    assert "m02_loops.h5" in lines[0] and "s of CPU time" in lines[0]
    assert "m06_memory.h5" in lines[1] and "memory" in lines[1]
    for bad in ("m02_loops.h5", "m06_memory.h5"):  # the same line as when read alone
        alone = _rnninspect(str(scan / bad), "-f", "json")
        assert alone.returncode == 2 and alone.stderr.splitlines() == [
            line for line in lines if bad in line
        ]


def _task(index: int) -> tuple[int, int]:
    if index == 3:
        while True:  # spends its CPU bound
            pass
    if index == 5:
        bytearray(1 << 40)  # beyond any address-space limit: MemoryError
    if index == 7:
        raise InspectorError(f"task{index} refused")
    return index, os.getpid()


def test_one_worker_serves_many_files_and_a_fresh_one_follows_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervise, "REUSE_FILES", 3)
    limits = Limits(cpu_seconds=1, memory_bytes=1 << 30)
    results = list(each_isolated(11, _task, lambda index: f"task{index}", limits))
    assert [result[0] for result in results if isinstance(result, tuple)] == [
        0,
        1,
        2,
        4,
        6,
        8,
        9,
        10,
    ]
    pid = {result[0]: result[1] for result in results if isinstance(result, tuple)}
    assert pid[0] == pid[1] == pid[2] != os.getpid()  # one worker for three files
    assert pid[2] != pid[4] != pid[6]  # a fresh one after a bound hit
    assert pid[8] == pid[9] != pid[10]  # and after REUSE_FILES files
    stopped = results[3]
    assert isinstance(stopped, BoundExceeded) and "task3: gave up after 1 s of CPU" in str(stopped)
    memory = results[5]
    assert isinstance(memory, BoundExceeded) and "task5: needs more than 1 GiB" in str(memory)
    refused = results[7]
    assert type(refused) is InspectorError and str(refused) == "task7 refused"


@pytest.mark.parametrize("cpu_seconds", [0, 5])
def test_meanwhile_runs_once_in_the_parent_whatever_the_first_task_gives(
    cpu_seconds: float,
) -> None:
    """The command prepares its output while the worker reads (`meanwhile`): exactly once, in
    this process, also when the first task fails; with no worker (`--timeout 0`) after it."""
    calls: list[int] = []

    def task(index: int) -> int:
        if index == 0:
            raise InspectorError("first fails")
        return index * 10

    limits = Limits(cpu_seconds=cpu_seconds, memory_bytes=supervise.DEFAULT_MEMORY)
    results = list(each_isolated(3, task, str, limits, meanwhile=lambda: calls.append(os.getpid())))
    assert calls == [os.getpid()]
    assert isinstance(results[0], InspectorError) and results[1:] == [10, 20]


def test_setup_runs_in_the_worker_after_the_core_limit_and_before_the_memory_limit() -> None:
    """`setup` (a reader's import) runs in the worker, where a crash writes no core file, and
    before the address-space limit (under which numpy's OpenBLAS cannot start)."""
    import resource

    seen: dict[str, int] = {}

    def setup() -> None:
        seen["pid"] = os.getpid()
        seen["core"] = resource.getrlimit(resource.RLIMIT_CORE)[0]
        seen["memory"] = resource.getrlimit(resource.RLIMIT_AS)[0]

    def task(index: int) -> dict[str, int]:
        return {**seen, "memory_now": resource.getrlimit(resource.RLIMIT_AS)[0]}

    limits = Limits(cpu_seconds=5, memory_bytes=supervise.DEFAULT_MEMORY)
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    allowed = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_CORE, (allowed, hard))  # core files allowed out here
    try:
        (result,) = list(each_isolated(1, task, str, limits, setup=setup))
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    assert allowed > 0  # else the check below could not fail
    assert isinstance(result, dict) and result["pid"] != os.getpid()
    assert result["core"] == 0
    assert result["memory"] != limits.memory_bytes == result["memory_now"]


# --- issue 23: a worker's result is bounded, read whole in one buffer, and said for what it is


def _sized(index: int) -> bytes:
    return bytes(3 << 20 if index == 1 else 10)  # task 1: 3 MiB, over the 1 MiB bound below


def test_a_result_over_the_bound_is_one_line_and_never_read_again(tmp_path: Path) -> None:
    """--timeout 1 allows 1 MiB of result (1 MiB per CPU second, a thirty-second of memory): a
    larger one is refused in one line, not retried in a fresh worker (its size does not depend
    on the files before it), and the scan goes on."""
    limits = Limits(cpu_seconds=1, memory_bytes=1 << 31)
    assert limits.result_bytes == 1 << 20
    runs = tmp_path / "runs"

    def task(index: int) -> bytes:
        with runs.open("a") as log:
            log.write(f"{index}\n")
        return _sized(index)

    results = list(each_isolated(3, task, lambda index: f"task{index}", limits))
    assert results[0] == results[2] == bytes(10)
    refused = results[1]
    assert isinstance(refused, supervise.ResultTooLarge)
    assert str(refused).startswith("task1: its report is larger (3 MiB) than the 1 MiB")
    assert runs.read_text().split() == ["0", "1", "2"]  # task 1 ran once


def test_a_result_is_read_whole_or_said_to_have_stopped() -> None:
    """The reply's bytes arrive in one buffer whatever their chunks; a writer that closes early
    gives what arrived, one that stops writing is told apart from one that never started."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"0123456789")
        buffer, got = supervise._receive(read_fd, 100, deadline=0.0)  # the deadline has passed
        assert got == -1  # none read: nothing counted as arrived
        import time

        buffer, got = supervise._receive(read_fd, 100, deadline=time.monotonic() + 0.2)
        assert got == -11 and bytes(buffer[:10]) == b"0123456789"  # 10 arrived, then nothing
    finally:
        os.close(write_fd)
    buffer, got = supervise._receive(read_fd, 100, deadline=float("inf"))
    assert got == 0  # the writer closed: what arrived is all there is
    os.close(read_fd)


def test_a_rebuilt_result_nests_at_most_32_deep() -> None:
    """The command walks a result recursively: a worker (or a lane) that sends a structure
    nested deeper is refused, whatever rnninspect classes it is made of."""
    from inspector.report.batch import Outcome

    shallow: object = Outcome("m.h5", error="x")
    for _ in range(20):
        shallow = (shallow,)
    assert supervise.rebuild(pickle.dumps(shallow)) == shallow
    # Lists nested 100,000 deep, opcode by opcode (pickle.dumps itself would recurse): each
    # EMPTY_LIST pushed, then APPEND puts each into the one below it.
    deep = b"\x80\x04" + b"]" * 100_000 + b"a" * 99_999 + b"."
    with pytest.raises(pickle.UnpicklingError, match="nested more than 32 deep"):
        supervise.rebuild(deep)
    # A list holding itself twice (memoized, MARK, BINGET 0 twice, APPENDS): 14 bytes whose
    # every path is infinite and whose paths double at each level.
    twice = b"\x80\x04]\x94(h\x00h\x00e."
    with pytest.raises(pickle.UnpicklingError, match="more objects than its size holds"):
        supervise.rebuild(twice)
