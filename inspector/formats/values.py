"""Tensor values, one stored tensor at a time. Only `rnninspect compare` reads values; a report
never does.

`inspector.formats.open_values(model)` opens the model's file read-only and yields a reader
whose `read(key)` returns the tensor a `Tensor.key` of that model names, as a NumPy array. The
caller compares it and drops it, so memory stays bounded by the largest single tensor (and, for
an ONNX weight the graph computes from stored tensors, by the tensors of that one computation).
Nothing is unpickled, nothing outside the model's folder is opened, nothing is written.

A tensor whose values cannot be read raises `ValuesUnavailableError` (the comparison reports
it); damaged payloads raise `CorruptModelError`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    import numpy as np


class ValueReader(Protocol):
    def read(self, key: str) -> np.ndarray: ...


def bound(reader: ValueReader, key: str) -> np.ndarray | None:
    """Per element, how far a value `reader` returns may be from the float it was quantized
    from, for readers of quantized containers that say (GGUF: `tolerance(key)`); None for
    values stored as they are."""
    tolerance = getattr(reader, "tolerance", None)
    result: np.ndarray | None = tolerance(key) if tolerance is not None else None
    return result


def read_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    """`length` bytes at `offset` (fewer at the end of the file), read rather than paged in
    through a memory map so that no mapped pages stay behind; pread where the OS has it (one
    call reads at most ~2 GiB on Linux, hence the loop), one range for a remote object."""
    try:
        fileno = handle.fileno() if hasattr(os, "pread") else -1
    except OSError:  # io.UnsupportedOperation: a remote object's ranges (formats/ranges.py)
        fileno = -1
    if fileno < 0:
        handle.seek(offset)
        return handle.read(length)
    parts: list[bytes] = []
    done = 0
    while done < length:
        part = os.pread(fileno, length - done, offset + done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)
