"""The console script's entry point (`rnninspect`, `python -m inspector`).

Ctrl-C can arrive while the command line's modules are still loading (typer, the readers); the
KeyboardInterrupt then comes out of an import, before `inspector.cli.main` could catch it. This
module imports nothing of rnninspect at load time, so the guard below is in place before any of
it loads: Ctrl-C at any moment ends with exit code 130 and no traceback.

The common command line, `rnninspect MODEL ... [OPTION ...]`, is parsed by inspector/argv.py
and run without importing typer; every other one goes to typer (inspector/cli.py).
"""

from __future__ import annotations

import os
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def main() -> None:
    # numpy's OpenBLAS starts a thread per core when h5py imports numpy (~90 ms of CPU here);
    # rnninspect does no linear algebra, so one thread serves it. A value the user set stays.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        from inspector.argv import parse_inspect
        from inspector.inspection import OUTPUT_FORMATS

        parsed = parse_inspect(sys.argv[1:], os.environ, OUTPUT_FORMATS)
        if parsed is None:
            from inspector.cli import main as run

            run()
            return
        from inspector.console import ended
        from inspector.inspection import InspectOptions, run_inspect

        models, values = parsed
        ended(lambda: run_inspect(models, InspectOptions(**values)))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\n")  # end the line the terminal echoed ^C on
        sys.exit(EXIT_INTERRUPTED)
