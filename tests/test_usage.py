"""Usage errors and completion (issue 25): every usage error, on every command and through both
parsers (the fast path, inspector/cli/argv.py, and typer alone), is one line on stderr,
`rnninspect: error: ...`, with the valid choices where there are some, nothing on stdout, and
exit 2; `formula <TAB>` completes cell names and `--reader <TAB>` readers."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, Ran, run_main
from inspector.cli import app as cli
from inspector.formats import READERS
from inspector.layer_spec import CELL_NAMES

H5 = str(FIXTURES / "keras2/embedding_lstm_dense.h5")
ONNX = str(FIXTURES / "onnx/tf2onnx_lstm_h16_d8.onnx")
CHOICES = {
    "inspect": [m.value for m in cli.OutputFormat],
    "explain": [m.value for m in cli.ExplainFormat],
    "compare": [m.value for m in cli.DocFormat],
    "formula": [m.value for m in cli.DocFormat],
}
COMMANDS = {
    "inspect": [H5],
    "explain": ["explain", H5],
    "compare": ["compare", H5, ONNX],
    "formula": ["formula", "lstm", "--units", "4", "--input-dim", "3"],
}
# The four, and the other ways a value or a line can be wrong.
BAD = {
    "inspect": [
        ["--format", "xml"],
        ["--jobs", "0"],
        ["--seq-len", "-3"],
        ["--timeout", "abc"],
        ["--max-params", "12XB"],
        ["--max-memory", "lots"],
        ["--max-par", "3"],
        ["--format"],
    ],
    "explain": [
        ["--format", "xml"],
        ["--timeout", "abc"],
        ["--max-memory", "lots"],
        ["--layer"],
    ],
    "compare": [["--format", "xml"], ["--timeout", "abc"], ["--atol", "x"], ["--atol", "-1"]],
    "formula": [["--format", "xml"], ["--units", "x"], ["--convention", "foo"], ["--nope"]],
}
CASES = [(command, bad) for command, lines in BAD.items() for bad in lines]


def _one_line_error(ran: Ran) -> str:
    assert ran.code == 2, ran
    assert ran.stdout == "", ran
    (line,) = ran.stderr.splitlines()
    assert line.startswith("rnninspect: error: ") and "Traceback" not in line
    return line


@pytest.mark.parametrize(("command", "bad"), CASES, ids=[f"{c} {' '.join(b)}" for c, b in CASES])
def test_a_usage_error_is_one_line_and_exit_2_through_both_parsers(
    command: str, bad: list[str]
) -> None:
    args = [*COMMANDS[command], *bad]
    fast, typed = run_main(args), run_main(args, typer_only=True)
    assert fast == typed
    line = _one_line_error(fast)
    if bad[0] == "--format" and len(bad) == 2:  # a choice: every valid one is named
        assert all(f"'{choice}'" in line for choice in CHOICES[command]), line


@pytest.mark.parametrize(
    "args",
    [["formula"], ["formula", "nosuchcell", "-u", "1", "-d", "1"], ["compare", H5], ["inspect"]],
)
def test_a_missing_or_unknown_argument_is_one_line(args: list[str]) -> None:
    line = _one_line_error(run_main(args))
    if "nosuchcell" in args:
        assert all(name in line for name in CELL_NAMES)


def _completions(words: str) -> list[str]:
    """What bash completion offers after `words` (the last word being completed), as the
    installed script (`rnninspect`) answers its shell's request."""
    ran = CliRunner().invoke(
        cli.app,
        [],
        prog_name="rnninspect",
        env={
            "_RNNINSPECT_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        },
    )
    assert ran.exit_code == 0, ran.output
    return ran.stdout.split()


def test_formula_completes_cell_names() -> None:
    assert _completions("rnninspect formula ") == list(CELL_NAMES)
    assert _completions("rnninspect formula convlstm") == [
        name for name in CELL_NAMES if name.startswith("convlstm")
    ]


def test_reader_completes_reader_names() -> None:
    names = [entry.name for entry in READERS]
    assert _completions(f"rnninspect {H5} --reader ") == names
    assert _completions(f"rnninspect explain {H5} --reader t") == [
        name for name in names if name.startswith("t")
    ]
