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
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from inspector.cli.supervise import Limits
    from inspector.render.text import Style
    from inspector.render.view import LayerView
    from inspector.report.batch import Outcome
    from inspector.report.gates import Budget

PROGRESS_MIN_FILES = 20  # below this a directory scan is too quick for a progress bar
ERASE_LINE = "\r\x1b[K"  # back to the line's start, then clear it
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_MEMORY = "2GiB"
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


def run_inspect(models: Sequence[Path], options: InspectOptions) -> None:
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


def _lanes(models: Sequence[Path], jobs: int | None) -> _Lanes | None:
    """Lanes for several files (or a directory) and more than one job, where lanes can fork."""
    if not _several(models):
        return None  # one file: nothing to share out, and nothing more to import
    from inspector.cli.lanes import available, cpu_count

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


def _inspection(
    models: Sequence[Path],
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
    targets, scanned = _targets(models)
    files = [target for target in targets if isinstance(target, Path)]
    with user_errors():
        check_output(output, files)
    from inspector.report.gates import gated  # loaded already (`_budget`)

    outcomes = [
        replace(
            outcome,
            report=gated(
                replace(outcome.report, seq_len=seq_len, context=context, state_dtype=state_dtype),
                budget,
            ),
        )
        if outcome.report
        else outcome
        for outcome in _inspect_all(
            targets,
            reader,
            progress=scanned and _wants_progress(len(files)),
            limits=limits,
            lanes=lanes,
            meanwhile=lambda: _prepare(output_format),
        )
    ]
    reports = [outcome.report for outcome in outcomes if outcome.report is not None]
    style = style_for(output, output_format == "table")
    # Here, not above: the worker has forked and `_prepare` loaded the renderer meanwhile.
    from inspector.render import check_messages, gate_messages

    if output is not None or not quiet:
        text = _render_inspection(outcomes, output_format, view, style, scanned=scanned)
        with user_errors():
            emit(text, output, style)
    for report in reports:
        for message in check_messages(report):
            say(f"rnninspect: check failed: {message}")
        for message in gate_messages(report):
            say(f"rnninspect: gate failed: {message}")
    if len(reports) < len(outcomes):
        raise Exit(EXIT_UNREADABLE)
    if any(report.failed or report.gates_failed for report in reports):
        raise Exit(EXIT_FAILED)


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


def _targets(models: Sequence[Path]) -> tuple[list[Path | Outcome], bool]:
    """The files to inspect (a directory holding none is an outcome of its own: nothing could
    be inspected there), and whether any argument was a directory to scan."""
    from inspector.report.batch import Outcome

    targets: list[Path | Outcome] = []
    scanned = False
    for path in models:
        try:
            single = not path.is_dir() or _is_model_dir(path)  # SavedModel, HF checkpoint
        except OSError as error:  # e.g. a component of the path is not searchable
            targets.append(
                Outcome(str(path), error=f"{path}: cannot be read ({error.strerror or error})")
            )
            continue
        if single:
            targets.append(path)
            continue
        from inspector.cli.discover import MODEL_SUFFIXES, links_out, model_files

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


def _is_model_dir(path: Path) -> bool:
    # Imported for directories only: a single file's run never loads the format registry here.
    from inspector.formats.detect import is_model_dir

    return is_model_dir(path)


def _wants_progress(files: int) -> bool:
    return files >= PROGRESS_MIN_FILES and sys.stderr.isatty()


def _inspect_all(
    targets: Sequence[Path | Outcome],
    reader: str | None,
    *,
    progress: bool,
    limits: Limits,
    lanes: _Lanes | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Each target's outcome in order. `meanwhile()` runs once while the first file is read
    (before it with lanes), to prepare the output in the time spent waiting."""
    outcomes: list[Outcome] = []
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
            outcomes = _in_lanes(targets, reader, lanes, limits, show)
        else:
            files = [target for target in targets if isinstance(target, Path)]
            with closing(_inspect_each(files, reader, limits, meanwhile=meanwhile)) as read:
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
            error(outcome.error)
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
    from inspector.cli.lanes import LaneFailed, run_lanes

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
            error(str(failed))
        raise Exit(failed.code) from None
    return [next(read) if isinstance(target, Path) else target for target in targets]


def _preload(files: Sequence[Path], reader: str | None) -> None:
    """Import each reader the files need (one file per suffix tells; `formats.preload`) before
    the workers fork, so they inherit it rather than each importing it again. A file that
    cannot be read is left for its worker to report."""
    from inspector.formats import preload

    for path in {path.suffix.lower(): path for path in reversed(files)}.values():
        preload(path, reader)


def _inspect_each(
    files: Sequence[Path],
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
        lambda index: _read_one(files[index], reader),
        lambda index: str(files[index]),
        limits,
        redo=lambda outcome: outcome.error is not None,
        meanwhile=meanwhile,
        # One file: its worker imports the reader (before its bounds: numpy's OpenBLAS cannot
        # start under --max-memory) while this process imports what the output needs.
        setup=(lambda: _preload(files, reader)) if len(files) == 1 else None,
    )
    with closing(results):  # stops the worker when the scan stops early (Ctrl-C)
        for path, result in zip(files, results, strict=True):
            if isinstance(result, InspectorError):
                yield Outcome(str(path), error=str(result))
            else:
                yield result


def inspect_one(path: Path, reader: str | None, limits: Limits) -> Outcome:
    """One file, read in a bounded worker (inspector/cli/supervise.py): its report, or the one
    line saying why there is none. A directory scan goes on after a file that hit a bound."""
    from inspector.cli.supervise import isolated
    from inspector.formats import preload
    from inspector.report.batch import Outcome

    if limits.enabled:
        preload(path, reader)  # import the reader here, once, rather than in every worker
    try:
        return isolated(lambda: _read_one(path, reader), str(path), limits)
    except InspectorError as failed:
        return Outcome(str(path), error=str(failed))


def _read_one(path: Path, reader: str | None) -> Outcome:
    from inspector import inspect_file
    from inspector.report.batch import Outcome

    try:
        return Outcome(str(path), report=inspect_file(path, reader))
    except InspectorError as failed:
        return Outcome(str(path), error=str(failed))
    except RecursionError:
        return Outcome(str(path), error=f"{path}: structure nested too deeply to inspect")
    except MemoryError:
        return Outcome(
            str(path),
            error=f"{path}: needs more memory than the limit (--max-memory) to read; refused",
        )
    except Exception as failed:  # a bug: say so in one line, never a traceback
        return Outcome(
            str(path),
            error=f"{path}: internal error (please report this bug): "
            f"{type(failed).__name__}: {failed}",
        )


def _render_inspection(
    outcomes: Sequence[Outcome],
    output_format: str,
    view: LayerView,
    style: Style,
    *,
    scanned: bool,
) -> str | None:
    # Each format imports only its own renderer: the default table never loads csv or the
    # summary (every module is start-up time, inspector/cli/argv.py).
    reports = [outcome.report for outcome in outcomes if outcome.report is not None]
    if output_format == "json":
        from inspector.render.report import render_json

        if scanned:
            return render_json(reports, as_array=True)
        return render_json(reports, as_array=len(outcomes) > 1) if reports else None
    found = any(not outcome.directory for outcome in outcomes)  # else stderr said it all
    if output_format == "csv":
        from inspector.render.csv_rows import render_csv

        return render_csv(reports, view) if reports or (scanned and found) else None
    if output_format == "html":
        from inspector.render.html import render_html

        # A directory's page opens with an index of every file, the unreadable ones too.
        listed = scanned or len(outcomes) > 1
        return render_html(outcomes, index=listed) if reports or scanned else None
    from inspector.render import render_reports
    from inspector.render.blocks import Flavour

    flavour = Flavour.MARKDOWN if output_format == "markdown" else Flavour.TEXT
    if scanned or len(outcomes) > 1:
        from inspector.render.summary import render_summary
    if scanned:
        return render_summary(outcomes, flavour, style, view)
    if len(outcomes) > 1:  # several files: each report, then one row per file
        separator = "\n\n---\n\n" if flavour is Flavour.MARKDOWN else "\n\n"
        parts = [render_reports(reports, flavour, view, style)] if reports else []
        summary = render_summary(outcomes, flavour, style, view)
        return separator.join([*parts, *([summary] if summary else [])])
    return render_reports(reports, flavour, view, style) if reports else None
