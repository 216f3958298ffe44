"""Command line: `rnninspect MODEL [MODEL ...]` and its subcommands.

The only place where exceptions become a message on stderr and an exit code:
0 inspected and every check passed, 1 inspected but a check failed, 2 could not inspect.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from inspector import __version__
from inspector.errors import InspectorError

EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 2


class _DefaultToInspect(TyperGroup):
    """`rnninspect model.h5` means `rnninspect inspect model.h5`."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        top_level = {"--help", "-h", "--version"}
        if args and args[0] not in self.commands and args[0] not in top_level:
            args.insert(0, "inspect")
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultToInspect,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Inspect saved Keras (.h5, .keras) and ONNX models without TensorFlow or PyTorch: "
    "per-layer parameter counts, recurrent layers split into kernel / recurrent_kernel / "
    "bias, each checked against the closed-form formula.\n\n"
    "`rnninspect MODEL ...` is short for `rnninspect inspect MODEL ...`.",
)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


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
    typer.echo(f"rnninspect: error: {message}", err=True)


@app.command("inspect")
def inspect_command(
    models: Annotated[
        list[Path],
        typer.Argument(
            help="Model files: Keras .h5/.hdf5, .keras, ONNX .onnx.", show_default=False
        ),
    ],
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="Output format. json prints the documented contract."),
    ] = OutputFormat.table,
    reader: Annotated[
        str | None,
        typer.Option(
            "--reader",
            help="Skip detection and use this reader: hdf5, keras-zip or onnx.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Report every layer's parameter count and check each recurrent layer against the
    formula. Exit 0: all checks ok; 1: a check failed; 2: a file could not be inspected."""
    from inspector.analysis import Report, inspect_file
    from inspector.render import render_json, render_table

    reports: list[Report] = []
    unreadable = False
    for path in models:
        try:
            reports.append(inspect_file(path, reader))
        except InspectorError as error:
            _error(str(error))
            unreadable = True
        except RecursionError:
            _error(f"{path}: structure nested too deeply to inspect")
            unreadable = True
        except Exception as error:  # a bug: say so in one line, never a traceback
            _error(
                f"{path}: internal error (please report this bug): {type(error).__name__}: {error}"
            )
            unreadable = True
    if reports:
        if output_format is OutputFormat.json:
            typer.echo(render_json(reports, as_array=len(models) > 1))
        else:
            typer.echo("\n\n".join(render_table(report) for report in reports))
    if unreadable:
        raise typer.Exit(EXIT_UNREADABLE)
    if any(report.failed for report in reports):
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
