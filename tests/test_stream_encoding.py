"""Whatever encoding standard output has, a command ends with its output or one line and an
exit code, never "internal error": an ASCII stream (LANG=C without a UTF-8 locale,
PYTHONIOENCODING=ascii) gets UTF-8, as click.echo wrote it before the fast path; an encoding
that cannot hold the text (latin-1 and a CJK file name) is one line, exit 2, nothing written.
Both paths of the console script (inspector/cli/entry.py, typer's inspector/cli/app.py) agree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

TYPER = "import sys; from inspector.cli.app import main; sys.argv[0] = 'rnninspect'; main()"
ENTRY = "import sys; from inspector.cli.entry import main; sys.argv[0] = 'rnninspect'; main()"


def _run(code: str, args: list[str], encoding: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    env.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, env=env, cwd=cwd, check=False
    )


@pytest.mark.parametrize("encoding", ["ascii", "ascii:strict", "latin-1"])
def test_any_stdout_encoding_ends_in_output_or_one_line(tmp_path: Path, encoding: str) -> None:
    shutil.copy(FIXTURES / "keras2/simplernn_u1_f1.h5", tmp_path / "模型.h5")
    for args in (["模型.h5"], ["formula", "lstm", "-u", "2", "-d", "3"]):
        fast = _run(ENTRY, args, encoding, tmp_path)
        typed = _run(TYPER, args, encoding, tmp_path)
        assert (fast.returncode, fast.stdout, fast.stderr) == (
            typed.returncode,
            typed.stdout,
            typed.stderr,
        ), args
        assert b"internal error" not in fast.stderr and b"Traceback" not in fast.stderr
        if encoding.startswith("ascii"):
            assert fast.returncode == 0, fast.stderr
            text = fast.stdout.decode("utf-8")  # UTF-8, whole
            assert ("模型.h5" if args[0] == "模型.h5" else "·") in text
        elif fast.returncode:
            assert fast.returncode == 2 and fast.stdout == b""
            assert fast.stderr.decode().count("\n") == 1
            assert "PYTHONIOENCODING" in fast.stderr.decode()
