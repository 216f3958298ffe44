"""Bad input, many times over: truncated, bit-flipped, spliced and junk versions of real
fixtures of every format. Each case must report or exit 2 with one line: no traceback, no
internal error, no hang (each case runs under a CPU-time limit), no unbounded memory (the worker
runs under an address-space limit).

The default run takes a fixed sample of the campaign (every SAMPLE_EVERY-th case of each file,
the same cases each time); `pytest -m fuzz` runs all of it. No bound here is wall-clock time.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT
from fuzz_worker import CPU_SECONDS, MUTATIONS, sampled

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
    "torch/checkpoint_adam.pt",
    "torch/lstm_state_legacy.pt",
    "torch_modules/whole_nested_encoder.pt",
    "torch_modules/script_tagger.pt",
    "tflite/lstm_u8_d4_int8.tflite",
    "tflite/gru_u4_d3.tflite",
    "gguf/mamba_q8_0.gguf",
    "gguf/rwkv6_q8_0.gguf",
]
CASES_PER_FILE = 200
# The default run's budget, whatever the number of seed files: every SAMPLE_EVERY-th case of
# each file (from a start staggered by the file's position: fuzz_worker.sampled), SAMPLE_EVERY
# prime to the number of mutations so that the files together sample each of them.
SAMPLE_CASES = 80
SAMPLE_EVERY = next(
    every
    for every in itertools.count(math.ceil(len(SEEDS) * CASES_PER_FILE / SAMPLE_CASES))
    if math.gcd(every, len(MUTATIONS)) == 1
)
WORKERS = 2
HANG_BLOCK = (2652, 154)  # (offset, length) zeroed in keras1/lstm_u3_d2.h5


SEED = 20261124


def _sample(every: int) -> list[range]:
    return [sampled(position, CASES_PER_FILE, every) for position in range(len(SEEDS))]


def test_the_sample_holds_every_mutation() -> None:
    indices = _sample(SAMPLE_EVERY)
    assert sum(map(len, indices)) <= 1.1 * SAMPLE_CASES
    held = {MUTATIONS[i % len(MUTATIONS)].__name__ for each in indices for i in each}
    assert held == {mutation.__name__ for mutation in MUTATIONS}


def test_a_sample_of_mutated_files_never_crashes(tmp_path: Path) -> None:
    _campaign(tmp_path, SEED, every=SAMPLE_EVERY)


@pytest.mark.fuzz
def test_mutated_files_never_crash(tmp_path: Path) -> None:
    """The whole campaign: 4,000 cases."""
    _campaign(tmp_path, SEED, every=1)


def _campaign(tmp_path: Path, seed: int, every: int) -> None:
    """Two workers, each with half of the seed files, run side by side."""
    workers = []
    for index in range(WORKERS):
        out = tmp_path / f"worker{index}"
        out.mkdir()
        files = [
            f"{position}:{FIXTURES / SEEDS[position]}"
            for position in range(index, len(SEEDS), WORKERS)
        ]
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "tests" / "fuzz_worker.py"),
                    str(seed + index),
                    str(CASES_PER_FILE),
                    str(every),
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
        stdout, stderr = worker.communicate()
        assert worker.returncode == 0, stderr[-2000:]
        lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        cases += lines[-1]["cases"]
        failures.extend(lines[:-1])
    assert cases == sum(map(len, _sample(every)))
    assert failures == [], failures[:10]


def _cpu_limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def test_a_file_that_makes_libhdf5_loop_is_cut_off(tmp_path: Path) -> None:
    """This damaged copy of a fixture (found by the mutation suite: one zeroed block) sends
    libhdf5 into an endless loop while reading an attribute; the CLI must give up on it. The loop
    never ends, so the outcome does not depend on the machine's speed; a CPU-time limit turns a
    CLI that fails to stop it into a failed test instead of a hung one."""
    data = bytearray((FIXTURES / "keras1/lstm_u3_d2.h5").read_bytes())
    data[HANG_BLOCK[0] : HANG_BLOCK[0] + HANG_BLOCK[1]] = bytes(HANG_BLOCK[1])
    path = tmp_path / "loops.h5"
    path.write_bytes(bytes(data))
    done = subprocess.run(
        [sys.executable, "-m", "inspector", str(path), "--timeout", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        preexec_fn=_cpu_limit,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "gave up after 2 s" in done.stderr


def test_a_case_stopped_by_the_cpu_limit_is_a_hang() -> None:
    """SIGXCPU on the CLI itself, or on the reader it forked, means the time bound failed."""
    from fuzz_worker import HANG, judge

    assert judge(-signal.SIGXCPU, "", "") == HANG
    died = f"rnninspect: error: case.h5: the reader died with signal {int(signal.SIGXCPU)}\n"
    assert judge(2, "", died) == HANG
    assert judge(2, "", "rnninspect: error: case.h5: not an HDF5 file\n") is None


def test_the_campaign_s_size_is_stated_truly() -> None:
    """Every place that states how many cases the full campaign runs states this count."""
    total = f"{len(SEEDS) * CASES_PER_FILE:,}"
    for name in ("README.md", "pyproject.toml", ".ci/run", "tests/test_mutation.py"):
        stated = re.findall(r"(\d[\d,]*) (?:seeded )?cases", (ROOT / name).read_text())
        assert stated and set(stated) == {total}, (name, stated)
