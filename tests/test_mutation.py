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
CASES_PER_FILE = 250


@pytest.mark.parametrize("seed", [20261124])
def test_mutated_files_never_crash(tmp_path: Path, seed: int) -> None:
    files = [str(FIXTURES / name) for name in SEEDS]
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "fuzz_worker.py"),
            str(seed),
            str(CASES_PER_FILE),
            str(tmp_path),
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summary = lines[-1]
    assert summary["cases"] == len(SEEDS) * CASES_PER_FILE
    failures = lines[:-1]
    assert failures == [], failures[:10]
