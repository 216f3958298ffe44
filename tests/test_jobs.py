"""`--jobs N`: files read in N forked lanes give the same output, in the same order, with the
same messages and exit code as one lane; a file that hits the per-file bound in a lane is
reported and the other files are still read, as without lanes. Run as real subprocesses, so
that lanes and workers fork."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT
from inspector.cli.lanes import LaneFailed, run_lanes

SOURCES = sorted(
    [*(FIXTURES / "keras2").glob("*.h5"), *(FIXTURES / "onnx").glob("*.onnx")],
    key=lambda path: path.name,
)[:14]
HANG_BLOCK = (2652, 154)  # tests/test_mutation.py: this zeroed block makes libhdf5 loop
CPU_SECONDS = 60  # a lane or worker that is never stopped fails the test instead of hanging it


def _cpu_limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def _rnninspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        preexec_fn=_cpu_limit,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models of both formats, a junk file named like a model and an empty archive, so that
    the output mixes reports and errors; names interleave formats in sorted order."""
    root = tmp_path_factory.mktemp("jobs")
    for number, source in enumerate(SOURCES):
        shutil.copy(source, root / f"{number:02d}_{source.name}")
    (root / "07_junk.h5").write_text("not a model at all\n")
    (root / "11_empty.keras").write_bytes(b"PK\x05\x06" + bytes(18))
    return root


@pytest.mark.parametrize("output_format", ["table", "json", "csv"])
def test_lanes_give_the_same_output_in_the_same_order(folder: Path, output_format: str) -> None:
    one = _rnninspect(str(folder), "--format", output_format, "--jobs", "1")
    three = _rnninspect(str(folder), "--format", output_format, "--jobs", "3")
    assert (three.returncode, three.stdout, three.stderr) == (
        one.returncode,
        one.stdout,
        one.stderr,
    )
    assert one.returncode == 2  # the junk file and the empty archive cannot be inspected
    assert one.stdout.index("00_") < one.stdout.index("13_")


def test_lanes_over_several_file_arguments_keep_their_order(folder: Path) -> None:
    files = sorted(str(path) for path in folder.iterdir())[::-1]  # not the sorted order
    one = _rnninspect(*files, "--format", "json", "--jobs", "1")
    two = _rnninspect(*files, "--format", "json", "--jobs", "2")
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)


def test_a_file_that_loops_in_a_lane_is_reported_and_the_others_read(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "keras1/lstm_u3_d2.h5").read_bytes())
    data[HANG_BLOCK[0] : HANG_BLOCK[0] + HANG_BLOCK[1]] = bytes(HANG_BLOCK[1])
    (tmp_path / "b_loops.h5").write_bytes(bytes(data))
    for number, source in enumerate(SOURCES[:3]):
        shutil.copy(source, tmp_path / f"a{number}_{source.name}")
    done = _rnninspect(str(tmp_path), "--timeout", "2", "--jobs", "2")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "b_loops.h5: gave up after 2 s" in done.stderr
    assert all(f"a{number}_" in done.stdout for number in range(3))


def test_jobs_must_be_at_least_one(folder: Path) -> None:
    done = _rnninspect(str(folder), "--jobs", "0")
    assert done.returncode == 2 and "--jobs" in done.stderr


# ------------------------------------------------------------------------------ run_lanes


def _reversed_lane(indices, send) -> int:  # type: ignore[no-untyped-def]
    for index in reversed(indices):  # finish in the opposite order to the input
        send(index, ("item", index * 10))
    return 0


def test_results_come_back_in_input_order_whatever_order_lanes_send_them() -> None:
    results = list(run_lanes(list(range(11)), _reversed_lane, 3))
    assert results == [("item", index * 10) for index in range(11)]


def test_a_lane_that_stops_early_fails_the_run() -> None:
    def lane(indices, send) -> int:  # type: ignore[no-untyped-def]
        if 1 in indices:  # the second lane sends its first result, then stops
            send(indices[0], "first")
            return 2
        for index in indices:
            send(index, "sent")
        return 0

    with pytest.raises(LaneFailed) as failed:
        list(run_lanes(list(range(6)), lane, 2))
    assert (failed.value.code, failed.value.reported) == (2, True)


def test_a_result_naming_a_foreign_callable_is_never_rebuilt() -> None:
    def lane(indices, send) -> int:  # type: ignore[no-untyped-def]
        for index in indices:
            send(index, os.system)  # pickled as a reference to posix.system
        return 0

    with pytest.raises(LaneFailed, match="cannot be rebuilt"):
        list(run_lanes(list(range(2)), lane, 2))


def test_a_frame_over_the_bound_fails_the_run_before_it_is_read() -> None:
    """A lane's result is bounded like a worker's: a longer frame is refused by its length,
    before its bytes are read or kept."""

    def lane(indices, send) -> int:  # type: ignore[no-untyped-def]
        for index in indices:
            send(index, bytes(4096 if index == 2 else 1))
        return 0

    results = run_lanes(list(range(4)), lane, 2, max_result=1024)
    assert next(results) == bytes(1) and next(results) == bytes(1)
    with pytest.raises(LaneFailed, match=r"a result of 4,1\d\d bytes, over the 1,024"):
        next(results)


def test_every_lane_is_reaped_by_the_time_the_last_result_is_handed_on() -> None:
    """The caller takes as many results as it gave items and stops: the lanes must have ended
    (and been reaped, their workers' CPU with them) and said how by then, not be killed later."""

    def lane(indices, send) -> int:  # type: ignore[no-untyped-def]
        for index in indices:
            send(index, index)
        return 3 if 0 in indices else 0  # every result sent, then a failure

    results = run_lanes(list(range(4)), lane, 2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(LaneFailed) as failed:
        next(results)
    assert (failed.value.code, failed.value.reported) == (3, True)


class _Unsendable:
    """A result whose pickling runs out of memory: the worker fails while it sends it."""

    def __reduce__(self) -> tuple[object, ...]:
        raise MemoryError


def _out_of_memory(where: str) -> object:
    if where == "reader":
        raise MemoryError
    return _Unsendable()


@pytest.mark.parametrize("memory", [1 << 31, 300 << 20])
def test_running_out_of_memory_is_one_message_wherever_the_allocation_failed(
    monkeypatch: pytest.MonkeyPatch, memory: int
) -> None:
    """Which allocation crosses --max-memory first varies from run to run and with --jobs (the
    heap a reused worker or a lane left behind): in the reader, caught per file, or while the
    worker sends its result, when it exits with its out-of-memory code. A folder's report once
    read "needs more than 256 MiB of memory ..." or "needs more memory than the limit ..." for
    the same file from one run to the next; both places give the parent's one line."""
    from inspector.cli import inspection
    from inspector.cli.supervise import Limits

    limits = Limits(cpu_seconds=30, memory_bytes=memory)
    path = SOURCES[0]
    said = set()
    for where in ("reader", "sending"):
        monkeypatch.setattr("inspector.inspect_file", lambda *_, w=where: _out_of_memory(w))
        said.add(inspection.inspect_one(path, None, limits).error)
        monkeypatch.setattr(inspection, "_preload", lambda *_: None)
        scanned = list(inspection._inspect_each([path, path], None, limits))
        said.update(outcome.error for outcome in scanned)
    assert len(said) == 1, said
    (line,) = said
    assert line is not None and line.startswith(f"{path}: needs more than ") and "\n" not in line
