"""Loop and Scan bodies: tf2onnx turns Keras SimpleRNN, GRU(reset_after=False) and masked layers
into a `Loop` whose body computes one step; some tools build LSTMs from `Scan`; the TFLite
converter lowers Keras 3 layers (and tf_keras GRUs) into a `WHILE` loop, which the op-graph view
names `Loop`. The body multiplies a state it carries from step to step by a weight: that weight
is the recurrent kernel."""

from __future__ import annotations

from collections.abc import Hashable

from inspector.formats.lowered.cell import Cell, Lowered
from inspector.formats.lowered.directions import paired, pairs, reversal
from inspector.formats.lowered.settle import settle
from inspector.formats.lowered.walk import Walker
from inspector.formats.opgraph import DKind, Node, Scope, ValueId


class LoopDetector:
    """Loop/Scan bodies that apply a weight to a state they carry; it runs first, so only
    fused nodes are covered, and those are never Loop or Scan."""

    def __init__(self, walk: Walker) -> None:
        self.walk = walk
        self.graph = walk.graph

    def find(self, covered: set[Node]) -> list[Lowered]:
        found = []
        for gnode in self.graph.nodes:
            if gnode.op not in ("Loop", "Scan") or gnode.domain not in ("", "ai.onnx"):
                continue
            for body in gnode.children:
                lowered = self._loop(gnode, body)
                if lowered is not None:
                    found.append((gnode, lowered))
        return self._pair(found)

    def _pair(self, found: list[tuple[Node, Lowered]]) -> list[Lowered]:
        """A loop reading, time-reversed, the sequence another loop of the same cell reads is
        that loop's backward direction: one bidirectional layer (Keras Bidirectional as
        tf2onnx and the TFLite converter lower it)."""
        backward_of = pairs(self.graph, [node for node, _ in found], lambda i: _cell(found[i][1]))
        backwards = set(backward_of.values())
        result = []
        for f, (front, lowered) in enumerate(found):
            if f in backwards:
                continue
            if f in backward_of:
                back, lowered_back = found[backward_of[f]]
                lowered = paired(
                    lowered,
                    lowered_back,
                    f"a bidirectional pair: {front.label} runs forward, {back.label} over the "
                    f"time-reversed sequence ({reversal(self.graph, back)}), as the converter "
                    "writes a Keras Bidirectional",
                )
            result.append(lowered)
        return result

    def _loop(self, owner: Node, body: Scope) -> Lowered | None:
        graph = self.graph
        states: list[ValueId] = []
        state_inputs: set[tuple[Node, int]] = set()
        for state in graph.states(body):
            # Iteration counters and masks are carried too; only a float (or 8-bit quantized)
            # state makes a recurrence.
            if not state.unchanged and self._numeric_state(state.body, state.outer):
                states.append(state.body)
                state_inputs.add((owner, state.position))
        dependent = self.walk.closure(states, body)
        cell = Cell()
        nodes = body.nodes
        for gnode in nodes:
            applied = self.walk.weighted_inputs(gnode)
            if applied is None:
                continue
            data, roots = applied
            self._orient(gnode, cell)
            if data in dependent:
                cell.add_recurrent(roots)
                width = self._concat_split(data, dependent, body)
                if width is not None:
                    cell.fused_width, cell.state_width = width
            else:
                cell.add_kernel(roots)
        if not cell.recurrent:
            return None
        self.walk.biases_and_peepholes(nodes, cell, dependent)
        cell.activations = self.walk.activations(nodes)
        members = {owner, *(g for scope in graph.descendants(body) for g in scope.nodes)}
        return settle(
            name=owner.label,
            type_=owner.native,
            location=owner.scope.path,
            cell=cell,
            members=members,
            state_inputs=state_inputs,
            how=f"{owner.native} body",
        )

    def _orient(self, gnode: Node, cell: Cell) -> None:
        found = self.walk.reads_transposed(gnode)
        if found is not None:
            cell.transposed.add(found)

    def _numeric_state(self, vid: ValueId, outer: ValueId | None) -> bool:
        dtype = self.graph.elem_type(vid)
        if dtype.kind is DKind.UNKNOWN and outer is not None:
            dtype = self.graph.elem_type(outer)
        return dtype.kind in (DKind.FLOAT, DKind.UNKNOWN) or dtype.name in ("int8", "uint8")

    def _concat_split(
        self, data: ValueId, dependent: set[ValueId], scope: Scope
    ) -> tuple[int, int] | None:
        """(input width, state width) when the step multiplies concat(x, h) by one kernel."""
        current: ValueId | None = data
        for _ in range(4):
            producer = self.graph.producer(current)
            if producer is None:
                return None
            if producer.op == "Concat":
                widths = []
                for vid in producer.inputs:
                    shape = self.graph.declared_shape(vid) if vid is not None else None
                    last = shape[-1] if shape else None
                    if not isinstance(last, int):
                        return None
                    widths.append((vid in dependent, last))
                x = sum(w for dep, w in widths if not dep)
                h = sum(w for dep, w in widths if dep)
                return (x, h) if x and h else None
            current = producer.input(0)
        return None


def _cell(lowered: Lowered) -> Hashable | None:
    """What two loops share to be one layer's directions: one consistent cell each, alike."""
    if lowered.directions != 1 or not lowered.consistent:
        return None
    return (lowered.kind, lowered.units, lowered.input_dim, lowered.bias)
