"""Values of TFLite weights, for `rnninspect compare`: one tensor's buffer read per request.

A tensor's bytes are its buffer's inline `data` vector, or for models past 2 GB the
`offset`/`size` the Buffer table gives (bytes after the flatbuffer, offset from the file's
start). Only the bytes the shape needs are read (numel × itemsize), and a buffer holding fewer is
reported as damaged. Quantized tensors (int8/uint8/int16/int32 with scales) are dequantized with
the file's own parameters, `(q - zero_point) · scale`, per tensor or per channel along
`quantized_dimension` (schema.fbs, QuantizationParameters), so they compare with the source's
floats under the user's tolerance (--atol/--rtol) plus what storing them cost: `tolerance(key)`
gives, per element, half a quantization step (`scale / 2`: the converter rounds `w / scale` to
the nearest integer, tensorflow/lite/kernels/internal/reference/portable_tensor_utils.cc
`PortableSymmetricQuantizeFloats`, and the bias of a quantized op to the nearest multiple of its
scale). Float16 constants (float16 quantization) are returned as float16; compare allows their
rounding itself (`compare.diff`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from inspector.errors import CorruptModelError, NotFoundError, ValuesUnavailableError
from inspector.formats.source import Source
from inspector.formats.tflite.flatbuffer import Buffer, FlatError, Table, Vector, root
from inspector.formats.tflite.schema import DTYPES, buffer_content
from inspector.model import FileFormat

_NUMPY = {
    "float32": "<f4",
    "float16": "<f2",
    "float64": "<f8",
    "int8": "i1",
    "uint8": "u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "int64": "<i8",
}


_ROUNDING = 1.0 + 2.0**-10  # the scale itself is a float32: its own rounding, with room


class TfliteValues:
    def __init__(self, path: Source, buf: Buffer) -> None:
        self._path = path
        self._buf = buf

    def tolerance(self, key: str) -> np.ndarray | None:
        """Per element, how far the value `read(key)` returns may be from the float it was
        stored from: half a quantization step for quantized tensors; None for values stored as
        they are (floats) and for resource variables."""
        if key.startswith("variable:"):
            return None
        return self._tensor(key, bounds=True)[1]

    def read(self, key: str) -> np.ndarray:
        """`key` is the reader's `subgraph:index` (or `variable:...`, a resource variable)."""
        if key.startswith("variable:"):
            raise ValuesUnavailableError(
                f"{self._path}: '{key.removeprefix('variable:').lstrip('/')}' is a resource "
                "variable: its values are not stored in the file"
            )
        return self._tensor(key, bounds=False)[0]

    def _tensor(self, key: str, bounds: bool) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            graph_index, tensor_index = (int(part) for part in key.split(":"))
            return self._read(graph_index, tensor_index, key, bounds)
        except ValueError:
            raise ValuesUnavailableError(f"{self._path}: no tensor '{key}'") from None
        except FlatError as error:
            raise CorruptModelError(f"{self._path}: damaged TFLite flatbuffer ({error})") from None

    def _read(
        self, graph_index: int, tensor_index: int, key: str, bounds: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The tensor's values (dequantized), and with `bounds` how far each may be from the
        float it was stored from (None: exact)."""
        model = root(self._buf)
        graphs = _vector(model, 2)
        if not 0 <= graph_index < graphs.length:
            raise ValuesUnavailableError(f"{self._path}: no subgraph {graph_index}")
        tensors = _vector(graphs.table(graph_index), 0)
        if not 0 <= tensor_index < tensors.length:
            raise ValuesUnavailableError(f"{self._path}: no tensor '{key}'")
        tensor = tensors.table(tensor_index)
        dtype = DTYPES.get(tensor.uint8(1))
        numpy_type = _NUMPY.get(dtype.name) if dtype is not None else None
        if dtype is None or numpy_type is None:
            raise ValuesUnavailableError(f"{self._path}: tensor '{key}' has a type not decoded")
        shape = tuple(max(d, 0) for d in _vector(tensor, 0).ints(64)) if tensor.vector(0, 4) else ()
        needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        data = self._bytes(tensor.uint32(2), needed, key)
        values = np.frombuffer(data, dtype=numpy_type).reshape(shape)
        quantization = tensor.table(4)
        scales = quantization.vector(2, 4) if quantization is not None else None
        if scales is None or scales.length == 0:
            return values, None
        assert quantization is not None
        real, scale = _dequantize(values, quantization, scales, key, self._path)
        return real, np.broadcast_to(scale * (0.5 * _ROUNDING), real.shape) if bounds else None

    def _bytes(self, buffer_index: int, needed: int, key: str) -> bytes:
        found = buffer_content(self._buf, buffer_index, needed)
        if found is None:
            raise ValuesUnavailableError(f"{self._path}: tensor '{key}' has no constant buffer")
        if isinstance(found, int):
            if found < 0:
                raise CorruptModelError(
                    f"{self._path}: tensor '{key}': its buffer lies past the end of the file"
                )
            raise CorruptModelError(
                f"{self._path}: tensor '{key}' needs {needed:,} bytes but its buffer holds "
                f"{found:,}"
            )
        return found


def _vector(table: Table, index: int) -> Vector:
    found = table.vector(index, 4)
    if found is None:
        raise FlatError(f"table at {table.pos} has no field {index}", table.pos)
    return found


def _dequantize(
    values: np.ndarray, quantization: Table, scales: Vector, key: str, path: Source
) -> tuple[np.ndarray, np.ndarray]:
    """The real values and each element's scale (broadcastable to the values' shape)."""
    scale = np.array([scales.float32(i) for i in range(scales.length)], dtype=np.float64)
    zeros = quantization.vector(3, 8)
    zero_point = np.array(
        [zeros.int64(i) for i in range(zeros.length)] if zeros is not None else [0],
        dtype=np.float64,
    )
    if zero_point.size not in (1, scale.size):
        zero_point = np.zeros(1)
    if scale.size == 1:
        return (values.astype(np.float64) - zero_point[0]) * scale[0], np.abs(scale[:1])
    axis = quantization.int32(6)
    if values.ndim == 0 or not 0 <= axis < values.ndim or values.shape[axis] != scale.size:
        raise ValuesUnavailableError(
            f"{path}: tensor '{key}' has {scale.size} scales that fit no axis of {values.shape}"
        )
    shape = [1] * values.ndim
    shape[axis] = scale.size
    real = (values.astype(np.float64) - zero_point.reshape(shape)) * scale.reshape(shape)
    return real, np.abs(scale.reshape(shape))


@contextmanager
def open_reader(path: Source, file_format: FileFormat) -> Iterator[TfliteValues]:
    try:
        with path.view() as buf:
            yield TfliteValues(path, buf)
    except (OSError, ValueError) as error:
        raise NotFoundError(f"{path}: cannot be read ({error})") from None
