"""What every command says and how it ends: one line on stderr, the output on stdout or in
`--output`, and an exit code, without typer.

The commands' work (inspector/cli/inspection.py) runs both under typer (inspector/cli/app.py) and on
the fast path of `rnninspect MODEL ...` (inspector/cli/argv.py), which never imports typer: so
nothing here may import it. Exit codes: 0 inspected and every check and gate passed, 1
inspected but a check or a gate failed, 2 could not inspect (or a usage error).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from inspector.errors import InspectorError, UsageError

if TYPE_CHECKING:
    from inspector.location import Url
    from inspector.render import Style

EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# click's strip_ansi: what click.echo removes from text that must not be coloured.
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


class Exit(SystemExit):
    """End the command with this exit code; anything to say is already on stderr. A
    SystemExit, so it ends the process the same way under typer, on the fast path, in
    typer's test runner and in a bounded worker."""


def error(message: str) -> None:
    say(f"rnninspect: error: {message}")


def say(line: str) -> None:
    """One message on stderr: one line for pipes and logs, wrapped to a terminal's width.
    Text quoted from a file is escaped first: no ESC sequence or newline of its own reaches
    the terminal or the log."""
    from inspector.render.text import printable

    line = printable(line)
    with suppress(OSError, ValueError, AttributeError):  # stderr closed or full: the code tells
        if sys.stderr.isatty():
            from inspector.render.fit import wrap

            line = wrap(line, fit_width(sys.stderr) or 80)
        _echo(line, sys.stderr, colour=sys.stderr.isatty())


def _echo(text: str, stream: TextIO, *, colour: bool) -> None:
    """click.echo's behaviour for a text stream: the line and its newline in one write, then
    a flush; colour codes removed where there must be none. A stream that says ASCII (LANG=C
    without a UTF-8 locale, PYTHONIOENCODING=ascii) gets UTF-8, as click writes it there
    (click/_compat.py `_stream_is_misconfigured`): file names and `·` are not ASCII."""
    line = (text if colour else _ANSI.sub("", text)) + "\n"
    binary = getattr(stream, "buffer", None)
    if binary is not None and _is_ascii(getattr(stream, "encoding", None) or "ascii"):
        stream.flush()
        binary.write(line.encode("utf-8", "replace"))
        binary.flush()
        return
    stream.write(line)
    stream.flush()


def _is_ascii(encoding: str) -> bool:
    import codecs

    try:
        return codecs.lookup(encoding).name == "ascii"
    except LookupError:
        return False


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input from the user or the file: one line on stderr, exit 2, no traceback."""
    try:
        yield
    except InspectorError as failed:
        error(str(failed))
        raise Exit(failed.exit_code) from None


def style_for(output: Path | None, decorated: bool) -> Style:
    """Colour only on a terminal that did not set NO_COLOR (https://no-color.org), never in a
    file; block characters only where the output can encode them."""
    from inspector.render.text import Style

    if output is not None:
        return Style(colour=False, unicode=True)
    terminal = sys.stdout is not None and sys.stdout.isatty()  # None: stdout closed
    colour = decorated and terminal and not os.environ.get("NO_COLOR")
    return Style(colour=colour, unicode=can_encode(sys.stdout, "█▉·"), width=fit_width(sys.stdout))


def fit_width(stream: TextIO | None) -> int | None:
    """The columns to fit text to: COLUMNS when set (also for a pipe: the user asked), the
    terminal's width when `stream` is a terminal; None (lines stay whole) for files and pipes."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stream is not None and stream.isatty():
        import shutil  # a terminal only: pipes and files never pay for importing it

        return shutil.get_terminal_size().columns
    return None


def can_encode(stream: TextIO | None, sample: str) -> bool:
    try:
        sample.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def emit(text: str | None, output: Path | None, style: Style | None = None) -> None:
    """The command's output: on stdout (coloured only if `style` says so), or into `output`."""
    if text is None:
        return
    if output is None:
        if sys.stdout is None:
            raise UsageError("standard output is closed: nothing can be written (use --output)")
        try:
            _echo(text, sys.stdout, colour=style.colour if style else False)
        except OSError as failed:  # a full disk, a closed pipe
            silence_stdout()
            raise UsageError(
                f"cannot write to standard output ({failed.strerror or failed})"
            ) from None
        except UnicodeEncodeError as failed:  # nothing was written: the text is encoded first
            raise UsageError(
                f"standard output's encoding {failed.encoding} cannot write "
                f"{failed.object[failed.start : failed.end]!r}: set PYTHONIOENCODING=utf-8 or "
                "use --output"
            ) from None
        return
    write(output, text + "\n", "--output")


def write(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as failed:
        raise UsageError(f"{option} {path}: cannot write ({failed.strerror or failed})") from None


def silence_stdout() -> None:
    """After a failed write, Python would try to flush the same bytes again at exit and print
    a traceback: point stdout at /dev/null so the process ends with our one line."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def check_output(
    output: Path | None, inputs: Sequence[Path | Url], option: str = "--output"
) -> None:
    """Refuse an --output that is one of the inputs (by inode: a symlink or a relative path
    names the same file), an existing model file, or any path inside a SavedModel directory
    (its members, `keras_metadata.pb`, `variables/variables.index`, ..., carry no signature of
    their own, and each is the model) or a Hugging Face checkpoint directory: a report never
    overwrites a model."""
    if output is None:
        return
    from inspector.formats import looks_like_model
    from inspector.formats.detect import is_hf_checkpoint_dir, is_savedmodel_dir

    folder = Path(os.path.realpath(output)).parent  # where a symlink would write
    for parent in (folder, folder.parent):  # the directory itself or its variables/ folder
        if is_savedmodel_dir(parent):
            raise UsageError(
                f"{option} {output} is inside the TensorFlow SavedModel {parent}: refusing "
                "to write into a model"
            )
    if is_hf_checkpoint_dir(folder):  # its config.json and index carry no signature either
        raise UsageError(
            f"{option} {output} is inside the Hugging Face checkpoint {folder}: refusing to "
            "write into a model"
        )
    try:
        existing = output.stat()
    except OSError:
        return  # nothing there yet (an unwritable place is reported when writing)
    for path in inputs:
        if not isinstance(path, Path):
            continue  # a URL's object is no local file --output could overwrite
        try:
            same = os.path.samestat(existing, path.stat())
        except OSError:
            continue
        if same:
            raise UsageError(
                f"{option} {output} is the input file {path}: refusing to overwrite a model"
            )
    if looks_like_model(output):
        raise UsageError(f"{option} {output} is an existing model file: refusing to overwrite it")


def ended(run: Callable[[], object]) -> None:
    """Run a command as the console script does: every way out of the process is one line on
    stderr (when there is something to say) and an exit code, never a traceback."""
    try:
        run()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except MemoryError:
        error("out of memory (raise --max-memory or free memory)")
        sys.exit(EXIT_UNREADABLE)
    except Exception as failed:  # a bug: one line, labelled as such
        error(f"internal error (please report this bug): {type(failed).__name__}: {failed}")
        sys.exit(EXIT_UNREADABLE)
