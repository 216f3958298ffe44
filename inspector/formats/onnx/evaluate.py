"""Evaluate a weight the graph computes from stored tensors (W/R/B built by Slice/Concat/
Unsqueeze from a state dict's tensors, as dynamo without optimisation and the legacy exporter
without constant folding write them).

Only the data-movement and index arithmetic such chains use (and DequantizeLinear, which
turns a quantized weight into the float one a recurrent op reads) is evaluated, each op once in
`OPS` after its operator spec; any other op makes the value unavailable rather than guessed.
Intermediates live only while one value is computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from inspector.errors import ValuesUnavailableError
from inspector.formats.onnx.graph import GNode, Index, ValueId
from inspector.formats.onnx.wire import Attribute

MAX_NODES = 10_000  # nodes evaluated for one value
MAX_ELEMENTS = 1 << 25  # elements of any intermediate (bounds memory on hostile input)

Arrays = list[np.ndarray | None]
Op = Callable[[GNode, Arrays, int], list[np.ndarray]]


def evaluate(
    index: Index, vid: ValueId, load: Callable[[ValueId], np.ndarray | None]
) -> np.ndarray:
    """The value of `vid`. `load` returns a stored tensor's values, or None when the value is
    not stored (it is then computed from its producer)."""
    memo: dict[ValueId, np.ndarray] = {}
    stack = [vid]
    opset = index.opset()
    for _ in range(4 * MAX_NODES):
        if not stack:
            return memo[vid]
        current = stack[-1]
        if current in memo:
            stack.pop()
            continue
        alias = index.aliases.get(current)  # a loop-carried copy of an outer value
        if alias is not None:
            if alias in memo:
                memo[current] = memo[alias]
            else:
                stack.append(alias)
            continue
        stored = load(current)
        if stored is not None:
            memo[current] = stored
            continue
        producer = index.producer(current)
        if producer is None:
            raise ValuesUnavailableError(
                f"'{current.name}' is a graph input: its values are not stored in the file"
            )
        pending = [v for v in producer.inputs if v is not None and v not in memo]
        if pending:
            stack.extend(pending)
            continue
        for name, value in zip(producer.node.outputs, _run(producer, memo, opset), strict=False):
            if name:
                memo[ValueId(producer.scope.id, name)] = value
        if current not in memo:
            raise ValuesUnavailableError(f"'{current.name}': its producer gave no value")
    raise ValuesUnavailableError(f"'{vid.name}' is computed by more than {MAX_NODES:,} nodes")


def _run(gnode: GNode, memo: Mapping[ValueId, np.ndarray], opset: int) -> list[np.ndarray]:
    op = OPS.get(gnode.op) if gnode.node.domain in ("", "ai.onnx") else None
    if op is None:
        raise ValuesUnavailableError(
            f"a weight is computed by {gnode.op} '{gnode.label}', which value comparison does "
            "not evaluate"
        )
    inputs: Arrays = [memo[v] if v is not None else None for v in gnode.inputs]
    try:
        outputs = op(gnode, inputs, opset)
    except (ValueError, IndexError, TypeError) as error:
        raise ValuesUnavailableError(
            f"{gnode.op} '{gnode.label}' cannot be evaluated ({error})"
        ) from None
    for out in outputs:
        if out.size > MAX_ELEMENTS:
            raise ValuesUnavailableError(
                f"{gnode.op} '{gnode.label}' computes {out.size:,} elements; not evaluated"
            )
    return outputs


# --- attributes and operands ------------------------------------------------------------


def _attr(gnode: GNode, name: str) -> Attribute | None:
    return gnode.node.attribute(name)


def _int(gnode: GNode, name: str, default: int) -> int:
    attr = _attr(gnode, name)
    return attr.i if attr is not None and attr.i is not None else default


def _ints(gnode: GNode, name: str) -> tuple[int, ...] | None:
    attr = _attr(gnode, name)
    if attr is None:
        return None
    if attr.list_count > len(attr.ints):
        raise ValueError(f"attribute {name} is too long to evaluate")
    return attr.ints


def _operand_ints(inputs: Arrays, position: int) -> tuple[int, ...] | None:
    if position >= len(inputs) or inputs[position] is None:
        return None
    value = inputs[position]
    assert value is not None
    return tuple(int(v) for v in np.asarray(value).reshape(-1))


def _data(inputs: Arrays, position: int = 0) -> np.ndarray:
    value = inputs[position] if position < len(inputs) else None
    if value is None:
        raise ValueError(f"input {position} is missing")
    return value


# --- the ops ----------------------------------------------------------------------------


def _constant(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    """Constant nodes whose value is an attribute list (a `value` tensor is stored and loaded
    before evaluation reaches here)."""
    for attr in gnode.node.attributes:
        if attr.name == "value_float" and attr.f is not None:
            return [np.array(attr.f, dtype=np.float32)]
        if attr.name == "value_int" and attr.i is not None:
            return [np.array(attr.i, dtype=np.int64)]
        if attr.name == "value_floats" and attr.list_count == len(attr.floats):
            return [np.array(attr.floats, dtype=np.float32)]
        if attr.name == "value_ints" and attr.list_count == len(attr.ints):
            return [np.array(attr.ints, dtype=np.int64)]
    raise ValueError("Constant without a decodable value")


# TensorProto.DataType -> numpy, for Cast.
_CAST = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    4: np.uint16,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
    12: np.uint32,
    13: np.uint64,
}


def _cast(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    target = _CAST.get(_int(gnode, "to", 0))
    if target is None:
        raise ValueError("Cast to a type value comparison does not decode")
    return [_data(inputs).astype(target)]


def _concat(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    parts = [v for v in inputs if v is not None]
    return [np.concatenate(parts, axis=_int(gnode, "axis", 0))]


def _slice(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    data = _data(inputs)
    if opset >= 10:
        starts, ends = _operand_ints(inputs, 1), _operand_ints(inputs, 2)
        axes, steps = _operand_ints(inputs, 3), _operand_ints(inputs, 4)
    else:
        starts, ends, axes, steps = _ints(gnode, "starts"), _ints(gnode, "ends"), None, None
        axes = _ints(gnode, "axes")
    if starts is None or ends is None:
        raise ValueError("Slice without starts/ends")
    axes = axes or tuple(range(len(starts)))
    steps = steps or (1,) * len(starts)
    index: list[slice] = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[axis % data.ndim] = _bounded_slice(start, end, step, data.shape[axis % data.ndim])
    return [data[tuple(index)]]


def _bounded_slice(start: int, end: int, step: int, dim: int) -> slice:
    """ONNX Slice clamps out-of-range bounds (operator spec); Python's slice differs for
    negative steps, where ONNX's end -1 means 'before the first element'."""
    if step == 0:
        raise ValueError("Slice step 0")
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


def _axes(gnode: GNode, inputs: Arrays, opset: int) -> tuple[int, ...] | None:
    return _operand_ints(inputs, 1) if opset >= 13 else _ints(gnode, "axes")


def _unsqueeze(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    data = _data(inputs)
    axes = _axes(gnode, inputs, opset)
    if axes is None:
        raise ValueError("Unsqueeze without axes")
    rank = data.ndim + len(axes)
    return [np.expand_dims(data, tuple(sorted(a % rank for a in axes)))]


def _squeeze(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    data = _data(inputs)
    axes = _axes(gnode, inputs, opset)
    if axes is None:
        return [np.squeeze(data)]
    return [np.squeeze(data, tuple(a % data.ndim for a in axes))]


def _reshape(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    data = _data(inputs)
    target = list(_operand_ints(inputs, 1) or ())
    if not _int(gnode, "allowzero", 0):
        target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [data.reshape(target)]


def _transpose(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    perm = _ints(gnode, "perm")
    return [np.transpose(_data(inputs), perm)]


def _shape(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    dims = _data(inputs).shape
    start = _int(gnode, "start", 0)
    end_attr = _attr(gnode, "end")
    end = end_attr.i if end_attr is not None and end_attr.i is not None else len(dims)
    return [np.array(dims[start:end], dtype=np.int64)]


def _elementwise(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Op:
    def run(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
        a, b = _data(inputs, 0), _data(inputs, 1)
        _check_size(gnode, np.broadcast_shapes(a.shape, b.shape))
        return [np.asarray(function(a, b)).astype(np.result_type(a, b))]

    return run


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.result_type(a, b), np.integer):
        return np.trunc(a / b)  # integer Div truncates (operator spec)
    return np.divide(a, b)


def _expand(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    data = _data(inputs)
    shape = _operand_ints(inputs, 1) or ()
    target = np.broadcast_shapes(data.shape, shape)
    _check_size(gnode, target)  # before the copy: a 1-element tensor can expand to 4e8
    return [np.array(np.broadcast_to(data, target))]


def _check_size(gnode: GNode, shape: tuple[int, ...]) -> None:
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS:
        raise ValuesUnavailableError(
            f"{gnode.op} '{gnode.label}' would compute {elements:,} elements (over "
            f"{MAX_ELEMENTS:,}); not evaluated"
        )


def _gather(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    return [np.take(_data(inputs), _data(inputs, 1), axis=_int(gnode, "axis", 0))]


def _flatten(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    data = _data(inputs)
    axis = _int(gnode, "axis", 1) % (data.ndim + 1)
    outer = int(np.prod(data.shape[:axis], dtype=np.int64))
    return [data.reshape(outer, -1)]


def _split(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    data = _data(inputs)
    axis = _int(gnode, "axis", 0) % data.ndim
    sizes = _operand_ints(inputs, 1) if opset >= 13 else _ints(gnode, "split")
    if sizes is None:
        count = _int(gnode, "num_outputs", len(gnode.node.outputs))
        return list(np.array_split(data, count, axis=axis))
    cuts = np.cumsum(sizes)[:-1]
    return list(np.split(data, cuts, axis=axis))


def _dequantize(gnode: GNode, inputs: Arrays, opset: int) -> list[np.ndarray]:
    """y = (x - zero_point) · scale, per tensor or per `axis` (DequantizeLinear-13)."""
    data = _data(inputs).astype(np.float32)
    scale = _data(inputs, 1).astype(np.float32)
    zero = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.zeros_like(scale)
    if _int(gnode, "block_size", 0):
        raise ValueError("blocked quantization is not evaluated")
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * data.ndim
        shape[_int(gnode, "axis", 1) % data.ndim] = scale.size
        scale, zero = scale.reshape(shape), np.asarray(zero).reshape(shape)
    return [(data - np.asarray(zero, dtype=np.float32)) * scale]


OPS: Mapping[str, Op] = MappingProxyType(
    {
        "Constant": _constant,
        "Identity": lambda gnode, inputs, opset: [_data(inputs)],
        "Cast": _cast,
        "Concat": _concat,
        "Slice": _slice,
        "Unsqueeze": _unsqueeze,
        "Squeeze": _squeeze,
        "Reshape": _reshape,
        "Transpose": _transpose,
        "Shape": _shape,
        "Add": _elementwise(np.add),
        "Sub": _elementwise(np.subtract),
        "Mul": _elementwise(np.multiply),
        "Div": _elementwise(_divide),
        "Expand": _expand,
        "Gather": _gather,
        "Flatten": _flatten,
        "Split": _split,
        "DequantizeLinear": _dequantize,
    }
)
