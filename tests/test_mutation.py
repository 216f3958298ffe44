"""Bad input, many times over: truncated, bit-flipped, spliced and junk versions of real
fixtures of every format. Each case must report or exit 2 with one line: no traceback, no
internal error, no hang (each case is bounded in time), no unbounded memory (the worker runs
under an address-space limit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

SEEDS = [
    "keras2/embedding_lstm_dense.h5",
    "keras2/bidir_gru_concat.h5",
    "keras2/trained_adam.h5",
    "keras1/lstm_u3_d2.h5",
    "keras2/stacked_lstm_weights.h5",
    "keras3/stacked_lstm.weights.h5",
    "keras3/bidir_lstm_concat.keras",
    "keras3/nested_models.keras",
    "keras3/rnn_stacked_cells.keras",
    "onnx/torch_legacy_lstm_h16_d8.onnx",
    "onnx/tf2onnx_gru_resetbefore_h16_d8.onnx",
    "onnx/hand_if_lstm.onnx",
]
CASES_PER_FILE = 200
WORKERS = 2
HANG_BLOCK = (2652, 154)  # (offset, length) zeroed in keras1/lstm_u3_d2.h5


@pytest.mark.parametrize("seed", [20261124])
def test_mutated_files_never_crash(tmp_path: Path, seed: int) -> None:
    """Two workers, each with half of the seed files, run side by side."""
    workers = []
    for index in range(WORKERS):
        out = tmp_path / f"worker{index}"
        out.mkdir()
        files = [str(FIXTURES / name) for name in SEEDS[index::WORKERS]]
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "tests" / "fuzz_worker.py"),
                    str(seed + index),
                    str(CASES_PER_FILE),
                    str(out),
                    *files,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    cases = 0
    failures: list[dict] = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-2000:]
        lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        cases += lines[-1]["cases"]
        failures.extend(lines[:-1])
    assert cases == len(SEEDS) * CASES_PER_FILE
    assert failures == [], failures[:10]


def test_a_file_that_makes_libhdf5_loop_is_cut_off(tmp_path: Path) -> None:
    """This damaged copy of a fixture (found by the mutation suite: one zeroed block) sends
    libhdf5 into an endless loop while reading an attribute; the CLI must give up on it."""
    data = bytearray((FIXTURES / "keras1/lstm_u3_d2.h5").read_bytes())
    data[HANG_BLOCK[0] : HANG_BLOCK[0] + HANG_BLOCK[1]] = bytes(HANG_BLOCK[1])
    path = tmp_path / "loops.h5"
    path.write_bytes(bytes(data))
    done = subprocess.run(
        [sys.executable, "-m", "inspector", str(path), "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "gave up after 2 s" in done.stderr
