"""What every lowered-recurrence detector shares: the graph walks (which node applies a stored
weight to which data, where one step's elementwise ops lead, the activations of a step, the biases
and peepholes around a cell) under one visit budget, and what a detector reports (`Lowered`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from inspector.formats.lowered.cell import Cell, Lowered
from inspector.formats.opgraph import DKind, Node, OpGraph, Scope, ValueId, Weight
from inspector.model import TensorRole

# (data input, weight input) of the ops that apply a weight matrix.
WEIGHTED: dict[str, tuple[int, ...]] = {
    "MatMul": (0, 1),
    "Gemm": (0, 1),
    "Conv": (0, 1),
    "MatMulInteger": (0, 1),
    "ConvInteger": (0, 1),
    "QLinearMatMul": (0, 3),
    "QLinearConv": (0, 3),
}
BIAS_INPUT = {"Gemm": 2, "Conv": 2, "QLinearConv": 8}
# Ops an input projection passes through on its way to a step (slicing the sequence, adding
# a bias, reshaping).
PASS = frozenset(
    {
        "Identity",
        "Cast",
        "Squeeze",
        "Unsqueeze",
        "Reshape",
        "Flatten",
        "Transpose",
        "Slice",
        "Gather",
        "Split",
        "Add",
        "Concat",
        "DequantizeLinear",
        "QuantizeLinear",
    }
)
# Ops between a stored weight and its product that keep its axes where they are.
_KEEPS_AXES = frozenset(
    {"Identity", "Cast", "DequantizeLinear", "Unsqueeze", "Squeeze", "Split", "Slice", "Gather"}
)
_RESHAPES = frozenset({"Reshape", "Flatten"})
MAX_STEP_NODES = 64  # one step of an LSTM cell is ~20 nodes; more is not a cell
MAX_VISITS = 1_000_000  # graph walks stop here: bounded time on any input
# A step's recurrent path is elementwise; these lead to the next layer or the output instead.
_STEP_BARRIERS = frozenset({"Concat", "ConcatFromSequence", "SequenceConstruct", "Loop", "Scan"})


class Walker:
    """Graph walks shared by the detectors of one file, with one visit budget and one cache."""

    def __init__(self, graph: OpGraph) -> None:
        self.graph = graph
        self.visits = 0
        self.budget_hit = False
        self._applied: dict[Node, tuple[ValueId, tuple[Weight, ...]] | None] = {}
        # Per set of roots (which the graph shares among the values computed from the same
        # weights), the value's own weight and `single`: a set is filtered and sorted once,
        # however many values and nodes read it.
        self._filtered: dict[tuple[frozenset[Weight], Weight | None, int], tuple[Weight, ...]] = {}

    def weight_roots(self, vid: ValueId | None, single: int = 0) -> tuple[Weight, ...]:
        """Weight tensors a static value is computed from, by key: with more than one element (a
        one-element constant is an operator's scalar: `1 - z`, a scale), except, where the value
        is a product's weight (`single=2`) or its own bias operand (`single=1`), one element of
        at least that many dimensions: a one-unit cell's (1, 1) kernel and (1,) bias."""
        if vid is None or vid not in self.graph.static:
            return ()
        direct = self.graph.weight(vid)
        found = self.graph.roots(vid)
        filtered = self._filtered.get((found, direct, single))
        if filtered is None:
            # Integer roots are shape and index operands (Slice bounds), unless the value is
            # the stored integer itself or an 8-bit quantized weight.
            roots = [
                s
                for s in found
                if (s.elements > 1 or (single and s.elements == 1 and len(s.shape) >= single))
                and (
                    s.dtype.kind is DKind.FLOAT
                    or (s.dtype.kind is DKind.INT and (s is direct or s.dtype.bits <= 8))
                )
            ]
            filtered = tuple(sorted(roots, key=lambda s: s.key))
            self._filtered[found, direct, single] = filtered
        return filtered

    def weighted_inputs(self, gnode: Node) -> tuple[ValueId, tuple[Weight, ...]] | None:
        """(data input, weight roots) for a node applying a stored weight to dynamic data."""
        if gnode not in self._applied:
            self._applied[gnode] = self._weighted_inputs(gnode)
        return self._applied[gnode]

    def _weighted_inputs(self, gnode: Node) -> tuple[ValueId, tuple[Weight, ...]] | None:
        positions = WEIGHTED.get(gnode.op)
        if positions is None:
            return None
        data_pos, weight_pos = positions
        data, weight = gnode.input(data_pos), gnode.input(weight_pos)
        roots = self.weight_roots(weight, single=2)
        if gnode.op == "MatMul" and not roots:  # weight on the left: W @ x
            data, weight = weight, data
            roots = self.weight_roots(weight, single=2)
        if not roots or data is None or data in self.graph.static:
            return None
        return data, roots

    def reads_transposed(self, gnode: Node) -> bool | None:
        """Whether the product applies its stored weight as (outputs, inputs): Gemm with
        transB=1, MatMul with the weight on the left (W @ x), each Transpose that swaps the
        matrix's axes on the way from the stored tensor flipping it; None where another op
        reshapes it in between. What a square matrix's shape cannot tell (a SimpleRNN's (u, u)
        recurrent weight)."""
        positions = WEIGHTED.get(gnode.op)
        if positions is None:
            return None
        flipped = gnode.op == "Gemm" and bool(gnode.attributes.get("transB"))
        weight = gnode.input(positions[1])
        if gnode.op == "MatMul" and not self.weight_roots(weight, single=2):
            weight, flipped = gnode.input(positions[0]), True  # W @ x
        for _ in range(8):
            producer = self.graph.producer(weight)
            if producer is None or weight in self.graph.weights:
                return flipped
            if producer.op == "Transpose":
                if not producer.attributes.get("swaps"):
                    return None
                flipped = not flipped
            elif producer.op not in _KEEPS_AXES:
                return None if producer.op in _RESHAPES else flipped
            weight = producer.input(0)
        return None

    def tick(self, amount: int = 1) -> bool:
        self.visits += amount
        if self.visits > MAX_VISITS:
            self.budget_hit = True
            return False
        return True

    def step_reach(
        self, starts: list[Node], through: frozenset[Weight] = frozenset()
    ) -> dict[Node, int]:
        """The nodes one step's elementwise ops lead to from the starts' results, each with how
        many ops away it lies. Breadth first, so the node budget cuts the far end (an LSTM's cell
        state leads on through every later step); the walk stops at the next weighted product,
        at Concat (beyond lie the next layer or the output) and at nodes with subgraphs; not at a
        product of the weights `through` (one the step applies itself)."""
        scope = starts[0].scope
        depth: dict[Node, int] = {}
        begun = set(starts)
        frontier = [v for start in starts for v in self.graph.output_ids(start)]
        level = 0
        while frontier and len(depth) < MAX_STEP_NODES * 2:
            level += 1
            following: list[ValueId] = []
            for vid in frontier:
                if not self.tick():
                    return depth
                for gnode, _ in self.graph.uses(vid):
                    # Each reader is a visit, and the walk ends at its size: a value thousands
                    # of ops read is not walked in full from every step that reaches it.
                    if len(depth) >= MAX_STEP_NODES * 2 or not self.tick():
                        return depth
                    if gnode.scope is not scope or gnode in depth or gnode in begun:
                        continue
                    depth[gnode] = level
                    if self.stops(gnode) and not self.applies_only(gnode, through):
                        continue
                    following.extend(self.graph.output_ids(gnode))
            frontier = following
        return depth

    def applies_only(self, gnode: Node, weights: frozenset[Weight]) -> bool:
        """Whether the node is a product of some of these weights and no other."""
        applied = self.weighted_inputs(gnode)
        return applied is not None and bool(weights) and set(applied[1]) <= weights

    def stops(self, gnode: Node) -> bool:
        """Where a step ends: a weighted product, a Concat, a node with subgraphs."""
        return (
            gnode.op in _STEP_BARRIERS
            or bool(gnode.children)
            or (gnode.op in WEIGHTED and self.weighted_inputs(gnode) is not None)
        )

    def activations(self, nodes: Iterable[Node]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for gnode in nodes:
            op = "Sigmoid" if gnode.op == "HardSigmoid" else gnode.op
            if op in ("Sigmoid", "Tanh", "Relu"):
                counts[op] = counts.get(op, 0) + 1
        return counts

    def closure(self, starts: list[ValueId], scope: Scope) -> set[ValueId]:
        """Values of `scope` computed from the starting values."""
        result = set(starts)
        stack = list(starts)
        while stack and self.tick():
            vid = stack.pop()
            for gnode, _ in self.graph.uses(vid):
                if gnode.scope is not scope:
                    continue
                for out in self.graph.output_ids(gnode):
                    if out not in result:
                        result.add(out)
                        stack.append(out)
        return result

    def biases_and_peepholes(
        self, nodes: Iterable[Node], cell: Cell, dependent: set[ValueId]
    ) -> None:
        for gnode in nodes:
            positions: list[int] = []
            if gnode.op in ("Add", "Sum"):
                positions = list(range(len(gnode.inputs)))
            elif gnode.op in BIAS_INPUT:
                positions = [BIAS_INPUT[gnode.op]]
            elif gnode.op == "Mul" and len(gnode.inputs) == 2:
                for position in (0, 1):
                    other = gnode.input(1 - position)
                    roots = self.weight_roots(gnode.input(position))
                    if (
                        other in dependent
                        and len(roots) == 1
                        and len(roots[0].shape) <= 2
                        and not cell.holds(roots[0])
                    ):
                        cell.add_peephole(roots[0])
                continue
            for position in positions:
                # A product's bias operand is a bias by position; a one-element vector added to
                # a product of the cell (a one-unit cell's bias) is one too, a scalar is not.
                own = gnode.op in BIAS_INPUT or self._adds_to_product(gnode, position, cell)
                for root in self.weight_roots(gnode.input(position), single=1 if own else 0):
                    if cell.holds(root):
                        continue
                    if root.dtype.kind is DKind.FLOAT or root.quantized or gnode.op in BIAS_INPUT:
                        cell.add_bias(root, self._bias_role(gnode, position, cell))
                        if gnode.op in BIAS_INPUT:
                            cell.note_operand(root, self.graph.all_zero(root))

    def _adds_to_product(self, gnode: Node, position: int, cell: Cell) -> bool:
        """Whether an Add's other operands come from a product of the cell's weights."""
        return gnode.op in ("Add", "Sum") and any(
            self._reaches_weight(vid, cell)
            for other, vid in enumerate(gnode.inputs)
            if other != position and vid is not None
        )

    def _bias_role(self, gnode: Node, position: int, cell: Cell) -> TensorRole:
        """input_bias when the bias is added to the input projection, recurrent_bias when to
        the recurrent product, bias when it cannot be told (or is shared)."""
        if gnode.op in BIAS_INPUT:  # the product's own bias: its weight says which
            applied = self.weighted_inputs(gnode)
            roots = applied[1] if applied is not None else ()
            if roots and all(cell.is_recurrent(r) for r in roots):
                return TensorRole.RECURRENT_BIAS
            if roots and all(cell.is_kernel(r) for r in roots):
                return TensorRole.INPUT_BIAS
            return TensorRole.BIAS
        sources: set[str] = set()
        for other_pos, vid in enumerate(gnode.inputs):
            if other_pos == position or vid is None:
                continue
            sources |= self._reaches_weight(vid, cell)
        if sources == {"recurrent"}:
            return TensorRole.RECURRENT_BIAS
        if sources == {"kernel"}:
            return TensorRole.INPUT_BIAS
        return TensorRole.BIAS

    def _reaches_weight(self, vid: ValueId, cell: Cell) -> set[str]:
        found: set[str] = set()
        stack = [(vid, 0)]
        while stack and self.tick():
            current, depth = stack.pop()
            producer = self.graph.producer(current)
            if producer is None or depth > 6:
                continue
            applied = self.weighted_inputs(producer)
            if applied is not None:
                if any(cell.is_recurrent(r) for r in applied[1]):
                    found.add("recurrent")
                elif any(cell.is_kernel(r) for r in applied[1]):
                    found.add("kernel")
                continue
            if producer.op in PASS:
                stack.extend(
                    (v, depth + 1)
                    for v in producer.inputs
                    if v is not None and v not in self.graph.static
                )
        return found


class Detector(Protocol):
    """Finds one form of lowered recurrence; `covered` are nodes an earlier detector (or a fused
    RNN/LSTM/GRU node) already explains."""

    def find(self, covered: set[Node]) -> list[Lowered]: ...
