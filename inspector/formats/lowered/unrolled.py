"""Unrolled chains: the torch dynamo exporter unrolls `nn.RNN` into MatMul/Add/Tanh steps. One
weight is reused at every step, each use depending on the previous one. Reuse along a chain of
steps is the parameter sharing that makes a recurrence; a weight used twice side by side is not
one. On long sequences the exporter may store one copy of the weight per step: steps are
therefore linked by structure (a product whose result, through one step's elementwise ops,
feeds a product with a weight of the same shape), and the copies are reported."""

from __future__ import annotations

from collections import deque
from itertools import islice, pairwise

from inspector.formats.lowered.cell import Cell, Lowered, squeezed
from inspector.formats.lowered.directions import paired
from inspector.formats.lowered.settle import settle
from inspector.formats.lowered.walk import (
    BIAS_INPUT,
    MAX_STEP_NODES,
    PASS,
    Walker,
)
from inspector.formats.opgraph import DKind, Node, Scope, ValueId, Weight
from inspector.model import TensorRole

Signature = tuple[tuple[int, ...], ...]  # the squeezed shapes of a product's weights
# Ops that take one step's slice of a sequence (ONNX Split/Slice/Gather; TFLite UNPACK, SPLIT,
# STRIDED_SLICE, GATHER map onto these), walked back to find the sequence a chain reads.
_SLICING = frozenset({"Split", "Slice", "Gather", "Squeeze", "Unsqueeze", "Reshape"})
_SHAPE_ONLY = frozenset({"Shape", "Size"})  # outputs that depend on a tensor's shape alone
_ACTIVATIONS = frozenset({"Sigmoid", "HardSigmoid", "Tanh", "Relu", "Clip"})


class UnrolledDetector:
    """Chains of steps with one recurrent weight (or one per gate), each step depending on the
    previous one.

    A step applies the recurrent weights to the state: one product, or one per gate when the
    cell is computed gate by gate (Keras `implementation=1`: four products reading the same h),
    a *group*. A group's next step is the nearest group of products with the same weight shapes
    that its results reach through one step's elementwise ops (an LSTM's cell state also reaches
    the steps after, further away)."""

    def __init__(self, walk: Walker) -> None:
        self.walk = walk
        self.graph = walk.graph

    def find(self, covered: set[Node]) -> list[Lowered]:
        found: list[Lowered] = []
        for scope in self.graph.scopes:
            signatures: dict[Node, Signature] = {}
            data_of: dict[Node, ValueId] = {}
            for gnode in scope.nodes:
                if gnode in covered or gnode.op not in ("MatMul", "Gemm"):
                    continue
                applied = self.walk.weighted_inputs(gnode)
                if applied is not None:
                    signatures[gnode] = tuple(sorted(squeezed(r.shape) for r in applied[1]))
                    data_of[gnode] = applied[0]
            groups: dict[tuple[ValueId, Signature], list[Node]] = {}
            for gnode, signature in signatures.items():
                groups.setdefault((data_of[gnode], signature), []).append(gnode)
            group_of = {node: members for members in groups.values() for node in members}
            leads: dict[Node, list[Node]] = {}
            for members in groups.values():
                nxt = self._next_step(members, signatures, group_of)
                if nxt is not None:
                    leads.setdefault(nxt, []).append(members[0])
            following: dict[Node, Node] = {}
            preceding: dict[Node, int] = {}
            for nxt, firsts in leads.items():
                # Where the input width equals the units, a step's input projection has the
                # recurrent weight's shape and reaches the next step too: the previous step is
                # the one applying the next step's weights (the same tensor, or equal values).
                same = [f for f in firsts if self._same(group_of[f], group_of[nxt])]
                if len(firsts) > 1 and len(same) == 1:
                    firsts = same
                for first in firsts:
                    following[first] = nxt
                preceding[nxt] = len(firsts)
            lowered = []
            for start in (members[0] for members in groups.values()):
                if start not in following or preceding.get(start) == 1:
                    continue
                steps = [start]
                visited = {start}
                while steps[-1] in following and len(steps) <= len(signatures):
                    nxt = following[steps[-1]]
                    if preceding.get(nxt) != 1 or nxt in visited:
                        break
                    steps.append(nxt)
                    visited.add(nxt)
                groups_ = [group_of[s] for s in steps]
                # A chain reusing one weight set from its second step on, whose first product
                # applies others, starts with an input projection of the same shape (d = u).
                while len(groups_) >= 3 and self._weights(groups_[0]) != self._weights(
                    groups_[1]
                ) == self._weights(groups_[2]):
                    groups_ = groups_[1:]
                if len(groups_) >= 2:
                    lowered.append(self._chain(scope, groups_))
            found.extend(self._pair(_distinct([item for item in lowered if item is not None])))
        return found

    def _weights(self, group: list[Node]) -> frozenset[Weight]:
        return frozenset(r for g in group for r in (self.walk.weighted_inputs(g) or ((), []))[1])

    def _same(self, first: list[Node], second: list[Node]) -> bool:
        """Whether two groups of products apply the same weights: the same tensors, or
        tensors holding equal values (a converter's per-step copies)."""
        mine, theirs = self._weights(first), self._weights(second)
        return len(mine) == len(theirs) and all(
            any(self.graph.same_values(weight, other) for other in theirs) for weight in mine
        )

    def _next_step(
        self,
        group: list[Node],
        signatures: dict[Node, Signature],
        group_of: dict[Node, list[Node]],
    ) -> Node | None:
        """The first product of the nearest group with this group's weight shapes that the
        group's results reach through elementwise ops; None when the nearest such products read
        different values (no single next step)."""
        signature = signatures[group[0]]
        distance = {
            g: d
            for g, d in self.walk.step_reach(group).items()
            if signatures.get(g) == signature and group_of.get(g) is not group
        }
        if not distance:
            return None
        closest = min(distance.values())
        firsts = {group_of[g][0] for g, d in distance.items() if d == closest}
        return firsts.pop() if len(firsts) == 1 else None

    def _between(self, earlier: list[Node], later: list[Node]) -> set[Node]:
        """The nodes of one step: on paths from one use of the recurrent weights to the next.
        Walked back from the later products (breadth first, a few steps' worth of nodes, never
        past the earlier products), then kept where the earlier products' results lead: so a
        product applied inside the step to a state-derived value (Keras GRU reset_before's
        U_h on r ⊙ h) is in the step, with the ops between it and the next step."""
        scope = earlier[0].scope
        stop = set(earlier)
        before: set[Node] = set()
        frontier = [v for product in later for v in product.inputs if v is not None]
        while frontier and len(before) < MAX_STEP_NODES * 4:
            following: list[ValueId] = []
            for vid in frontier:
                if not self.walk.tick():
                    return set()
                if vid in self.graph.static:
                    continue
                producer = self.graph.producer(vid)
                if producer is None or producer.scope is not scope or producer in before:
                    continue
                if producer in stop:
                    continue
                before.add(producer)
                following.extend(v for v in producer.inputs if v is not None)
            frontier = following
        step: set[Node] = set()
        pending = [v for product in earlier for v in self.graph.output_ids(product)]
        while pending and self.walk.tick():
            vid = pending.pop()
            for consumer, _ in self.graph.uses(vid):
                if consumer in before and consumer not in step:
                    step.add(consumer)
                    pending.extend(self.graph.output_ids(consumer))
        return step

    def _chain(self, scope: Scope, steps: list[list[Node]]) -> Lowered | None:
        step = self._between(steps[0], steps[1])
        if not step or len(step) > MAX_STEP_NODES:
            return None
        if any(g.op in ("Softmax", "LayerNormalization", "Attention") for g in step):
            return None
        cell = Cell()
        for product in steps[0]:
            applied = self.walk.weighted_inputs(product)
            if applied is None:
                return None
            cell.add_recurrent(applied[1])
            self._operand_bias(product, cell, TensorRole.RECURRENT_BIAS)
            self._orient(product, cell)
        # A product inside the step on a state-derived value (GRU's U_h on r ⊙ h) is recurrent.
        derived = {v for g in step for v in g.outputs}
        for gnode in sorted(step, key=lambda g: g.order):
            applied = self.walk.weighted_inputs(gnode)
            if applied is not None and applied[0] in derived:
                cell.add_recurrent(applied[1])
                self._orient(gnode, cell)
        cell.activations = self.walk.activations(step)
        if not cell.activations:
            return None
        members: set[Node] = {product for group in steps for product in group}
        steps_nodes = [self._between(first, second) for first, second in pairwise(steps)]
        for nodes in steps_nodes:
            members |= nodes
        last = self._last_step(steps[-1], len(step), members, frozenset(cell.recurrent))
        sequence: ValueId | None = None
        order: list[int] = []
        projections: set[ValueId] = set()
        bounds = [*pairwise(steps), (steps[-1], [])]
        for nodes, (first, second) in zip([*steps_nodes, last], bounds, strict=True):
            inside = set(nodes) | set(second)
            for gnode in sorted(nodes, key=lambda g: g.order):
                for vid in gnode.inputs:
                    if vid is None or vid in self.graph.static:
                        continue
                    producer = self.graph.producer(vid)
                    if producer in inside or producer in first:
                        continue
                    found = self._projection(vid, cell, members)
                    if found is not None:
                        if sequence is None:
                            sequence = found
                        position = self._slice_position(found)
                        if position is not None:
                            order.append(position)
                        projections.add(vid)
        for gnode in step:
            if gnode.op not in ("Add", "Sum"):
                continue
            for vid in gnode.inputs:
                for root in self.walk.weight_roots(vid):
                    if not cell.holds(root) and (root.dtype.kind is DKind.FLOAT or root.quantized):
                        cell.add_bias(root, TensorRole.RECURRENT_BIAS)
        self._align(steps[0], step, members, cell)
        chained = {g for group in steps for g in group}.union(*steps_nodes)
        states = self._first_step(steps[0], chained, members, projections, cell)
        weight_name = cell.recurrent[0].name
        copies = {
            root
            for group in steps
            for gnode in group
            for root in (self.walk.weighted_inputs(gnode) or ((), []))[1]
        }
        how = f"weight '{weight_name}' applied at {len(steps)} dependent steps"
        if len(steps[0]) > 1:
            how = (
                f"{len(steps[0])} weights per step (one per gate, first '{weight_name}') "
                f"applied at {len(steps)} dependent steps"
            )
        elif len(copies) > len(cell.recurrent):
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
        lowered.first_step = states
        if len(copies) > len(cell.recurrent) and len(steps[0]) == 1:
            extra = sum(r.elements for r in copies) - sum(r.elements for r in cell.recurrent)
            lowered.warnings.append(
                f"unrolled recurrence '{lowered.name}' in {scope.path}: the exporter stored the "
                f"recurrent weight once per step ({len(copies)} tensors); the formula uses one "
                f"copy, the total counts all {extra:,} extra elements the file holds"
            )
        lowered.sequence = self._sequence_root(sequence) if sequence is not None else None
        lowered.reversed = len(order) >= 2 and all(b < a for a, b in pairwise(order))
        return lowered

    def _orient(self, product: Node, cell: Cell) -> None:
        found = self.walk.reads_transposed(product)
        if found is not None:
            cell.transposed.add(found)

    def _last_step(
        self, last: list[Node], size: int, members: set[Node], recurrent: frozenset[Weight]
    ) -> set[Node]:
        """The step after the last use of the recurrent weights (it computes the final state):
        the nearest `size` ops its results reach, as many as one step has (a product of the
        cell's own recurrent weights inside it, GRU reset_before's U_h, included)."""
        reach = self.walk.step_reach(last, recurrent)
        nodes: set[Node] = set()
        for gnode in sorted(reach, key=lambda g: (reach[g], g.order)):
            if len(nodes) >= size:
                break
            if gnode not in members and (
                not self.walk.stops(gnode) or self.walk.applies_only(gnode, recurrent)
            ):
                nodes.add(gnode)
        members |= nodes
        return nodes

    def _slice_position(self, data: ValueId) -> int | None:
        """Which output of a splitting op the step's input is (its time step), if it is one."""
        producer = self.graph.producer(data)
        if producer is None or producer.op != "Split" or len(producer.outputs) < 2:
            return None
        return producer.outputs.index(data) if data in producer.outputs else None

    def _sequence_root(self, data: ValueId) -> ValueId:
        """The whole sequence a step's input was sliced from (through Split, Slice, Gather and
        reshapes); the value itself when it is not a slice."""
        current = data
        for _ in range(8):
            producer = self.graph.producer(current)
            if producer is None or producer.op not in _SLICING or not producer.inputs:
                break
            source = producer.inputs[0]
            if source is None or source in self.graph.static:
                break
            current = source
        return current

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
                cell.add_kernel(roots)
                self._operand_bias(producer, cell, TensorRole.INPUT_BIAS)
                self._orient(producer, cell)
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
                            if root.dtype.kind is DKind.FLOAT or root.quantized:
                                cell.add_bias(root, TensorRole.INPUT_BIAS)
                    continue
                if (
                    producer.op in ("Slice", "Gather", "Split", "Squeeze", "Unsqueeze", "Reshape")
                    and position > 0
                ):
                    continue
                stack.append((value, depth + 1))
        return sequence

    def _align(self, group: list[Node], step: set[Node], members: set[Node], cell: Cell) -> None:
        """One product per gate: order the kernels and biases as the recurrent products whose
        gate they feed (each gate's products meet before its activation), so that block k of
        every role is one gate."""
        if len(group) < 2:
            return
        gate_of: dict[Node, int] = {}
        for gate, product in enumerate(group):
            frontier = [product]
            while frontier and self.walk.tick():
                node = frontier.pop()
                for out in node.outputs:
                    for user, _ in self.graph.uses(out):
                        if not self.walk.tick():
                            return
                        if user in step and user not in gate_of:
                            gate_of[user] = gate
                            if user.op not in _ACTIVATIONS:
                                frontier.append(user)

        wanted = {*cell.kernel, *(bias for bias, _ in cell.biases)}
        readers: dict[Weight, list[Node]] = {}  # each weight's readers among the members, in order
        for node in sorted(members, key=lambda n: n.order):
            for root in {r for v in node.inputs for r in self.walk.weight_roots(v)} & wanted:
                readers.setdefault(root, []).append(node)

        def position(weight: Weight) -> int:
            for node in readers.get(weight, ()):
                reached, frontier = 0, deque([node])
                while frontier and reached < MAX_STEP_NODES and self.walk.tick():
                    current = frontier.popleft()
                    if current in gate_of:
                        return gate_of[current]
                    reached += 1
                    # No more than the nodes the walk may still visit (a value thousands read).
                    users = (u for out in current.outputs for u, _ in self.graph.uses(out))
                    frontier.extend(islice(users, MAX_STEP_NODES - reached))
            return len(group)

        cell.kernel.sort(key=position)
        cell.biases.sort(key=lambda item: position(item[0]))

    def _operand_bias(self, product: Node, cell: Cell, role: TensorRole) -> None:
        """A product's own bias operand (Gemm's C, TFLite FULLY_CONNECTED's third input)."""
        position = BIAS_INPUT.get(product.op)
        value = product.input(position) if position is not None else None
        for root in self.walk.weight_roots(value):
            if not cell.holds(root):
                cell.add_bias(root, role)
                cell.note_operand(root, self.graph.all_zero(root))

    def _first_step(
        self,
        first: list[Node],
        steps: set[Node],
        members: set[Node],
        projections: set[ValueId],
        cell: Cell,
    ) -> set[tuple[Node, int]]:
        """The step before the first use of the recurrent weights (its state is the initial
        one, often folded away): its nodes and constants belong to the recurrence too, and so
        does its input projection (a product with the kernel). Returns where its elementwise
        ops read constants that are no weight of the cell: the initial state (c0 zeros), or the
        state's product folded to constants by the converter (U·h0 + b with h0 = 0)."""
        cell_weights = {*cell.kernel, *cell.recurrent, *(b for b, _ in cell.biases)}
        states: set[tuple[Node, int]] = set()
        stack = [
            v
            for product in first
            for v in product.inputs
            if v is not None and v not in self.graph.static
        ][:1]
        budget = MAX_STEP_NODES
        seen: set[Node] = set()
        while stack and budget > 0 and self.walk.tick():
            vid = stack.pop()
            if vid in projections:
                continue
            producer = self.graph.producer(vid)
            if producer is None or producer in seen or producer in steps:
                continue
            seen.add(producer)
            applied = self.walk.weighted_inputs(producer)
            if applied is not None:
                if cell.kernel and all(cell.is_kernel(r) for r in applied[1]):
                    members.add(producer)  # the first step's x·W, with the kernel
                continue
            members.add(producer)
            budget -= 1
            if producer.op in _SHAPE_ONLY:
                continue  # a zero state sized from a tensor's shape: not its values
            for position, value in enumerate(producer.inputs):
                roots = self.walk.weight_roots(value) if producer.op in ("Add", "Mul") else []
                if roots and not set(roots) & cell_weights:
                    states.add((producer, position))
            stack.extend(v for v in producer.inputs if v is not None and v not in self.graph.static)
        return states

    def _pair(self, chains: list[Lowered]) -> list[Lowered]:
        """Two chains reading the same sequence with the same cell are the two directions of
        one bidirectional layer (the second in graph order runs backward): in graph order, each
        chain pairs with the next one alike, found by that likeness (no chain compared with
        every other)."""
        waiting: dict[tuple[object, ...], int] = {}
        partner_of: dict[int, int] = {}
        for index, chain in enumerate(chains):
            if chain.sequence is None or not chain.consistent:
                continue
            key = (chain.sequence, chain.kind, chain.units, chain.input_dim, chain.bias)
            earlier = waiting.pop(key, None)
            if earlier is None:
                waiting[key] = index
            else:
                partner_of[earlier] = index
        result: list[Lowered] = []
        seconds = set(partner_of.values())
        for i, first in enumerate(chains):
            if i in seconds:
                continue
            partner = partner_of.get(i)
            if partner is None:
                result.append(first)
                continue
            second = chains[partner]
            if first.reversed and not second.reversed:
                first, second = second, first
            backward = second.name.removeprefix("unrolled:")
            first = paired(
                first,
                second,
                "two chains read the same sequence: reported as one bidirectional layer, "
                + (
                    f"'{backward}' the backward direction (its steps read the sequence last "
                    "to first)"
                    if second.reversed
                    else "the later one in graph order as the backward direction"
                ),
            )
            result.append(first)
        return result


def _distinct(chains: list[Lowered]) -> list[Lowered]:
    """One chain per cell: a cell applying two recurrent weights per step (Keras GRU
    reset_before: U_z|U_r on h, U_h on r ⊙ h) is found from each; the first found, whose step
    holds the other weight's products too, is kept (a consistent one before one that is not).
    A chain whose recurrent weights a kept one holds all of is dropped; kept ones are looked up
    by their rarest shared weight (thousands of chains are not each compared with every kept
    one)."""
    recurrent = [_recurrent(chain) for chain in chains]
    claimed = [chain.claimed for chain in chains]
    holders: dict[Weight, list[int]] = {}  # weight -> the kept chains claiming it
    kept: set[int] = set()
    for index in sorted(range(len(chains)), key=lambda i: not chains[i].consistent):
        mine = recurrent[index]
        if mine:  # a kept chain holding all of them claims the rarest, as this one does
            rarest = min(mine, key=lambda weight: len(holders.get(weight, ())))
            dropped = any(mine <= recurrent[other] for other in holders.get(rarest, ()))
        else:  # any claimed weight shared is enough
            dropped = any(weight in holders for weight in claimed[index])
        if not dropped:
            kept.add(index)
            for weight in claimed[index]:
                holders.setdefault(weight, []).append(index)
    return [chain for index, chain in enumerate(chains) if index in kept]


def _recurrent(chain: Lowered) -> set[Weight]:
    return {weight for weight, role, _ in chain.tensors if role is TensorRole.RECURRENT_KERNEL}
