#!/usr/bin/env python
"""Whole-process wall time, CPU time and peak RSS of rnninspect against its floors and the
frameworks, as ratios measured side by side.

Run with the dev environment that has the frameworks (see fixtures/requirements-dev.txt):

    ../devvenv/bin/python benchmarks/bench.py --rnninspect .venv/bin/rnninspect

It generates (once, into --work, default /tmp/rnninspect-bench) a small LSTM model and the
large 2×LSTM(2048) model (~268 MB of float32 weights) as .h5, .keras and single-file .onnx (and
the same two PyTorch LSTM layers as a .safetensors state dict), and a folder of 1,000 small
models (hard links of the fixtures). Each goal of issue 16 is a ratio
of two commands run in fresh processes, alternately (A B A B ...), so that a machine loaded by
others slows both alike: the median of the per-pair ratios is printed beside the medians of
each side. CPU time (user + system of the process and the children it waited for) is shown
beside wall time: on a loaded machine it is the steadier of the two. The load average is
printed with the results. Nothing here runs in the test suite.

- startup: `rnninspect small.h5` against `python -c "import h5py"`, and `rnninspect
  small.onnx` against a process that only imports the ONNX reader and parses the file;
- compare: `rnninspect compare` of the large pairs against a naive script that reads every
  tensor of both files (h5py or onnx) and runs np.array_equal;
- scan: 1,000 files with --jobs 1 and --jobs N: files per second and the marginal cost of a
  file, (scan - one file) / 999;
- anchors: Keras load_model + summary(), onnx.load, polygraphy inspect model, onnx-tool;
- parser: `rnninspect MODEL` through the fast path (inspector/cli/argv.py) against the same
  line parsed by typer alone, as a one-parser entry point would run it (the reason argv.py
  exists; README, "One parser or two").
- remote (issue 27; `rnninspect[remote]` installed): each large model read by URL from a local
  HTTP server with Range support that counts the body bytes it serves (tests/servers.py): the
  bytes fetched, as a share of the file (goal: at most 1%), the requests, and whether the report
  is the local one; then `compare` of two large models by URL, whose values must be fetched.

`--sections startup,parser` runs only those sections (default: all).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

LARGE_UNITS = 2048


@dataclass(frozen=True)
class Measure:
    seconds: float
    peak_mb: float
    cpu: float = 0.0


def run_once(argv: list[str], env: dict[str, str] | None = None) -> Measure:
    """One fresh process: wall time from spawn to exit, CPU time and peak RSS (wait4: the
    process and the children it waited for)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        error = errors.read().decode(errors="replace")
        # 1 is a failed check or gate; a traceback is never a measurement.
        if process.returncode not in (0, 1) or "Traceback" in error:
            raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}): {error[-800:]}")
    # ru_maxrss is in KiB on Linux
    return Measure(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def median(argv: list[str], runs: int, env: dict[str, str] | None = None) -> Measure:
    return summarise([run_once(argv, env) for _ in range(runs)])


def summarise(samples: list[Measure]) -> Measure:
    return Measure(
        statistics.median(s.seconds for s in samples),
        statistics.median(s.peak_mb for s in samples),
        statistics.median(s.cpu for s in samples),
    )


@dataclass(frozen=True)
class Paired:
    """Two commands run alternately: each side's medians and the medians of per-pair ratios."""

    ours: Measure
    anchor: Measure
    wall_ratio: float
    cpu_ratio: float


def paired(ours: list[str], anchor: list[str], runs: int) -> Paired:
    a_samples, b_samples = [], []
    for _ in range(runs):
        a_samples.append(run_once(ours))
        b_samples.append(run_once(anchor))
    pairs = list(zip(a_samples, b_samples, strict=True))
    return Paired(
        summarise(a_samples),
        summarise(b_samples),
        statistics.median(a.seconds / b.seconds for a, b in pairs),
        statistics.median(a.cpu / max(b.cpu, 1e-9) for a, b in pairs),
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

# The same command line through the entry point (its fast path) and through typer alone, both
# as `python -c` so that only the parsing differs; the typer side ends as entry.main does
# (OpenBLAS on one thread, streams flushed, no interpreter teardown).
FAST_PATH = "import sys; sys.argv[0] = 'rnninspect'; from inspector.cli.entry import main; main()"
TYPER_ONLY = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.argv[0] = "rnninspect"
    from inspector.cli.app import main
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
    """
)

# The large model's two LSTM layers in PyTorch's layout, as a safetensors state dict.
SAFETENSORS_MAKE = textwrap.dedent(
    """
    import sys
    import torch
    from safetensors.torch import save_file
    units, out = int(sys.argv[1]), sys.argv[2]
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(units, units, num_layers=2)
    state = {f"encoder.{key}": value.contiguous() for key, value in lstm.state_dict().items()}
    save_file(state, out + ".safetensors", metadata={"format": "pt"})
    """
)


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
    large = work / "large_lstm"
    if not large.with_suffix(".safetensors").exists():
        subprocess.run([python, "-c", SAFETENSORS_MAKE, str(LARGE_UNITS), str(large)], check=True)
    files["large.safetensors"] = large.with_suffix(".safetensors")
    return files


# ------------------------------------------------------------------------------- the floors

ROOT = Path(__file__).resolve().parent.parent
SMALL_FIXTURE = ROOT / "fixtures" / "keras2" / "embedding_lstm_dense.h5"
SCAN_FILES = 1000

# What an ONNX report cannot do without: the interpreter, the reader's modules, the parse.
ONNX_PARSE = (
    "import sys; from pathlib import Path; "
    "from inspector.formats import read_model; read_model(Path(sys.argv[1]))"
)

NAIVE_H5 = textwrap.dedent(
    """
    import sys, zipfile
    import h5py, numpy as np
    def datasets(path):
        if path.endswith(".keras"):
            handle = h5py.File(zipfile.ZipFile(path).open("model.weights.h5"), "r")
        else:
            handle = h5py.File(path, "r")
        found = []
        handle.visititems(lambda n, o: found.append(o) if isinstance(o, h5py.Dataset) else None)
        return sorted(found, key=lambda d: (d.shape, d.name))
    pairs = zip(datasets(sys.argv[1]), datasets(sys.argv[2]), strict=True)
    sys.exit(0 if all(np.array_equal(a[()], b[()]) for a, b in pairs) else 1)
    """
)

NAIVE_ONNX = textwrap.dedent(
    """
    import sys
    import numpy as np, onnx
    from onnx import numpy_helper
    def tensors(path):
        return sorted(onnx.load(path).graph.initializer, key=lambda t: t.name)
    pairs = zip(tensors(sys.argv[1]), tensors(sys.argv[2]), strict=True)
    same = all(
        np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b)) for a, b in pairs
    )
    sys.exit(0 if same else 1)
    """
)


def make_scan(work: Path) -> Path:
    """SCAN_FILES small models: hard links of the Keras and ONNX fixtures, names interleaved."""
    folder = work / "scan"
    sources = sorted(
        [*(ROOT / "fixtures" / "keras2").glob("*.h5"), *(ROOT / "fixtures" / "onnx").glob("*.onnx")]
    )
    if folder.is_dir() and len(list(folder.iterdir())) == SCAN_FILES:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for number in range(SCAN_FILES):
        source = sources[number % len(sources)]
        target = folder / f"m{number:04d}{source.suffix}"
        try:
            os.link(source, target)
        except OSError:  # another file system: copy
            shutil.copyfile(source, target)
    return folder


def interpreter_of(command: str) -> str:
    """The Python that runs an installed console script (its #! line)."""
    path = shutil.which(command) or command
    with open(path, "rb") as handle:
        first = handle.readline().decode(errors="replace").strip()
    return first[2:].split()[0] if first.startswith("#!") else sys.executable


# ----------------------------------------------------------------------------------- report


def _row(label: str, measure: Measure, ratio: str = "", cpu_ratio: str = "", note: str = "") -> str:
    return (
        f"{label:<46} {measure.seconds:>8.3f} {measure.cpu:>7.3f} {measure.peak_mb:>7.0f} "
        f"{ratio:>7} {cpu_ratio:>6}  {note}"
    )


def _header(title: str) -> None:
    print(f"\n{title}")
    print(f"{'command':<46} {'wall s':>8} {'cpu s':>7} {'peak MB':>7} {'wall ×':>7} {'cpu ×':>6}")


def _pair(label: str, anchor_label: str, result: Paired, goal: float | None) -> None:
    verdict = ""
    if goal is not None:
        met = result.wall_ratio <= goal
        verdict = f"goal ≤ {goal:g}× ({'met' if met else 'not met'} on wall time)"
    print(_row(label, result.ours, f"{result.wall_ratio:.2f}", f"{result.cpu_ratio:.2f}", verdict))
    print(_row(f"  {anchor_label}", result.anchor, "1", "1"))


SECTIONS = ("startup", "compare", "scan", "anchors", "parser", "remote")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rnninspect", required=True, help="path of the rnninspect command")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rnninspect-bench"))
    parser.add_argument("--runs", type=int, default=11, help="pairs per startup ratio")
    parser.add_argument("--large-runs", type=int, default=3, help="pairs per compare ratio")
    parser.add_argument("--scan-runs", type=int, default=3)
    parser.add_argument("--framework-runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, from {', '.join(SECTIONS)}",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if not sections <= set(SECTIONS):
        parser.error(f"--sections: choose from {', '.join(SECTIONS)}")
    python = sys.executable
    ours_python = interpreter_of(args.rnninspect)
    files = make_models(args.work, python)
    scan = make_scan(args.work)
    # Measure what a user runs: modules compiled once and their bytecode reused (pip writes it
    # at install; an editable install writes it on the first run below).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    tool = [args.rnninspect]
    small = [str(files["small.h5"]), str(files["small.keras"]), str(files["small.onnx"])]
    for warm_up in (
        [*tool, str(scan), "--jobs", "2"],
        [*tool, "compare", small[0], small[1]],
        [*tool, "compare", small[2], small[2]],
        [ours_python, "-c", ONNX_PARSE, small[2]],
    ):
        run_once(warm_up)
    load_before = os.getloadavg()

    if "startup" in sections:
        _startup(tool, ours_python, files, args.runs)
    if "compare" in sections:
        _compare(tool, ours_python, files, args.large_runs)
    if "scan" in sections:
        _scan(tool, scan, args.jobs, args.runs, args.scan_runs)
    if "anchors" in sections:
        _anchors(tool, python, files, env, args.framework_runs)
    if "parser" in sections:
        _parser(ours_python, files, args.runs)
    if "remote" in sections:
        remote(tool, files, args.work)

    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after; startup and parser: medians of {args.runs} pairs, compare: "
        f"{args.large_runs} pairs, scan: {args.scan_runs} runs, frameworks: "
        f"{args.framework_runs} runs."
    )
    return 0


def _startup(tool: list[str], ours_python: str, files: dict[str, Path], runs: int) -> None:
    _header("Startup: one small file, whole process (ratio: rnninspect / floor)")
    _pair(
        f"rnninspect {SMALL_FIXTURE.name}",
        'python -c "import h5py"',
        paired([*tool, str(SMALL_FIXTURE)], [ours_python, "-c", "import h5py"], runs),
        1.3,
    )
    _pair(
        "rnninspect small.h5",
        'python -c "import h5py"',
        paired([*tool, str(files["small.h5"])], [ours_python, "-c", "import h5py"], runs),
        1.3,
    )
    _pair(
        "rnninspect small.onnx",
        "python + ONNX reader import + parse",
        paired(
            [*tool, str(files["small.onnx"])],
            [ours_python, "-c", ONNX_PARSE, str(files["small.onnx"])],
            runs,
        ),
        1.3,
    )
    print(_row("rnninspect --help", median([*tool, "--help"], runs)))


def _compare(tool: list[str], ours_python: str, files: dict[str, Path], runs: int) -> None:
    _header("compare, 268 MB pairs (ratio: rnninspect compare / naive read-and-array_equal)")
    for left, right, naive in (
        ("large.h5", "large.keras", NAIVE_H5),
        ("large.onnx", "large.onnx", NAIVE_ONNX),
    ):
        a, b = str(files[left]), str(files[right])
        result = paired(
            [*tool, "compare", a, b, "--timeout", "0"],
            [ours_python, "-c", naive, a, b],
            runs,
        )
        _pair(f"rnninspect compare {left} {right}", "naive h5py/onnx + numpy", result, 1.0)
        print(
            f"{'':<46} peak RSS goal ≤ 300 MB: {'met' if result.ours.peak_mb <= 300 else 'not met'}"
        )


def _scan(tool: list[str], scan: Path, jobs: int, runs: int, scan_runs: int) -> None:
    _header(
        f"Directory scan: {SCAN_FILES} small models (hard links of the fixtures); "
        f"ratio: --jobs {jobs} / --jobs 1"
    )
    one = median([*tool, str(SMALL_FIXTURE)], runs)
    lanes = paired(
        [*tool, str(scan), "--jobs", str(jobs)],
        [*tool, str(scan), "--jobs", "1"],
        scan_runs,
    )
    for lane_count, measure, ratio in (
        (jobs, lanes.ours, (f"{lanes.wall_ratio:.2f}", f"{lanes.cpu_ratio:.2f}")),
        (1, lanes.anchor, ("1", "1")),
    ):
        marginal = (measure.seconds - one.seconds) / (SCAN_FILES - 1) * 1000
        marginal_cpu = (measure.cpu - one.cpu) / (SCAN_FILES - 1) * 1000
        print(
            _row(
                f"rnninspect DIR --jobs {lane_count}",
                measure,
                *ratio,
                note=f"{SCAN_FILES / measure.seconds:.0f} files/s; per file +{marginal:.1f} ms "
                f"wall, +{marginal_cpu:.1f} ms CPU",
            )
        )


def _anchors(
    tool: list[str], python: str, files: dict[str, Path], env: dict[str, str], runs: int
) -> None:
    _header("Anchors (ratio: framework / rnninspect)")
    for name, path in files.items():
        ours = median([*tool, str(path)], runs)
        print(_row(f"rnninspect {name}", ours, note=f"{path.stat().st_size / 1e6:.0f} MB"))
        anchors: list[tuple[str, list[str], dict[str, str] | None]] = []
        if path.suffix in (".h5", ".keras"):
            anchors.append(
                (f"Keras load+summary {name}", [python, "-c", KERAS_SUMMARY, str(path)], env)
            )
        else:
            anchors.append((f"onnx.load {name}", [python, "-c", ONNX_LOAD, str(path)], None))
            polygraphy = Path(python).parent / "polygraphy"
            if polygraphy.exists():
                anchors.append(
                    (
                        f"polygraphy inspect model {name}",
                        [str(polygraphy), "inspect", "model", str(path)],
                        None,
                    )
                )
            if _importable("onnx_tool"):
                # onnx-tool profiles a fixed shape: one step, one sequence
                units = 16 if name.startswith("small") else LARGE_UNITS
                argv = [python, "-m", "onnx_tool", "-i", str(path), "-d", f"X:f32:1x1x{units}"]
                anchors.append((f"onnx-tool {name}", argv, None))
        for label, argv, anchor_env in anchors:
            theirs = median(argv, runs, anchor_env)
            print(
                _row(
                    f"  {label}",
                    theirs,
                    f"{theirs.seconds / ours.seconds:.1f}",
                    f"{theirs.cpu / max(ours.cpu, 1e-9):.1f}",
                )
            )


def _parser(ours_python: str, files: dict[str, Path], runs: int) -> None:
    _header("Parser: the fast path (argv.py) against typer alone (ratio: fast path / typer)")
    for label, path in (
        (SMALL_FIXTURE.name, SMALL_FIXTURE),
        ("small.h5", files["small.h5"]),
        ("small.onnx", files["small.onnx"]),
    ):
        result = paired(
            [ours_python, "-c", FAST_PATH, str(path)],
            [ours_python, "-c", TYPER_ONLY, str(path)],
            runs,
        )
        saved = (result.anchor.seconds - result.ours.seconds) * 1000
        print(
            _row(
                f"rnninspect {label} (fast path)",
                result.ours,
                f"{result.wall_ratio:.2f}",
                f"{result.cpu_ratio:.2f}",
                f"{saved:+.0f} ms wall by typer alone",
            )
        )
        print(_row(f"  rnninspect {label} (typer alone)", result.anchor, "1", "1"))


def remote(tool: list[str], files: dict[str, Path], work: Path) -> None:
    """Bytes fetched by range: each large model inspected by URL, as the counting server of the
    tests (tests/servers.py) serves it from `work`, against its local report."""
    sys.path.insert(0, str(ROOT / "tests"))
    from servers import ServerProcess

    print("\nRemote: large models by URL from a local HTTP server that counts what it serves")
    print(
        f"{'command':<46} {'file MB':>8} {'fetched':>12} {'share':>7} {'requests':>8}  "
        "report = local   goal <= 1%"
    )
    server = ServerProcess("http", work)
    try:
        for label in ("large.h5", "large.keras", "large.onnx", "large.safetensors"):
            path = files[label]
            server.reset()
            url = f"{server.url}/ok/{path.name}"
            ours = _json([*tool, url, "--format", "json"])
            fetched, requests = server.served()[path.name], server.counts()["requests"][path.name]
            local = _json([*tool, str(path), "--format", "json"])
            same = {**ours, "file": local["file"]} == local
            share = fetched / path.stat().st_size
            print(
                f"{'rnninspect URL/' + path.name:<46} {path.stat().st_size / 1e6:>8.0f} "
                f"{fetched:>12,} {share:>7.3%} {requests:>8}  {'yes' if same else 'NO':<14}   "
                f"{'met' if share <= 0.01 else 'not met'}"
            )
        server.reset()
        left, right = files["large.h5"], files["large.keras"]
        code = subprocess.run(
            [*tool, "compare", f"{server.url}/ok/{left.name}", f"{server.url}/ok/{right.name}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).returncode
        served = server.served()
        for path in (left, right):
            print(
                f"{'  compare URL/large.h5 URL/large.keras':<46} {path.stat().st_size / 1e6:>8.0f} "
                f"{served[path.name]:>12,} {served[path.name] / path.stat().st_size:>7.1%} "
                f"{'':>8}  exit {code} (values: every tensor once)"
            )
    finally:
        server.stop()


def _json(argv: list[str]) -> dict:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-800:]}")
    found: dict = json.loads(done.stdout)
    return found


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
