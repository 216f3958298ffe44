"""One canonical form for recurrent weights, whatever convention stored them.

Every stored kernel, recurrent kernel and bias is cut into per-gate blocks (the slicing
`inspector.report.explain` derives from shapes) and each block is brought to one orientation:
matrices as (units, inputs) rows, the ONNX and PyTorch way, so a Keras `(d, g·u)` kernel block is
transposed; biases as (units,) vectors, a single Keras bias being the input bias with no
recurrent bias. Gates get one name across conventions (`canonical_gate`), so blocks of two
files pair by (direction, role, gate) however each file orders them.

Lowered recurrences (Loop bodies, unrolled MatMul chains) keep MatMul's `(inputs, outputs)`
orientation and do not say which block is which gate: their blocks carry positions only, and the
comparison tries the gate orders of the cell table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import permutations
from types import MappingProxyType

import numpy as np

from inspector.cells import CELLS, Convention, cell_gate_order, convention_of
from inspector.compare.result import BiasForm
from inspector.model import (
    CellConfig,
    CellKind,
    Direction,
    FileFormat,
    RecurrentLayer,
    RecurrentTensor,
    TensorRole,
)
from inspector.report.explain import MATRIX_ROLES, Index, explain_layer

# The same gate under another name (nn.LSTM docs: W_ii|W_if|W_ig|W_io, g the cell candidate
# Keras and ONNX call c; nn.GRU docs: W_ir|W_iz|W_in, n the candidate Keras and ONNX call h).
_RENAMED: Mapping[tuple[CellKind, Convention], Mapping[str, str]] = MappingProxyType(
    {
        (CellKind.LSTM, Convention.PYTORCH): MappingProxyType({"g": "c"}),
        (CellKind.GRU, Convention.PYTORCH): MappingProxyType({"n": "h"}),
    }
)
# The gate whose recurrent bias sits inside the reset product when reset_after is set (Keras
# GRU, ONNX linear_before_reset=1, PyTorch): there the input and recurrent biases cannot be
# traded for one another. Everywhere else only their sum acts.
RESET_GATED = MappingProxyType({CellKind.GRU: "h"})

# Canonical roles: a single bias vector acts as the input bias.
CANONICAL_ROLE: Mapping[TensorRole, TensorRole] = MappingProxyType(
    {
        TensorRole.KERNEL: TensorRole.KERNEL,
        TensorRole.RECURRENT_KERNEL: TensorRole.RECURRENT_KERNEL,
        TensorRole.BIAS: TensorRole.INPUT_BIAS,
        TensorRole.INPUT_BIAS: TensorRole.INPUT_BIAS,
        TensorRole.RECURRENT_BIAS: TensorRole.RECURRENT_BIAS,
    }
)


class Orientation:
    """How a layout stores its matrices (named for messages and JSON)."""

    ROWS = "rows"  # (g·u, inputs): ONNX, PyTorch
    COLUMNS = "columns"  # (inputs, g·u): Keras, MatMul in a lowered graph


@dataclass(frozen=True)
class Naming:
    """Which gate each stored block is: a cell kind, a convention and its gate order (the
    file's names)."""

    kind: CellKind
    convention: Convention
    order: tuple[str, ...]

    def gate(self, position: int) -> str:
        """The canonical name of the gate at `position`."""
        return canonical_gate(self.kind, self.convention, self.order[position])

    @property
    def canonical(self) -> tuple[str, ...]:
        return tuple(self.gate(position) for position in range(len(self.order)))


def canonical_gate(kind: CellKind, convention: Convention, name: str) -> str:
    return _RENAMED.get((kind, convention), {}).get(name, name)


@dataclass(frozen=True)
class Block:
    """One gate's part of one stored tensor and how to bring it to the canonical form."""

    key: str  # the stored tensor (as the value reader knows it)
    name: str  # its name for messages
    role: TensorRole  # canonical role
    stored_role: TensorRole  # the file's role (a Keras single bias is BIAS)
    direction: int  # 0 forward (or the only direction), 1 backward
    position: int  # the gate's position in the stored order
    index: Index
    transpose: bool
    size: int  # elements

    def cut(self, array: np.ndarray) -> np.ndarray:
        block = array[tuple(_numpy_index(self.index, array.ndim))]
        return block.T if self.transpose else block

    def stored_index(self, local: tuple[int, ...]) -> tuple[int, ...]:
        """Where an element of the canonical block sits in the stored tensor."""
        inner = list(reversed(local) if self.transpose else local)
        out: list[int] = []
        for axis in self.index or (None,) * len(inner):
            if isinstance(axis, int):
                out.append(axis)
            elif isinstance(axis, tuple):
                out.append(axis[0] + inner.pop(0))
            else:
                out.append(inner.pop(0))
        return (*out, *inner)


def _numpy_index(index: Index, ndim: int) -> list[int | slice]:
    out: list[int | slice] = []
    for axis in index:
        if isinstance(axis, int):
            out.append(axis)
        elif isinstance(axis, tuple):
            out.append(slice(axis[0], axis[1]))
        else:
            out.append(slice(None))
    return out + [slice(None)] * (ndim - len(out))


@dataclass(frozen=True)
class CellLayout:
    """A recurrent layer's weights as canonical blocks."""

    layer: RecurrentLayer
    convention: Convention  # whose layout the file follows
    orientation: str
    namings: tuple[Naming | None, ...]  # per direction; None: the file does not name the gates
    blocks: tuple[Block, ...]
    unsplit: tuple[RecurrentTensor, ...]  # projections, peepholes, shapes that do not split

    @property
    def naming(self) -> Naming | None:
        return self.namings[0]

    @property
    def layout_name(self) -> str:
        """Whose matrix layout: keras, onnx, pytorch, tflite, or for a lowered graph matmul
        (x @ W) or gemm (Gemm transB=1 over (g·u, inputs) matrices)."""
        if self.layer.lowered and self.convention is not Convention.TFLITE:
            return "gemm" if self.layer.gates_last is False else "matmul"
        return self.convention.value

    @property
    def stacked(self) -> bool:
        """Directions share one tensor along a leading axis (ONNX W/R/B)."""
        return self.convention is Convention.ONNX and not self.layer.lowered

    @property
    def bias_form(self) -> BiasForm | None:
        """None: no recurrent bias is stored (a single bias, or none)."""
        recurrent = [b for b in self.blocks if b.role is TensorRole.RECURRENT_BIAS]
        if not recurrent:
            return None
        if self.stacked:
            return BiasForm.STACKED
        inputs = {b.key for b in self.blocks if b.role is TensorRole.INPUT_BIAS}
        return BiasForm.ONE_TENSOR if recurrent[0].key in inputs else BiasForm.SEPARATE

    def elements(self, *roles: TensorRole) -> int:
        return sum(b.size for b in self.blocks if b.role in roles)

    def cell(self, direction: int) -> CellConfig:
        backward = self.layer.backward_cell
        return backward if direction == 1 and backward is not None else self.layer.cell

    def candidates(self, direction: int, preferred: Convention) -> tuple[Naming, ...]:
        """The file's own naming, or for a lowered layer every gate order of the cell table,
        `preferred`'s first, then any other order of the gates (a graph computing the gates
        one product each lists them in whatever order its ops run)."""
        own = self.namings[direction]
        if own is not None and not self.layer.lowered:
            return (own,)
        kind = self.cell(direction).kind
        orders = CELLS[kind].gate_order
        found: dict[tuple[str, ...], Naming] = {}
        for convention in sorted(orders, key=lambda c: c is not preferred):
            naming = Naming(kind, convention, orders[convention])
            found.setdefault(naming.canonical, naming)
        for order in permutations(orders[Convention.KERAS]):
            naming = Naming(kind, Convention.KERAS, order)
            found.setdefault(naming.canonical, naming)
        return tuple(found.values())


def layout_of(layer: RecurrentLayer, file_format: FileFormat) -> CellLayout:
    convention = convention_of(file_format)
    # A lowered graph multiplies x @ W: its weights are (inputs, outputs), Keras's orientation;
    # a single-step cell's Gemm with transB=1 keeps PyTorch's (outputs, inputs), and so does
    # TFLite's FULLY_CONNECTED, lowered or not (its own layout slices it).
    slicing = convention
    if layer.lowered and convention is not Convention.TFLITE:
        slicing = Convention.PYTORCH if layer.gates_last is False else Convention.KERAS
    cells = [layer.cell] if layer.backward_cell is None else [layer.cell, layer.backward_cell]
    orders = [_order(cell, convention) for cell in cells]
    namings = tuple(
        Naming(cell.kind, convention, order) if order else None
        for cell, order in zip(cells, orders, strict=True)
    )
    explanation = explain_layer(layer, slicing)
    by_name = {item.tensor.name: item for item in layer.tensors}
    blocks: list[Block] = []
    for share in explanation.gates:
        direction = _direction_index(share.direction, layer)
        position = _position(share.gate, orders[min(direction, len(orders) - 1)])
        for piece in share.slices:
            item = by_name[piece.tensor]
            blocks.append(
                Block(
                    key=item.tensor.key,
                    name=item.tensor.name,
                    role=CANONICAL_ROLE[piece.role],
                    stored_role=piece.role,
                    direction=direction,
                    position=position,
                    index=piece.index,
                    transpose=_transposed(piece.role, piece.index, slicing, piece.shape),
                    size=piece.params,
                )
            )
    orientation = Orientation.COLUMNS if slicing is Convention.KERAS else Orientation.ROWS
    return CellLayout(
        layer=layer,
        convention=convention,
        orientation=orientation,
        namings=namings * (layer.directions if len(namings) == 1 else 1),
        blocks=tuple(blocks),
        unsplit=tuple(u.item for u in explanation.unsplit),
    )


def _order(cell: CellConfig, convention: Convention) -> tuple[str, ...]:
    """The stored gate order; a one-gate cell needs no naming to be known."""
    order = cell_gate_order(cell, convention)
    if not order and CELLS[cell.kind].gates == 1:
        return CELLS[cell.kind].gate_order[Convention.KERAS]
    return order


def _position(gate: str, order: tuple[str, ...]) -> int:
    if gate in order:
        return order.index(gate)
    return int(gate.lstrip("#")) - 1  # lowered: blocks are numbered #1, #2, ...


def _direction_index(direction: Direction | None, layer: RecurrentLayer) -> int:
    return 1 if layer.directions == 2 and direction is Direction.BACKWARD else 0


def _transposed(
    role: TensorRole, index: Index, slicing: Convention, shape: tuple[int, ...]
) -> bool:
    """Matrices become (units, inputs): transpose a block whose gate axis is its last one (Keras,
    MatMul); a Keras 1 per-gate tensor (no gate axis) is (inputs, units)."""
    if role not in MATRIX_ROLES or len(shape) != 2:
        return False
    kept = [axis for axis in index if not isinstance(axis, int)]
    gate_axes = [position for position, axis in enumerate(kept) if isinstance(axis, tuple)]
    if not gate_axes:
        return slicing is Convention.KERAS
    return gate_axes[0] == len(kept) - 1
