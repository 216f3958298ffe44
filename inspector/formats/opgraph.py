"""The op graph the lowered-recurrence detectors read, whatever format it came from: ops with
their operands, the weights among those operands (constants the file stores, or variables it only
names), and the bodies of loops as scopes of their own. The ONNX reader builds one from its
index (`formats/onnx/view.py`), the TFLite reader from its subgraphs (`formats/tflite/view.py`).

Operators are named in ONNX's vocabulary (`MatMul`, `Gemm`, `Add`, `Sigmoid`, `Split`, `Loop`,
...): it is the one open operator set, and the detectors' rules follow its specs (Gemm's C input
is a bias, a Loop body's carried values are its state). A format maps its own operators onto it
where they mean the same (TFLite's FULLY_CONNECTED is Gemm with transB=1, LOGISTIC is Sigmoid,
WHILE is Loop) and keeps its own name for the rest; `Node.native` is the file's own name, for
messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from inspector.errors import UnsupportedModelError


class DKind(Enum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"
    OPAQUE = "opaque"  # a handle: TFLite resource and variant (TensorList) tensors
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DType:
    name: str
    bits: int
    kind: DKind

    @property
    def itemsize(self) -> int:
        return max(1, self.bits // 8)


UNKNOWN_DTYPE = DType("unknown", 0, DKind.UNKNOWN)


@dataclass(frozen=True)
class ValueId:
    """A value of one scope: `name` is the format's own (an ONNX name, a TFLite tensor index)."""

    scope: int
    name: str


@dataclass(frozen=True)
class LoopState:
    body: ValueId  # the body input holding the state
    outer: ValueId | None  # its initial value, an input of the loop op
    position: int  # which input of the loop op
    unchanged: bool  # the body returns it as it came: a constant threaded through the loop


@dataclass(frozen=True)
class Weight:
    """A tensor an op may apply as a weight: a constant the file stores, or (`stored` False) a
    variable the graph reads whose values the file does not hold (TFLite resource variables)."""

    key: str  # the reader's key for it, unique in the model
    name: str
    shape: tuple[int, ...]
    dtype: DType
    # An integer tensor with its own quantization scales (TFLite int8 weights, int32 biases): a
    # weight whatever its width, where ONNX would reach it through DequantizeLinear.
    quantized: bool = False
    stored: bool = True

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(eq=False)
class Scope:
    """A graph or a loop body: its nodes in file order and its inputs' names, in order."""

    id: int
    path: str
    inputs: tuple[str, ...]
    nodes: list[Node] = field(default_factory=list)


@dataclass(eq=False)
class Node:
    op: str  # ONNX's name for what it does, else the format's own
    native: str  # the file's own name for the op (for messages)
    label: str  # the node's name in reports
    scope: Scope
    index: int  # position in its scope
    order: int  # position in the whole graph, scopes depth-first
    inputs: tuple[ValueId | None, ...]  # None: an optional input left out
    outputs: tuple[ValueId, ...]
    children: tuple[Scope, ...] = ()  # loop bodies
    domain: str = ""  # "" for standard ops
    attributes: Mapping[str, int] = field(default_factory=dict)  # integer attributes detectors read

    def input(self, position: int) -> ValueId | None:
        return self.inputs[position] if position < len(self.inputs) else None


class OpGraph:
    """Scopes, nodes, who produces and who reads each value, which values are static (computed
    from weights alone) and which weights each static value comes from."""

    def __init__(
        self,
        scopes: Sequence[Scope],
        *,
        weights: Mapping[ValueId, Weight],
        static: set[ValueId],
        graph_inputs: set[ValueId],
        graph_outputs: set[ValueId],
        states: Mapping[int, list[LoopState]],
        roots: Callable[[ValueId], frozenset[Weight]],
        declared_shape: Callable[[ValueId], tuple[int | str | None, ...] | None],
        elem_type: Callable[[ValueId], DType],
        content: Callable[[Weight], bytes | None] | None = None,
    ) -> None:
        self.scopes = list(scopes)
        self.nodes = sorted((n for s in self.scopes for n in s.nodes), key=lambda n: n.order)
        self.weights = weights
        self.static = static
        self.graph_inputs = graph_inputs
        self.graph_outputs = graph_outputs
        self._states = states
        self._roots = roots
        self.declared_shape = declared_shape
        self.elem_type = elem_type
        self._content = content
        self._producers: dict[ValueId, Node] = {}
        self._consumers: dict[ValueId, list[tuple[Node, int]]] = {}
        for node in self.nodes:
            for out in node.outputs:
                self._producers.setdefault(out, node)
            for position, vid in enumerate(node.inputs):
                if vid is not None:
                    self._consumers.setdefault(vid, []).append((node, position))

    def weight(self, vid: ValueId) -> Weight | None:
        """The weight a value is itself (a stored constant, a variable's read), or None."""
        return self.weights.get(vid)

    def is_input(self, vid: ValueId) -> bool:
        return vid in self.graph_inputs

    def roots(self, vid: ValueId) -> frozenset[Weight]:
        """The weights a static value is computed from (itself when it is one)."""
        return self._roots(vid)

    def all_zero(self, weight: Weight) -> bool:
        """Whether a stored weight's bytes are all zero (False where the format gives no
        bytes): a constant a converter filled in where the source had none, which holds no
        parameter of the model."""
        data = self._content(weight) if self._content is not None else None
        return data is not None and not data.strip(b"\0")

    def same_values(self, first: Weight, second: Weight) -> bool:
        """Whether two stored weights hold the same values: same type and shape, equal bytes
        (never by shape alone; False where the format gives no bytes, or for quantized weights,
        whose scales the bytes do not include)."""
        if first == second:
            return True
        if (first.dtype, first.shape) != (second.dtype, second.shape) or self._content is None:
            return False
        if first.quantized or second.quantized:
            return False
        data = self._content(first)
        return data is not None and data == self._content(second)

    def uses(self, vid: ValueId) -> list[tuple[Node, int]]:
        return self._consumers.get(vid, [])

    def producer(self, vid: ValueId | None) -> Node | None:
        return None if vid is None else self._producers.get(vid)

    def output_ids(self, node: Node) -> list[ValueId]:
        return list(node.outputs)

    def states(self, scope: Scope) -> list[LoopState]:
        """The values a loop body carries from one iteration to the next."""
        return self._states.get(scope.id, [])

    def descendants(self, scope: Scope) -> Iterable[Scope]:
        """The scope and every scope nested inside it, each once (a body two loops share, or a
        file whose loops name each other as bodies, is walked once: no cycle, no recursion)."""
        seen: set[int] = set()
        stack = [scope]
        while stack:
            current = stack.pop()
            if current.id in seen:
                continue
            seen.add(current.id)
            yield current
            for node in current.nodes:
                stack.extend(node.children)


# Work (values visited, operand sets merged) the stored roots of all static values may take in
# one file. Each value's roots are found once, from its operands' (`StaticRoots`), so a real
# graph costs a few units per static value; a chain of constants that each add one more stored
# tensor costs the square of its length, and is refused past this.
MAX_ROOT_WORK = 4_000_000
_NO_ROOTS: frozenset[Any] = frozenset()

W = TypeVar("W")


class RootWorkError(UnsupportedModelError):
    """Finding the stored roots of the static values took more than MAX_ROOT_WORK; the message
    has no path (roots are found lazily, deep in a reader): the reader prefixes it."""


class StaticRoots(Generic[W]):
    """The stored tensors (`W`) each static value is computed from: `stored(value)` for a
    stored tensor itself, else the union of the roots of `operands(value)` (the producer's
    inputs of a static value, the outer value a loop body's alias stands for; nothing for any
    other value). Each value's set is worked out once, operands first (an explicit stack, no
    recursion; a cycle, which only a damaged file can hold, adds nothing), and shared with the
    values computed from it alone, so a chain of a million constant ops costs a million steps,
    not a million walks of the chain. Raises RootWorkError past MAX_ROOT_WORK."""

    def __init__(
        self,
        stored: Callable[[ValueId], W | None],
        operands: Callable[[ValueId], Iterable[ValueId]],
    ) -> None:
        self._stored = stored
        self._operands = operands
        self._known: dict[ValueId, frozenset[W]] = {}
        self._left = MAX_ROOT_WORK

    def __call__(self, vid: ValueId) -> frozenset[W]:
        known = self._known.get(vid)
        if known is not None:
            return known
        stack: list[tuple[ValueId, bool]] = [(vid, False)]
        open_: set[ValueId] = set()
        while stack:
            current, ready = stack.pop()
            if current in self._known:
                continue
            if not ready:
                if current in open_:
                    continue  # back to a value still being worked out: a cycle
                self._charge(1)
                leaf = self._stored(current)
                if leaf is not None:
                    self._known[current] = frozenset((leaf,))
                    continue
                open_.add(current)
                stack.append((current, True))
                stack.extend((o, False) for o in self._operands(current) if o not in self._known)
                continue
            open_.discard(current)
            self._known[current] = self._merge(
                [self._known.get(o, _NO_ROOTS) for o in self._operands(current)]
            )
        return self._known[vid]

    def _merge(self, sets: list[frozenset[W]]) -> frozenset[W]:
        """The union, sharing an operand's set where it holds all the others (a value computed
        from one weight, or from a weight and scalars it already reaches)."""
        found = [s for s in sets if s]
        if not found:
            return _NO_ROOTS
        largest = max(found, key=len)
        if all(s is largest for s in found):
            return largest
        self._charge(sum(len(s) for s in found))
        if all(s <= largest for s in found):
            return largest
        return frozenset().union(*found)

    def _charge(self, work: int) -> None:
        self._left -= work
        if self._left < 0:
            raise RootWorkError(
                f"its constants are computed from stored tensors through more than "
                f"{MAX_ROOT_WORK:,} steps of graph operations: too large to inspect"
            )
