"""Command line: `rnninspect MODEL|DIR ...` and the `formula`, `explain` and `compare`
subcommands.

The only place where exceptions become a message on stderr and an exit code:
0 inspected and every check and gate passed, 1 inspected but a check or a gate failed,
2 could not inspect (or a usage error). Heavy modules (the readers, h5py, onnx, tabulate) are
imported inside the commands, so `rnninspect --help` stays fast.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from inspector import __version__
from inspector.errors import InspectorError, UsageError
from inspector.formats import READERS

if TYPE_CHECKING:
    from inspector.compare.result import Tolerance
    from inspector.render import LayerView, Style
    from inspector.report.batch import Outcome
    from inspector.report.gates import Budget
    from inspector.supervise import Limits, Started

EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 2
# Tolerances of `compare` (inspector.compare.result.Tolerance; repeated here so --help imports
# nothing): float32 exports keep values bit-for-bit or within a few units in the last place.
DEFAULT_ATOL, DEFAULT_RTOL = 1e-6, 1e-5
PROGRESS_MIN_FILES = 20  # below this a directory scan is too quick for a progress bar
ERASE_LINE = "\r\x1b[K"  # back to the line's start, then clear it


class _DefaultToInspect(TyperGroup):
    """`rnninspect model.h5` means `rnninspect inspect model.h5`."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        top_level = {"--help", "-h", "--version", "--install-completion", "--show-completion"}
        if args and args[0] not in self.commands and args[0] not in top_level:
            args.insert(0, "inspect")
        return super().parse_args(ctx, args)


class _Usage(TyperCommand):
    """Usage lines as the README writes them: `MODEL|DIR ...` for an argument that takes many,
    `MODEL` for one (typer writes `{MODEL|DIR}` and `{MODEL}`)."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        pieces = []
        for piece in super().collect_usage_pieces(ctx):
            for param in self.get_params(ctx):
                if isinstance(param, TyperArgument) and param.metavar:
                    many = " ..." if param.nargs == -1 else ""
                    piece = piece.replace(f"{{{param.metavar}}}", param.metavar + many)
            pieces.append(piece)
        return pieces


app = typer.Typer(
    cls=_DefaultToInspect,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Inspect saved models (Keras .h5/.keras, ONNX, safetensors, PyTorch torch.save, "
    "TensorFlow SavedModel, TFLite) without TensorFlow or PyTorch: "
    "per-layer parameter counts, recurrent layers split into kernel / recurrent_kernel / "
    "bias, each checked against the closed-form formula.\n\n"
    "`rnninspect MODEL|DIR ...` is short for `rnninspect inspect MODEL|DIR ...`.",
)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


class DocFormat(str, Enum):
    table = "table"
    json = "json"


class ExplainFormat(str, Enum):
    table = "table"
    json = "json"
    html = "html"


class ConventionName(str, Enum):
    keras = "keras"
    onnx = "onnx"
    pytorch = "pytorch"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnninspect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Inspect recurrent layers of saved models."""


def _error(message: str) -> None:
    _say(f"rnninspect: error: {message}")


def _say(line: str) -> None:
    """One message on stderr: one line for pipes and logs, wrapped to a terminal's width.
    Text quoted from a file is escaped first: no ESC sequence or newline of its own reaches
    the terminal or the log."""
    from inspector.render.text import printable

    line = printable(line)
    with suppress(OSError, ValueError):  # stderr closed or full: the exit code still tells
        if sys.stderr.isatty():
            from inspector.render.fit import wrap

            line = wrap(line, _width(sys.stderr) or 80)
        typer.echo(line, err=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input from the user or the file: one line on stderr, exit 2, no traceback."""
    try:
        yield
    except InspectorError as error:
        _error(str(error))
        raise typer.Exit(error.exit_code) from None


# ------------------------------------------------------------------------------ inspect

_OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write the output to this file instead of stdout (never coloured).",
        show_default=False,
    ),
]
_ReaderOption = Annotated[
    str | None,
    typer.Option(
        "--reader",
        metavar="|".join(entry.name for entry in READERS),
        help="Skip format detection and read the file with this reader.",
        show_default=False,
    ),
]


DEFAULT_TIMEOUT = 60.0
_TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Give up on a file (exit 2) whose reading uses more CPU time than this (a read "
        "that blocks gets ten times as long); 0 for no limit and no worker process.",
    ),
]
_MemoryOption = Annotated[
    str,
    typer.Option(
        "--max-memory",
        metavar="SIZE",
        help="Address space the worker reading a file may use, e.g. 2GiB, 500MB; a file that "
        "needs more is refused (exit 2).",
    ),
]
DEFAULT_MAX_MEMORY = "2GiB"


@app.command("inspect", cls=_Usage)
def inspect_command(
    models: Annotated[
        list[Path],
        typer.Argument(
            metavar="MODEL|DIR",
            help="Model files (Keras .h5/.hdf5, .keras, ONNX .onnx, .safetensors, PyTorch "
            "torch.save .pt/.pth/.bin/.ckpt, .tflite), TensorFlow SavedModel directories, or "
            "directories to scan.",
            show_default=False,
        ),
    ],
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="table (terminal), markdown (pastes into a pull request), csv (one row per "
            "layer), json (the documented contract) or html (one self-contained page with "
            "charts and cell diagrams).",
        ),
    ] = OutputFormat.table,
    output: _OutputOption = None,
    reader: _ReaderOption = None,
    all_layers: Annotated[
        bool,
        typer.Option(
            "--all-layers", help="List every layer, parameterless ones too (the default)."
        ),
    ] = False,
    weighted_only: Annotated[
        bool,
        typer.Option(
            "--weighted-only", help="List only layers with parameters (totals still count all)."
        ),
    ] = False,
    recurrent_only: Annotated[
        bool,
        typer.Option(
            "--recurrent-only", help="List recurrent layers only (totals still count all)."
        ),
    ] = False,
    max_params: Annotated[
        str | None,
        typer.Option(
            "--max-params",
            metavar="N",
            help="Fail (exit 1) if a model has more parameters, e.g. 250000, 200k, 1.5M.",
            show_default=False,
        ),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size",
            metavar="SIZE",
            help="Fail if a model's weights take more bytes at their stored dtype, e.g. 50MB "
            "(10^6), 2GiB (2^30), 800000.",
            show_default=False,
        ),
    ] = None,
    max_file_size: Annotated[
        str | None,
        typer.Option(
            "--max-file-size",
            metavar="SIZE",
            help="Fail if a model file takes more bytes on disk (optimizer state and all).",
            show_default=False,
        ),
    ] = None,
    max_layer_params: Annotated[
        str | None,
        typer.Option(
            "--max-layer-params",
            metavar="N",
            help="Fail if any single layer has more parameters.",
            show_default=False,
        ),
    ] = None,
    max_macs: Annotated[
        str | None,
        typer.Option(
            "--max-macs",
            metavar="N",
            help="Fail if a time step takes more multiply-accumulates (every recurrent layer's "
            "step plus every other layer once), e.g. 2M.",
            show_default=False,
        ),
    ] = None,
    seq_len: Annotated[
        int | None,
        typer.Option(
            "--seq-len",
            metavar="T",
            min=1,
            help="Time steps per sequence: adds the MACs for a whole sequence (T per step).",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Fail on 'unverified' checks too, not only 'mismatch'."),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print only failures (gates, checks, unreadable files) on stderr; "
            "--output is still written.",
        ),
    ] = False,
    timeout: _TimeoutOption = DEFAULT_TIMEOUT,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            min=1,
            help="Read up to N files at once when given several or a directory (default: the "
            "number of CPUs); the output keeps the input order.",
            show_default=False,
        ),
    ] = None,
    max_memory: _MemoryOption = DEFAULT_MAX_MEMORY,
) -> None:
    """Report every layer's parameter count and check each recurrent layer against the
    formula. A directory is scanned for model files and summarised one row per file.
    Exit 0: all checks and gates pass; 1: a check or gate failed; 2: a file could not be
    inspected."""
    with _user_errors():
        budget = _budget(
            {
                "--max-params": max_params,
                "--max-size": max_size,
                "--max-file-size": max_file_size,
                "--max-layer-params": max_layer_params,
                "--max-macs": max_macs,
            },
            strict,
        )
        view = _view(all_layers, weighted_only, recurrent_only)
        limits = _limits(timeout, max_memory)
    _inspection(
        models,
        output_format,
        output,
        reader,
        view,
        budget,
        quiet=quiet,
        limits=limits,
        seq_len=seq_len,
        lanes=_lanes(models, jobs),
    )


def _limits(timeout: float, max_memory: str) -> Limits:
    from inspector.sizes import parse_size
    from inspector.supervise import Limits

    if not timeout >= 0:  # also rejects NaN
        raise UsageError(f"--timeout {timeout}: must be >= 0 seconds")
    memory = parse_size(max_memory, "--max-memory")
    if memory < 64 * 1024**2:
        raise UsageError(f"--max-memory {max_memory}: at least 64MiB is needed to read a file")
    return Limits(cpu_seconds=timeout, memory_bytes=memory)


def _lanes(models: Sequence[Path], jobs: int | None) -> _Lanes | None:
    """Lanes for several files (or a directory) and more than one job, where lanes can fork."""
    if not _several(models):
        return None  # one file: nothing to share out, and nothing more to import
    from inspector.lanes import available, cpu_count

    count = jobs or cpu_count()
    return _Lanes(count) if count > 1 and available() else None


def _several(models: Sequence[Path]) -> bool:
    """More than one file to read: several arguments, or a directory to scan."""
    if len(models) > 1:
        return True
    try:
        return any(path.is_dir() for path in models)
    except OSError:
        return False  # reported as unreadable by the one-file path


@dataclass(frozen=True)
class _Lanes:
    """Read files in this many lanes (`--jobs`); each file still gets its own bounded worker."""

    jobs: int


def _bounded(work: Callable[[Started], None], limits: Limits) -> None:
    """Run a whole command's work in one bounded worker (see inspector/supervise.py)."""
    from inspector.supervise import run_bounded

    def run(started: Started) -> int:
        try:
            work(started)
        except typer.Exit as done:
            return int(done.exit_code)
        return EXIT_OK

    code = run_bounded(run, limits)
    if code:
        raise typer.Exit(code)


def _inspection(
    models: Sequence[Path],
    output_format: OutputFormat,
    output: Path | None,
    reader: str | None,
    view: LayerView,
    budget: Budget,
    *,
    quiet: bool,
    limits: Limits,
    seq_len: int | None = None,
    lanes: _Lanes | None = None,
) -> None:
    from inspector.render import check_messages, gate_messages
    from inspector.report.gates import gated

    targets, scanned = _targets(models)
    files = [target for target in targets if isinstance(target, Path)]
    with _user_errors():
        _check_output(output, files)
    outcomes = [
        replace(outcome, report=gated(replace(outcome.report, seq_len=seq_len), budget))
        if outcome.report
        else outcome
        for outcome in _inspect_all(
            targets,
            reader,
            progress=scanned and _wants_progress(len(files)),
            limits=limits,
            lanes=lanes,
        )
    ]
    reports = [outcome.report for outcome in outcomes if outcome.report is not None]
    style = _style(output, output_format is OutputFormat.table)
    if output is not None or not quiet:
        text = _render_inspection(outcomes, output_format, view, style, scanned=scanned)
        with _user_errors():
            _emit(text, output, style)
    for report in reports:
        for message in check_messages(report):
            _say(f"rnninspect: check failed: {message}")
        for message in gate_messages(report):
            _say(f"rnninspect: gate failed: {message}")
    if len(reports) < len(outcomes):
        raise typer.Exit(EXIT_UNREADABLE)
    if any(report.failed or report.gates_failed for report in reports):
        raise typer.Exit(EXIT_FAILED)


def _budget(limits: dict[str, str | None], strict: bool) -> Budget:
    """Each limit given, parsed by what its gate counts (a size or a count)."""
    from inspector.report.gates import GATE_BY_OPTION, Budget
    from inspector.report.verdicts import Unit
    from inspector.sizes import parse_count, parse_size

    parsed = {
        option: parse_size(text, option)
        if GATE_BY_OPTION[option].unit is Unit.BYTES
        else parse_count(text, option)
        for option, text in limits.items()
        if text is not None
    }
    if strict:
        parsed["--strict"] = 0  # no recurrent layer whose check is not ok
    return Budget(parsed)


def _view(all_layers: bool, weighted_only: bool, recurrent_only: bool) -> LayerView:
    from inspector.render import LayerView

    chosen = [
        (flag, view)
        for flag, view in (
            ("--all-layers", LayerView.ALL if all_layers else None),
            ("--weighted-only", LayerView.WEIGHTED if weighted_only else None),
            ("--recurrent-only", LayerView.RECURRENT if recurrent_only else None),
        )
        if view is not None
    ]
    if len(chosen) > 1:
        flags = " and ".join(flag for flag, _ in chosen)
        raise UsageError(f"{flags} exclude each other: choose one")
    # The report shows every layer's count unless asked otherwise.
    return chosen[0][1] if chosen else LayerView.ALL


def _targets(models: Sequence[Path]) -> tuple[list[Path | Outcome], bool]:
    """The files to inspect (a directory holding none is an outcome of its own: nothing could
    be inspected there), and whether any argument was a directory to scan."""
    from inspector.discover import MODEL_SUFFIXES, links_out, model_files
    from inspector.formats.detect import is_savedmodel_dir
    from inspector.report.batch import Outcome

    targets: list[Path | Outcome] = []
    scanned = False
    for path in models:
        try:
            single = not path.is_dir() or is_savedmodel_dir(path)  # a SavedModel dir is a model
        except OSError as error:  # e.g. a component of the path is not searchable
            targets.append(
                Outcome(str(path), error=f"{path}: cannot be read ({error.strerror or error})")
            )
            continue
        if single:
            targets.append(path)
            continue
        scanned = True
        found = model_files(path)
        for file in found:
            if links_out(path, file):  # never opened: reading it would leave the directory
                targets.append(
                    Outcome(
                        str(file),
                        error=f"{file}: a symbolic link out of the scanned directory {path}; "
                        "not followed",
                    )
                )
            else:
                targets.append(file)
        if not found:
            looked_for = ", ".join(sorted(MODEL_SUFFIXES))
            targets.append(
                Outcome(
                    str(path),
                    error=f"{path}: directory holds no model files "
                    f"(looked for {looked_for} and model file signatures)",
                    directory=True,
                )
            )
    return targets, scanned


def _wants_progress(files: int) -> bool:
    return files >= PROGRESS_MIN_FILES and sys.stderr.isatty()


def _inspect_all(
    targets: Sequence[Path | Outcome],
    reader: str | None,
    *,
    progress: bool,
    limits: Limits,
    lanes: _Lanes | None = None,
) -> list[Outcome]:
    from inspector.render import progress_line

    outcomes: list[Outcome] = []
    width = (_width(sys.stderr) or 80) - 1  # a line that wrapped could not be erased

    def show(done: int, label: str) -> None:
        if progress:  # how far the scan has come, and the file read last (lanes) or next
            sys.stderr.write(ERASE_LINE + progress_line(done, len(targets), label, width))
            sys.stderr.flush()

    try:
        if lanes is not None:
            outcomes = _in_lanes(targets, reader, lanes, limits, show)
        else:
            files = [target for target in targets if isinstance(target, Path)]
            with closing(_inspect_each(files, reader, limits)) as read:
                for done, target in enumerate(targets):
                    if not isinstance(target, Path):
                        outcomes.append(target)
                        continue
                    show(done, str(target))
                    outcomes.append(next(read))
    finally:  # also on Ctrl-C: the bar never stays behind
        if progress:
            sys.stderr.write(ERASE_LINE)
            sys.stderr.flush()
    for outcome in outcomes:
        if outcome.error is not None:
            _error(outcome.error)
    return outcomes


def _in_lanes(
    targets: Sequence[Path | Outcome],
    reader: str | None,
    lanes: _Lanes,
    limits: Limits,
    show: Callable[[int, str], None],
) -> list[Outcome]:
    """The targets' outcomes in input order, the files read in `lanes.jobs` forked lanes. Each
    lane reads its files one after the other under per-file bounds (`_inspect_each`), exactly
    as a single run does: a file that hits a bound is reported and the others are still read."""
    from inspector.lanes import LaneFailed, run_lanes

    files = [target for target in targets if isinstance(target, Path)]
    _preload(files, reader)
    finished = [0]

    def lane(indices: Sequence[int], send: Callable[[int, Outcome], None]) -> int:
        mine = [files[index] for index in indices]
        with closing(_inspect_each(mine, reader, limits)) as read:
            for index, outcome in zip(indices, read, strict=True):
                send(index, outcome)
        return EXIT_OK

    def done(index: int, outcome: Outcome) -> None:
        finished[0] += 1
        show(finished[0], str(files[index]))

    try:
        read = iter(run_lanes(files, lane, lanes.jobs, done))
    except LaneFailed as failed:
        if not failed.reported:
            _error(str(failed))
        raise typer.Exit(failed.code) from None
    return [next(read) if isinstance(target, Path) else target for target in targets]


def _preload(files: Sequence[Path], reader: str | None) -> None:
    """Import each reader the files need (one file per suffix tells) before the lanes fork, so
    they inherit it rather than each importing it again. A file that cannot be read is left
    for its lane to report."""
    import importlib

    from inspector.formats import choose

    for path in {path.suffix.lower(): path for path in reversed(files)}.values():
        try:
            if path.is_file():  # never a FIFO: reading its head here would block
                importlib.import_module(choose(path, reader).module)
        except (InspectorError, ImportError, OSError):
            continue


def _inspect_each(
    files: Sequence[Path], reader: str | None, limits: Limits
) -> Generator[Outcome, None, None]:
    """Each file's outcome in order, read one after the other in a bounded worker reused from
    file to file (inspector/supervise.py `each_isolated`): the bounds are re-armed per file, and
    a file that hits one is reported and the scan goes on in a fresh worker. A file that fails
    in a worker that had read others first is read again in a fresh one, so what a file reports
    never depends on the files read before it."""
    from inspector.report.batch import Outcome
    from inspector.supervise import each_isolated

    if limits.enabled:
        _preload(files, reader)  # import the readers once, before the worker forks
    results = each_isolated(
        len(files),
        lambda index: _read_one(files[index], reader),
        lambda index: str(files[index]),
        limits,
        redo=lambda outcome: outcome.error is not None,
    )
    with closing(results):  # stops the worker when the scan stops early (Ctrl-C)
        for path, result in zip(files, results, strict=True):
            if isinstance(result, InspectorError):
                yield Outcome(str(path), error=str(result))
            else:
                yield result


def _inspect_one(path: Path, reader: str | None, limits: Limits) -> Outcome:
    """One file, read in a bounded worker (inspector/supervise.py): its report, or the one
    line saying why there is none. A directory scan goes on after a file that hit a bound."""
    from inspector.formats import preload
    from inspector.report.batch import Outcome
    from inspector.supervise import isolated

    if limits.enabled:
        preload(path, reader)  # import the reader here, once, rather than in every worker
    try:
        return isolated(lambda: _read_one(path, reader), str(path), limits)
    except InspectorError as error:
        return Outcome(str(path), error=str(error))


def _read_one(path: Path, reader: str | None) -> Outcome:
    from inspector import inspect_file
    from inspector.report.batch import Outcome

    try:
        return Outcome(str(path), report=inspect_file(path, reader))
    except InspectorError as error:
        return Outcome(str(path), error=str(error))
    except RecursionError:
        return Outcome(str(path), error=f"{path}: structure nested too deeply to inspect")
    except MemoryError:
        return Outcome(
            str(path),
            error=f"{path}: needs more memory than the limit (--max-memory) to read; refused",
        )
    except Exception as error:  # a bug: say so in one line, never a traceback
        return Outcome(
            str(path),
            error=f"{path}: internal error (please report this bug): "
            f"{type(error).__name__}: {error}",
        )


def _render_inspection(
    outcomes: Sequence[Outcome],
    output_format: OutputFormat,
    view: LayerView,
    style: Style,
    *,
    scanned: bool,
) -> str | None:
    from inspector.render import Flavour, render_csv, render_json, render_reports, render_summary

    reports = [outcome.report for outcome in outcomes if outcome.report is not None]
    if output_format is OutputFormat.json:
        if scanned:
            return render_json(reports, as_array=True)
        return render_json(reports, as_array=len(outcomes) > 1) if reports else None
    if output_format is OutputFormat.csv:
        return render_csv(reports, view) if reports or scanned else None
    if output_format is OutputFormat.html:
        from inspector.render.html import render_html

        return render_html(reports) if reports else None
    flavour = Flavour.MARKDOWN if output_format is OutputFormat.markdown else Flavour.TEXT
    if scanned:
        return render_summary(outcomes, flavour, style, view)
    if len(outcomes) > 1:  # several files: each report, then one row per file
        separator = "\n\n---\n\n" if flavour is Flavour.MARKDOWN else "\n\n"
        parts = [render_reports(reports, flavour, view, style)] if reports else []
        return separator.join([*parts, render_summary(outcomes, flavour, style, view)])
    return render_reports(reports, flavour, view, style) if reports else None


def _style(output: Path | None, decorated: bool) -> Style:
    """Colour only on a terminal that did not set NO_COLOR (https://no-color.org), never in a
    file; block characters only where the output can encode them."""
    from inspector.render import Style

    if output is not None:
        return Style(colour=False, unicode=True)
    terminal = sys.stdout is not None and sys.stdout.isatty()  # None: stdout closed
    colour = decorated and terminal and not os.environ.get("NO_COLOR")
    return Style(colour=colour, unicode=_can_encode(sys.stdout, "█▉·"), width=_width(sys.stdout))


def _width(stream: TextIO | None) -> int | None:
    """The columns to fit text to: COLUMNS when set (also for a pipe: the user asked), the
    terminal's width when `stream` is a terminal; None (lines stay whole) for files and pipes."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stream is not None and stream.isatty():
        return shutil.get_terminal_size().columns
    return None


def _can_encode(stream: TextIO | None, sample: str) -> bool:
    try:
        sample.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _emit(text: str | None, output: Path | None, style: Style | None = None) -> None:
    if text is None:
        return
    if output is None:
        if sys.stdout is None:
            raise UsageError("standard output is closed: nothing can be written (use --output)")
        try:
            typer.echo(text, color=style.colour if style else False)
            sys.stdout.flush()
        except OSError as error:  # a full disk, a closed pipe
            _silence_stdout()
            raise UsageError(
                f"cannot write to standard output ({error.strerror or error})"
            ) from None
        return
    _write(output, text + "\n", "--output")


def _write(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot write ({error.strerror or error})") from None


# ------------------------------------------------------------------------------ help


@app.command("help", cls=_Usage)
def help_command(
    ctx: typer.Context,
    command: Annotated[
        str | None,
        typer.Argument(
            metavar="COMMAND", help="inspect, formula, explain or compare.", show_default=False
        ),
    ] = None,
) -> None:
    """Show the help of rnninspect, or of one command (same as COMMAND --help)."""
    parent = ctx.parent or ctx
    group = parent.command
    if command is None:
        typer.echo(group.get_help(parent))
        return
    found = group.get_command(parent, command) if isinstance(group, TyperGroup) else None
    if found is None:
        names = ", ".join(n for n in getattr(group, "commands", {}) if n != "help")
        _error(f"no command '{command}': expected one of {names}")
        raise typer.Exit(EXIT_UNREADABLE)
    with typer.Context(found, info_name=command, parent=parent) as sub:
        typer.echo(found.get_help(sub))


def _silence_stdout() -> None:
    """After a failed write, Python would try to flush the same bytes again at exit and print
    a traceback: point stdout at /dev/null so the process ends with our one line."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _check_output(output: Path | None, inputs: Sequence[Path], option: str = "--output") -> None:
    """Refuse an --output that is one of the inputs (by inode: a symlink or a relative path
    names the same file), an existing model file, or any path inside a SavedModel directory
    (its members, `keras_metadata.pb`, `variables/variables.index`, ..., carry no signature of
    their own, and each is the model): a report never overwrites a model."""
    if output is None:
        return
    from inspector.formats import looks_like_model
    from inspector.formats.detect import is_savedmodel_dir

    folder = Path(os.path.realpath(output)).parent  # where a symlink would write
    for parent in (folder, folder.parent):  # the directory itself or its variables/ folder
        if is_savedmodel_dir(parent):
            raise UsageError(
                f"{option} {output} is inside the TensorFlow SavedModel {parent}: refusing "
                "to write into a model"
            )
    try:
        existing = output.stat()
    except OSError:
        return  # nothing there yet (an unwritable place is reported when writing)
    for path in inputs:
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


# ------------------------------------------------------------------------------ formula


@app.command("formula", cls=_Usage)
def formula_command(
    cell: Annotated[
        str,
        typer.Argument(
            metavar="CELL",
            help="simplernn (or rnn), lstm, gru, convlstm, convlstm1d/2d/3d.",
            show_default=False,
        ),
    ],
    units: Annotated[int, typer.Option("--units", "-u", metavar="U", help="Units (hidden size).")],
    input_dim: Annotated[
        int,
        typer.Option(
            "--input-dim", "-d", metavar="D", help="Input width (features per time step)."
        ),
    ],
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="Two directions.")] = False,
    no_bias: Annotated[bool, typer.Option("--no-bias", help="use_bias=False.")] = False,
    reset_after: Annotated[
        bool | None,
        typer.Option(
            "--reset-after/--no-reset-after",
            help="GRU only. Keras default: --reset-after (two bias vectors).",
            show_default=False,
        ),
    ] = None,
    convention: Annotated[
        ConventionName,
        typer.Option(
            "--convention",
            help="Whose layout: keras (one bias vector), onnx or pytorch (always two).",
        ),
    ] = ConventionName.keras,
    kernel_size: Annotated[
        list[str] | None,
        typer.Option(
            "--kernel-size",
            "-k",
            metavar="K",
            help="ConvLSTM kernel size: 3x3, 3,3 or the option repeated.",
            show_default=False,
        ),
    ] = None,
    proj_size: Annotated[
        int,
        typer.Option(
            "--proj-size",
            metavar="P",
            help="PyTorch LSTM proj_size (with --convention pytorch): h projected to P values.",
            show_default=False,
        ),
    ] = 0,
    output_format: Annotated[DocFormat, typer.Option("--format", "-f")] = DocFormat.table,
    output: _OutputOption = None,
) -> None:
    """Print a recurrent layer's parameter count and its derivation, without any file."""
    from inspector.cells import Convention
    from inspector.render import render_formula, render_formula_json
    from inspector.sizing import layer_spec, parse_kernel_size

    with _user_errors():
        spec = layer_spec(
            cell,
            units=units,
            input_dim=input_dim,
            convention=Convention(convention.value),
            bidirectional=bidirectional,
            use_bias=not no_bias,
            reset_after=reset_after,
            kernel_size=parse_kernel_size(kernel_size or []),
            proj_size=proj_size,
        )
        json_out = output_format is DocFormat.json
        width = None if output is not None else _width(sys.stdout)
        _emit(render_formula_json(spec) if json_out else render_formula(spec, width), output)


# ------------------------------------------------------------------------------ explain


@app.command("explain", cls=_Usage)
def explain_command(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file.", show_default=False)
    ],
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer", "-l", metavar="NAME", help="Only this recurrent layer.", show_default=False
        ),
    ] = None,
    reader: _ReaderOption = None,
    output_format: Annotated[
        ExplainFormat,
        typer.Option(
            "--format",
            "-f",
            help="table, json, or html (one self-contained page: the report, the formula "
            "checks, the cell diagrams).",
        ),
    ] = ExplainFormat.table,
    output: _OutputOption = None,
    svg: Annotated[
        Path | None,
        typer.Option(
            "--svg",
            metavar="FILE",
            help="Also write the cell diagrams (each recurrent layer, one step and unrolled "
            "over three) to this SVG file.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    timeout: _TimeoutOption = DEFAULT_TIMEOUT,
    max_memory: _MemoryOption = DEFAULT_MAX_MEMORY,
) -> None:
    """Break recurrent layers into their gates, in the file's gate order: each gate's slice
    of the kernel, the recurrent kernel and the bias, with shapes and counts."""
    with _user_errors():
        limits = _limits(timeout, max_memory)
        _check_output(output, [model])
        _check_output(svg, [model], "--svg")
    _explain(model, layer, reader, output_format, output, svg, limits)


def _explain(
    model: Path,
    layer: str | None,
    reader: str | None,
    output_format: ExplainFormat,
    output: Path | None,
    svg: Path | None,
    limits: Limits,
) -> None:
    from inspector.render import render_explain, render_explain_json
    from inspector.report.diagram import diagram
    from inspector.report.explain import Explanation, explain_model

    outcome = _inspect_one(model, reader, limits)
    if outcome.report is None:
        _error(outcome.error or str(model))
        raise typer.Exit(EXIT_UNREADABLE)
    found = outcome.report.model
    with _user_errors():
        explanations = explain_model(found, layer)
        # Diagrams draw recurrent layers; a plain layer (--layer dense) is explained in text.
        diagrams = [diagram(e) for e in explanations if isinstance(e, Explanation)]
        if svg is not None:
            from inspector.render.svg import svg_document

            _write(svg, svg_document(diagrams, found.path) + "\n", "--svg")
        if output_format is ExplainFormat.html:
            from inspector.render.html import render_html

            text = render_html([outcome.report], diagrams)
        elif output_format is ExplainFormat.json:
            text = render_explain_json(found.path, explanations)
        else:
            width = None if output is not None else _width(sys.stdout)
            text = render_explain(found.path, explanations, width)
        _emit(text, output)


# ------------------------------------------------------------------------------ compare


@app.command("compare", cls=_Usage)
def compare_command(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="SOURCE",
            help="The trained model: Keras (.h5, .keras, weights-only), ONNX, or a PyTorch "
            "state dict saved as .safetensors.",
            show_default=False,
        ),
    ],
    export: Annotated[
        Path,
        typer.Argument(
            metavar="EXPORT", help="Its export (ONNX, or any readable format).", show_default=False
        ),
    ],
    atol: Annotated[
        float,
        typer.Option(
            "--atol",
            metavar="A",
            help="Absolute tolerance: values agree when |export - source| <= A + R·|source|.",
        ),
    ] = DEFAULT_ATOL,
    rtol: Annotated[float, typer.Option("--rtol", metavar="R", help="Relative tolerance.")] = (
        DEFAULT_RTOL
    ),
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="SRC=DST",
            help="Pair the source's recurrent layer SRC with the export's layer DST "
            "(repeatable); the others pair by order, cell kind and shapes.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[DocFormat, typer.Option("--format", "-f")] = DocFormat.table,
    output: _OutputOption = None,
    timeout: _TimeoutOption = DEFAULT_TIMEOUT,
    max_memory: _MemoryOption = DEFAULT_MAX_MEMORY,
) -> None:
    """Prove an export faithful, layer by layer: pair the recurrent layers, reconcile the
    conventions (layout, gate order, bias split, directions), compare counts and values.
    Exit 0 (faithful): every pair identical, equivalent, or lowered in export with matching
    values; 1: a pair differs, is missing or extra, or is not verified; 2: a file cannot be
    read."""
    with _user_errors():
        tolerance = _tolerance(atol, rtol)
        limits = _limits(timeout, max_memory)
        _check_output(output, [source, export])
    _bounded(
        lambda started: _compare(
            source, export, tolerance, mapping or [], output_format, output, started
        ),
        limits,
    )


def _tolerance(atol: float, rtol: float) -> Tolerance:
    from inspector.compare.result import Tolerance

    if not (atol >= 0 and rtol >= 0):  # also rejects NaN
        raise UsageError(f"--atol {atol} / --rtol {rtol}: tolerances must be >= 0")
    return Tolerance(atol=atol, rtol=rtol)


def _compare(
    source: Path,
    export: Path,
    tolerance: Tolerance,
    mapping: Sequence[str],
    output_format: DocFormat,
    output: Path | None,
    started: Started,
) -> None:
    from inspector.compare.pairing import parse_map
    from inspector.compare.run import compare_files
    from inspector.render.compare import render_compare, render_compare_json

    with _user_errors():
        try:
            report = compare_files(source, export, tolerance, parse_map(mapping), started)
        except InspectorError:
            raise
        except RecursionError:
            raise UsageError("a model's structure is nested too deeply to compare") from None
        except MemoryError:
            raise UsageError(
                f"{source} vs {export}: needs more memory than the limit (--max-memory)"
            ) from None
        except Exception as error:  # a bug: say so in one line, never a traceback
            raise InspectorError(
                f"{source} vs {export}: internal error (please report this bug): "
                f"{type(error).__name__}: {error}"
            ) from None
        style = _style(output, output_format is DocFormat.table)
        if output_format is DocFormat.json:
            _emit(render_compare_json(report), output)
        else:
            _emit(render_compare(report, style), output, style)
    if not report.passes:
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """The console script: every way out of the process is one line on stderr (when there is
    something to say) and an exit code, never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except MemoryError:
        _error("out of memory (raise --max-memory or free memory)")
        sys.exit(EXIT_UNREADABLE)
    except Exception as error:  # a bug: one line, labelled as such
        _error(f"internal error (please report this bug): {type(error).__name__}: {error}")
        sys.exit(EXIT_UNREADABLE)
