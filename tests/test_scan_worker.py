"""Issue 16: a directory scan reads its files in one bounded worker reused from file to file
(inspector.cli.supervise.each_isolated). Every per-file guarantee of issue 11 holds: a file that
spends its CPU time or exhausts its memory is reported with the same line as in a worker of its
own, the scan goes on in a fresh worker, and each good file after a bad one gives the report it
gives alone. Bounded by counts, never by time."""

from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize("jobs", ["1", "2"])
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
