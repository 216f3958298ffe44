"""What a cell diagram shows, as data: the seed article's hand-drawn picture of a recurrent layer
(the input features, every unit's previous output, the bias "1", each wired to every unit, and
every unit's output coming back as its own previous output) with the weights each group of edges
carries, per gate and direction. `render/svg.py` draws it.

The counts come from the gate split of the stored tensors (`report/explain.py`), so the groups
of one layer always sum to the layer's parameters: per gate, input weights `u·d` (one edge from
each feature to each unit), recurrent weights `u·u` (from each previous output to each unit) and
one edge from a "1" to each unit per bias vector (`u`, or `2·u` where the file keeps an input and
a recurrent bias); a ConvLSTM edge is a whole kernel (`k` weights, one per kernel element). A
tensor not stacked per gate (peepholes, a projection) is a group of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from inspector.cells import CELLS, Convention
from inspector.model import CellKind, Direction, TensorRole
from inspector.report.explain import Explanation, GateShare, stored_gate_order

# Up to this many features or units every node is drawn; a wider layer keeps the first two and
# the last, with an ellipsis row that says how many it leaves out.
MAX_NODES = 6
STEPS = 3  # time steps of the unrolled picture


class EdgeKind(Enum):
    """Kinds of edge, by the stored tensor they come from."""

    INPUT = "input"  # the features x -> units: the kernel
    RECURRENT = "recurrent"  # the previous outputs p -> units: the recurrent kernel
    BIAS = "bias"  # a "1" -> units: a bias vector
    OTHER = "other"  # peepholes, a projection: not stacked per gate


_KIND_OF = {
    TensorRole.KERNEL: EdgeKind.INPUT,
    TensorRole.RECURRENT_KERNEL: EdgeKind.RECURRENT,
    TensorRole.BIAS: EdgeKind.BIAS,
    TensorRole.INPUT_BIAS: EdgeKind.BIAS,
    TensorRole.RECURRENT_BIAS: EdgeKind.BIAS,
}


@dataclass(frozen=True)
class EdgeGroup:
    """The edges of one kind into one gate of one direction, and the weights they carry.

    `sources` × `targets` connections of `per_edge` weights each make `count`, where the shapes
    say so (`wired`); otherwise the group is a count without a drawing."""

    kind: EdgeKind
    direction: Direction | None
    gate: str | None  # None for a tensor not split by gate
    count: int
    role: TensorRole | None = None  # which bias vector (input or recurrent) for a bias half
    tensors: tuple[str, ...] = ()  # the stored tensors the weights sit in, as the file names them
    sources: int | None = None  # features d, previous outputs r, or one "1"
    targets: int | None = None  # the units
    per_edge: int = 1  # weights one connection carries: 1, or a ConvLSTM kernel's elements

    @property
    def wired(self) -> bool:
        return self.sources is not None and self.targets is not None

    @property
    def edges(self) -> int | None:
        """Connections the group stands for (each drawn, or left out behind an ellipsis)."""
        return None if self.sources is None or self.targets is None else self.sources * self.targets


@dataclass(frozen=True)
class Panel:
    """One gate of one direction: the small multiple that shows its weights."""

    direction: Direction | None
    gate: str
    groups: tuple[EdgeGroup, ...]  # INPUT, RECURRENT, then one BIAS per bias vector
    kind: CellKind

    @property
    def count(self) -> int:
        return sum(group.count for group in self.groups)

    def of(self, kind: EdgeKind) -> tuple[EdgeGroup, ...]:
        return tuple(group for group in self.groups if group.kind is kind)

    @property
    def units(self) -> int | None:
        targets = {group.targets for group in self.groups}
        return targets.pop() if len(targets) == 1 else None

    def sources(self, kind: EdgeKind) -> int:
        return sum(group.sources or 0 for group in self.of(kind))

    @property
    def wired(self) -> bool:
        """Every group is a full set of connections into the same units."""
        return bool(self.groups) and self.units is not None and all(g.wired for g in self.groups)


@dataclass(frozen=True)
class CellDiagram:
    layer: str
    type: str
    kind: CellKind
    convention: Convention
    units: int | None
    input_dim: int | None
    directions: int
    gates: tuple[str, ...]  # in the file's order
    gate_names_known: bool
    groups: tuple[EdgeGroup, ...]
    params: int  # the layer's stored parameters: the groups sum to it
    kernel_size: tuple[int, ...] = ()  # ConvLSTM
    operator_inputs: bool = False  # an ONNX RNN/LSTM/GRU node: tensors are its inputs W, R, B
    selected_gate: str | None = None  # `explain --gate`: only this gate's panels
    # A Bidirectional whose backward layer is another cell: that cell, its units and gates.
    backward: tuple[CellKind, int | None, tuple[str, ...]] | None = None
    steps: int = STEPS

    @property
    def drawable(self) -> bool:
        """A cell of the table (SimpleRNN, LSTM, GRU, ConvLSTM); other blocks get a line."""
        return self.kind in CELLS

    @property
    def every_panel(self) -> tuple[Panel, ...]:
        """One per direction and gate, in the file's order."""
        keyed: dict[tuple[Direction | None, str], list[EdgeGroup]] = {}
        for group in self.groups:
            if group.gate is not None and group.kind is not EdgeKind.OTHER:
                keyed.setdefault((group.direction, group.gate), []).append(group)
        return tuple(
            Panel(direction, gate, tuple(groups), self.kind_of(direction))
            for (direction, gate), groups in keyed.items()
        )

    def kind_of(self, direction: Direction | None) -> CellKind:
        if direction is Direction.BACKWARD and self.backward is not None:
            return self.backward[0]
        return self.kind

    @property
    def panels(self) -> tuple[Panel, ...]:
        """The panels drawn: every one, or the selected gate's."""
        return tuple(p for p in self.every_panel if self.selected_gate in (None, p.gate))

    @property
    def unsplit(self) -> tuple[EdgeGroup, ...]:
        return tuple(group for group in self.groups if group.kind is EdgeKind.OTHER)

    @property
    def directions_drawn(self) -> tuple[Direction | None, ...]:
        return tuple(dict.fromkeys(panel.direction for panel in self.panels))

    def total(self, kind: EdgeKind, *directions: Direction | None) -> int:
        """Weights of one kind drawn (of every gate, or the selected one), in the directions
        named (every direction if none is)."""
        return sum(
            group.count
            for panel in self.panels
            for group in panel.of(kind)
            if not directions or group.direction in directions
        )

    @property
    def shown_params(self) -> int:
        """What the picture's edge labels sum to: the layer's count, or one gate's."""
        return sum(panel.count for panel in self.panels) + sum(g.count for g in self.unsplit)


def visible(nodes: int) -> tuple[int, ...]:
    """The 1-based nodes drawn of a column of `nodes`: all, or the first two and the last."""
    if nodes <= MAX_NODES:
        return tuple(range(1, nodes + 1))
    return (1, 2, nodes)


def kernel_elements(kind: CellKind, kernel_size: Sequence[int]) -> int:
    return math.prod(kernel_size) if kind is CellKind.CONV_LSTM and kernel_size else 1


def diagram(explanation: Explanation) -> CellDiagram:
    """The layer's edge groups from its gate split."""
    layer = explanation.layer
    units = layer.cell.units
    per_edge = kernel_elements(layer.cell.kind, layer.cell.kernel_size)
    back = layer.backward_cell
    groups = [
        group
        for share in explanation.gates
        for group in _share_groups(
            share,
            back.units if back is not None and share.direction is Direction.BACKWARD else units,
            per_edge,
            layer.input_dim,
        )
    ]
    groups += [
        EdgeGroup(
            EdgeKind.OTHER,
            item.item.direction,
            None,
            item.item.tensor.params,
            item.item.role,
            (item.item.tensor.name,),
        )
        for item in explanation.unsplit
    ]
    return CellDiagram(
        layer=layer.name,
        type=layer.type,
        kind=layer.cell.kind,
        convention=explanation.convention,
        units=units,
        input_dim=layer.input_dim,
        directions=layer.directions,
        gates=explanation.gate_order,
        gate_names_known=explanation.gate_names_known,
        groups=tuple(groups),
        params=layer.params,
        kernel_size=layer.cell.kernel_size,
        operator_inputs=explanation.convention is Convention.ONNX and not layer.lowered,
        selected_gate=explanation.selected_gate,
        backward=None
        if back is None or back == layer.cell
        else (back.kind, back.units, stored_gate_order(back, explanation.convention)),
    )


def _share_groups(
    share: GateShare, units: int | None, per_edge: int, width: int | None
) -> list[EdgeGroup]:
    """One group per kind of edge into the gate; a bias per vector it stores. Input edges are
    drawn only from as many features as the layer's input width (a damaged file's kernel may
    hold another number)."""
    out = []
    for role in (
        TensorRole.KERNEL,
        TensorRole.RECURRENT_KERNEL,
        TensorRole.BIAS,
        TensorRole.INPUT_BIAS,
        TensorRole.RECURRENT_BIAS,
    ):
        pieces = [piece for piece in share.slices if piece.role is role]
        if not pieces:
            continue
        kind = _KIND_OF[role]
        count = sum(piece.params for piece in pieces)
        tensors = tuple(dict.fromkeys(piece.tensor for piece in pieces))
        weight = 1 if kind is EdgeKind.BIAS else per_edge
        sources = _sources(count, units, weight) if kind is not EdgeKind.BIAS else None
        if kind is EdgeKind.INPUT and width is not None and sources != width:
            sources = None
        if kind is EdgeKind.BIAS and units and count % units == 0:
            sources = count // units  # one "1" per bias vector (Keras 1 may store two)
        out.append(
            EdgeGroup(
                kind,
                share.direction,
                share.gate,
                count,
                role if role is not TensorRole.BIAS else None,
                tensors,
                sources,
                units if sources is not None else None,
                weight,
            )
        )
    return out


def _sources(count: int, units: int | None, per_edge: int) -> int | None:
    """Nodes on the left: the count is sources × units × per_edge exactly, or it is not drawn."""
    if not units or count % (units * per_edge):
        return None
    return count // (units * per_edge)
