"""Tensor values, one stored tensor at a time. Only `rnninspect compare` reads values; a report
never does.

`open_values(model)` opens the model's file read-only and yields a reader whose `read(key)`
returns the tensor a `Tensor.key` of that model names, as a NumPy array. The caller compares it
and drops it, so memory stays bounded by the largest single tensor (and, for an ONNX weight the
graph computes from stored tensors, by the tensors of that one computation). Nothing is
unpickled, nothing outside the model's folder is opened, nothing is written.

A tensor whose values cannot be read raises `ValuesUnavailableError` (the comparison reports
it); damaged payloads raise `CorruptModelError`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO, Protocol

from inspector.model import FileFormat, Model

if TYPE_CHECKING:
    import numpy as np


class ValueReader(Protocol):
    def read(self, key: str) -> np.ndarray: ...


class _Opener(Protocol):
    def __call__(
        self, path: Path, file_format: FileFormat
    ) -> AbstractContextManager[ValueReader]: ...


# One module per container; each has `open_reader(path, file_format)`.
_MODULES: Mapping[FileFormat, str] = MappingProxyType(
    {
        FileFormat.KERAS_H5: "inspector.formats.keras.values",
        FileFormat.KERAS_H5_WEIGHTS: "inspector.formats.keras.values",
        FileFormat.KERAS_V3_WEIGHTS: "inspector.formats.keras.values",
        FileFormat.KERAS_V3: "inspector.formats.keras.values",
        FileFormat.ONNX: "inspector.formats.onnx.values",
        FileFormat.SAFETENSORS: "inspector.formats.safetensors.values",
    }
)


def read_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    """`length` bytes at `offset` (fewer at the end of the file), read rather than paged in
    through a memory map so that no mapped pages stay behind; pread where the OS has it (one
    call reads at most ~2 GiB on Linux, hence the loop)."""
    if not hasattr(os, "pread"):
        handle.seek(offset)
        return handle.read(length)
    parts: list[bytes] = []
    done = 0
    while done < length:
        part = os.pread(handle.fileno(), length - done, offset + done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


@contextmanager
def open_values(model: Model) -> Iterator[ValueReader]:
    opener: _Opener = importlib.import_module(_MODULES[model.format]).open_reader
    with opener(Path(model.path), model.format) as reader:
        yield reader
