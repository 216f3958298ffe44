"""Recurrences that are not RNN/LSTM/GRU nodes: exporters often lower them.

- tf2onnx turns Keras SimpleRNN, GRU(reset_after=False) and masked layers into a `Loop` whose
  body computes one step; some tools build LSTMs from `Scan`. The body multiplies a state it
  carries from step to step by a weight: that weight is the recurrent kernel.
- The torch dynamo exporter unrolls `nn.RNN` into MatMul/Add/Tanh steps: one weight is reused at
  every step, each use depending on the previous one. Reuse along a chain of steps is the
  parameter sharing that makes a recurrence; a weight used twice side by side is not one. On
  long sequences the exporter may store one copy of the weight per step: steps are therefore
  linked by structure (a product whose result, through one step's elementwise ops, feeds a
  product with a weight of the same shape), and the copies are reported.

The cell kind comes from the recurrent weight's shape (it holds g·h × h values for g gates) and
is cross-checked against the activations of one step (LSTM: 3 sigmoids and 2 tanh; GRU: 2 and
1; simple RNN: one tanh or relu). What cannot be settled is reported as a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from inspector.cells import gate_count
from inspector.formats.onnx.graph import DKind, GNode, Index, Scope, Stored, ValueId
from inspector.model import BiasConvention, CellKind, Direction, TensorRole

# (data input, weight input) of the ops that apply a weight matrix.
_WEIGHTED: dict[str, tuple[int, ...]] = {
    "MatMul": (0, 1),
    "Gemm": (0, 1),
    "Conv": (0, 1),
    "MatMulInteger": (0, 1),
    "ConvInteger": (0, 1),
    "QLinearMatMul": (0, 3),
    "QLinearConv": (0, 3),
}
_BIAS_INPUT = {"Gemm": 2, "Conv": 2, "QLinearConv": 8}
# Ops an input projection passes through on its way to a step (slicing the sequence, adding
# a bias, reshaping).
_PASS = frozenset(
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
_KIND_BY_GATES = {1: CellKind.SIMPLE_RNN, 3: CellKind.GRU, 4: CellKind.LSTM}
MAX_STEP_NODES = 64  # one step of an LSTM cell is ~20 nodes; more is not a cell
MAX_VISITS = 1_000_000  # graph walks stop here: bounded time on any input
# A step's recurrent path is elementwise; these lead to the next layer or the output instead.
_STEP_BARRIERS = frozenset({"Concat", "ConcatFromSequence", "SequenceConstruct", "Loop", "Scan"})


@dataclass
class Lowered:
    """A recurrence found in lowered form, with the stored tensors that make its cell."""

    name: str
    type: str
    location: str
    kind: CellKind | None
    units: int | None
    input_dim: int | None
    bias: BiasConvention
    tensors: list[tuple[Stored, TensorRole, Direction | None]]
    members: set[GNode]  # nodes whose stored inputs belong to this layer's row
    state_inputs: set[tuple[GNode, int]] = field(default_factory=set)  # initial-state uses
    directions: int = 1
    peepholes: bool = False
    consistent: bool = True  # the tensors fit one cell of `kind`
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sequence: ValueId | None = None  # the value the input projection reads

    @property
    def claimed(self) -> set[Stored]:
        return {stored for stored, _, _ in self.tensors}


@dataclass
class _Cell:
    """Weights found around one step, before the kind is settled."""

    recurrent: list[Stored] = field(default_factory=list)
    kernel: list[Stored] = field(default_factory=list)
    biases: list[tuple[Stored, TensorRole]] = field(default_factory=list)
    peepholes: list[Stored] = field(default_factory=list)
    fused_width: int | None = None  # input width when x and h share one kernel (concat)
    state_width: int | None = None
    activations: dict[str, int] = field(default_factory=dict)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1) or (1,)


class Finder:
    def __init__(self, index: Index) -> None:
        self.index = index
        self.visits = 0
        self.budget_hit = False
        self._applied: dict[GNode, tuple[ValueId, list[Stored]] | None] = {}

    # --- shared helpers -------------------------------------------------------------------

    def weight_roots(self, vid: ValueId | None) -> list[Stored]:
        """Stored tensors (with more than one element) a static value is computed from."""
        if vid is None or vid not in self.index.static:
            return []
        direct = self.index.value(vid).stored
        # Integer roots are shape and index operands (Slice bounds), unless the value is the
        # stored integer itself or an 8-bit quantized weight.
        roots = [
            s
            for s in self.index.roots(vid)
            if s.elements > 1
            and (
                s.dtype.kind is DKind.FLOAT
                or (s.dtype.kind is DKind.INT and (s is direct or s.dtype.bits <= 8))
            )
        ]
        return sorted(roots, key=lambda s: s.key)

    def weighted_inputs(self, gnode: GNode) -> tuple[ValueId, list[Stored]] | None:
        """(data input, weight roots) for a node applying a stored weight to dynamic data."""
        if gnode not in self._applied:
            self._applied[gnode] = self._weighted_inputs(gnode)
        return self._applied[gnode]

    def _weighted_inputs(self, gnode: GNode) -> tuple[ValueId, list[Stored]] | None:
        positions = _WEIGHTED.get(gnode.op)
        if positions is None:
            return None
        data_pos, weight_pos = positions
        data, weight = gnode.input(data_pos), gnode.input(weight_pos)
        roots = self.weight_roots(weight)
        if gnode.op == "MatMul" and not roots:  # weight on the left: W @ x
            data, weight = weight, data
            roots = self.weight_roots(weight)
        if not roots or data is None or data in self.index.static:
            return None
        return data, roots

    def _tick(self, amount: int = 1) -> bool:
        self.visits += amount
        if self.visits > MAX_VISITS:
            self.budget_hit = True
            return False
        return True

    def step_reach(self, start: GNode) -> set[GNode]:
        """The nodes one step's elementwise ops lead to from `start`: the walk stops at the next
        weighted product, at Concat (beyond lie the next layer or the output) and at nodes
        with subgraphs."""
        seen: set[GNode] = set()
        stack = self.index.output_ids(start)
        while stack and len(seen) < MAX_STEP_NODES * 2 and self._tick():
            vid = stack.pop()
            for gnode, _ in self.index.uses(vid):
                if gnode.scope is not start.scope or gnode in seen:
                    continue
                seen.add(gnode)
                if gnode.op in _STEP_BARRIERS or gnode.children:
                    continue
                if gnode.op in _WEIGHTED and self.weighted_inputs(gnode) is not None:
                    continue
                stack.extend(self.index.output_ids(gnode))
        return seen

    def _activations(self, nodes: Iterable[GNode]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for gnode in nodes:
            op = "Sigmoid" if gnode.op == "HardSigmoid" else gnode.op
            if op in ("Sigmoid", "Tanh", "Relu"):
                counts[op] = counts.get(op, 0) + 1
        return counts

    # --- Loop and Scan bodies -------------------------------------------------------------

    def find_loops(self) -> list[Lowered]:
        found = []
        for gnode in self.index.nodes:
            if gnode.op not in ("Loop", "Scan") or gnode.node.domain not in ("", "ai.onnx"):
                continue
            for body in gnode.children:
                lowered = self._loop(gnode, body)
                if lowered is not None:
                    found.append(lowered)
        return found

    def _loop(self, owner: GNode, body: Scope) -> Lowered | None:
        index = self.index
        states: list[ValueId] = []
        state_inputs: set[tuple[GNode, int]] = set()
        for state in index.states(body):
            # Iteration counters and masks are carried too; only a float (or 8-bit quantized)
            # state makes a recurrence.
            if not state.unchanged and self._numeric_state(state.body, state.outer):
                states.append(state.body)
                state_inputs.add((owner, state.position))
        dependent = self._closure(states, body)
        cell = _Cell()
        nodes = body.nodes
        for gnode in nodes:
            applied = self.weighted_inputs(gnode)
            if applied is None:
                continue
            data, roots = applied
            if data in dependent:
                cell.recurrent.extend(r for r in roots if r not in cell.recurrent)
                width = self._concat_split(data, dependent, body)
                if width is not None:
                    cell.fused_width, cell.state_width = width
            else:
                cell.kernel.extend(r for r in roots if r not in cell.kernel)
        if not cell.recurrent:
            return None
        self._biases_and_peepholes(nodes, cell, dependent)
        cell.activations = self._activations(nodes)
        members = {owner, *(g for scope in index.descendants(body) for g in scope.nodes)}
        return self._settle(
            name=owner.label,
            type_=owner.op,
            location=owner.scope.path,
            cell=cell,
            members=members,
            state_inputs=state_inputs,
            how=f"{owner.op} body",
        )

    def _numeric_state(self, vid: ValueId, outer: ValueId | None) -> bool:
        dtype = self.index.elem_type(vid)
        if dtype.kind is DKind.UNKNOWN and outer is not None:
            dtype = self.index.elem_type(outer)
        return dtype.kind in (DKind.FLOAT, DKind.UNKNOWN) or dtype.name in ("int8", "uint8")

    def _closure(self, starts: list[ValueId], scope: Scope) -> set[ValueId]:
        """Values of `scope` computed from the starting values."""
        result = set(starts)
        stack = list(starts)
        while stack and self._tick():
            vid = stack.pop()
            for gnode, _ in self.index.uses(vid):
                if gnode.scope is not scope:
                    continue
                for out in self.index.output_ids(gnode):
                    if out not in result:
                        result.add(out)
                        stack.append(out)
        return result

    def _concat_split(
        self, data: ValueId, dependent: set[ValueId], scope: Scope
    ) -> tuple[int, int] | None:
        """(input width, state width) when the step multiplies concat(x, h) by one kernel."""
        current: ValueId | None = data
        for _ in range(4):
            producer = self.index.producer(current)
            if producer is None:
                return None
            if producer.op == "Concat":
                widths = []
                for vid in producer.inputs:
                    shape = self.index.declared_shape(vid) if vid is not None else None
                    last = shape[-1] if shape else None
                    if not isinstance(last, int):
                        return None
                    widths.append((vid in dependent, last))
                x = sum(w for dep, w in widths if not dep)
                h = sum(w for dep, w in widths if dep)
                return (x, h) if x and h else None
            current = producer.input(0)
        return None

    def _biases_and_peepholes(
        self, nodes: Iterable[GNode], cell: _Cell, dependent: set[ValueId]
    ) -> None:
        taken = set(cell.recurrent) | set(cell.kernel)
        for gnode in nodes:
            positions: list[int] = []
            if gnode.op in ("Add", "Sum"):
                positions = list(range(len(gnode.inputs)))
            elif gnode.op in _BIAS_INPUT:
                positions = [_BIAS_INPUT[gnode.op]]
            elif gnode.op == "Mul" and len(gnode.inputs) == 2:
                for position in (0, 1):
                    other = gnode.input(1 - position)
                    roots = self.weight_roots(gnode.input(position))
                    if (
                        other in dependent
                        and len(roots) == 1
                        and len(roots[0].shape) <= 2
                        and roots[0] not in taken
                    ):
                        cell.peepholes.append(roots[0])
                        taken.add(roots[0])
                continue
            for position in positions:
                for root in self.weight_roots(gnode.input(position)):
                    if root in taken:
                        continue
                    if root.dtype.kind is DKind.FLOAT or gnode.op in _BIAS_INPUT:
                        cell.biases.append((root, self._bias_role(gnode, position, cell)))
                        taken.add(root)

    def _bias_role(self, gnode: GNode, position: int, cell: _Cell) -> TensorRole:
        """input_bias when the bias is added to the input projection, recurrent_bias when to
        the recurrent product, bias when it cannot be told (or is shared)."""
        if gnode.op in _BIAS_INPUT:
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

    def _reaches_weight(self, vid: ValueId, cell: _Cell) -> set[str]:
        found: set[str] = set()
        stack = [(vid, 0)]
        while stack and self._tick():
            current, depth = stack.pop()
            producer = self.index.producer(current)
            if producer is None or depth > 6:
                continue
            applied = self.weighted_inputs(producer)
            if applied is not None:
                roots = set(applied[1])
                if roots & set(cell.recurrent):
                    found.add("recurrent")
                elif roots & set(cell.kernel):
                    found.add("kernel")
                continue
            if producer.op in _PASS:
                stack.extend(
                    (v, depth + 1)
                    for v in producer.inputs
                    if v is not None and v not in self.index.static
                )
        return found

    # --- unrolled chains ------------------------------------------------------------------

    def find_unrolled(self, skip: set[GNode]) -> list[Lowered]:
        found: list[Lowered] = []
        for scope in self.index.scopes:
            signatures: dict[GNode, tuple[tuple[int, ...], ...]] = {}
            for gnode in scope.nodes:
                if gnode in skip or gnode.op not in ("MatMul", "Gemm"):
                    continue
                applied = self.weighted_inputs(gnode)
                if applied is not None:
                    signatures[gnode] = tuple(sorted(_squeezed(r.shape) for r in applied[1]))
            following: dict[GNode, GNode] = {}
            preceding: dict[GNode, int] = {}
            for gnode, signature in signatures.items():
                nexts = self._next_steps(gnode, signature, signatures)
                if len(nexts) == 1:
                    following[gnode] = nexts[0]
                    preceding[nexts[0]] = preceding.get(nexts[0], 0) + 1
            lowered = []
            for start in signatures:
                if start not in following or preceding.get(start) == 1:
                    continue
                steps = [start]
                while steps[-1] in following and len(steps) <= len(signatures):
                    nxt = following[steps[-1]]
                    if preceding.get(nxt) != 1 or nxt in steps:
                        break
                    steps.append(nxt)
                if len(steps) >= 2:
                    lowered.append(self._chain(scope, steps))
            found.extend(self._pair([item for item in lowered if item is not None]))
        return found

    def _next_steps(
        self,
        start: GNode,
        signature: tuple[tuple[int, ...], ...],
        signatures: dict[GNode, tuple[tuple[int, ...], ...]],
    ) -> list[GNode]:
        """The uses of a same-shaped weight that the product `start` computes feeds."""
        return [g for g in self.step_reach(start) if signatures.get(g) == signature]

    def _between(self, earlier: GNode, later: GNode) -> set[GNode]:
        """The nodes of one step: on paths from one use of the recurrent weight to the next."""
        ahead = self.step_reach(earlier)
        step: set[GNode] = set()
        stack = [v for v in later.inputs if v is not None]
        seen: set[ValueId] = set()
        while stack and self._tick():
            vid = stack.pop()
            if vid in seen:
                continue
            seen.add(vid)
            producer = self.index.producer(vid)
            if producer is None or producer not in ahead or producer in step:
                continue
            step.add(producer)
            stack.extend(v for v in producer.inputs if v is not None)
        return step

    def _chain(self, scope: Scope, steps: list[GNode]) -> Lowered | None:
        step = self._between(steps[0], steps[1])
        if not step or len(step) > MAX_STEP_NODES:
            return None
        if any(g.op in ("Softmax", "LayerNormalization", "Attention") for g in step):
            return None
        cell = _Cell()
        applied = self.weighted_inputs(steps[0])
        if applied is None:
            return None
        cell.recurrent = list(applied[1])
        cell.activations = self._activations(step)
        if not cell.activations:
            return None
        members: set[GNode] = set(steps)
        for first, second in pairwise(steps):
            members |= self._between(first, second)
        inside = set(step) | {steps[1]}
        sequence: ValueId | None = None
        projections: set[ValueId] = set()
        for gnode in step:
            for vid in gnode.inputs:
                if vid is None or vid in self.index.static:
                    continue
                producer = self.index.producer(vid)
                if producer in inside or producer is steps[0]:
                    continue
                found = self._projection(vid, cell, members)
                if found is not None:
                    sequence = sequence or found
                    projections.add(vid)
        taken = set(cell.recurrent) | set(cell.kernel) | {b for b, _ in cell.biases}
        for gnode in step:
            if gnode.op not in ("Add", "Sum"):
                continue
            for vid in gnode.inputs:
                for root in self.weight_roots(vid):
                    if root not in taken and root.dtype.kind is DKind.FLOAT:
                        cell.biases.append((root, TensorRole.RECURRENT_BIAS))
                        taken.add(root)
        self._first_step(steps[0], members, projections)
        weight_name = cell.recurrent[0].name
        copies = {root for gnode in steps for root in (self.weighted_inputs(gnode) or ((), []))[1]}
        how = f"weight '{weight_name}' applied at {len(steps)} dependent steps"
        if len(copies) > len(cell.recurrent):
            how = (
                f"{len(steps)} dependent steps, each with its own copy of the recurrent weight "
                f"(first: '{weight_name}')"
            )
        lowered = self._settle(
            name=f"unrolled:{weight_name}",
            type_="unrolled",
            location=scope.path,
            cell=cell,
            members=members,
            state_inputs=set(),
            how=how,
        )
        if len(copies) > len(cell.recurrent):
            extra = sum(r.elements for r in copies) - sum(r.elements for r in cell.recurrent)
            lowered.warnings.append(
                f"unrolled recurrence '{lowered.name}' in {scope.path}: the exporter stored the "
                f"recurrent weight once per step ({len(copies)} tensors); the formula uses one "
                f"copy, the total counts all {extra:,} extra elements the file holds"
            )
        lowered.sequence = sequence
        return lowered

    def _projection(self, vid: ValueId, cell: _Cell, members: set[GNode]) -> ValueId | None:
        """Walk from a step's outside input back to the input projection x·W (+ b); record
        W as the kernel and b as the input bias. Returns the sequence the projection reads."""
        stack = [(vid, 0)]
        seen: set[ValueId] = set()
        sequence = None
        while stack and self._tick():
            current, depth = stack.pop()
            if current in seen or depth > 8:
                continue
            seen.add(current)
            producer = self.index.producer(current)
            if producer is None:
                continue
            applied = self.weighted_inputs(producer)
            if applied is not None:
                data, roots = applied
                cell.kernel.extend(r for r in roots if r not in cell.kernel)
                members.add(producer)
                sequence = data
                continue
            if producer.op not in _PASS:
                continue
            members.add(producer)
            for position, value in enumerate(producer.inputs):
                if value is None:
                    continue
                if value in self.index.static:
                    if producer.op == "Add":
                        for root in self.weight_roots(value):
                            if root.dtype.kind is DKind.FLOAT and root not in {
                                b for b, _ in cell.biases
                            }:
                                cell.biases.append((root, TensorRole.INPUT_BIAS))
                    continue
                if (
                    producer.op in ("Slice", "Gather", "Split", "Squeeze", "Unsqueeze", "Reshape")
                    and position > 0
                ):
                    continue
                stack.append((value, depth + 1))
        return sequence

    def _first_step(self, first: GNode, members: set[GNode], projections: set[ValueId]) -> None:
        """The step before the first use of the recurrent weight (its state is the initial
        one, often folded away): its nodes and constants belong to the recurrence too."""
        data = next((v for v in first.inputs if v is not None and v not in self.index.static), None)
        stack = [data] if data is not None else []
        budget = MAX_STEP_NODES
        while stack and budget > 0 and self._tick():
            vid = stack.pop()
            if vid in projections:
                continue
            producer = self.index.producer(vid)
            if producer is None or producer in members or self.weighted_inputs(producer):
                continue
            members.add(producer)
            budget -= 1
            stack.extend(v for v in producer.inputs if v is not None and v not in self.index.static)

    def _pair(self, chains: list[Lowered]) -> list[Lowered]:
        """Two chains reading the same sequence with the same cell are the two directions of
        one bidirectional layer (the second in graph order runs backward)."""
        result: list[Lowered] = []
        used: set[int] = set()
        for i, first in enumerate(chains):
            if i in used:
                continue
            partner = None
            for j in range(i + 1, len(chains)):
                other = chains[j]
                if (
                    j not in used
                    and first.sequence is not None
                    and other.sequence == first.sequence
                    and (other.kind, other.units, other.input_dim, other.bias)
                    == (first.kind, first.units, first.input_dim, first.bias)
                    and first.consistent
                    and other.consistent
                ):
                    partner = j
                    break
            if partner is None:
                result.append(first)
                continue
            used.add(partner)
            second = chains[partner]
            paired: list[tuple[Stored, TensorRole, Direction | None]] = [
                (s, r, Direction.FORWARD) for s, r, _ in first.tensors
            ]
            paired += [(s, r, Direction.BACKWARD) for s, r, _ in second.tensors]
            first.tensors = paired
            first.directions = 2
            first.members |= second.members
            first.name = f"{first.name}+{second.name.removeprefix('unrolled:')}"
            first.notes.append(
                "two chains read the same sequence: reported as one bidirectional layer, "
                "the later one in graph order as the backward direction"
            )
            first.warnings.extend(second.warnings)
            result.append(first)
        return result

    # --- deciding the cell ------------------------------------------------------------------

    def _settle(
        self,
        *,
        name: str,
        type_: str,
        location: str,
        cell: _Cell,
        members: set[GNode],
        state_inputs: set[tuple[GNode, int]],
        how: str,
    ) -> Lowered:
        notes = [f"lowered recurrence: {how}"]
        warnings: list[str] = []
        by_activation = _kind_from_activations(cell.activations)
        act_text = ", ".join(f"{n} {op}" for op, n in sorted(cell.activations.items())) or "none"
        kind: CellKind | None = None
        units: int | None = None
        input_dim: int | None = None
        recurrent_elems = sum(s.elements for s in cell.recurrent)
        projections: list[Stored] = []
        if cell.fused_width is not None and len(cell.recurrent) > 1:
            # Further state-dependent weights after the fused kernel project the output.
            main = max(cell.recurrent, key=lambda s: s.elements)
            projections = [s for s in cell.recurrent if s is not main]
            cell.recurrent = [main]
            recurrent_elems = main.elements
        if cell.fused_width is not None:
            # One kernel over concat(x, h): its rows are input and recurrent weights together.
            kind = by_activation
            if kind is not None:
                gates = gate_count(kind)
                out = recurrent_elems // (cell.fused_width + (cell.state_width or 0))
                units = out // gates if out % gates == 0 else None
                input_dim = cell.fused_width
            warnings.append(
                f"{type_} '{name}' in {location}: input and recurrent weights share one kernel "
                f"over concat(x, h); {kind.value if kind else 'cell kind'} inferred from the "
                f"activations ({act_text})"
            )
        else:
            largest = max(cell.recurrent, key=lambda s: s.elements)
            dims = _squeezed(largest.shape)
            h = min(dims) if len(dims) == 2 else None
            if h:
                ratio, rest = divmod(recurrent_elems, h * h)
                kind = _KIND_BY_GATES.get(ratio) if rest == 0 else None
                units = h if kind is not None else None
            if kind is None:
                kind = by_activation
                warnings.append(
                    f"{type_} '{name}' in {location}: recurrent weight of shape "
                    f"{list(largest.shape)} does not hold 1, 3 or 4 gates of a square block; "
                    f"cell kind {'inferred from the activations' if kind else 'unknown'}"
                )
            elif by_activation is not None and by_activation is not kind:
                warnings.append(
                    f"{type_} '{name}' in {location}: the recurrent weight's shape suggests "
                    f"{kind.value} but one step's activations ({act_text}) suggest "
                    f"{by_activation.value}; reported as {kind.value}"
                )
        notes.append(f"one step's activations: {act_text}")
        gates = gate_count(kind) if kind is not None else 0
        consistent = kind is not None and units is not None
        bias = BiasConvention.NONE
        if consistent and units:
            gh = gates * units
            if cell.fused_width is None:
                kernel_elems = sum(s.elements for s in cell.kernel)
                if kernel_elems and kernel_elems % gh == 0:
                    input_dim = kernel_elems // gh
                else:
                    consistent = False
            bias_elems = sum(s.elements for s, _ in cell.biases)
            vectors, rest = divmod(bias_elems, gh)
            if rest == 0 and vectors in (0, 1, 2):
                bias = (BiasConvention.NONE, BiasConvention.SINGLE, BiasConvention.DOUBLE)[vectors]
            else:
                consistent = False
            if cell.peepholes and sum(s.elements for s in cell.peepholes) != 3 * units:
                consistent = False
            if cell.fused_width is not None and cell.state_width != units:
                consistent = False
                notes.append(
                    f"the state is {cell.state_width} wide but the cell has {units} units "
                    "(a projection layer): the closed-form formula does not apply"
                )
        if not consistent:
            warnings.append(
                f"{type_} '{name}' in {location}: found a lowered recurrence but its tensors do "
                "not fit one cell of a known kind; its formula check is unverified"
            )
        tensors: list[tuple[Stored, TensorRole, Direction | None]] = []
        tensors += [(s, TensorRole.KERNEL, None) for s in cell.kernel]
        tensors += [(s, TensorRole.RECURRENT_KERNEL, None) for s in cell.recurrent]
        roles = {role for _, role in cell.biases}
        for stored, role in cell.biases:
            if bias is BiasConvention.SINGLE or roles == {TensorRole.RECURRENT_BIAS}:
                role = TensorRole.BIAS
            tensors.append((stored, role, None))
        tensors += [(s, TensorRole.PEEPHOLE, None) for s in cell.peepholes]
        tensors += [(s, TensorRole.PROJECTION, None) for s in projections]
        return Lowered(
            name=name,
            type=type_,
            location=location,
            kind=kind,
            units=units,
            input_dim=input_dim if consistent else None,
            bias=bias,
            tensors=tensors,
            members=members,
            state_inputs=state_inputs,
            peepholes=bool(cell.peepholes),
            consistent=consistent,
            notes=notes,
            warnings=warnings,
        )


def _kind_from_activations(counts: dict[str, int]) -> CellKind | None:
    sigmoid = counts.get("Sigmoid", 0)
    tanh = counts.get("Tanh", 0)
    relu = counts.get("Relu", 0)
    if sigmoid >= 3 and tanh >= 2:
        return CellKind.LSTM
    if sigmoid >= 2 and tanh >= 1:
        return CellKind.GRU
    if sigmoid == 0 and tanh + relu >= 1:
        return CellKind.SIMPLE_RNN
    return None


def find(index: Index, fused: set[GNode]) -> tuple[list[Lowered], list[str]]:
    """Every lowered recurrence, and warnings about structures that look recurrent but could
    not be analysed."""
    finder = Finder(index)
    loops = finder.find_loops()
    covered = set(fused)
    for item in loops:
        covered |= item.members
    unrolled = finder.find_unrolled(covered)
    warnings = []
    recognised = {g for item in loops for g in item.members if g.op in ("Loop", "Scan")}
    for gnode in index.nodes:
        if gnode.op in ("Loop", "Scan") and gnode not in recognised and _looks_recurrent(gnode):
            warnings.append(
                f"{gnode.op} '{gnode.label}' in {gnode.scope.path} applies weights or "
                "activations at every iteration but was not recognised as a recurrent cell; "
                "its weights are counted in the total, not checked"
            )
    if finder.budget_hit:
        warnings.append(
            "the search for lowered recurrences stopped early on this large graph; "
            "some may not be reported"
        )
    return loops + unrolled, warnings


def _looks_recurrent(gnode: GNode) -> bool:
    for body in gnode.children:
        for inner in body.nodes:
            if inner.op in _WEIGHTED or inner.op in ("Sigmoid", "Tanh"):
                return True
    return False
