"""Unrolled chains: the torch dynamo exporter unrolls `nn.RNN` into MatMul/Add/Tanh steps. One
weight is reused at every step, each use depending on the previous one. Reuse along a chain of
steps is the parameter sharing that makes a recurrence; a weight used twice side by side is not
one. On long sequences the exporter may store one copy of the weight per step: steps are
therefore linked by structure (a product whose result, through one step's elementwise ops,
feeds a product with a weight of the same shape), and the copies are reported."""

from __future__ import annotations

from itertools import pairwise

from inspector.formats.lowered.cell import Cell, Lowered, squeezed
from inspector.formats.lowered.settle import settle
from inspector.formats.lowered.walk import (
    MAX_STEP_NODES,
    PASS,
    Walker,
)
from inspector.formats.opgraph import DKind, Node, Scope, ValueId, Weight
from inspector.model import Direction, TensorRole


class UnrolledDetector:
    """Chains of products with one recurrent weight, each step depending on the previous one."""

    def __init__(self, walk: Walker) -> None:
        self.walk = walk
        self.graph = walk.graph

    def find(self, covered: set[Node]) -> list[Lowered]:
        found: list[Lowered] = []
        for scope in self.graph.scopes:
            signatures: dict[Node, tuple[tuple[int, ...], ...]] = {}
            for gnode in scope.nodes:
                if gnode in covered or gnode.op not in ("MatMul", "Gemm"):
                    continue
                applied = self.walk.weighted_inputs(gnode)
                if applied is not None:
                    signatures[gnode] = tuple(sorted(squeezed(r.shape) for r in applied[1]))
            following: dict[Node, Node] = {}
            preceding: dict[Node, int] = {}
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
        start: Node,
        signature: tuple[tuple[int, ...], ...],
        signatures: dict[Node, tuple[tuple[int, ...], ...]],
    ) -> list[Node]:
        """The uses of a same-shaped weight that the product `start` computes feeds."""
        return [g for g in self.walk.step_reach(start) if signatures.get(g) == signature]

    def _between(self, earlier: Node, later: Node) -> set[Node]:
        """The nodes of one step: on paths from one use of the recurrent weight to the next."""
        ahead = self.walk.step_reach(earlier)
        step: set[Node] = set()
        stack = [v for v in later.inputs if v is not None]
        seen: set[ValueId] = set()
        while stack and self.walk.tick():
            vid = stack.pop()
            if vid in seen:
                continue
            seen.add(vid)
            producer = self.graph.producer(vid)
            if producer is None or producer not in ahead or producer in step:
                continue
            step.add(producer)
            stack.extend(v for v in producer.inputs if v is not None)
        return step

    def _chain(self, scope: Scope, steps: list[Node]) -> Lowered | None:
        step = self._between(steps[0], steps[1])
        if not step or len(step) > MAX_STEP_NODES:
            return None
        if any(g.op in ("Softmax", "LayerNormalization", "Attention") for g in step):
            return None
        cell = Cell()
        applied = self.walk.weighted_inputs(steps[0])
        if applied is None:
            return None
        cell.recurrent = list(applied[1])
        cell.activations = self.walk.activations(step)
        if not cell.activations:
            return None
        members: set[Node] = set(steps)
        for first, second in pairwise(steps):
            members |= self._between(first, second)
        inside = set(step) | {steps[1]}
        sequence: ValueId | None = None
        projections: set[ValueId] = set()
        for gnode in step:
            for vid in gnode.inputs:
                if vid is None or vid in self.graph.static:
                    continue
                producer = self.graph.producer(vid)
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
                for root in self.walk.weight_roots(vid):
                    if root not in taken and root.dtype.kind is DKind.FLOAT:
                        cell.biases.append((root, TensorRole.RECURRENT_BIAS))
                        taken.add(root)
        self._first_step(steps[0], members, projections)
        weight_name = cell.recurrent[0].name
        copies = {
            root for gnode in steps for root in (self.walk.weighted_inputs(gnode) or ((), []))[1]
        }
        how = f"weight '{weight_name}' applied at {len(steps)} dependent steps"
        if len(copies) > len(cell.recurrent):
            how = (
                f"{len(steps)} dependent steps, each with its own copy of the recurrent weight "
                f"(first: '{weight_name}')"
            )
        lowered = settle(
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

    def _projection(self, vid: ValueId, cell: Cell, members: set[Node]) -> ValueId | None:
        """Walk from a step's outside input back to the input projection x·W (+ b); record
        W as the kernel and b as the input bias. Returns the sequence the projection reads."""
        stack = [(vid, 0)]
        seen: set[ValueId] = set()
        sequence = None
        while stack and self.walk.tick():
            current, depth = stack.pop()
            if current in seen or depth > 8:
                continue
            seen.add(current)
            producer = self.graph.producer(current)
            if producer is None:
                continue
            applied = self.walk.weighted_inputs(producer)
            if applied is not None:
                data, roots = applied
                cell.kernel.extend(r for r in roots if r not in cell.kernel)
                members.add(producer)
                sequence = data
                continue
            if producer.op not in PASS:
                continue
            members.add(producer)
            for position, value in enumerate(producer.inputs):
                if value is None:
                    continue
                if value in self.graph.static:
                    if producer.op == "Add":
                        for root in self.walk.weight_roots(value):
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

    def _first_step(self, first: Node, members: set[Node], projections: set[ValueId]) -> None:
        """The step before the first use of the recurrent weight (its state is the initial
        one, often folded away): its nodes and constants belong to the recurrence too."""
        data = next((v for v in first.inputs if v is not None and v not in self.graph.static), None)
        stack = [data] if data is not None else []
        budget = MAX_STEP_NODES
        while stack and budget > 0 and self.walk.tick():
            vid = stack.pop()
            if vid in projections:
                continue
            producer = self.graph.producer(vid)
            if producer is None or producer in members or self.walk.weighted_inputs(producer):
                continue
            members.add(producer)
            budget -= 1
            stack.extend(v for v in producer.inputs if v is not None and v not in self.graph.static)

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
            paired: list[tuple[Weight, TensorRole, Direction | None]] = [
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
