"""The `inspect` command's work, without typer: `rnninspect MODEL|DIR ...` runs it from
typer's command (inspector/cli/app.py) and from the fast path that parses the common command lines
itself (inspector/cli/argv.py), so both give the same output, messages and exit code.

Each file is read in a bounded worker (inspector/cli/supervise.py); the reports are gated
(report/gates.py), rendered (inspector/render/) and written; a failed check or gate is one line
on stderr each. Exit codes are those of inspector/cli/console.py.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from inspector.cli.console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREADABLE,
    Exit,
    check_output,
    emit,
    error,
    fit_width,
    say,
    style_for,
    user_errors,
)
from inspector.errors import InspectorError, UsageError
from inspector.location import Location, Url

if TYPE_CHECKING:
    from inspector.cli.supervise import Limits
    from inspector.render.assembly import Assembly
    from inspector.render.text import Style
    from inspector.render.view import LayerView
    from inspector.report.analysis import Report
    from inspector.report.batch import Outcome
    from inspector.report.gates import Budget

PROGRESS_MIN_FILES = 20  # below this a directory scan is too quick for a progress bar
ERASE_LINE = "\r\x1b[K"  # back to the line's start, then clear it
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_MEMORY = "2GiB"
# A gate's limit or --seq-len at or beyond this is no limit a model can meet or miss (every
# count of a report is below 2^63 per tensor): refused as a usage error, so that the figures
# derived from them stay within what floats and text hold.
_LARGEST_LIMIT = 1 << 128
# --format: what the typer command offers as choices (inspector/cli/app.py OutputFormat).
OUTPUT_FORMATS = ("table", "json", "csv", "markdown", "html")


@dataclass(frozen=True)
class InspectOptions:
    """The options of `rnninspect inspect`, by the names of its parameters, with their
    defaults (the typer command declares the same; tests/test_argv.py holds them equal)."""

    output_format: str = "table"
    output: Path | None = None
    reader: str | None = None
    all_layers: bool = False
    weighted_only: bool = False
    recurrent_only: bool = False
    max_params: str | None = None
    max_size: str | None = None
    max_file_size: str | None = None
    max_layer_params: str | None = None
    max_macs: str | None = None
    seq_len: int | None = None
    max_state: str | None = None
    context: int | None = None
    state_dtype: str | None = None
    strict: bool = False
    quiet: bool = False
    timeout: float = DEFAULT_TIMEOUT
    jobs: int | None = None
    max_memory: str = DEFAULT_MAX_MEMORY


def run_inspect(models: Sequence[Location], options: InspectOptions) -> None:
    """Inspect `models` (files, SavedModel directories, directories to scan) and write the
    result; raises `Exit` with code 1 (a check or gate failed) or 2 (a file could not be
    inspected, or a usage error), returns when every check and gate passed."""
    with user_errors():
        budget = _budget(
            {
                "--max-params": options.max_params,
                "--max-size": options.max_size,
                "--max-file-size": options.max_file_size,
                "--max-layer-params": options.max_layer_params,
                "--max-macs": options.max_macs,
                "--max-state": options.max_state,
            },
            options.strict,
        )
        _check_state_dtype(options.state_dtype)
        view = _view(options.all_layers, options.weighted_only, options.recurrent_only)
        limits = bounds(options.timeout, options.max_memory)
        if options.seq_len is not None and options.seq_len >= _LARGEST_LIMIT:
            raise UsageError("--seq-len: more time steps than any count holds (at most 2^128)")
        if options.context is not None and options.context >= _LARGEST_LIMIT:
            raise UsageError("--context: more tokens than any count holds (at most 2^128)")
    models = with_timeout(models, options.timeout)
    _inspection(
        models,
        options.output_format,
        options.output,
        options.reader,
        view,
        budget,
        quiet=options.quiet,
        limits=limits,
        seq_len=options.seq_len,
        context=options.context,
        state_dtype=options.state_dtype,
        lanes=_lanes(models, options.jobs),
    )


def _check_state_dtype(name: str | None) -> None:
    from inspector.model import STATE_DTYPES

    if name is not None and name not in STATE_DTYPES:
        raise UsageError(f"--state-dtype {name[:40]!r}: expected one of {', '.join(STATE_DTYPES)}")


def bounds(timeout: float, max_memory: str) -> Limits:
    """What one file may cost (--timeout CPU seconds, --max-memory); UsageError if either
    makes no sense."""
    from inspector.cli.quantities import parse_size
    from inspector.cli.supervise import Limits

    if not timeout >= 0:  # also rejects NaN
        raise UsageError(f"--timeout {timeout}: must be >= 0 seconds")
    memory = parse_size(max_memory, "--max-memory")
    if memory < 64 * 1024**2:
        raise UsageError(f"--max-memory {max_memory}: at least 64MiB is needed to read a file")
    return Limits(cpu_seconds=timeout, memory_bytes=memory)


def with_timeout(models: Sequence[Location], timeout: float) -> list[Location]:
    """URLs among `models` with each request bounded by `--timeout` seconds (a stalled
    server is one line within it, not a read blocked until the worker's wall bound)."""
    return [model.bounded(timeout) if isinstance(model, Url) else model for model in models]


def _lanes(models: Sequence[Location], jobs: int | None) -> _Lanes | None:
    """Lanes for several files (or a directory), where lanes can fork: `--jobs` of them, one
    for `--jobs 1` too (the workers are then forked from a lane that holds nothing, never from
    this process, which holds the run's summary)."""
    if not _several(models):
        return None  # one file: nothing to share out, and nothing more to import
    from inspector.cli.lanes import available, cpu_count

    return _Lanes(jobs or cpu_count()) if available() else None


def _several(models: Sequence[Location]) -> bool:
    """More than one file to read: several arguments, or a directory to scan."""
    if len(models) > 1:
        return True
    try:
        return any(_is_dir(path) for path in models)
    except (OSError, InspectorError):
        return False  # reported as unreadable by the one-file path


def _is_dir(path: Location) -> bool:
    """A directory, or a URL's prefix (asked of its store: a request)."""
    if isinstance(path, Path):
        return path.is_dir()
    from inspector.formats import open_source

    return open_source(path).is_dir()


@dataclass(frozen=True)
class _Lanes:
    """Read files in this many lanes (`--jobs`); each file still gets its own bounded worker."""

    jobs: int


def _inspection(
    models: Sequence[Location],
    output_format: str,
    output: Path | None,
    reader: str | None,
    view: LayerView,
    budget: Budget,
    *,
    quiet: bool,
    limits: Limits,
    seq_len: int | None = None,
    context: int | None = None,
    state_dtype: str | None = None,
    lanes: _Lanes | None = None,
) -> None:
    """Read, gate, render and write, a file at a time in input order: each file's part of the
    output is written as its outcome arrives and the report is then let go (what the end needs
    is kept: render/assembly.py), so the command's memory does not grow with the files it
    reads. stderr keeps its order: the unreadable files, then the failed checks and gates."""
    targets, scanned = _targets(models)
    files = [target for target in targets if isinstance(target, (Path, Url))]
    with user_errors():
        check_output(output, files)
    from inspector.report.gates import gated  # loaded already (`_budget`)

    progress = scanned and _wants_progress(len(files))
    sink = _Sink(output, progress, quiet)
    errors: list[str] = []
    messages: list[str] = []
    failed = False
    assembly: Assembly | None = None
    with closing(sink):
        for outcome in _inspect_all(
            targets,
            reader,
            progress=progress,
            limits=limits,
            lanes=lanes,
            meanwhile=lambda: _prepare(output_format),
        ):
            if assembly is None:  # the worker has forked: `_prepare` loaded the renderer
                assembly = _assembly(output_format, view, output, scanned, len(targets) > 1)
                sink.style = assembly.style
            report = outcome.report
            if report is None:
                errors.append(outcome.error or f"{outcome.path}: not inspected")
            else:
                report = gated(
                    replace(report, seq_len=seq_len, context=context, state_dtype=state_dtype),
                    budget,
                )
                outcome = replace(outcome, report=report)
                messages += _verdicts(report)
                failed |= report.failed or report.gates_failed
            sink.write(assembly.add(outcome))
        sink.progress = False  # the scan is over and its bar erased
        for line in errors:
            error(line)
        if assembly is None:
            assembly = _assembly(output_format, view, output, scanned, len(targets) > 1)
            sink.style = assembly.style
        sink.write(assembly.end())
    for message in messages:
        say(message)
    if errors:
        raise Exit(EXIT_UNREADABLE)
    if failed:
        raise Exit(EXIT_FAILED)


def _assembly(
    output_format: str, view: LayerView, output: Path | None, scanned: bool, several: bool
) -> Assembly:
    from inspector.render.assembly import Assembly

    style = style_for(output, output_format == "table")
    return Assembly(output_format, view, style, scanned=scanned, several=several)


def _verdicts(report: Report) -> list[str]:
    """A report's stderr lines: each failed check, then each failed gate."""
    from inspector.render import check_messages, gate_messages

    return [f"rnninspect: check failed: {line}" for line in check_messages(report)] + [
        f"rnninspect: gate failed: {line}" for line in gate_messages(report)
    ]


class _Sink:
    """The command's output, written a part at a time (each part whole lines, the final newline
    added here) to stdout or the `--output` file, which is opened at the first part: a run that
    writes nothing creates no file. Nothing is written under --quiet without --output."""

    def __init__(self, output: Path | None, progress: bool, quiet: bool) -> None:
        self.output = output
        self.progress = progress  # a progress bar on stderr: erased before stdout is written
        self.silent = quiet and output is None
        self.style: Style | None = None
        self.handle: TextIO | None = None

    def write(self, text: str | None) -> None:
        if text is None or self.silent:
            return
        with user_errors():
            if self.output is None:
                if self.progress:
                    sys.stderr.write(ERASE_LINE)  # redrawn with the next file
                emit(text, None, self.style)
                return
            try:
                if self.handle is None:
                    self.handle = open(self.output, "w", encoding="utf-8")  # noqa: SIM115
                self.handle.write(text + "\n")
            except OSError as failed:
                raise UsageError(
                    f"--output {self.output}: cannot write ({failed.strerror or failed})"
                ) from None

    def close(self) -> None:
        if self.handle is None:
            return
        handle, self.handle = self.handle, None
        with user_errors():
            try:
                handle.close()
            except OSError as failed:  # the last bytes are written when the file is closed
                raise UsageError(
                    f"--output {self.output}: cannot write ({failed.strerror or failed})"
                ) from None


# What gating and rendering each --format import: they load while the worker reads the first
# file (`_prepare`), so the command's wait pays for them rather than its start-up.
_RENDERERS = {
    "table": ("inspector.render.report", "inspector.render.blocks"),
    "markdown": ("inspector.render.report", "inspector.render.blocks"),
    "json": ("inspector.render.report",),
    "csv": ("inspector.render.csv_rows",),
    "html": ("inspector.render.html",),
}


def _prepare(output_format: str) -> None:
    for module in (
        "inspector.report.analysis",  # imported already when a worker reads
        "inspector.report.gates",
        "inspector.render.gates",
        "inspector.render.assembly",
        *_RENDERERS.get(output_format, ()),
    ):
        importlib.import_module(module)


def _budget(limits: dict[str, str | None], strict: bool) -> Budget:
    """Each limit given, parsed by what its gate counts (a size or a count)."""
    from inspector.cli.quantities import parse_count, parse_size
    from inspector.report.gates import GATE_BY_OPTION, Budget
    from inspector.report.verdicts import Unit

    parsed = {
        option: parse_size(text, option)
        if GATE_BY_OPTION[option].unit is Unit.BYTES
        else parse_count(text, option)
        for option, text in limits.items()
        if text is not None
    }
    for option, value in parsed.items():
        if value >= _LARGEST_LIMIT:  # the reports' figures stay numbers text and floats hold
            raise UsageError(f"{option} {limits[option]}: a limit beyond any model (at most 2^128)")
    if strict:
        parsed["--strict"] = 0  # no recurrent layer whose check is not ok
    return Budget(parsed)


def _view(all_layers: bool, weighted_only: bool, recurrent_only: bool) -> LayerView:
    from inspector.render.view import LayerView

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


def _targets(models: Sequence[Location]) -> tuple[list[Location | Outcome], bool]:
    """The files to inspect (a directory holding none is an outcome of its own: nothing could
    be inspected there), and whether any argument was a directory to scan."""
    from inspector.report.batch import Outcome

    targets: list[Location | Outcome] = []
    scanned = False
    for path in models:
        try:
            single = not _is_dir(path) or _is_model_dir(path)  # SavedModel, HF checkpoint
        except OSError as error:  # e.g. a component of the path is not searchable
            targets.append(
                Outcome(str(path), error=f"{path}: cannot be read ({error.strerror or error})")
            )
            continue
        except InspectorError as error:  # a URL whose store refused to say
            targets.append(Outcome(str(path), error=str(error)))
            continue
        if single:
            targets.append(path)
            continue
        from inspector.cli.discover import MODEL_SUFFIXES, links_out, model_files

        scanned = True
        try:
            found = model_files(path)
        except InspectorError as error:  # a URL's store refused or could not list it
            targets.append(Outcome(str(path), error=str(error)))
            continue
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


def _is_model_dir(path: Location) -> bool:
    """A SavedModel or a Hugging Face checkpoint directory (or a URL's prefix holding one)."""
    # Imported for directories only: a single file's run never loads the format registry here.
    from inspector.formats import open_source
    from inspector.formats.detect import is_model_dir

    return is_model_dir(path if isinstance(path, Path) else open_source(path))


def _wants_progress(files: int) -> bool:
    return files >= PROGRESS_MIN_FILES and sys.stderr.isatty()


def _inspect_all(
    targets: Sequence[Location | Outcome],
    reader: str | None,
    *,
    progress: bool,
    limits: Limits,
    lanes: _Lanes | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> Generator[Outcome, None, None]:
    """Each target's outcome in input order, as soon as it is read. `meanwhile()` runs once
    while the first file is read (before it with lanes), to prepare the output in the time spent
    waiting."""
    width = (fit_width(sys.stderr) or 80) - 1  # a line that wrapped could not be erased

    def show(done: int, label: str) -> None:
        if progress:  # how far the scan has come, and the file read last (lanes) or next
            from inspector.render.text import progress_line

            sys.stderr.write(ERASE_LINE + progress_line(done, len(targets), label, width))
            sys.stderr.flush()

    try:
        if lanes is not None:
            if meanwhile is not None:
                meanwhile()
            yield from _in_lanes(targets, reader, lanes, limits, show)
            return
        files = [target for target in targets if isinstance(target, (Path, Url))]
        with closing(_inspect_each(files, reader, limits, meanwhile=meanwhile)) as read:
            for done, target in enumerate(targets):
                if not isinstance(target, (Path, Url)):
                    yield target
                    continue
                show(done, str(target))
                yield next(read)
    finally:  # also on Ctrl-C: the bar never stays behind
        if progress:
            sys.stderr.write(ERASE_LINE)
            sys.stderr.flush()


def _in_lanes(
    targets: Sequence[Location | Outcome],
    reader: str | None,
    lanes: _Lanes,
    limits: Limits,
    show: Callable[[int, str], None],
) -> Generator[Outcome, None, None]:
    """The targets' outcomes in input order, the files read in `lanes.jobs` forked lanes. Each
    lane reads its files one after the other under per-file bounds (`_inspect_each`), exactly
    as a single run does: a file that hits a bound is reported and the others are still read.
    With `--jobs 1` too: the workers are then forked from the lane, which holds nothing, never
    from this process, which holds the run's summary."""
    from inspector.cli.lanes import LaneFailed, run_lanes

    files = [target for target in targets if isinstance(target, (Path, Url))]
    _preload(files, reader)

    def lane(indices: Sequence[int], send: Callable[[int, Outcome], None]) -> int:
        mine = [files[index] for index in indices]
        with closing(_inspect_each(mine, reader, limits)) as read:
            for index, outcome in zip(indices, read, strict=True):
                send(index, outcome)
        return EXIT_OK

    # A lane sends the outcome its worker sent (bounded there), pickled again: a little slack.
    largest = 2 * limits.result_bytes if limits.enabled else 1 << 62
    read = run_lanes(files, lane, lanes.jobs, largest)
    try:
        with closing(read):
            done = 0
            for target in targets:
                if not isinstance(target, (Path, Url)):
                    yield target
                    continue
                outcome = next(read)
                done += 1
                show(done, str(target))
                yield outcome
    except LaneFailed as failed:
        if not failed.reported:
            error(str(failed))
        raise Exit(failed.code) from None


def _preload(files: Sequence[Location], reader: str | None) -> None:
    """Import each reader the files need (one file per suffix tells; `formats.preload`) before
    the workers fork, so they inherit it rather than each importing it again. A file that
    cannot be read is left for its worker to report."""
    from inspector.formats import preload

    for path in {path.suffix.lower(): path for path in reversed(files)}.values():
        preload(path, reader)


def _inspect_each(
    files: Sequence[Location],
    reader: str | None,
    limits: Limits,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> Generator[Outcome, None, None]:
    """Each file's outcome in order, read one after the other in a bounded worker reused from
    file to file (inspector/cli/supervise.py `each_isolated`): the bounds are re-armed per file, and
    a file that hits one is reported and the scan goes on in a fresh worker. A file that fails
    in a worker that had read others first is read again in a fresh one, so what a file reports
    never depends on the files read before it. `meanwhile()` runs while the first file is
    read."""
    from inspector.cli.supervise import each_isolated
    from inspector.report.batch import Outcome

    if limits.enabled:
        # Both processes need the report's classes (the worker analyses, this process receives
        # the report): imported once here, the fork shares them instead of importing them twice.
        importlib.import_module("inspector.report.analysis")
    if limits.enabled and len(files) > 1:
        _preload(files, reader)  # once, before the workers fork: each inherits the readers
    results = each_isolated(
        len(files),
        lambda index: _read_one(files[index], reader, limits),
        lambda index: str(files[index]),
        limits,
        redo=lambda outcome: outcome.error is not None,
        meanwhile=meanwhile,
        # One file: its worker imports the reader (before its bounds: numpy's OpenBLAS cannot
        # start under --max-memory) while this process imports what the output needs. URLs:
        # each worker starts the transport's I/O thread before its bounds (nor can a thread).
        setup=(lambda: _preload(files, reader))
        if len(files) == 1 or any(isinstance(path, Url) for path in files)
        else None,
    )
    with closing(results):  # stops the worker when the scan stops early (Ctrl-C)
        for path, result in zip(files, results, strict=True):
            if isinstance(result, InspectorError):
                yield Outcome(str(path), error=str(result))
            else:
                yield result


def inspect_one(path: Location, reader: str | None, limits: Limits) -> Outcome:
    """One file, read in a bounded worker (inspector/cli/supervise.py): its report, or the one
    line saying why there is none. A directory scan goes on after a file that hit a bound."""
    from inspector.cli.supervise import isolated
    from inspector.formats import preload
    from inspector.report.batch import Outcome

    if limits.enabled:
        preload(path, reader)  # import the reader here, once, rather than in every worker
    try:
        return isolated(lambda: _read_one(path, reader, limits), str(path), limits)
    except InspectorError as failed:
        return Outcome(str(path), error=str(failed))


def _read_one(path: Location, reader: str | None, limits: Limits) -> Outcome:
    from inspector import inspect_file
    from inspector.cli.supervise import memory_refusal
    from inspector.report.batch import Outcome

    try:
        return Outcome(str(path), report=inspect_file(path, reader))
    except InspectorError as failed:
        return Outcome(str(path), error=str(failed))
    except RecursionError:
        return Outcome(str(path), error=f"{path}: structure nested too deeply to inspect")
    except MemoryError:
        return Outcome(str(path), error=f"{path}: {memory_refusal(limits)}")
    except Exception as failed:  # a bug: say so in one line, never a traceback
        return Outcome(
            str(path),
            error=f"{path}: internal error (please report this bug): "
            f"{type(failed).__name__}: {failed}",
        )
