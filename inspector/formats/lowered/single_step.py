"""Single-step cells: streaming models export `nn.LSTMCell` / `GRUCell` / `RNNCell`, or a Keras
cell called once, as one step with no Loop and no repetition:

    Gemm/MatMul(state, R) + Gemm/MatMul(x, W) -> Add -> Split(g) -> Sigmoid/Tanh -> new state

(PyTorch's GRUCell splits both products apart before adding; the RNN cell has no Split.) What
makes it a recurrence is its structure: a matrix is applied to a state the graph takes as an input
(the previous step's output, handed back by the caller), and its product meets a second product,
of the input, in the gates. The recurrent matrix holds g·h × h values for g gates (1 RNN, 3 GRU,
4 LSTM); the Split and the activations of the step must agree.

What PyTorch 2.13 writes for `LSTMCell(4, 8)` (fixtures/cases/torch_*_lstmcell_h8_d4.onnx):
the legacy exporter Gemm(h0, weight_hh, bias_hh) + Gemm(x, weight_ih, bias_ih) -> Add ->
Split([8]*4) -> 3 Sigmoid + Tanh; dynamo the same with Split(num_outputs=4).
"""

from __future__ import annotations

import re

from inspector.cells import KIND_BY_GATES
from inspector.formats.lowered.cell import Cell, Lowered, matrix
from inspector.formats.lowered.settle import settle
from inspector.formats.lowered.walk import (
    BIAS_INPUT,
    MAX_STEP_NODES,
    Walker,
)
from inspector.formats.opgraph import Node, Scope, ValueId, Weight
from inspector.model import TensorRole

_PRODUCTS = frozenset({"MatMul", "Gemm"})
# One step's elementwise part: the gates, the state update, slicing of the packed products.
_STEP_OPS = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Neg",
        "Sigmoid",
        "HardSigmoid",
        "Tanh",
        "Relu",
        "Clip",
        "Split",
        "Slice",
        "Gather",
        "Identity",
        "Cast",
        "Squeeze",
        "Unsqueeze",
        "Reshape",
    }
)
# How a state input may reach its product: unpacked from a stacked state, reshaped.
_STATE_MOVES = frozenset(
    {"Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Gather", "Slice", "Split"}
)
# Names exporters give the state inputs (h0, hx, state, hidden_state, c_prev...).
_STATE_NAME = re.compile(
    r"(?i)(?:^|[^a-z])(?:h|c|hx|cx|h0|c0|hidden|state|states|prev)(?:$|[^a-z])"
)


class SingleStepDetector:
    """One step of a cell: a product with a state input meeting a product with the input in the
    gates. Runs last, so Loop bodies and unrolled chains are already covered."""

    def __init__(self, walk: Walker) -> None:
        self.walk = walk
        self.graph = walk.graph
        self._scopes = {scope.id: scope for scope in self.graph.scopes}
        self._positions: dict[int, dict[str, int]] = {}  # scope id -> its inputs' positions

    def find(self, covered: set[Node]) -> list[Lowered]:
        found: list[Lowered] = []
        taken = set(covered)
        for scope in self.graph.scopes:
            for gnode in scope.nodes:
                if gnode in taken or gnode.op not in _PRODUCTS:
                    continue
                lowered = self._step(scope, gnode, taken)
                if lowered is not None:
                    found.append(lowered)
                    taken |= lowered.members
        return found

    def _step(self, scope: Scope, product: Node, taken: set[Node]) -> Lowered | None:
        applied = self.walk.weighted_inputs(product)
        if applied is None:
            return None
        data, recurrent = applied
        state = self._state_input(data)
        if state is None:
            return None
        outputs = self._width(recurrent)
        if outputs is None:
            return None
        reach = self._reach([product], scope)
        activations = self.walk.activations(reach)
        if not activations:
            return None
        partners = self._partners(product, reach, scope, taken, outputs)
        if not partners:
            return None  # a product with a state but no input projection is not a cell
        if any(self._prefers(other_data, state) for other_data, _, _ in partners):
            return None  # the partner is the state (input width = units): handled from there
        step = reach | {g for _, _, node in partners for g in self._reach([node], scope)}
        step = self._trimmed(step)
        cell = Cell()
        cell.add_recurrent(recurrent)
        for _, roots, _ in partners:
            cell.add_kernel(roots)
        self._biases(product, [node for _, _, node in partners], step, cell)
        cell.activations = self.walk.activations(step)
        members = {product, *(node for _, _, node in partners), *step}
        splits = sorted(
            {len(self.graph.output_ids(g)) for g in step if g.op == "Split"}, reverse=True
        )
        weight = recurrent[0]
        how = f"one step of a cell: '{weight.name}' applied to state input '{state.name}'"
        if splits:
            how += f", gates split {splits[0]} ways"
        lowered = settle(
            name=f"step:{weight.name}",
            type_="single-step",
            location=scope.path,
            cell=cell,
            members=members,
            state_inputs=set(),
            how=how,
        )
        if lowered.kind is not None and splits and splits[0] not in (1, KIND_GATES[lowered.kind]):
            lowered.warnings.append(
                f"single-step cell '{lowered.name}' in {scope.path}: the gates are split "
                f"{splits[0]} ways but the recurrent weight holds {KIND_GATES[lowered.kind]} "
                "gates"
            )
        lowered.gates_last = not self._gate_axis_first(product, weight.shape, lowered.units)
        return lowered

    def _state_input(self, data: ValueId) -> ValueId | None:
        """The graph input the product's data is, possibly unpacked or reshaped on the way."""
        current: ValueId | None = data
        for _ in range(4):
            if current is None or current in self.graph.static:
                return None
            if self.graph.is_input(current):
                return current
            producer = self.graph.producer(current)
            if producer is None or producer.op not in _STATE_MOVES:
                return None
            current = producer.input(0)
        return None

    def _width(self, roots: tuple[Weight, ...]) -> int | None:
        """g·h, the product's output width, when the weight is one g·h × h matrix."""
        if len(roots) != 1:
            return None
        dims = matrix(roots[0].shape)
        if len(dims) != 2:
            return None
        small, large = sorted(dims)
        if small == 0 or large % small or KIND_BY_GATES.get(large // small) is None:
            return None
        return large

    def _reach(self, starts: list[Node], scope: Scope) -> set[Node]:
        """The elementwise nodes the starts' results flow through (one step's gates)."""
        seen: set[Node] = set()
        stack = [vid for start in starts for vid in self.graph.output_ids(start)]
        while stack and len(seen) < MAX_STEP_NODES and self.walk.tick():
            vid = stack.pop()
            for gnode, _ in self.graph.uses(vid):
                if len(seen) >= MAX_STEP_NODES or not self.walk.tick():
                    return seen  # a step is no wider: a value thousands read is not walked
                if gnode.scope is not scope or gnode in seen or gnode.op not in _STEP_OPS:
                    continue
                seen.add(gnode)
                stack.extend(self.graph.output_ids(gnode))
        return seen

    def _partners(
        self,
        product: Node,
        reach: set[Node],
        scope: Scope,
        taken: set[Node],
        outputs: int,
    ) -> list[tuple[ValueId, tuple[Weight, ...], Node]]:
        """Products of the same width whose results meet this one's in the step: the input
        projections (x·W). Found by walking back from the step's nodes through elementwise
        producers (GRUCell splits each product before the Add)."""
        partners: dict[Node, tuple[ValueId, tuple[Weight, ...]]] = {}
        stack = [(vid, 0) for gnode in reach for vid in gnode.inputs if vid is not None]
        seen: set[ValueId] = set()
        while stack and self.walk.tick():
            vid, depth = stack.pop()
            if vid in seen or vid in self.graph.static:
                continue
            seen.add(vid)
            producer = self.graph.producer(vid)
            if producer is None or producer is product or producer.scope is not scope:
                continue
            if producer in reach:
                continue
            if producer.op in _PRODUCTS:
                applied = self.walk.weighted_inputs(producer)
                if applied is not None and producer not in taken:
                    roots = applied[1]
                    dims = matrix(roots[0].shape) if len(roots) == 1 else ()
                    if len(dims) == 2 and outputs in dims:
                        partners[producer] = applied
                continue
            if producer.op in _STEP_OPS and depth < 3:
                stack.extend((v, depth + 1) for v in producer.inputs if v is not None)
        return [(data, roots, node) for node, (data, roots) in partners.items()]

    def _prefers(self, other: ValueId, state: ValueId) -> bool:
        """Both products read a graph input of the same width (input width = units): the other
        one is the state when its name says so and this one's does not, else the later input."""
        if self._state_input(other) is None:
            return False
        other = self._state_input(other) or other
        named = bool(_STATE_NAME.search(other.name)), bool(_STATE_NAME.search(state.name))
        if named[0] != named[1]:
            return named[0]
        order = self._input_positions(state.scope)
        if other.name in order and state.name in order:
            return order[other.name] > order[state.name]
        return False

    def _input_positions(self, scope: int) -> dict[str, int]:
        """Where each input of a scope stands (the first place, if listed twice), worked out
        once per scope: a graph of thousands of state-like inputs is not scanned per product."""
        positions = self._positions.get(scope)
        if positions is None:
            positions = {}
            known = self._scopes.get(scope)
            for position, name in enumerate(known.inputs if known is not None else ()):
                positions.setdefault(name, position)
            self._positions[scope] = positions
        return positions

    def _trimmed(self, step: set[Node]) -> set[Node]:
        """The nodes on the way to the new state: where the step's values become graph outputs,
        only their ancestors (a following layer's elementwise ops are not the cell's)."""
        ends = [
            g for g in step if any(v in self.graph.graph_outputs for v in self.graph.output_ids(g))
        ]
        if not ends:
            return step
        kept: set[Node] = set()
        stack = list(ends)
        while stack:
            gnode = stack.pop()
            if gnode in kept or gnode not in step:
                continue
            kept.add(gnode)
            stack.extend(p for v in gnode.inputs if (p := self.graph.producer(v)) is not None)
        return kept

    def _biases(self, product: Node, partners: list[Node], step: set[Node], cell: Cell) -> None:
        """Gemm's C input is the product's own bias (recurrent for the state product, input bias
        for the input projection); biases added in the step get their role from the product
        they are added to."""
        for gnode, role in (
            *((p, TensorRole.INPUT_BIAS) for p in partners),
            (product, TensorRole.RECURRENT_BIAS),
        ):
            position = BIAS_INPUT.get(gnode.op)
            if position is None:
                continue
            for root in self.walk.weight_roots(gnode.input(position)):
                if cell.add_bias(root, role):
                    cell.note_operand(root, self.graph.all_zero(root))
        dependent = {v for g in step for v in self.graph.output_ids(g)}
        self.walk.biases_and_peepholes(
            [g for g in step if g.op in ("Add", "Sum", "Mul")], cell, dependent
        )

    def _gate_axis_first(self, product: Node, shape: tuple[int, ...], units: int | None) -> bool:
        """Whether the stored matrices are (g·h, inputs), as Gemm with transB=1 reads them
        (PyTorch's layout), rather than (inputs, g·h) (x @ W, Keras's): by the recurrent
        weight's shape, else (square) by how the product reads it."""
        dims = matrix(shape)
        if units and len(dims) == 2 and dims[0] != dims[1]:
            return dims[0] > dims[1]
        return bool(self.walk.reads_transposed(product))


KIND_GATES = {kind: gates for gates, kind in KIND_BY_GATES.items()}
