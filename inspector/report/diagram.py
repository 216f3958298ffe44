"""What a cell diagram shows, as data: the seed article's hand-drawn picture of a recurrent layer
(input nodes, units, every unit's previous output wired to every unit, biases) with the number of
parameters on each group of edges, per gate and direction. `render/svg.py` draws it.

The counts come from the gate split of the stored tensors (`report/explain.py`), so the groups
of one layer always sum to the layer's parameters: input weights `u·d`, recurrent weights `u·u`
and bias `u` (or `2·u`) per gate, plus any tensor not stacked per gate (peepholes, projection).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from inspector.model import CellKind, Direction, TensorRole
from inspector.report.explain import BIAS_ROLES, Explanation

# Up to this many input features and units, every connection is drawn as its own edge (as in the
# seed article); beyond it the layer is drawn as blocks with counts.
MAX_NODES = 6
STEPS = 3  # time steps of the unrolled picture


class EdgeKind(Enum):
    INPUT = "input"  # x_t -> units: the kernel
    RECURRENT = "recurrent"  # h_{t-1} -> units: the recurrent kernel
    BIAS = "bias"
    OTHER = "other"  # peepholes, a projection: not stacked per gate


_ROLES = {
    EdgeKind.INPUT: frozenset({TensorRole.KERNEL}),
    EdgeKind.RECURRENT: frozenset({TensorRole.RECURRENT_KERNEL}),
    EdgeKind.BIAS: BIAS_ROLES,
}


@dataclass(frozen=True)
class EdgeGroup:
    """The edges of one kind into one gate of one direction, and the weights they carry."""

    kind: EdgeKind
    direction: Direction | None
    gate: str | None  # None for a tensor not split by gate
    count: int
    name: str | None = None  # the stored tensor, for OTHER groups


@dataclass(frozen=True)
class CellDiagram:
    layer: str
    type: str
    kind: CellKind
    units: int | None
    input_dim: int | None
    directions: int
    gates: tuple[str, ...]
    groups: tuple[EdgeGroup, ...]
    params: int  # the layer's stored parameters: the groups sum to it
    steps: int = STEPS

    @property
    def as_nodes(self) -> bool:
        """Small enough to draw every connection (one direction, at most MAX_NODES each side)."""
        return (
            self.directions == 1
            and self.kind is not CellKind.CONV_LSTM
            and self.units is not None
            and self.input_dim is not None
            and self.units <= MAX_NODES
            and self.input_dim <= MAX_NODES
        )

    def total(self, kind: EdgeKind) -> int:
        return sum(group.count for group in self.groups if group.kind is kind)


def diagram(explanation: Explanation) -> CellDiagram:
    """The layer's edge groups from its gate split."""
    layer = explanation.layer
    groups = [
        EdgeGroup(kind, share.direction, share.gate, sum(s.params for s in share.of(roles)))
        for share in explanation.gates
        for kind, roles in _ROLES.items()
        if share.of(roles)
    ]
    groups += [
        EdgeGroup(
            EdgeKind.OTHER,
            item.item.direction,
            None,
            item.item.tensor.params,
            item.item.tensor.name,
        )
        for item in explanation.unsplit
    ]
    return CellDiagram(
        layer=layer.name,
        type=layer.type,
        kind=layer.cell.kind,
        units=layer.cell.units,
        input_dim=layer.input_dim,
        directions=layer.directions,
        gates=explanation.gate_order,
        groups=tuple(groups),
        params=layer.params,
    )
