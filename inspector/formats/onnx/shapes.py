"""Shapes of values computed from stored tensors, without reading a weight.

Exporters often build a recurrent op's W, R and B inside the graph: slices of the framework's
weights, reordered by Concat, given a direction axis by Unsqueeze (PyTorch's legacy exporter,
dynamo without optimisation). The slice bounds themselves come from tiny integer constants,
sometimes through Shape/Mul arithmetic that ONNX shape inference does not fold. This module
propagates shapes, and the values of small integer tensors, along such static chains, following
the operator specs; anything it does not know yields None (the weight's shape is then unknown
and its check incomplete: no fixture or real file has needed more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from inspector.formats.onnx.graph import GNode, Index, ValueId
from inspector.formats.onnx.wire import Attribute

MAX_DEPTH = 200
MAX_VALUES = 64  # integer tensors larger than this keep only their shape
MAX_RANK = 64  # numpy's own limit; a larger propagated rank is unknown, not computed
MAX_VALUE_BITS = 64  # int64 is the widest integer tensor: larger propagated values are unknown


@dataclass(frozen=True)
class Abstract:
    shape: tuple[int, ...]
    values: tuple[int, ...] | None = None  # flattened, for small integer tensors


_UNARY = frozenset(
    {
        "Identity",
        "Cast",
        "CastLike",
        "Neg",
        "Abs",
        "Sqrt",
        "Exp",
        "Log",
        "Relu",
        "Sigmoid",
        "Tanh",
        "DequantizeLinear",
        "QuantizeLinear",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
    }
)
_BINARY = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": lambda a, b: int(a / b) if b else 0,  # integer Div truncates (ONNX spec)
    "Pow": None,
    "Max": max,
    "Min": min,
}


class OperandError(ValueError):
    """Operands an op's spec does not allow (onnxruntime refuses such a graph at load)."""


class Shapes:
    def __init__(self, index: Index) -> None:
        self.index = index
        self.opset = index.opset()
        self._memo: dict[ValueId, Abstract | None] = {}
        self._problems: dict[ValueId, str] = {}

    def problem(self, vid: ValueId) -> str | None:
        """Why a value has no shape because an op on its way has operands its spec refuses
        ("Concat 'n' of [1,12,6] and [1,3,8]: non-axis dims differ"), else None."""
        self.abstract(vid, 0)
        return self._problems.get(vid)

    def shape(self, vid: ValueId) -> tuple[int, ...] | None:
        result = self.abstract(vid, 0)
        return result.shape if result is not None else None

    def abstract(self, vid: ValueId, depth: int) -> Abstract | None:
        if vid in self._memo:
            return self._memo[vid]
        self._memo[vid] = None  # guards against revisiting while computing
        result = _bounded(self._compute(vid, depth)) if depth < MAX_DEPTH else None
        self._memo[vid] = result
        if result is None and vid not in self._problems:
            self._inherit_problem(vid)
        return result

    def _inherit_problem(self, vid: ValueId) -> None:
        """A value computed from an operand with a problem has that problem too."""
        value = self.index.values.get(vid)
        if value is None:
            return
        alias = self.index.aliases.get(vid)
        sources = [alias] if alias is not None else []
        if value.producer is not None and value.stored is None:
            sources += [v for v in value.producer.inputs if v is not None]
        for source in sources:
            found = self._problems.get(source)
            if found is not None:
                self._problems[vid] = found
                return

    def _compute(self, vid: ValueId, depth: int) -> Abstract | None:
        index = self.index
        value = index.values.get(vid)
        if value is None:
            return None
        alias = index.aliases.get(vid)
        if alias is not None:
            return self.abstract(alias, depth + 1)
        if value.stored is not None:
            stored = value.stored
            values: tuple[int, ...] | None = None
            if stored.meta is not None:
                values = stored.meta.int_values
            elif value.producer is not None:
                values = _constant_ints(value.producer)
            if values is not None and len(values) != stored.elements:
                values = None
            return Abstract(stored.shape, values)
        declared = index.declared_shape(vid)
        if declared is not None and all(isinstance(d, int) for d in declared):
            known: tuple[int, ...] = tuple(d for d in declared if isinstance(d, int))
            if vid not in index.static:
                return Abstract(known)
        if vid not in index.static or value.producer is None:
            return None
        producer = value.producer
        try:
            return self._op(producer, value.output_index, depth)
        except OperandError as error:
            self._problems[vid] = f"{producer.op} '{producer.label}' {error}"
            return None
        except (ValueError, IndexError, ZeroDivisionError, OverflowError, TypeError):
            return None  # operands the spec does not allow: no shape rather than a wrong one

    def _in(self, gnode: GNode, position: int, depth: int) -> Abstract | None:
        vid = gnode.input(position)
        return self.abstract(vid, depth + 1) if vid is not None else None

    def _ints(self, gnode: GNode, position: int, depth: int) -> tuple[int, ...] | None:
        operand = self._in(gnode, position, depth)
        return operand.values if operand is not None else None

    def _op(self, gnode: GNode, output: int, depth: int) -> Abstract | None:
        op = gnode.op
        node = gnode.node
        first = self._in(gnode, 0, depth)
        if op in _UNARY:
            return first
        if op in _BINARY:
            return self._binary(gnode, depth)
        if first is None:
            return None
        shape = first.shape
        if op == "Shape":
            start = _attr_i(node.attribute("start"), 0)
            end = _attr_i(node.attribute("end"), len(shape))
            dims = tuple(_slice_list(shape, start, end))
            return Abstract((len(dims),), dims)
        if op == "Size":
            return Abstract((), (math.prod(shape),))
        if op == "Transpose":
            perm = _attr_ints(node.attribute("perm")) or tuple(reversed(range(len(shape))))
            if sorted(perm) != list(range(len(shape))):
                raise OperandError(
                    f"of {_dims(shape)} with perm {list(perm)}: perm is not a permutation of "
                    f"the {len(shape)} axes"
                )
            return Abstract(tuple(shape[p] for p in perm))
        if op == "MatMul":
            return self._matmul(gnode, first, depth)
        if op == "Gemm":
            return self._gemm(gnode, first, depth)
        if op in ("Unsqueeze", "Squeeze"):
            axes = _attr_ints(node.attribute("axes"))
            if axes is None and len(gnode.inputs) > 1:
                axes = self._ints(gnode, 1, depth)
                if axes is None:
                    return None
            return _squeeze(first, op, axes)
        if op == "Concat":
            return self._concat(gnode, depth)
        if op == "Slice":
            return self._slice(gnode, first, depth)
        if op == "Reshape":
            target = self._ints(gnode, 1, depth)
            if target is None:
                return None
            allow_zero = _attr_i(node.attribute("allowzero"), 0)
            new = _reshape(shape, target, bool(allow_zero))
            if new is None and -1 not in target and 0 not in target:
                raise OperandError(
                    f"of {_dims(shape)} to {list(target)}: element counts differ "
                    f"({math.prod(shape):,} vs {math.prod(target):,})"
                )
            return Abstract(new, first.values) if new is not None else None
        if op == "Flatten":
            axis = _axis(_attr_i(node.attribute("axis"), 1), len(shape) + 1)
            return Abstract((math.prod(shape[:axis]), math.prod(shape[axis:])))
        if op == "Expand":
            target = self._ints(gnode, 1, depth)
            return Abstract(_broadcast(shape, target)) if target is not None else None
        if op == "Tile":
            repeats = self._ints(gnode, 1, depth)
            if repeats is None or len(repeats) != len(shape):
                return None
            return Abstract(tuple(d * r for d, r in zip(shape, repeats, strict=True)))
        if op == "ConstantOfShape":
            if first.values is None:
                return None
            return Abstract(tuple(first.values))
        if op == "Gather":
            return self._gather(gnode, first, depth)
        if op == "Split":
            return self._split(gnode, first, output, depth)
        return None

    def _binary(self, gnode: GNode, depth: int) -> Abstract | None:
        left, right = self._in(gnode, 0, depth), self._in(gnode, 1, depth)
        if left is None or right is None:
            return None
        shape = _broadcast(left.shape, right.shape)
        fn = _BINARY[gnode.op]
        if fn is None or left.values is None or right.values is None:
            return Abstract(shape)
        count = math.prod(shape)
        if (
            count > MAX_VALUES
            or (len(left.values) not in (1, count))
            or (len(right.values) not in (1, count))
        ):
            return Abstract(shape)
        lv = left.values * count if len(left.values) == 1 else left.values
        rv = right.values * count if len(right.values) == 1 else right.values
        return Abstract(shape, tuple(fn(a, b) for a, b in zip(lv, rv, strict=True)))

    def _concat(self, gnode: GNode, depth: int) -> Abstract | None:
        parts = [self._in(gnode, i, depth) for i in range(len(gnode.inputs))]
        if any(p is None for p in parts) or not parts:
            return None
        known = [p for p in parts if p is not None]
        rank = len(known[0].shape)
        axis = _axis(_attr_i(gnode.node.attribute("axis"), 0), rank)
        listed = " and ".join(_dims(p.shape) for p in known)
        if any(len(p.shape) != rank for p in known):
            raise OperandError(f"of {listed}: ranks differ")
        for p in known:
            if any(
                a != b
                for i, (a, b) in enumerate(zip(p.shape, known[0].shape, strict=True))
                if i != axis
            ):
                raise OperandError(f"of {listed} on axis {axis}: non-axis dims differ")
        shape = list(known[0].shape)
        shape[axis] = sum(p.shape[axis] for p in known)
        values = None
        if rank == 1 and all(p.values is not None for p in known):
            values = tuple(v for p in known for v in (p.values or ()))
        return Abstract(tuple(shape), values)

    def _matmul(self, gnode: GNode, left: Abstract, depth: int) -> Abstract | None:
        """numpy.matmul shapes (ONNX MatMul spec): inner dims agree, batch dims broadcast."""
        right = self._in(gnode, 1, depth)
        if right is None:
            return None
        a, b = left.shape, right.shape
        if not a or not b:
            raise OperandError(f"of {_dims(a)} and {_dims(b)}: a scalar operand")
        inner_a = a[-1]
        inner_b = b[-2] if len(b) > 1 else b[0]
        if inner_a != inner_b:
            raise OperandError(
                f"of {_dims(a)} and {_dims(b)}: inner dims differ ({inner_a} vs {inner_b})"
            )
        rows = a[:-1] if len(a) == 1 else a[-2:-1]
        cols = b[-1:] if len(b) > 1 else ()
        batch = _broadcast(a[:-2], b[:-2]) if len(a) > 2 or len(b) > 2 else ()
        return Abstract((*batch, *(rows if len(a) > 1 else ()), *cols))

    def _gemm(self, gnode: GNode, left: Abstract, depth: int) -> Abstract | None:
        """Gemm spec: A (M, K) and B (K, N), each optionally transposed; C broadcasts to (M, N)."""
        right = self._in(gnode, 1, depth)
        if right is None:
            return None
        a, b = left.shape, right.shape
        if len(a) != 2 or len(b) != 2:
            raise OperandError(f"of {_dims(a)} and {_dims(b)}: A and B must be matrices")
        if _attr_i(gnode.node.attribute("transA"), 0):
            a = (a[1], a[0])
        if _attr_i(gnode.node.attribute("transB"), 0):
            b = (b[1], b[0])
        if a[1] != b[0]:
            raise OperandError(
                f"of {_dims(left.shape)} and {_dims(right.shape)}: inner dims differ "
                f"({a[1]} vs {b[0]})"
            )
        return Abstract((a[0], b[1]))

    def _slice(self, gnode: GNode, data: Abstract, depth: int) -> Abstract | None:
        node = gnode.node
        shape = list(data.shape)
        if self.opset < 10:  # Slice-1: starts/ends/axes are attributes
            starts = _attr_ints(node.attribute("starts"))
            ends = _attr_ints(node.attribute("ends"))
            axes = _attr_ints(node.attribute("axes"))
            steps: tuple[int, ...] | None = None
        else:
            starts = self._ints(gnode, 1, depth)
            ends = self._ints(gnode, 2, depth)
            axes = self._ints(gnode, 3, depth) if gnode.input(3) is not None else None
            steps = self._ints(gnode, 4, depth) if gnode.input(4) is not None else None
            if (gnode.input(3) is not None and axes is None) or (
                gnode.input(4) is not None and steps is None
            ):
                return None
        if starts is None or ends is None:
            return None
        axes = axes or tuple(range(len(starts)))
        steps = steps or (1,) * len(starts)
        values = list(data.values) if data.values is not None and len(shape) == 1 else None
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            axis = _axis(axis, len(shape))
            # A range slices in constant time and memory whatever the dimension (a crafted
            # 5e7-element dimension must not become a list of 5e7 indices).
            picked = _slice_list(range(shape[axis]), start, end, step)
            shape[axis] = len(picked)
            if values is not None:
                values = [values[i] for i in picked]
        return Abstract(tuple(shape), tuple(values) if values is not None else None)

    def _gather(self, gnode: GNode, data: Abstract, depth: int) -> Abstract | None:
        indices = self._in(gnode, 1, depth)
        if indices is None:
            return None
        axis = _axis(_attr_i(gnode.node.attribute("axis"), 0), len(data.shape))
        shape = data.shape[:axis] + indices.shape + data.shape[axis + 1 :]
        values = None
        if len(data.shape) == 1 and data.values is not None and indices.values is not None:
            values = tuple(data.values[i] for i in indices.values)
        return Abstract(shape, values)

    def _split(self, gnode: GNode, data: Abstract, output: int, depth: int) -> Abstract | None:
        node = gnode.node
        axis = _axis(_attr_i(node.attribute("axis"), 0), len(data.shape))
        sizes = _attr_ints(node.attribute("split"))
        if sizes is None and gnode.input(1) is not None:
            sizes = self._ints(gnode, 1, depth)
        if sizes is None:
            parts = _attr_i(node.attribute("num_outputs"), len(node.outputs))
            whole = data.shape[axis]
            chunk = -(-whole // parts)
            sizes = tuple(min(chunk, max(0, whole - chunk * i)) for i in range(parts))
        shape = list(data.shape)
        shape[axis] = sizes[output]
        return Abstract(tuple(shape))


def _dims(shape: tuple[int, ...]) -> str:
    """A shape as ONNX tools print it: [1,12,6]."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def _attr_i(attr: Attribute | None, default: int) -> int:
    return attr.i if attr is not None and attr.i is not None else default


def _attr_ints(attr: Attribute | None) -> tuple[int, ...] | None:
    if attr is None or len(attr.ints) != attr.list_count:
        return None
    return attr.ints


def _constant_ints(gnode: GNode) -> tuple[int, ...] | None:
    for attr in gnode.node.attributes:
        if attr.name == "value_int" and attr.i is not None:
            return (attr.i,)
        if attr.name == "value_ints" and len(attr.ints) == attr.list_count:
            return attr.ints
        if attr.name == "value" and attr.t is not None:
            return attr.t.int_values
    return None


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError("axis out of range")
    return axis + rank if axis < 0 else axis


def _bounded(result: Abstract | None) -> Abstract | None:
    """A propagated shape stays within numpy's rank and int64 dimensions, and its values
    within int64: beyond that (a crafted chain of Mul or Tile) it is unknown, never computed
    further with ever-larger integers."""
    if result is None:
        return None
    if len(result.shape) > MAX_RANK or any(
        d < 0 or d.bit_length() > MAX_VALUE_BITS for d in result.shape
    ):
        return None
    if result.values is not None and (
        len(result.values) > MAX_VALUES
        or any(abs(v).bit_length() > MAX_VALUE_BITS for v in result.values)
    ):
        return Abstract(result.shape)
    return result


def _slice_list(items: Sequence[int], start: int, end: int, step: int = 1) -> Sequence[int]:
    """Python slicing clamps like the ONNX Slice spec (INT_MAX ends mean 'to the end')."""
    if step == 0:
        raise ValueError("slice step 0")
    return items[slice(start, end, step)]


def _squeeze(data: Abstract, op: str, axes: tuple[int, ...] | None) -> Abstract | None:
    shape = list(data.shape)
    if op == "Squeeze":
        if axes is None:
            return Abstract(tuple(d for d in shape if d != 1), data.values)
        drop = {_axis(a, len(shape)) for a in axes}
        return Abstract(tuple(d for i, d in enumerate(shape) if i not in drop), data.values)
    if axes is None:
        return None
    rank = len(shape) + len(axes)
    for axis in sorted(_axis(a, rank) for a in axes):
        shape.insert(axis, 1)
    return Abstract(tuple(shape), data.values)


def _reshape(
    shape: tuple[int, ...], target: tuple[int, ...], allow_zero: bool
) -> tuple[int, ...] | None:
    dims = [
        shape[i] if d == 0 and not allow_zero and i < len(shape) else d
        for i, d in enumerate(target)
    ]
    if dims.count(-1) > 1:
        return None
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0:
            return None
        dims[dims.index(-1)] = math.prod(shape) // known
    if math.prod(dims) != math.prod(shape) or any(d < 0 for d in dims):
        return None
    return tuple(dims)


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    rank = max(len(a), len(b))
    left = (1,) * (rank - len(a)) + tuple(a)
    right = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(left, right, strict=True):
        if x != y and 1 not in (x, y):
            raise OperandError(f"of {_dims(a)} and {_dims(b)}: shapes do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)
