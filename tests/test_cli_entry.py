"""The command line's edges (issue 13): shell completion, `rnninspect help`, usage lines as the
README writes them, and Ctrl-C during start-up."""

from __future__ import annotations

import builtins
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import ROOT
from inspector.cli.app import app
from inspector.formats import READERS

runner = CliRunner()


def run(*args: str, **env: str):
    return runner.invoke(app, list(args), prog_name="rnninspect", env=env or None)


def test_show_completion_prints_a_script(monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer detects the shell from the parent processes; a test names it.
    monkeypatch.setattr("typer.completion._get_shell_name", lambda: "bash")
    result = run("--show-completion")
    assert result.exit_code == 0, result.output
    assert "_RNNINSPECT_COMPLETE" in result.stdout
    assert "--install-completion" in run("--help").stdout


def test_help_command_shows_the_same_help_as_the_option() -> None:
    assert run("help").stdout == run("--help").stdout
    for command in ("inspect", "formula", "explain", "compare"):
        assert run("help", command).stdout == run(command, "--help").stdout
    unknown = run("help", "nope")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip().splitlines() == [
        "rnninspect: error: no command 'nope': expected one of inspect, formula, explain, compare"
    ]


def test_usage_lines_match_the_readme() -> None:
    assert run("inspect", "--help").stdout.startswith(
        "Usage: rnninspect inspect [OPTIONS] MODEL|DIR ...\n"
    )
    assert run("explain", "--help").stdout.startswith("Usage: rnninspect explain [OPTIONS] MODEL\n")
    readme = (ROOT / "README.md").read_text()
    assert "rnninspect MODEL|DIR [MODEL|DIR ...] [options]" in readme


def test_help_names_every_format_a_reader_reads() -> None:
    """The top help and the inspect argument name every format (the readers grew from Keras and
    ONNX to seven; the help still said two)."""
    formats = (
        "Keras",
        "ONNX",
        "safetensors",
        "PyTorch",
        "SavedModel",
        "TFLite",
        "GGUF",
        "Hugging Face checkpoint",
    )
    top = " ".join(run("--help").stdout.split())
    argument = " ".join(run("inspect", "--help").stdout.split("Options:")[0].split())
    for name in formats:
        assert name.lower() in top.lower(), name
        assert name.lower() in argument.lower(), name
    assert len(READERS) == 9, "a new reader: name its format in the help texts"


def test_reader_option_lists_its_choices() -> None:
    text = run("inspect", "--help").stdout
    assert "<str>" not in text
    assert "--reader " + "|".join(entry.name for entry in READERS) in text


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["formula", "lstm", "-u", "2", "-d", "3"], "inspector.cli.app"),  # typer's command line
        ([str(ROOT / "fixtures/keras2/simplernn_u1_f1.h5")], "inspector.cli.inspection"),  # fast
    ],
)
def test_ctrl_c_while_the_cli_loads_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    module: str,
) -> None:
    """The interrupt arrives inside an import of the CLI's modules (typer, the readers), on
    either path of the console script. The command line is set here: pytest's own would be
    parsed as one (its test files as models)."""
    from inspector.cli import entry

    monkeypatch.setattr(sys, "argv", ["rnninspect", *argv])
    monkeypatch.delitem(sys.modules, module)
    real_import = builtins.__import__

    def interrupted(name: str, *args: object, **kwargs: object) -> object:
        if name == module:
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == 130
    assert capsys.readouterr().err == ""


def test_the_entry_point_guards_before_anything_loads() -> None:
    """`import inspector` and `inspector.cli.entry` load no module of rnninspect or of a library
    (the `inspector.cli` package's `__init__` is empty), so the console script's guard is in place
    before any import that can take time."""
    code = (
        "import sys; import inspector.cli.entry; "
        "print(sorted(m for m in sys.modules if m.startswith(('inspector.', 'typer', 'h5py', "
        "'onnx', 'numpy', 'tabulate')) and m not in ('inspector.cli', 'inspector.cli.entry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_elsewhere_than_posix_the_command_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Windows (os.name "nt") fork and setrlimit do not exist: one line and exit 2, before
    anything that needs them is imported, never an ImportError. (The entry point's `os` is
    swapped, not the process's: pathlib would make Windows paths.)"""
    import os
    import types

    from conftest import FIXTURES, run_main
    from inspector.cli import entry

    windows = types.SimpleNamespace(name="nt", environ=os.environ, _exit=os._exit)
    monkeypatch.setattr(entry, "os", windows)
    monkeypatch.delitem(sys.modules, "inspector.cli.supervise", raising=False)
    ran = run_main([str(FIXTURES / "keras2/embedding_lstm_dense.h5")])
    assert (ran.code, ran.stdout) == (2, "")
    (line,) = ran.stderr.splitlines()
    assert line.startswith("rnninspect: error: rnninspect runs on POSIX systems")
    assert sys.platform in line
    assert "inspector.cli.supervise" not in sys.modules  # nothing needing fork was imported


def test_typer_s_rich_is_never_imported() -> None:
    """typer brings rich, pygments and markdown-it-py (README, "What pip install . installs");
    rnninspect switches them off: its help and a usage error (typer's formatting) run without
    importing them. typer imports rich only where it finds TYPER_USE_RICH unset and a markup
    mode set; this holds that neither path is taken."""
    h5 = str(ROOT / "fixtures/keras2/embedding_lstm_dense.h5")
    code = (
        "import sys\n"
        "from inspector.cli.app import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m.split('.')[0] for m in sys.modules\n"
        "             if m.split('.')[0] in ('rich', 'pygments', 'markdown_it', 'mdurl')),\n"
        "      file=sys.stderr)"
    )
    for args in (["--help"], [h5, "--format", "xml"]):
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,  # a hang guard, never a speed requirement
        )
        assert done.stderr.splitlines()[-1] == "[]", (args, done.stderr)
