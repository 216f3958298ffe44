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

    from inspector.report.analysis import Report

__version__ = "0.2.0"

__all__ = ["Report", "__version__", "inspect_file"]


def __getattr__(name: str) -> Any:
    if name == "Report":
        from inspector.report.analysis import Report

        return Report
    raise AttributeError(f"module 'inspector' has no attribute '{name}'")


def inspect_file(path: str | Path, reader: str | None = None) -> Report:
    """Read a model file and return its frozen report.

    Raises an `inspector.errors.InspectorError` subclass for a missing, unreadable or damaged
    file (the CLI turns it into one line and exit code 2)."""
    from pathlib import Path

    from inspector.formats import read_model
    from inspector.report.analysis import analyse

    model = read_model(Path(path), reader)
    return analyse(model, _disk_bytes(Path(path)))


def _disk_bytes(path: Path) -> int | None:
    """The size on disk for --max-file-size; a SavedModel directory (given as itself or its
    saved_model.pb) counts every regular file in it, links not followed, its listing bounded
    (`savedmodel.reader.disk_bytes`); a Hugging Face checkpoint directory its config.json, index
    and weight files."""
    from inspector.formats.detect import is_hf_checkpoint_dir, is_savedmodel_dir

    try:
        if path.is_dir() and is_hf_checkpoint_dir(path):
            from inspector.formats.hf.reader import checkpoint_files

            return sum(item.stat().st_size for item in checkpoint_files(path))
        root = path if path.is_dir() else path.parent
        if not is_savedmodel_dir(root):
            return path.stat().st_size
        from inspector.formats.savedmodel.reader import disk_bytes

        return disk_bytes(root)
    except OSError:
        return None
