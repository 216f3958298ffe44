"""rnninspect: inspect recurrent layers of saved Keras and ONNX models without the frameworks.

The library entry point: `inspect_file(path)` reads a model (detect, then the one reader of its
format) and analyses it into a frozen `Report`; `report.to_dict()` is the JSON contract.
"""

from pathlib import Path

from inspector.formats import read_model
from inspector.report.analysis import Report, analyse

__version__ = "0.1.0"

__all__ = ["Report", "__version__", "inspect_file"]


def inspect_file(path: str | Path, reader: str | None = None) -> Report:
    """Read a model file and return its frozen report.

    Raises an `inspector.errors.InspectorError` subclass for a missing, unreadable or damaged
    file (the CLI turns it into one line and exit code 2)."""
    model = read_model(Path(path), reader)
    try:
        file_bytes: int | None = Path(path).stat().st_size  # for --max-file-size
    except OSError:
        file_bytes = None
    return analyse(model, file_bytes)
