"""rnninspect: inspect recurrent layers of saved Keras and ONNX models without the frameworks."""

from inspector.report.analysis import Report, inspect_file

__version__ = "0.1.0"

__all__ = ["Report", "__version__", "inspect_file"]
