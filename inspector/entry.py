"""The console script's entry point (`rnninspect`, `python -m inspector`).

Ctrl-C can arrive while the command line's modules are still loading (typer, the readers); the
KeyboardInterrupt then comes out of an import, before `inspector.cli.main` could catch it. This
module imports nothing of rnninspect at load time, so the guard below is in place before any of
it loads: Ctrl-C at any moment ends with exit code 130 and no traceback.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def main() -> None:
    try:
        from inspector.cli import main as run

        run()
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\n")  # end the line the terminal echoed ^C on
        sys.exit(EXIT_INTERRUPTED)
