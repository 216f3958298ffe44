"""The reader registry: one reader per format, tried in this explicit order.

Each entry has a cheap `match(head, path)` that looks at the first bytes only, and names the
module whose `read(path) -> Model` does the work; `path` is a `source.Source`, a local file or
a URL's object alike. Reader modules are imported only when their format matched, so
inspecting an ONNX file never imports h5py and `--help` imports neither.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from inspector.counts import TEXT_LIMIT, shortened
from inspector.errors import InspectorError, NotAModelError, UsageError
from inspector.formats.detect import (
    Place,
    describe,
    is_gguf,
    is_hdf5,
    is_hf_checkpoint,
    is_onnx,
    is_safetensors,
    is_savedmodel,
    is_tflite,
    is_torch,
    is_zip,
    read_head,
    refusal,
)
from inspector.formats.source import LocalSource, Source
from inspector.location import Location, Url, parse_location
from inspector.model import FileFormat, Model, bounded

if TYPE_CHECKING:
    from inspector.formats.values import ValueReader


def open_source(location: Location | Source | str) -> Source:
    """The source of a path, a URL (a `Url`, or text of the form `scheme://...`), or a source
    already open. A URL imports the remote transport (`rnninspect[remote]`); a path never
    does."""
    if isinstance(location, Source):
        return location
    if isinstance(location, str):
        location = parse_location(location)
    if isinstance(location, Url):
        from inspector.formats.remote import RemoteSource

        return RemoteSource(location)
    return LocalSource(location)


@dataclass(frozen=True)
class ReaderEntry:
    name: str  # what --reader accepts
    match: Callable[[bytes, Place], bool]
    module: str

    def read(self, source: Source) -> Model:
        module = importlib.import_module(self.module)
        result: Model = module.read(source)
        return result


READERS: tuple[ReaderEntry, ...] = (
    # A directory (or its shard index): no other signature can match it.
    ReaderEntry("hf-checkpoint", is_hf_checkpoint, "inspector.formats.hf.reader"),
    ReaderEntry("hdf5", is_hdf5, "inspector.formats.keras.h5"),
    # Before keras-zip: a torch.save zip is a zip too, told apart by its first member.
    ReaderEntry("pytorch", is_torch, "inspector.formats.torch.reader"),
    ReaderEntry("keras-zip", is_zip, "inspector.formats.keras.archive"),
    # Before safetensors, whose extension test would take a renamed GGUF.
    ReaderEntry("gguf", is_gguf, "inspector.formats.gguf.reader"),
    ReaderEntry("safetensors", is_safetensors, "inspector.formats.safetensors.reader"),
    # Before ONNX: a saved_model.pb opens with the same protobuf tag as an ONNX ModelProto.
    ReaderEntry("tf-savedmodel", is_savedmodel, "inspector.formats.savedmodel.reader"),
    ReaderEntry("onnx", is_onnx, "inspector.formats.onnx.reader"),
    ReaderEntry("tflite", is_tflite, "inspector.formats.tflite.reader"),
)


def choose(location: Location | Source, forced: str | None = None) -> ReaderEntry:
    path = open_source(location)
    head = path.head()
    if forced is not None:
        for entry in READERS:
            if entry.name == forced:
                return entry
        names = ", ".join(entry.name for entry in READERS)
        raise UsageError(f"unknown reader '{forced}': expected one of {names}")
    what = refusal(head, path)
    if what is not None:
        raise NotAModelError(f"{path}: {what}")
    for entry in READERS:
        if entry.match(head, path):
            return entry
    if path.suffix.lower() == ".pb":
        raise NotAModelError(
            f"{path}: a protobuf (.pb) that is not a TensorFlow SavedModel's saved_model.pb: a "
            "frozen TF graph (GraphDef) records no layers rnninspect reads; inspect the "
            "SavedModel directory it came from"
        )
    raise NotAModelError(
        f"{path}: not a model file: found {describe(head)}; expected Keras HDF5 (.h5), "
        "a .keras archive, ONNX (.onnx), a safetensors state dict, a torch.save file, a TF "
        "SavedModel directory, a Hugging Face checkpoint directory, TFLite (.tflite) or GGUF "
        "(.gguf)"
    )


MAX_WARNINGS = 100  # a hostile file can make a warning per listed layer; say how many more


def read_model(
    location: Location | Source, forced: str | None = None, *, whole_keys: bool = False
) -> Model:
    """The model at a path or URL, read by the reader its signature names (or `forced`), its
    text bounded for a report (`model.bounded`); `whole_keys` keeps the tensors' keys as the
    file gives them, for a caller that reads values by them (`compare`). Raises an
    InspectorError naming the file, in one line of bounded length."""
    path = open_source(location)
    try:
        model = choose(path, forced).read(path)
    except InspectorError as error:
        # Every message names its file, and quotes the file's text in bounded length.
        text = str(error)
        named = text if text.startswith(str(path)) else f"{path}: {text}"
        limit = len(str(path)) + 2 + TEXT_LIMIT
        if named is text and len(text) <= limit:
            raise
        raise type(error)(shortened(named, limit)) from None
    if len(model.warnings) > MAX_WARNINGS:
        more = len(model.warnings) - MAX_WARNINGS
        kept = (*model.warnings[:MAX_WARNINGS], f"... and {more:,} more warnings not shown")
        model = replace(model, warnings=kept)
    return bounded(model, keys=not whole_keys)  # every reader's text, shortened once, here


def preload(path: Location, forced: str | None = None) -> None:
    """Import the reader `path` needs, so that forked workers inherit it instead of each
    importing it again; a file that cannot be read is left for the worker to report. Reads at
    most the head of a regular file (`read_head`): never a FIFO or a device. A URL is not
    fetched here (its worker fetches it once): its transport is imported, and the reader its
    suffix suggests."""
    from inspector.errors import InspectorError

    with suppress(InspectorError, ImportError, OSError):
        if isinstance(path, Url):
            from inspector.formats.remote import preload_transport

            preload_transport(path)
            module = _SUFFIX_READERS.get(path.suffix.lower())
            if module is not None:
                importlib.import_module(module)
            return
        importlib.import_module(choose(path, forced).module)


# Readers a URL's suffix suggests, imported before workers fork (`preload`); detection itself
# still goes by signature.
_SUFFIX_READERS: Mapping[str, str] = MappingProxyType(
    {
        ".h5": "inspector.formats.keras.h5",
        ".hdf5": "inspector.formats.keras.h5",
        ".keras": "inspector.formats.keras.archive",
        ".onnx": "inspector.formats.onnx.reader",
        ".safetensors": "inspector.formats.safetensors.reader",
        ".json": "inspector.formats.safetensors.reader",
        ".tflite": "inspector.formats.tflite.reader",
        ".pt": "inspector.formats.torch.reader",
        ".pth": "inspector.formats.torch.reader",
        ".bin": "inspector.formats.torch.reader",
    }
)


def looks_like_model(path: Path) -> bool:
    """Whether an existing file carries a model signature (the CLI never overwrites one)."""
    from inspector.errors import InspectorError

    try:
        head = read_head(path)
    except InspectorError:
        return False
    return any(entry.match(head, path) for entry in READERS)


class _Opener(Protocol):
    def __call__(
        self, path: Source, file_format: FileFormat
    ) -> AbstractContextManager[ValueReader]: ...


# One module per container; each has `open_reader(path, file_format)`.
_VALUE_MODULES: Mapping[FileFormat, str] = MappingProxyType(
    {
        FileFormat.KERAS_H5: "inspector.formats.keras.values",
        FileFormat.KERAS_H5_WEIGHTS: "inspector.formats.keras.values",
        FileFormat.KERAS_V3_WEIGHTS: "inspector.formats.keras.values",
        FileFormat.KERAS_V3: "inspector.formats.keras.values",
        FileFormat.ONNX: "inspector.formats.onnx.values",
        FileFormat.SAFETENSORS: "inspector.formats.safetensors.values",
        FileFormat.PYTORCH: "inspector.formats.torch.values",
        FileFormat.TFLITE: "inspector.formats.tflite.values",
        FileFormat.TF_SAVEDMODEL: "inspector.formats.savedmodel.values",
        FileFormat.HF_CHECKPOINT: "inspector.formats.hf.values",
        FileFormat.GGUF: "inspector.formats.gguf.values",
    }
)


# Value readers that return quantized tensors already dequantized with the file's own scales
# and zero points, so `compare` can hold them against a float source.
DEQUANTIZED_VALUES: frozenset[FileFormat] = frozenset({FileFormat.TFLITE})


@contextmanager
def open_values(model: Model, where: Location | Source | None = None) -> Iterator[ValueReader]:
    """The values of `model`'s tensors, from `where` it was read (default: its path)."""
    opener: _Opener = importlib.import_module(_VALUE_MODULES[model.format]).open_reader
    with opener(
        open_source(where if where is not None else Path(model.path)), model.format
    ) as reader:
        yield reader
