"""The fast path (inspector/cli/argv.py: `rnninspect MODEL ... [OPTION ...]` parsed without typer)
and typer's command (inspector/cli/app.py) are one command: the same options with the same
defaults, and, for every command line the fast path takes, the same output, messages, files
written and exit code. Every other command line goes to typer."""

from __future__ import annotations

import dataclasses
import itertools
import random
import shutil
from pathlib import Path

import pytest
import typer.main

from conftest import FIXTURES, Ran, run_main
from inspector.cli import app as cli
from inspector.cli.argv import CHOICE, COMMANDS, COUNT, FLAG, OPTIONS, SECONDS, TEXT, parse_inspect
from inspector.cli.inspection import OUTPUT_FORMATS, InspectOptions

H5 = FIXTURES / "keras2/embedding_lstm_dense.h5"
ONNX = FIXTURES / "onnx/hand_gru_bidir_lbr1.onnx"
SIMPLE = FIXTURES / "keras2/simplernn_u1_f1.h5"


def _inspect_params() -> dict[str, object]:
    group = typer.main.get_command(cli.app)
    command = group.commands["inspect"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def test_the_subcommands_are_typer_s() -> None:
    group = typer.main.get_command(cli.app)
    assert set(COMMANDS) == set(group.commands)  # type: ignore[attr-defined]


def _kind(param: object) -> str:
    """The argv.py kind that parses what typer parses for this option, or a failure saying
    what argv.py lacks."""
    kind = type(getattr(param, "type", None)).__name__
    if getattr(param, "is_flag", False):
        return FLAG
    if kind == "TyperChoice":
        return CHOICE
    if kind == "IntRange" and getattr(param.type, "min", None) == 1:  # type: ignore[attr-defined]
        return COUNT
    if kind == "FloatParamType":
        return SECONDS
    if kind in ("StringParamType", "TyperPath"):
        return TEXT
    raise AssertionError(
        f"inspector/cli/argv.py has no kind for {param.opts} ({kind}): add one to "  # type: ignore[attr-defined]
        "argv._value that takes exactly the values typer takes, or leave such lines to typer"
    )


def test_every_option_of_inspect_is_known_with_its_default() -> None:
    """Adding an option to `inspect` (report/gates.py GATES, cli/app.py, ARCHITECTURE.md "A new
    gate") is held here: a message says what to add where."""
    params = _inspect_params()
    fields = {field.name: field for field in dataclasses.fields(InspectOptions)}
    for name, param in params.items():
        if param.param_type_name != "option":
            continue
        default = getattr(param.default, "value", param.default)
        assert name in fields, (
            f"add `{name}: {type(default).__name__ if default is not None else 'str | None'} = "
            f"{default!r}` to InspectOptions (inspector/cli/inspection.py), and pass it on"
        )
        assert fields[name].default == default, f"InspectOptions.{name} defaults to {default!r}"
        kind = _kind(param)
        for spelling in (*param.opts, *param.secondary_opts):
            assert OPTIONS.get(spelling) == (name, kind), (
                f'add `"{spelling}": ("{name}", {kind.upper()}),` to OPTIONS in '
                "inspector/cli/argv.py"
            )
    spellings = {
        spelling
        for param in params.values()
        if param.param_type_name == "option"
        for spelling in (*param.opts, *param.secondary_opts)
    }
    assert set(OPTIONS) == spellings, f"not options of inspect: {set(OPTIONS) - spellings}"
    assert set(fields) == set(params) - {"models"}
    assert tuple(member.value for member in cli.OutputFormat) == OUTPUT_FORMATS


def _both(args: list[str]) -> tuple[Ran, Ran]:
    assert parse_inspect(args, {}, OUTPUT_FORMATS) is not None, args  # the fast path takes it
    return run_main(args), run_main(args, typer_only=True)


def _cases(tmp: Path) -> list[list[str]]:
    folder = tmp / "scan"
    folder.mkdir()
    shutil.copy(H5, folder / "a.h5")
    shutil.copy(ONNX, folder / "b.onnx")
    h5, onnx = str(H5), str(ONNX)
    return [
        [h5],
        ["inspect", h5],
        [onnx],
        [h5, onnx],
        [str(folder)],
        [h5, "-f", "json"],
        ["--format=markdown", h5],
        [h5, "--format", "csv", "--weighted-only"],
        [h5, "-f", "html"],
        [h5, "-q", "--max-params", "10"],
        [h5, "--max-params", "10", "--max-size=1k", "--max-file-size", "1MB"],
        [h5, "--max-layer-params", "100", "--max-macs", "1k", "--seq-len", "5"],
        [h5, "--recurrent-only", "--strict"],
        [h5, "--all-layers", "--weighted-only"],  # exclude each other: one line, exit 2
        [h5, "--max-params", "ten"],  # not a count
        [h5, "--max-memory", "1MB"],  # too little to read a file
        [h5, "--timeout", "0"],
        [h5, "--timeout=2.5", "-j", "1"],
        [str(folder), "--jobs", "2", "-f", "json"],
        [h5, "--reader", "onnx"],  # the wrong reader
        [h5, "--reader", "nosuch"],
        [str(tmp / "missing.h5")],
        [str(tmp)],  # a directory holding only a folder
    ]


def test_the_fast_path_and_typer_agree(tmp_path: Path) -> None:
    for args in _cases(tmp_path):
        fast, typed = _both(args)
        assert fast == typed, args
    out = tmp_path / "report.csv"
    args = [str(H5), "-o", str(out), "-f", "csv"]
    fast = run_main(args)
    written = out.read_text()
    out.unlink()
    assert run_main(args, typer_only=True) == fast
    assert out.read_text() == written and "embedding" in written


def test_random_option_combinations_agree(tmp_path: Path) -> None:
    """Seeded combinations of options and value spellings, each through both paths."""
    rng = random.Random(16)
    values = {
        "output_format": list(OUTPUT_FORMATS),
        "reader": ["keras-h5", "onnx"],
        "max_params": ["100", "1k", "1.5M", "x"],
        "max_size": ["1k", "2GiB", "10"],
        "max_file_size": ["1MB", "5"],
        "max_layer_params": ["10", "300"],
        "max_macs": ["1k", "2M"],
        "seq_len": ["1", "7"],
        "max_state": ["1MB", "64"],
        "context": ["1", "4096"],
        "state_dtype": ["float16", "f16"],
        "timeout": ["5", "60.0", "0"],
        "jobs": ["1", "3"],
        "max_memory": ["2GiB", "500MB"],
        "output": [str(tmp_path / "report.txt")],
    }
    spellings: dict[str, list[str]] = {}
    for spelling, (field, _) in OPTIONS.items():
        spellings.setdefault(field, []).append(spelling)
    for _ in range(12):
        args = [str(rng.choice([H5, ONNX, SIMPLE]))]
        for field in rng.sample(sorted(spellings), rng.randint(1, 4)):
            spelling = rng.choice(spellings[field])
            if field not in values:
                args.append(spelling)
            elif spelling.startswith("--") and rng.random() < 0.5:
                args.append(f"{spelling}={rng.choice(values[field])}")
            else:
                args += [spelling, rng.choice(values[field])]
        fast, typed = _both(args)
        assert fast == typed, args


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["-h"],
        ["--version"],
        [str(H5), "--help"],
        ["compare", str(H5), str(H5)],
        ["explain", str(H5)],
        ["formula", "lstm", "--units", "4", "--input-dim", "3"],
        ["help"],
        ["inspect"],
        [str(H5), "--", "-x.h5"],
        [str(H5), "-fjson"],
        [str(H5), "-qf", "json"],
        [str(H5), "-o=out.csv"],
        [str(H5), "--format", "JSON"],
        [str(H5), "--timeout", "1e3"],
        [str(H5), "--timeout", "-1"],
        [str(H5), "--jobs", "0"],
        [str(H5), "--seq-len", "+3"],
        [str(H5), "--strict=1"],
        [str(H5), "-q", "--quiet"],
        [str(H5), "--max-params"],
        [str(H5), "--max-params", "-5"],
        [str(H5), "--max-params="],
        [""],
        ["-"],
        [str(H5), "--no-such-option"],
        [str(H5), "--max-par", "5"],
    ],
)
def test_other_command_lines_go_to_typer(args: list[str]) -> None:
    assert parse_inspect(args, {}, OUTPUT_FORMATS) is None


def test_completion_goes_to_typer() -> None:
    assert parse_inspect([str(H5)], {"_RNNINSPECT_COMPLETE": "bash_complete"}, ()) is None


def test_what_typer_answers_on_the_lines_it_takes() -> None:
    """A few of those lines through the console script: typer's answers, one line each (see
    tests/test_usage.py), never a traceback."""
    for args in ([str(H5), "--jobs", "0"], [str(H5), "--format", "JSON"], [str(H5), "-fjson"]):
        ran = run_main(args)
        assert ran == run_main(args, typer_only=True)
        assert "Traceback" not in ran.stderr
    assert run_main([str(H5), "-fjson"]).stdout.startswith("{")


def test_the_fast_path_never_imports_typer() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from inspector.cli import entry; sys.argv = ['rnninspect', sys.argv[1]]\n"
        "entry.run()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click')), "
        "file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(H5)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,  # a hang guard, never a speed requirement
    )
    assert done.stderr.strip() == "[]"
    assert "embedding" in done.stdout


def test_every_option_spelling_pairs_with_every_kind_of_value() -> None:
    """Each option in each spelling the fast path takes, parsed to the value typer gives."""
    for spelling, (field, kind) in OPTIONS.items():
        sample = {
            "flag": None,
            "text": "12k",
            "count": "3",
            "seconds": "2.5",
            "choice": "json",
        }[kind]
        forms = [[spelling]] if sample is None else [[spelling, sample]]
        if sample is not None and spelling.startswith("--"):
            forms.append([f"{spelling}={sample}"])
        for form, first in itertools.product(forms, (True, False)):
            args = [*form, str(H5)] if first else [str(H5), *form]
            parsed = parse_inspect(args, {}, OUTPUT_FORMATS)
            assert parsed is not None, args
            _, values = parsed
            expected = {"flag": True, "count": 3, "seconds": 2.5}.get(kind, sample)
            if field == "output":
                expected = Path(str(sample))
            assert values == {field: expected}, args


def test_paths_typer_refuses_as_unreadable_go_to_typer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """typer's Path type (readable=True) refuses an existing path the process may not read,
    for MODEL|DIR and for --output alike; the fast path must leave such lines to typer, so both
    give typer's message. os.access is denied for one path, as for a user other than its owner
    (root may read anything, so chmod alone would not show it)."""
    import os

    denied = tmp_path / "denied"
    denied.mkdir()
    model = denied / "model.h5"
    shutil.copy(H5, model)
    report = denied / "report.txt"
    report.write_text("old\n")
    access = os.access

    def no_read(path: object, mode: int, **kwargs: object) -> bool:
        if mode & os.R_OK and str(path).startswith(str(denied)):
            return False
        return access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", no_read)
    for args in ([str(model)], [str(H5), "-o", str(report)], [str(denied)], [str(H5), str(model)]):
        assert parse_inspect(args, {}, OUTPUT_FORMATS) is None, args
        ran = run_main(args)
        assert ran == run_main(args, typer_only=True), args
        assert ran.code == 2 and "is not readable" in ran.stderr, args
    assert report.read_text() == "old\n"
    assert parse_inspect([str(tmp_path / "missing.h5")], {}, OUTPUT_FORMATS) is not None


def test_the_console_script_writes_everything_before_it_ends(tmp_path: Path) -> None:
    """After the fast path the process ends without the interpreter's teardown (os._exit):
    output larger than a pipe's buffer, stderr lines, a file written by --output and the exit
    code all arrive whole, as the in-process run gives them."""
    import subprocess
    import sys

    args = [*[str(H5)] * 40, "-f", "json", "--max-params", "10", "--jobs", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "inspector", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,  # a hang guard, never a speed requirement
    )
    here = run_main(args)
    assert len(done.stdout) > 65536  # more than a pipe holds: written while the reader reads
    assert (done.returncode, done.stdout, done.stderr) == (here.code, here.stdout, here.stderr)
    assert done.returncode == 1 and done.stderr.count("gate failed") == 40
    out = tmp_path / "report.md"
    done = subprocess.run(
        [sys.executable, "-m", "inspector", str(H5), "-f", "markdown", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == ""
    assert out.read_text() == run_main([str(H5), "-f", "markdown"]).stdout
