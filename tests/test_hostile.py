"""Issue 11, one test per *kind* of attack, each on a file built by tests/crafted.py: links and
virtual datasets never followed, no silent exit, text escaped, CSV cells neutralised, models
never overwritten, memory and CPU bounded, no orphan worker, bad input labelled as such, and
files named for what they are."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import crafted
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, ROOT, framework_total, run_main
from inspector import inspect_file
from inspector.cli.app import app
from inspector.counts import NAME_LIMIT, TEXT_LIMIT
from inspector.errors import InspectorError

runner = CliRunner()
LSTM_H5 = FIXTURES / "keras2/lstm_u16_d8.h5"
HIDDEN = ("\x1b", "\x07", "\r", "\u202e")  # what must never reach a terminal or a log


def cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The real command in a subprocess (the forked, bounded worker included)."""
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnninspect: error: "), stderr[-2000:]
    assert "Traceback" not in stderr and "internal error" not in stderr
    return lines[0]


# --- 1, 2: links and virtual datasets ---------------------------------------------------------


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "links.h5"
    crafted.h5_links_without_layer_names(path, outside)
    return path, outside


def test_links_without_layer_names_are_reported_not_followed(linked: tuple[Path, Path]) -> None:
    path, _ = linked
    report = inspect_file(path).to_dict()
    warnings = "\n".join(report["warnings"])
    for name in ("passwd", "other", "fifo"):
        assert f"external link 'model_weights/{name}'" in warnings
    assert "soft link 'model_weights/loop'" in warnings
    assert report["total_params"] == framework_total("keras2/lstm_u16_d8.h5")  # the LSTM alone
    explained = runner.invoke(app, ["explain", str(path), "--timeout", "0"])
    assert explained.exit_code == 0, explained.output


def test_virtual_dataset_is_reported_and_its_values_never_read(tmp_path: Path) -> None:
    path = tmp_path / "vds.h5"
    crafted.h5_virtual_dataset(path, tmp_path)
    report = inspect_file(path).to_dict()
    assert any("virtual dataset" in w and "not read" in w for w in report["warnings"])
    done = runner.invoke(app, ["compare", str(path), str(LSTM_H5), "-f", "json"])
    pairs = json.loads(done.stdout)["pairs"]
    assert done.exit_code == 1
    assert any("virtual dataset" in note for pair in pairs for note in json.dumps(pair).split('"'))


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_nothing_outside_the_model_folder_is_opened(linked: tuple[Path, Path]) -> None:
    path, outside = linked
    vds = path.parent / "vds.h5"
    crafted.h5_virtual_dataset(vds, outside)
    for args in (
        [str(path)],
        ["explain", str(path)],
        ["compare", str(path), str(vds)],
    ):
        log = path.parent.parent / "trace.log"
        strace = ["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", str(log)]
        done = subprocess.run(
            [*strace, sys.executable, "-m", "inspector", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr
        opened = log.read_text()
        assert str(outside) not in opened, args
        assert "/etc/passwd" not in opened, args


def test_a_scan_never_follows_a_file_link_out_of_its_directory(tmp_path: Path) -> None:
    """A folder from a stranger can hold `model.h5 -> ~/private.h5`: the scan reports such a
    link by its name and never opens it (a link with another name is passed over unread); a
    link inside the folder is read like the file it names."""
    outside = tmp_path / "private"
    outside.mkdir()
    shutil.copy(LSTM_H5, outside / "private.h5")
    folder = tmp_path / "received"
    folder.mkdir()
    shutil.copy(LSTM_H5, folder / "model.h5")
    (folder / "out.h5").symlink_to(outside / "private.h5")
    (folder / "notes").symlink_to(outside / "private.h5")  # an HDF5 signature, if it were read
    (folder / "passwd.onnx").symlink_to("/etc/passwd")
    (folder / "in.h5").symlink_to("model.h5")
    done = cli(str(folder), "-f", "json", "--jobs", "1")
    assert done.returncode == 2, done.stderr
    read = sorted(Path(report["file"]).name for report in json.loads(done.stdout))
    assert read == ["in.h5", "model.h5"]
    refused = done.stderr.splitlines()
    assert len(refused) == 2 and all("not followed" in line for line in refused), refused
    assert {"out.h5", "passwd.onnx"} == {Path(line.split(": ")[2]).name for line in refused}


# --- 3: no silent exit ------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["60", "0"])
def test_every_exit_is_one_line(tmp_path: Path, timeout: str) -> None:
    if Path("/dev/full").exists():
        with open("/dev/full", "w") as full_disk:
            full = subprocess.run(
                [sys.executable, "-m", "inspector", str(LSTM_H5), "--timeout", timeout],
                stdout=full_disk,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                check=False,
            )
        assert full.returncode == 2
        assert "No space left" in one_error_line(full.stderr)
    closed = subprocess.run(
        f"{sys.executable} -m inspector {LSTM_H5} --timeout {timeout} >&-",
        shell=True,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert closed.returncode == 2
    assert "standard output is closed" in one_error_line(closed.stderr)


@pytest.mark.parametrize("timeout", ["60", "0"])
def test_a_bad_file_in_a_scan_keeps_the_good_files(tmp_path: Path, timeout: str) -> None:
    """A kernel of 17 dims of 2^62 (no float holds its byte size), beside a good model."""
    crafted.onnx_huge_dims(tmp_path / "huge.onnx")
    shutil.copy(LSTM_H5, tmp_path / "good.h5")
    (tmp_path / "null.h5").write_bytes(b"")
    crafted.h5_null_dataspace(tmp_path / "null.h5")
    done = cli(str(tmp_path), "--timeout", timeout)
    assert done.returncode == 2
    assert "good.h5" in done.stdout and "1,600" in done.stdout and "huge.onnx" in done.stdout
    huge, null = done.stderr.splitlines()
    assert "huge.onnx" in one_error_line(huge + "\n") and "more than any framework" in huge
    assert "null dataspace" in one_error_line(null + "\n")


def test_an_unsearchable_directory_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "is_dir", refuse)
    done = runner.invoke(app, ["/somewhere/model.h5", "--timeout", "0"])
    assert done.exit_code == 2
    assert "Permission denied" in done.output and done.output.count("\n") == 1


# --- 4, 5: escaping and spreadsheet cells -----------------------------------------------------


@pytest.mark.parametrize(
    "build,suffix",
    [
        (crafted.h5_escapes_in_names, ".h5"),
        (crafted.keras_escapes, ".keras"),
        (crafted.onnx_escapes, ".onnx"),
        (crafted.safetensors_escapes, ".safetensors"),
    ],
    ids=["h5", "keras", "onnx", "safetensors"],
)
def test_text_from_a_file_is_escaped_in_every_text_output(
    tmp_path: Path, build: object, suffix: str
) -> None:
    path = tmp_path / f"evil\x1b[2J\nname{suffix}"
    build(path)  # type: ignore[operator]
    outputs = {}
    for fmt in ("table", "markdown", "csv", "json"):
        done = runner.invoke(app, [str(path), "-f", fmt, "--max-params", "1", "--timeout", "0"])
        assert done.exit_code == 1, done.output
        outputs[fmt] = done
    for fmt in ("table", "markdown", "csv"):
        text = outputs[fmt].stdout + outputs[fmt].stderr
        assert not any(char in text for char in HIDDEN), fmt
        assert "\\x1b" in text
        assert all(not line.startswith("forged row") for line in text.splitlines()), (
            fmt
        )  # no line of its own
    markdown = outputs["markdown"].stdout
    for table in re.findall(r"(?:^\|.*\|$\n?)+", markdown, flags=re.M):  # no cell is added
        cells = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(cells) == 1, table
    for markup in (r"<img", r"(?<!\\)\]\(", r"(?<!\\)`c`"):  # raw HTML, a link, a code span
        assert not re.search(markup, markdown), (markup, markdown)
    lines = outputs["table"].stderr.splitlines()  # gate and check lines, one line each
    assert lines and all(line.startswith("rnninspect: ") for line in lines)
    document = json.loads(outputs["json"].stdout)
    assert document["file"] == str(path)  # JSON keeps the exact text
    if suffix in (".h5", ".keras", ".safetensors"):
        rows = list(csv.reader(io.StringIO(outputs["csv"].stdout)))[1:]
        named = [row[2] for row in rows if "x1b" in row[2]]
        assert named and all(name.startswith("'") for name in named)


# --- 6: --output never destroys a model -------------------------------------------------------


def test_output_never_overwrites_an_input_or_a_model(tmp_path: Path) -> None:
    model = tmp_path / "model.h5"
    shutil.copy(LSTM_H5, model)
    link = tmp_path / "link.h5"
    link.symlink_to(model)
    other = tmp_path / "other.onnx"
    shutil.copy(FIXTURES / "onnx/torch_legacy_lstm_h16_d8.onnx", other)
    before = model.read_bytes(), other.read_bytes()
    for args in (
        ["model.h5", "-o", "model.h5"],
        ["model.h5", "-o", "./link.h5"],
        [str(link), "-o", str(model)],
        [str(tmp_path), "-o", "model.h5"],
        ["model.h5", "-o", "other.onnx"],
        ["explain", "model.h5", "-o", "link.h5"],
        ["compare", "model.h5", "other.onnx", "-o", "other.onnx"],
    ):
        done = cli(*args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 2, (args, done.stderr)
        assert "refusing to overwrite" in one_error_line(done.stderr)
    assert (model.read_bytes(), other.read_bytes()) == before


def test_output_never_writes_into_a_saved_model(tmp_path: Path) -> None:
    """A SavedModel's members carry no signature of their own (keras_metadata.pb, the bundle
    index, the shard): a path inside the directory, or a link to one, is refused before
    anything is written, whether the SavedModel is the input or not."""
    saved = tmp_path / "saved"
    shutil.copytree(crafted.SAVED_MODEL, saved)
    (tmp_path / "link.pb").symlink_to(saved / "keras_metadata.pb")
    files = sorted(p for p in saved.rglob("*") if p.is_file())
    before = [p.read_bytes() for p in files]
    for args in (
        ["saved", "-o", "saved/keras_metadata.pb"],
        ["saved", "-o", "saved/variables/variables.index"],
        ["saved", "-o", "saved/report.md"],
        [str(LSTM_H5), "-o", "saved/fingerprint.pb"],
        [str(LSTM_H5), "-o", "link.pb"],
        ["explain", "saved", "--svg", "saved/variables/cell.svg"],
    ):
        done = cli(*args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 2, (args, done.stderr)
        assert "refusing to write into a model" in one_error_line(done.stderr)
    assert [p.read_bytes() for p in files] == before
    assert sorted(p for p in saved.rglob("*") if p.is_file()) == files


@pytest.mark.parametrize("timeout", ["60", "0"])
def test_deep_nesting_is_one_line_in_every_mode_and_never_a_core_file(
    tmp_path: Path, timeout: str
) -> None:
    """A dict key nested a million tuples deep (issue 23): with the worker or without it
    (`--timeout 0`), one line and exit 2 — never a signal, and no core file where it ran."""
    path = tmp_path / "deep.pt"
    crafted.torch_deep_key(path)
    done = cli(str(path), "--timeout", timeout, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-500:]
    assert "nest" in one_error_line(done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.pt"]


@pytest.mark.parametrize("timeout", ["60", "0"])
def test_a_fifo_inside_a_saved_model_is_refused_in_every_mode(tmp_path: Path, timeout: str) -> None:
    """Refused by name before it is opened (cli's own 120 s bound would fail a hang); every
    member in tests/test_savedmodel.py."""
    model = tmp_path / "model"
    crafted.saved_model_fifo(model)
    done = cli(str(model), "--timeout", timeout)
    assert done.returncode == 2
    assert "FIFO" in one_error_line(done.stderr)


# --- 7: memory and CPU bombs ------------------------------------------------------------------

BOMBS = {
    "model_config.h5": lambda p: crafted.h5_huge_model_config(p, 8),
    "layer_names.h5": lambda p: crafted.h5_many_layer_names(p, 200_000),
    "nested_config.keras": lambda p: crafted.keras_nested_config(p, 8),
    "deflated.keras": lambda p: crafted.keras_deflated_weights(p, 50),
    "lists.safetensors": lambda p: crafted.safetensors_huge_lists(p, 8),
    "slice.onnx": crafted.onnx_slice_bomb,
    "opsets.onnx": lambda p: crafted.onnx_repeated_fields(p, "opset_import"),
    "metadata.onnx": lambda p: crafted.onnx_repeated_fields(p, "metadata_props"),
    "sparse.onnx": lambda p: crafted.onnx_repeated_fields(p, "sparse_initializer"),
    "nodes.onnx": crafted.onnx_many_nodes,
    "inputs.onnx": crafted.onnx_many_inputs,
    "metadata_json.savedmodel": crafted.saved_model_metadata_json,
    "index_keys.savedmodel": crafted.saved_model_index_keys,
}
MAX_RSS_KB = 500 * 1024
MAX_CPU_SECONDS = 30.0
_MEASURE = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(done.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, len(done.stdout))\n"
    "print(done.stderr.decode(errors='replace'), end='')\n"
)


def measured(*args: str, cwd: Path = ROOT) -> tuple[int, int, float, str]:
    """(exit code, peak RSS in KiB of the command and its worker, CPU seconds, stderr)."""
    code, rss, cpu, _, stderr = measured_output(*args, cwd=cwd)
    return code, rss, cpu, stderr


def measured_output(*args: str, cwd: Path = ROOT) -> tuple[int, int, float, int, str]:
    """(exit code, peak RSS in KiB of the largest of the command and its workers, CPU seconds
    of all of them, bytes on stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "inspector", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    head, _, stderr = done.stdout.partition("\n")
    code, rss, cpu, written = head.split()
    return int(code), int(rss), float(cpu), int(written), stderr


def test_bombs_stay_within_memory_and_cpu(tmp_path: Path) -> None:
    """All of them in one directory scan (one worker per file): the peak RSS is the largest
    worker's, the CPU time the sum of all of them."""
    for name, build in BOMBS.items():
        build(tmp_path / name)
    code, rss, cpu, stderr = measured(str(tmp_path), "-f", "json")
    assert rss < MAX_RSS_KB and cpu < MAX_CPU_SECONDS, (rss, cpu)
    assert code == 2 and "Traceback" not in stderr and "internal error" not in stderr
    refused = stderr.splitlines()
    assert all(line.startswith("rnninspect: error: ") for line in refused), stderr[-2000:]
    for name in (
        "model_config.h5",
        "layer_names.h5",
        "nested_config.keras",
        "nodes.onnx",
        "metadata_json.savedmodel",
        "index_keys.savedmodel",
    ):
        assert any(name in line for line in refused), (name, stderr)
    expand = tmp_path / "expand.onnx"
    crafted.onnx_expand_bomb(expand)
    code, rss, cpu, stderr = measured("compare", str(expand), str(expand), "-f", "json")
    assert rss < MAX_RSS_KB and cpu < MAX_CPU_SECONDS and code == 1, (rss, cpu, stderr)


def test_a_device_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.keras"
    link.symlink_to("/dev/zero")
    done = runner.invoke(app, [str(link), "--reader", "keras-zip", "--timeout", "0"])
    assert done.exit_code == 2 and "not a regular file" in done.output


def test_the_memory_backstop_ends_in_one_line(tmp_path: Path) -> None:
    """A model_config just under the JSON caps, read under a 100 MiB address-space limit."""
    path = tmp_path / "config.h5"
    crafted.h5_huge_model_config(path, 4)
    done = cli(str(path), "--max-memory", "100MiB")
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "memory" in line and "config.h5" in line


# --- 8, 9: CPU time, scans that go on, no orphans ---------------------------------------------

HANG_BLOCK = (2652, 154)  # zeroed in keras1/lstm_u3_d2.h5, it sends libhdf5 into a loop


def _looping(path: Path) -> Path:
    data = bytearray((FIXTURES / "keras1/lstm_u3_d2.h5").read_bytes())
    data[HANG_BLOCK[0] : HANG_BLOCK[0] + HANG_BLOCK[1]] = bytes(HANG_BLOCK[1])
    path.write_bytes(bytes(data))
    return path


def test_a_scan_goes_on_after_a_file_that_spends_its_cpu_time(tmp_path: Path) -> None:
    _looping(tmp_path / "a_loops.h5")
    shutil.copy(LSTM_H5, tmp_path / "b_good.h5")
    done = cli(str(tmp_path), "--timeout", "1")
    assert done.returncode == 2
    assert "b_good.h5" in done.stdout and "1,600" in done.stdout
    line = one_error_line(done.stderr)
    assert "a_loops.h5" in line and "s of CPU time" in line


def test_sigterm_to_the_command_leaves_no_worker(tmp_path: Path) -> None:
    path = _looping(tmp_path / "loops.h5")
    command = subprocess.Popen(
        [sys.executable, "-m", "inspector", str(path), "--timeout", "60"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children = Path(f"/proc/{command.pid}/task/{command.pid}/children")
    if not children.exists():
        command.kill()
        pytest.skip("no /proc children list on this system")
    workers: list[int] = []
    # Wait for the worker. The bound is a hang guard only (6,000 polls, minutes on the most loaded
    # machine), never a speed requirement: the loop ends as soon as the worker exists.
    for _ in range(6000):
        workers = [int(pid) for pid in children.read_text().split()]
        if workers:
            break
        time.sleep(0.05)
    assert workers
    command.send_signal(signal.SIGTERM)
    command.wait(timeout=300)  # a hang guard, as above
    for _ in range(6000):
        if not Path(f"/proc/{workers[0]}").exists() or _zombie(workers[0]):
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{workers[0]}").exists() or _zombie(workers[0])


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# --- 10, 11: labels and what a file is --------------------------------------------------------


def test_bad_widths_are_unverified_with_the_reason(tmp_path: Path) -> None:
    for units, reason in ((-3, "not a positive number"), (0, "not a positive number")):
        path = tmp_path / f"units{units}.h5"
        crafted.h5_units(path, units)
        check = inspect_file(path).to_dict()["recurrent_layers"][0]
        assert check["check"] == "unverified" and reason in check["reason"]
    path = tmp_path / "digits.h5"
    crafted.h5_units(path, int("9" * 4000))
    check = inspect_file(path).to_dict()["recurrent_layers"][0]
    assert check["check"] == "unverified" and "digits" in check["reason"]


@pytest.mark.parametrize(
    "build,name,expected",
    [
        (lambda p: crafted.onnx_external(p, "a\x00b"), "m.onnx", 0),
        (lambda p: crafted.onnx_external(p, "w.bin", 10**15), "m.onnx", 0),
        (crafted.onnx_many_dims, "m.onnx", 0),
        (crafted.v3_superscript_variable, "m.weights.h5", 0),
        (crafted.h5_null_dataspace, "m.h5", 2),
        (crafted.safetensors_overlapping, "m.safetensors", 2),
    ],
    ids=["nul-location", "1e15-length", "240-dims", "superscript-var", "null-space", "overlap"],
)
def test_bad_input_is_never_an_internal_error(
    tmp_path: Path, build: object, name: str, expected: int
) -> None:
    path = tmp_path / name
    build(path)  # type: ignore[operator]
    (tmp_path / "w.bin").write_bytes(bytes(4096))
    done = cli(str(path), "-f", "json")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    if expected:
        assert done.returncode == expected
        one_error_line(done.stderr)


def test_overlapping_safetensors_offsets_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "overlap.safetensors"
    crafted.safetensors_overlapping(path)
    done = runner.invoke(app, [str(path), "--timeout", "0"])
    assert done.exit_code == 2 and "overlap" in done.output


def test_an_unwritable_output_is_one_line_not_a_usage_block(tmp_path: Path) -> None:
    done = cli(str(LSTM_H5), "-o", str(tmp_path))
    assert done.returncode == 2 and "Is a directory" in one_error_line(done.stderr)
    for option in ("--output", "--svg"):  # explain's two files: typer's checks said less
        ran = run_main(["explain", str(LSTM_H5), option, str(tmp_path), "--timeout", "0"])
        assert ran.code == 2 and "Is a directory" in one_error_line(ran.stderr), option


@pytest.mark.parametrize(
    "build,name,says",
    [
        (crafted.saved_model_pb, "saved_model.pb", "TensorFlow SavedModel"),
        (crafted.saved_model_pb, "graph.pb", "TensorFlow SavedModel"),
        (crafted.git_lfs_pointer, "model.onnx", "Git LFS pointer"),
        (crafted.git_lfs_pointer, "model.h5", "Git LFS pointer"),
    ],
)
def test_files_are_named_for_what_they_are(
    tmp_path: Path, build: object, name: str, says: str
) -> None:
    path = tmp_path / name
    build(path)  # type: ignore[operator]
    done = runner.invoke(app, [str(path), "--timeout", "0"])
    assert done.exit_code == 2 and says in done.output, done.output


def test_warnings_are_capped_with_a_count_of_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "names.h5"
    crafted.h5_many_layer_names(path, 5000)  # none of the listed layers is stored
    warnings = inspect_file(path).to_dict()["warnings"]
    assert len(warnings) == 101
    assert warnings[-1].startswith("... and 4,9") and warnings[-1].endswith(
        "more warnings not shown"
    )


# --- issue 23: text, counts, nesting, results: bounds for the whole run ----------------------

_SUFFIX = {
    "safetensors": ".safetensors",
    "pytorch": ".pt",
    "onnx": ".onnx",
    "keras-h5": ".h5",
    "hdf5": ".h5",
    "keras-units": ".h5",
}


def _strings(value: object) -> Iterator[str]:
    """Every string of a JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("kind", crafted.LONG_TEXT_KINDS)
def test_text_from_a_file_is_shortened_where_it_is_read(tmp_path: Path, kind: str) -> None:
    """Names, types, producers and versions of any length: every string of the report fits the
    data model's caps, and a shortened one says how long it was."""
    for length in (NAME_LIMIT + 1, 5_000, 1 << 20):
        path = tmp_path / f"long{length}{_SUFFIX[kind]}"
        crafted.long_text(kind, path, length, rows=3)
        read = inspect_file(path)
        report = read.to_dict()
        texts = [text for text in _strings(report) if text != report["file"]]
        assert max(map(len, texts)) <= TEXT_LIMIT, (kind, length)
        assert any(f"({length:,} characters, #" in text for text in texts), (kind, length)
        assert len(pickle.dumps(read)) < 64 * 1024  # keys too: what a worker sends is small
    compared = run_main(["compare", str(path), str(path), "--timeout", "0"])
    assert compared.code == 0, compared.stderr  # compare still reads values by the whole key


@pytest.mark.parametrize("kind", crafted.LONG_TEXT_KINDS)
def test_one_long_name_does_not_pad_every_row(tmp_path: Path, kind: str) -> None:
    """A 1 MiB name among 200 rows once padded every row of the table to its width (527 MB of
    output from a 60 KB file): the output stays within the rows times the caps, in every format."""
    rows = 200
    path = tmp_path / f"long{_SUFFIX[kind]}"
    crafted.long_text(kind, path, 1 << 20, rows=rows)
    for fmt in ("table", "markdown", "csv", "json", "html"):
        done = run_main([str(path), "-f", fmt, "--timeout", "0"])
        assert done.code in (0, 1), done.stderr
        assert len(done.stdout) < rows * 4 * NAME_LIMIT + 64_000, (fmt, len(done.stdout))


def test_a_long_key_costs_the_run_neither_output_nor_memory(tmp_path: Path) -> None:
    """The issue's case, measured on the real command: a deflated .pt whose one key is 1 MiB
    beside 500 rows, read under --max-memory 100MiB: bytes on stdout and the peak RSS of every
    process of the run (the command itself included)."""
    path = tmp_path / "long_key.pt"
    crafted.long_text("pytorch", path, 1 << 20, rows=500)
    code, rss, _, written, stderr = measured_output(
        str(path), "--max-memory", "100MiB", "--timeout", "5"
    )
    assert code == 0, stderr
    assert written < 500 * 2 * NAME_LIMIT, written  # was 527 MB
    assert rss < 100 * 1024, rss  # KiB: was 2.5 GB in the command itself


def _huge_files(folder: Path) -> list[Path]:
    made = []
    for kind in crafted.HUGE_COUNT_KINDS:
        for value in crafted.HUGE_COUNTS:
            path = folder / f"{kind}_{value.bit_length()}{_SUFFIX[kind]}"
            crafted.huge_count(kind, path, value)
            made.append(path)
    return made


def test_huge_counts_never_reach_arithmetic(tmp_path: Path) -> None:
    """Counts from 2^31 to 4,000 digits in every format's shape or width: each file is refused in
    one line (exit 2) or reported, and a report goes through every gate and every output (no
    float division of a huge int, no int-to-text beyond Python's 4,300 digits)."""
    from inspector.cli.inspection import _budget
    from inspector.render import Flavour, LayerView, render_csv, render_json, render_reports
    from inspector.render.html import render_html
    from inspector.report.gates import gated

    budget = _budget(
        {
            "--max-params": "1",
            "--max-size": "1",
            "--max-file-size": "1",
            "--max-layer-params": "1",
            "--max-macs": "1",
        },
        strict=True,
    )
    reported = 0
    for path in _huge_files(tmp_path):
        try:
            report = inspect_file(path)
        except InspectorError as refused:
            assert "\n" not in str(refused) and len(str(refused)) < 2 * TEXT_LIMIT, refused
            assert "internal error" not in str(refused)
            continue
        reported += 1
        report = gated(replace(report, seq_len=(1 << 62)), budget)
        json.loads(render_json([report], as_array=True))
        render_csv([report], LayerView.ALL)
        render_html([report])
        for flavour in Flavour:
            render_reports([report], flavour, LayerView.ALL)
        from inspector.render import check_messages, gate_messages

        assert gate_messages(report) and check_messages(report) is not None
    assert reported  # a 4,000-digit `units` is a report whose check says why it is unverified


# Widths no layer can have, up to the largest a JSON config carries (Python's json reads at most
# 4,300 digits): 4·units or a kernel's product of those is past Python's int-to-text limit.
IMPLAUSIBLE_WIDTHS = (1 << 31, 10**30, 10**4000, int("9" * 4300))
WIDTHS = {  # where a config gives a width: the builder and the fixture it edits
    "units": (crafted.h5_units, ".h5", LSTM_H5),
    "kernel_size": (crafted.keras_conv_kernel, ".keras", FIXTURES / "keras3/convlstm2d.keras"),
}


@pytest.mark.parametrize("where", sorted(WIDTHS))
@pytest.mark.parametrize("value", IMPLAUSIBLE_WIDTHS, ids=lambda u: f"{u.bit_length()}bits")
def test_a_width_no_layer_can_have_enters_no_command(
    tmp_path: Path, where: str, value: int
) -> None:
    """A Keras `units` or ConvLSTM `kernel_size` of up to 4,300 digits is a report whose check
    says why it is unverified, in every command and output: the check, explain, its diagram and
    compare derive no split and no product from it (4·units and the kernel's product once
    reached Python's int-to-text limit: "internal error" in explain, HTML, --svg and compare,
    and for the kernel in every command), and no output prints it whole."""
    build, suffix, fixture = WIDTHS[where]
    path = tmp_path / f"wide{suffix}"
    build(path, value)
    svg = tmp_path / "cell.svg"
    for args in (
        *([str(path), "-f", fmt] for fmt in ("table", "markdown", "html", "json")),
        ["explain", str(path)],
        ["explain", str(path), "--svg", str(svg)],
        ["compare", str(path), str(fixture)],
    ):
        done = run_main([*args, "--timeout", "0"])
        assert done.code in (0, 1), (args, done.stderr)
        shown = done.stdout + done.stderr + (svg.read_text() if svg.exists() else "")
        assert "json" in args or not re.search(r"[0-9]{40}", shown), args  # JSON: exact data
    report = run_main([str(path), "--timeout", "0"]).stdout
    assert f"unverified - {where.replace('_', ' ')} " in report


@pytest.mark.parametrize("jobs", ["2", pytest.param("1", marks=pytest.mark.fuzz)])
def test_a_bad_count_in_a_scan_keeps_the_other_reports(tmp_path: Path, jobs: str) -> None:
    """The README's CI command on a folder of good models and files of huge counts: the report
    is written with every good file, each bad one is a row and one line on stderr (exit 2), the
    same whatever --jobs (the one-lane run is part of `-m fuzz`)."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(LSTM_H5, models / "good.h5")
    shutil.copy(FIXTURES / "onnx/torch_legacy_lstm_h16_d8.onnx", models / "good.onnx")
    bad = _huge_files(models)
    report = tmp_path / "rnninspect-report.md"
    done = cli(
        str(models),
        *("--max-params", "1.5M", "--max-size", "8MB", "--max-layer-params", "500k"),
        *("--strict", "--format", "markdown", "--output", str(report), "--jobs", jobs),
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith("rnninspect: ") for line in lines), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    written = report.read_text()
    assert "good.h5" in written and "1,600" in written and "good.onnx" in written
    assert all(path.name in written for path in bad)


def _nested_files(folder: Path, depths: Sequence[int]) -> None:
    for kind, suffix in crafted.NESTED_KINDS.items():
        for depth in depths:
            crafted.nested(kind, folder / f"{kind}_{depth}{suffix}", depth)


@pytest.mark.parametrize("timeout", ["0", pytest.param("60", marks=pytest.mark.fuzz)])
def test_deep_nesting_is_refused_or_read_never_a_crash(tmp_path: Path, timeout: str) -> None:
    """Models in models, wrappers in wrappers, HDF5 groups, ONNX If subgraphs and value
    chains, JSON nested up to past the interpreter's recursion limit: each file a report or
    one line, no signal and no core file in the current directory, in process (--timeout 0:
    no worker, the riskier case) and in the worker (`-m fuzz`); explain and compare too."""
    folder = tmp_path / "nested"
    folder.mkdir()
    _nested_files(folder, (47, 65, 1200))
    done = cli(str(folder), "--timeout", timeout, "-f", "json", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]  # the deepest of each kind is refused
    lines = done.stderr.splitlines()
    assert all(
        line.startswith(("rnninspect: error: ", "rnninspect: check failed: ")) for line in lines
    )
    errors = [line for line in lines if line.startswith("rnninspect: error: ")]
    assert len(errors) >= len(crafted.NESTED_KINDS) - 2, errors  # wrappers, groups: read
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert len(json.loads(done.stdout)) >= len(crafted.NESTED_KINDS)  # the shallow ones read
    assert not list(tmp_path.glob("core*")), "a core file was written"
    for deep in ("keras-models_47.h5", "onnx-if_47.onnx"):
        for args in (["explain", str(folder / deep)], ["compare", *[str(folder / deep)] * 2]):
            ran = run_main([*args, "--timeout", timeout])
            assert ran.code in (0, 1), (args, ran.code, ran.stderr[-500:])


def test_the_command_turns_core_dumps_off_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --timeout 0 the file is read in the command's own process: no core file there
    either (the workers turn them off for themselves)."""
    import resource

    armed: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda which, pair: armed.append((which, pair)))
    ran = run_main([str(LSTM_H5), "-q", "--timeout", "0"])
    assert ran.code == 0, ran.stderr
    assert (resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1])) in armed


@pytest.mark.parametrize("jobs", ["2", pytest.param("1", marks=pytest.mark.fuzz)])
def test_a_report_too_large_for_the_bounds_is_one_line(tmp_path: Path, jobs: str) -> None:
    """A legitimate file whose report would take more than the run may hold (here 1 MiB: 1 MiB
    per second of --timeout): refused in one line, never read again, the other files of the
    scan reported (in one lane as in two: `-m fuzz`)."""
    crafted.many_tensors(tmp_path / "many.safetensors", 10_000)  # about 1.4 MB as a report
    shutil.copy(LSTM_H5, tmp_path / "good.h5")
    done = cli(str(tmp_path), "--timeout", "1", "--jobs", jobs)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "many.safetensors: its report is larger" in line and "--timeout 1" in line
    assert "good.h5" in done.stdout and "1,600" in done.stdout


@pytest.mark.fuzz
def test_the_command_s_memory_does_not_grow_with_the_files(tmp_path: Path) -> None:
    """Small files with large reports (100 keys of 100 KB each, deflated: 32 KB a file): 80 of
    them once took the command to 1.6 GB, and under --max-memory 1GiB with --jobs 1 the workers
    forked from it late in the scan were refused (24 take it to about 500 MB): the peak RSS of
    every process of the run is now about that of one file, and the output is the same with one
    lane and with two."""
    folder = tmp_path / "scan"
    folder.mkdir()
    entries = [(f"{j:04d}" + "k" * 100_000 + ".weight", (2, 3)) for j in range(100)]
    for index in range(24):
        crafted.torch_state_dict(folder / f"m{index:02d}.pt", entries)
    outputs = set()
    for jobs in ("1", "2"):
        code, rss, _, written, stderr = measured_output(
            str(folder), "--max-memory", "1GiB", "--jobs", jobs
        )
        assert (code, stderr) == (0, ""), stderr
        assert rss < 300 * 1024, rss  # KiB: one worker's file, not forty reports
        outputs.add(written)
    assert len(outputs) == 1
