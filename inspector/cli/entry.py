"""The console script's entry point (`rnninspect`, `python -m inspector`).

Ctrl-C can arrive while the command line's modules are still loading (typer, the readers); the
KeyboardInterrupt then comes out of an import, before `inspector.cli.app.main` could catch it. This
module imports nothing of rnninspect at load time, so the guard below is in place before any of
it loads: Ctrl-C at any moment ends with exit code 130 and no traceback.

The common command line, `rnninspect MODEL ... [OPTION ...]`, is parsed by inspector/cli/argv.py
and run without importing typer; every other one goes to typer (inspector/cli/app.py).
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress

# console.EXIT_INTERRUPTED and EXIT_UNREADABLE; repeated: this module imports nothing first
EXIT_INTERRUPTED, EXIT_USAGE = 130, 2


def main() -> None:
    """The console script. After the fast path the process ends at once: freeing every
    module's objects at exit took a tenth of a small file's run, and there is nothing left to
    do (every write is flushed as it is made; stdout and stderr are flushed again here)."""
    code = run()
    if code is None:
        return
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError, AttributeError):  # closed or full: the code tells
            stream.flush()
    os._exit(code)


def _no_core_files() -> None:
    """A crash writes no core file into the current directory, in any mode: the workers turn
    core dumps off themselves, but `--timeout 0` reads in this process (and its lanes), and
    rnninspect writes nothing but what --output and --svg name."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def run() -> int | None:
    """The command line in `sys.argv`: the exit code of `rnninspect MODEL ... [OPTION ...]`,
    run without typer; any other line goes to typer, which ends with SystemExit (None: it
    returned). Ctrl-C: SystemExit 130."""
    if os.name != "posix":  # fork and setrlimit (cli/supervise.py) exist on POSIX only
        sys.stderr.write(
            "rnninspect: error: rnninspect runs on POSIX systems (Linux, macOS) only: it reads "
            f"each file in a forked process under resource limits, which {sys.platform} does "
            "not offer\n"
        )
        return EXIT_USAGE
    # numpy's OpenBLAS starts a thread per core when h5py imports numpy (~90 ms of CPU here);
    # rnninspect does no linear algebra, so one thread serves it. A value the user set stays.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _no_core_files()
    try:
        from inspector.cli.argv import parse_inspect
        from inspector.cli.inspection import OUTPUT_FORMATS

        parsed = parse_inspect(sys.argv[1:], os.environ, OUTPUT_FORMATS)
        if parsed is None:
            from inspector.cli.app import main as typer_main

            typer_main()
            return None
        from inspector.cli.console import ended
        from inspector.cli.inspection import InspectOptions, run_inspect

        models, values = parsed
        try:
            ended(lambda: run_inspect(models, InspectOptions(**values)))  # type: ignore[arg-type]
        except SystemExit as done:
            if isinstance(done.code, int):
                return done.code
            raise
        return 0
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\n")  # end the line the terminal echoed ^C on
        sys.exit(EXIT_INTERRUPTED)
