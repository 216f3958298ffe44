"""rnninspect: the recurrent layers of saved Keras, ONNX and PyTorch models, without frameworks.

The library entry point: `inspect_file(path)` reads a model (detect, then the one reader of its
format) and analyses it into a frozen `Report`; `report.to_dict()` is the JSON contract.

Importing the package loads nothing else: the readers and the analysis load on first use, so
the command line's entry point (`inspector.cli.entry`) starts guarding Ctrl-C before any of them.
"""

from __future__ import annotations

# Not `from typing import TYPE_CHECKING`: loading typing and pathlib here would widen the window
# in which Ctrl-C at start-up lands before the entry point's guard (inspector/cli/entry.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from inspector.location import Url
    from inspector.report.analysis import Report

__version__ = "0.3.0"

__all__ = ["Report", "__version__", "inspect_file"]


def __getattr__(name: str) -> Any:
    if name == "Report":
        from inspector.report.analysis import Report

        return Report
    raise AttributeError(f"module 'inspector' has no attribute '{name}'")


def inspect_file(path: str | Path | Url, reader: str | None = None) -> Report:
    """Read a model file (a path, or a URL: `s3://`, `gs://`, `https://`, `hf://`, with
    `rnninspect[remote]` installed) and return its frozen report.

    Raises an `inspector.errors.InspectorError` subclass for a missing, unreadable or damaged
    file (the CLI turns it into one line and exit code 2)."""
    from inspector.formats import open_source, read_model
    from inspector.report.analysis import analyse

    source = open_source(path)
    model = read_model(source, reader)
    stored = model.stored_bytes if model.stored_bytes is not None else source.stored_size()
    # (a directory's reader tells its size: a SavedModel counts every file in it)
    return analyse(model, stored)
