"""Command line: `rnninspect MODEL|DIR ...` and the `formula`, `explain` and `compare`
subcommands.

The only place where exceptions become a message on stderr and an exit code:
0 inspected and every check and gate passed, 1 inspected but a check or a gate failed,
2 could not inspect (or a usage error). Heavy modules (the readers, h5py, onnx) are
imported inside the commands, so `rnninspect --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from typer._click.core import Parameter

# typer >= 0.26 carries its own click (pyproject.toml pins the range): its usage errors are
# these classes.
from typer._click.exceptions import NoArgsIsHelpError
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.models import Context, TyperPath

from inspector import __version__
from inspector.cli.console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREADABLE,
    Exit,
    check_output,
    emit,
    ended,
    error,
    fit_width,
    style_for,
    user_errors,
    write,
)
from inspector.cli.inspection import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_TIMEOUT,
    InspectOptions,
    bounds,
    inspect_one,
    run_inspect,
    with_timeout,
)
from inspector.errors import InspectorError, UsageError
from inspector.formats import READERS
from inspector.location import Location, Url, is_url, parse_location
from inspector.model import STATE_DTYPES

if TYPE_CHECKING:
    from inspector.cli.supervise import Limits, Started
    from inspector.compare.result import Tolerance

# Tolerances of `compare` (inspector.compare.result.Tolerance; repeated here so --help imports
# nothing): float32 exports keep values bit-for-bit or within a few units in the last place.
DEFAULT_ATOL, DEFAULT_RTOL = 1e-6, 1e-5


class _DefaultToInspect(TyperGroup):
    """`rnninspect model.h5` means `rnninspect inspect model.h5`; a usage error is one line."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        top_level = {"--help", "-h", "--version", "--install-completion", "--show-completion"}
        if args and args[0] not in self.commands and args[0] not in top_level:
            args.insert(0, "inspect")
        return super().parse_args(ctx, args)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """As typer runs a command, except that a usage error (a bad value, a missing
        argument, an unknown option) is one line on stderr, `rnninspect: error: ...`, and exit
        2, like every other error, instead of typer's usage block."""
        run = partial(super().main, args, prog_name, complete_var, standalone_mode=False, **extra)
        if not standalone_mode:
            return run()
        try:
            code = run()
        except NoArgsIsHelpError as asked:  # `rnninspect` alone: its help, as typer shows it
            asked.show()
            sys.exit(asked.exit_code)
        except ClickUsageError as failed:
            error(usage_message(failed))
            sys.exit(EXIT_UNREADABLE)
        except typer.Abort:  # end of input at a prompt (there are none): as typer ends it
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def usage_message(failed: ClickUsageError) -> str:
    """click's message on one line, in our words' case, with where to read more: `invalid
    value for '--format' / '-f': 'xml' is not one of 'table', 'json', ... (see 'rnninspect
    inspect --help')`."""
    text = " ".join(failed.format_message().split()).rstrip(".")
    text = text[:1].lower() + text[1:]
    if failed.ctx is not None:
        text += f" (see '{failed.ctx.command_path} --help')"
    return text


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
    "TensorFlow SavedModel, TFLite, llama.cpp GGUF, Hugging Face checkpoint directories) "
    "without TensorFlow or PyTorch: "
    "per-layer parameter counts, recurrent layers split into kernel / recurrent_kernel / "
    "bias, each checked against the closed-form formula.\n\n"
    "`rnninspect MODEL|DIR ...` is short for `rnninspect inspect MODEL|DIR ...`.",
)


class _ModelLocation(TyperPath):
    """A model argument: a path, checked as typer checks a Path, or a URL (`s3://`, `gs://`,
    `https://`, `hf://`), kept whole (a Path would fold its `//`). Parameters using it are
    annotated `str` so that typer leaves the value as converted here."""

    def __init__(self) -> None:
        super().__init__(readable=True, path_type=Path)

    # typer.models.TyperPath narrows click's context to typer's own the same way (and ignores it)
    def convert(  # type: ignore[override]
        self, value: Any, param: Parameter | None, ctx: Context | None
    ) -> Any:
        if isinstance(value, str) and is_url(value):
            try:
                return parse_location(value)
            except UsageError as refused:
                self.fail(str(refused), param, ctx)
        return super().convert(value, param, ctx)


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


def _complete_reader(incomplete: str) -> list[str]:
    """`--reader <TAB>`: the readers' names."""
    return [entry.name for entry in READERS if entry.name.startswith(incomplete)]


def _complete_cell(incomplete: str) -> list[str]:
    """`formula <TAB>`: the cells `formula` knows."""
    from inspector.layer_spec import CELL_NAMES

    return [name for name in CELL_NAMES if name.startswith(incomplete.lower())]


_ReaderOption = Annotated[
    str | None,
    typer.Option(
        "--reader",
        metavar="|".join(entry.name for entry in READERS),
        help="Skip format detection and read the file with this reader.",
        show_default=False,
        autocompletion=_complete_reader,
    ),
]


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


@app.command("inspect", cls=_Usage)
def inspect_command(
    models: Annotated[
        list[str],
        typer.Argument(
            metavar="MODEL|DIR",
            click_type=_ModelLocation(),
            help="Model files (Keras .h5/.hdf5, .keras, ONNX .onnx, .safetensors, PyTorch "
            "torch.save .pt/.pth/.bin/.ckpt, .tflite, GGUF .gguf), TensorFlow SavedModel "
            "directories, Hugging Face checkpoint directories (config.json beside the "
            "weights), or directories to scan; or their URLs (s3://, gs://, https://, hf://, "
            "a prefix scanned like a directory) with rnninspect[remote].",
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
    max_state: Annotated[
        str | None,
        typer.Option(
            "--max-state",
            metavar="SIZE",
            help="Fail if a sequence's state takes more bytes: every recurrent state plus the "
            "KV cache of a hybrid's attention layers at --context, e.g. 64MB.",
            show_default=False,
        ),
    ] = None,
    context: Annotated[
        int | None,
        typer.Option(
            "--context",
            metavar="N",
            min=1,
            help="Tokens a sequence holds: sizes the KV cache of a hybrid's attention layers and "
            "of a transformer of the same width and depth, shown beside the recurrent state "
            "(default 4096).",
            show_default=False,
        ),
    ] = None,
    state_dtype: Annotated[
        str | None,
        typer.Option(
            "--state-dtype",
            metavar="|".join(STATE_DTYPES),
            help="Hold every state and KV cache in this dtype instead of the one the model "
            "keeps it in (a language model's recurrent scan states are float32 whatever its "
            "weights are).",
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
    options = InspectOptions(
        output_format=output_format.value,
        output=output,
        reader=reader,
        all_layers=all_layers,
        weighted_only=weighted_only,
        recurrent_only=recurrent_only,
        max_params=max_params,
        max_size=max_size,
        max_file_size=max_file_size,
        max_layer_params=max_layer_params,
        max_macs=max_macs,
        seq_len=seq_len,
        max_state=max_state,
        context=context,
        state_dtype=state_dtype,
        strict=strict,
        quiet=quiet,
        timeout=timeout,
        jobs=jobs,
        max_memory=max_memory,
    )
    run_inspect(cast(list[Location], models), options)


def _bounded(
    work: Callable[[Started], None], limits: Limits, inputs: Sequence[Location] = ()
) -> None:
    """Run a whole command's work in one bounded worker (see inspector/cli/supervise.py); a
    URL among `inputs` has its transport started before the worker's bounds."""
    from inspector.cli.supervise import run_bounded

    def run(started: Started) -> int:
        try:
            work(started)
        except Exit as done:
            return int(done.code or 0)
        return EXIT_OK

    urls = [path for path in inputs if isinstance(path, Url)]
    code = run_bounded(run, limits, (lambda: _start_transport(urls)) if urls else None)
    if code:
        raise Exit(code)


def _start_transport(urls: Sequence[Url]) -> None:
    from inspector.formats import preload

    for url in urls:
        preload(url)


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
        error(f"no command '{command}': expected one of {names}")
        raise Exit(EXIT_UNREADABLE)
    with typer.Context(found, info_name=command, parent=parent) as sub:
        typer.echo(found.get_help(sub))


# ------------------------------------------------------------------------------ formula


@app.command("formula", cls=_Usage)
def formula_command(
    cell: Annotated[
        str,
        typer.Argument(
            metavar="CELL",
            help="simplernn (or rnn), lstm, gru, convlstm, convlstm1d/2d/3d.",
            show_default=False,
            autocompletion=_complete_cell,
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
    from inspector.layer_spec import layer_spec, parse_kernel_size
    from inspector.render import render_formula, render_formula_json

    with user_errors():
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
        width = None if output is not None else fit_width(sys.stdout)
        emit(render_formula_json(spec) if json_out else render_formula(spec, width), output)


# ------------------------------------------------------------------------------ explain


@app.command("explain", cls=_Usage)
def explain_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            click_type=_ModelLocation(),
            help="A model file or its URL.",
            show_default=False,
        ),
    ],
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer", "-l", metavar="NAME", help="Only this recurrent layer.", show_default=False
        ),
    ] = None,
    gate: Annotated[
        str | None,
        typer.Option(
            "--gate",
            metavar="LETTER",
            help="Only this gate, as the file names it (LSTM i|f|c|o, PyTorch's g for c; "
            "GRU z|r|h, PyTorch's n for h): its rows and its panels in the pictures.",
            show_default=False,
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
        ),
    ] = None,
    timeout: _TimeoutOption = DEFAULT_TIMEOUT,
    max_memory: _MemoryOption = DEFAULT_MAX_MEMORY,
) -> None:
    """Break recurrent layers into their gates, in the file's gate order: each gate's slice
    of the kernel, the recurrent kernel and the bias, with shapes and counts."""
    (location,) = with_timeout([cast(Location, model)], timeout)
    with user_errors():
        limits = bounds(timeout, max_memory)
        check_output(output, [location])
        check_output(svg, [location], "--svg")
    _explain(location, layer, gate, reader, output_format, output, svg, limits)


def _explain(
    model: Location,
    layer: str | None,
    gate: str | None,
    reader: str | None,
    output_format: ExplainFormat,
    output: Path | None,
    svg: Path | None,
    limits: Limits,
) -> None:
    from inspector.render import render_explain, render_explain_json
    from inspector.report.diagram import diagram
    from inspector.report.explain import Explanation, explain_model, select_gate

    outcome = inspect_one(model, reader, limits)
    if outcome.report is None:
        error(outcome.error or str(model))
        raise Exit(EXIT_UNREADABLE)
    found = outcome.report.model
    with user_errors():
        explanations = explain_model(found, layer)
        if gate is not None:
            explanations = select_gate(explanations, gate)
        # Diagrams draw recurrent layers; a plain layer (--layer dense) is explained in text.
        diagrams = [diagram(e) for e in explanations if isinstance(e, Explanation)]
        if svg is not None:
            from inspector.render.svg import svg_document

            write(svg, svg_document(diagrams, found.path) + "\n", "--svg")
        if output_format is ExplainFormat.html:
            from inspector.render.html import render_html

            text = render_html([outcome.report], diagrams)
        elif output_format is ExplainFormat.json:
            text = render_explain_json(found.path, explanations)
        else:
            width = None if output is not None else fit_width(sys.stdout)
            text = render_explain(found.path, explanations, width)
        emit(text, output)


# ------------------------------------------------------------------------------ compare


@app.command("compare", cls=_Usage)
def compare_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            click_type=_ModelLocation(),
            help="The trained model, in any format whose values rnninspect reads: Keras (.h5, "
            ".keras, or a weights file), a TensorFlow SavedModel directory, ONNX, a PyTorch "
            "state dict, whole module or TorchScript archive (.safetensors, or torch.save "
            ".pt/.pth/.bin/.ckpt), a Hugging Face checkpoint directory (config.json with "
            "safetensors or .bin weights, sharded too), TFLite or GGUF; a path or a URL "
            "(s3://, gs://, https://, hf://).",
            show_default=False,
        ),
    ],
    export: Annotated[
        str,
        typer.Argument(
            metavar="EXPORT",
            click_type=_ModelLocation(),
            help="Its export: usually ONNX, TFLite or GGUF; any of the formats SOURCE may be, "
            "a path or a URL.",
            show_default=False,
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
    left, right = with_timeout([cast(Location, source), cast(Location, export)], timeout)
    with user_errors():
        tolerance = _tolerance(atol, rtol)
        limits = bounds(timeout, max_memory)
        check_output(output, [left, right])
    _bounded(
        lambda started: _compare(
            left, right, tolerance, mapping or [], output_format, output, started
        ),
        limits,
        (left, right),
    )


def _tolerance(atol: float, rtol: float) -> Tolerance:
    from inspector.compare.result import Tolerance

    if not (atol >= 0 and rtol >= 0):  # also rejects NaN
        raise UsageError(f"--atol {atol} / --rtol {rtol}: tolerances must be >= 0")
    return Tolerance(atol=atol, rtol=rtol)


def _compare(
    source: Location,
    export: Location,
    tolerance: Tolerance,
    mapping: Sequence[str],
    output_format: DocFormat,
    output: Path | None,
    started: Started,
) -> None:
    from inspector.compare.pairing import parse_map
    from inspector.compare.run import compare_files
    from inspector.render.compare import render_compare, render_compare_json

    with user_errors():
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
        style = style_for(output, output_format is DocFormat.table)
        if output_format is DocFormat.json:
            emit(render_compare_json(report), output)
        else:
            emit(render_compare(report, style), output, style)
    if not report.passes:
        raise Exit(EXIT_FAILED)


def main() -> None:
    """The console script's typer path (inspector/cli/entry.py takes the common command lines
    itself): every way out of the process is one line on stderr and an exit code."""
    ended(app)
