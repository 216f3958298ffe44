#!/usr/bin/env python
"""Whole-process wall time and peak RSS of rnninspect against the frameworks.

Run with the dev environment that has the frameworks (see fixtures/requirements-dev.txt):

    ../devvenv/bin/python benchmarks/bench.py --rnninspect .venv/bin/rnninspect

It generates (once, into --work, default /tmp/rnninspect-bench) a small LSTM model and the
large 2×LSTM(2048) model (~268 MB of float32 weights) as .h5, .keras and single-file .onnx, then
runs every command --runs times in a fresh process and prints the median wall time and the
median peak RSS, and each as a ratio against rnninspect. Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

LARGE_UNITS = 2048


@dataclass(frozen=True)
class Measure:
    seconds: float
    peak_mb: float


def run_once(argv: list[str], env: dict[str, str] | None = None) -> Measure:
    """One fresh process: wall time from spawn to exit, and its own peak RSS (wait4)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}): {error[-800:]}")
    return Measure(seconds, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def median(argv: list[str], runs: int, env: dict[str, str] | None = None) -> Measure:
    samples = [run_once(argv, env) for _ in range(runs)]
    return Measure(
        statistics.median(s.seconds for s in samples),
        statistics.median(s.peak_mb for s in samples),
    )


# ----------------------------------------------------------------------------- model files

KERAS_MAKE = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
    units, out = int(sys.argv[1]), sys.argv[2]
    model = keras.Sequential([
        keras.layers.InputLayer(input_shape=(None, units)),
        keras.layers.LSTM(units, return_sequences=True),
        keras.layers.LSTM(units),
    ])
    model.save(out + ".h5")
    model.save(out + ".keras")
    print(model.count_params())
    """
)

ONNX_MAKE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    units, out = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    nodes, inits, previous = [], [], "X"
    for layer in range(2):
        names = [f"W{layer}", f"R{layer}", f"B{layer}"]
        shapes = [(1, 4 * units, units), (1, 4 * units, units), (1, 8 * units)]
        for name, shape in zip(names, shapes):
            inits.append(numpy_helper.from_array(
                rng.standard_normal(shape, dtype=np.float32), name))
        nodes.append(helper.make_node("LSTM", [previous, *names], [f"Y{layer}"],
                                      hidden_size=units, name=f"lstm{layer}"))
        nodes.append(helper.make_node("Squeeze", [f"Y{layer}", "axes1"], [f"S{layer}"]))
        previous = f"S{layer}"
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"))
    graph = helper.make_graph(
        nodes, "large_lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", units])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="rnninspect-bench")
    onnx.save_model(model, out + ".onnx")
    """
)

KERAS_SUMMARY = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tf_keras as keras
    keras.models.load_model(sys.argv[1], compile=False).summary()
    """
)

ONNX_LOAD = "import sys, onnx; onnx.load(sys.argv[1])"


def make_models(work: Path, python: str) -> dict[str, Path]:
    work.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for label, units in (("small", 16), ("large", LARGE_UNITS)):
        stem = work / f"{label}_lstm"
        if not (stem.with_suffix(".h5").exists() and stem.with_suffix(".keras").exists()):
            subprocess.run([python, "-c", KERAS_MAKE, str(units), str(stem)], check=True)
        if not stem.with_suffix(".onnx").exists():
            subprocess.run([python, "-c", ONNX_MAKE, str(units), str(stem)], check=True)
        for suffix in (".h5", ".keras", ".onnx"):
            files[f"{label}{suffix}"] = stem.with_suffix(suffix)
    return files


# ----------------------------------------------------------------------------------- report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rnninspect", required=True, help="path of the rnninspect command")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rnninspect-bench"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--framework-runs", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    files = make_models(args.work, python)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rows: list[tuple[str, str, Measure, Measure | None]] = []

    help_measure = median([args.rnninspect, "--help"], args.runs)
    rows.append(("rnninspect --help", "-", help_measure, None))
    for name, path in files.items():
        ours = median([args.rnninspect, str(path)], args.runs)
        rows.append((f"rnninspect {name}", f"{path.stat().st_size / 1e6:.0f} MB", ours, None))
        if path.suffix in (".h5", ".keras"):
            keras = median([python, "-c", KERAS_SUMMARY, str(path)], args.framework_runs, env)
            rows.append((f"Keras load+summary {name}", "", keras, ours))
        else:
            loaded = median([python, "-c", ONNX_LOAD, str(path)], args.framework_runs)
            rows.append((f"onnx.load {name}", "", loaded, ours))
            for tool, available, argv in (
                ("polygraphy", shutil.which("polygraphy") is not None,
                 ["polygraphy", "inspect", "model", str(path)]),
                ("onnx-tool", _importable("onnx_tool"), [python, "-m", "onnx_tool", "-i", str(path)]),
            ):
                if available:
                    rows.append((f"{tool} {name}", "", median(argv, args.framework_runs), ours))

    print(f"{'command':<38} {'file':>7} {'median s':>9} {'peak MB':>8} {'time ×':>7} {'RSS ×':>6}")
    for label, size, measure, ours in rows:
        ratio_t = f"{measure.seconds / ours.seconds:.1f}" if ours else ""
        ratio_m = f"{measure.peak_mb / ours.peak_mb:.1f}" if ours else ""
        print(
            f"{label:<38} {size:>7} {measure.seconds:>9.3f} {measure.peak_mb:>8.0f} "
            f"{ratio_t:>7} {ratio_m:>6}"
        )
    print(f"\n{os.cpu_count()} cores; medians of {args.runs} runs (frameworks: "
          f"{args.framework_runs}); ratios are framework / rnninspect.")
    return 0


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
