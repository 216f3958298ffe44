"""Break a recurrent layer into its gates, from tensor shapes alone (no weight is read).

Each stored tensor of a recurrent layer is a stack of per-gate blocks of `units` rows or
columns, in the file's gate order. Where they sit depends on whose layout the file follows:

- Keras: kernel `(d, g·u)`, recurrent kernel `(u, g·u)` and ConvLSTM kernels
  `(*kernel_size, d, g·u)` stack the gates along the last axis; the bias is `(g·u,)`, or
  `(2, g·u)` for GRU with reset_after (row 0 input bias, row 1 recurrent bias), or `(2·g·u,)`
  for CuDNN layers (input bias, then recurrent bias). Keras 1 stored one tensor per gate.
- ONNX (operator spec, LSTM/GRU/RNN): W `[dirs, g·h, d]` and R `[dirs, g·h, h]` stack the gates
  along axis 1, B `[dirs, 2·g·h]` holds Wb then Rb. A reader may hand these over already split per
  direction or per half; the leading direction axis is then simply absent.
- PyTorch: weight_ih `(g·h, d)`, weight_hh `(g·h, h)` stack along the first axis.

Every slice is a disjoint part of one tensor, so the gates' counts sum to the layer's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from inspector.cells import CELLS, Convention, cell_gate_order, convention_of
from inspector.counts import plausible_width
from inspector.errors import UsageError
from inspector.model import (
    CellConfig,
    CellKind,
    Direction,
    Layer,
    Model,
    RecurrentLayer,
    RecurrentTensor,
    TensorRole,
)
from inspector.report.reconcile import Reconciliation, reconcile

# One entry per axis: a fixed index, a [start, stop) range, or None for the whole axis.
Index = tuple[int | tuple[int, int] | None, ...]


@dataclass(frozen=True)
class Layout:
    matrix_gate_axis: int  # where a kernel / recurrent kernel stacks its g·u gate blocks
    direction_axis: bool  # tensors may keep a leading [num_directions] axis


LAYOUTS: Mapping[Convention, Layout] = MappingProxyType(
    {
        Convention.KERAS: Layout(matrix_gate_axis=-1, direction_axis=False),
        Convention.ONNX: Layout(matrix_gate_axis=-2, direction_axis=True),
        Convention.PYTORCH: Layout(matrix_gate_axis=-2, direction_axis=False),
        # FULLY_CONNECTED weights are [out, in]; fused LSTMs store one tensor per gate.
        Convention.TFLITE: Layout(matrix_gate_axis=-2, direction_axis=False),
    }
)

# Rank of each role once any direction axis is gone (ConvLSTM kernels add their kernel rank).
MATRIX_ROLES = frozenset({TensorRole.KERNEL, TensorRole.RECURRENT_KERNEL})
BIAS_ROLES = frozenset({TensorRole.BIAS, TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS})
_BIAS_HALVES = (TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS)
_DIRECTIONS = (Direction.FORWARD, Direction.BACKWARD)


@dataclass(frozen=True)
class Slice:
    """The part of one stored tensor that belongs to one gate."""

    tensor: str
    role: TensorRole
    index: Index
    shape: tuple[int, ...]

    @property
    def params(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class GateShare:
    direction: Direction | None
    gate: str
    slices: tuple[Slice, ...]

    @property
    def params(self) -> int:
        return sum(s.params for s in self.slices)

    def of(self, roles: frozenset[TensorRole]) -> tuple[Slice, ...]:
        return tuple(s for s in self.slices if s.role in roles)


@dataclass(frozen=True)
class Unsplit:
    """A tensor that is not stacked per gate (peepholes, projection) or whose shape does not
    split into the gates; counted as a whole so the sum still holds."""

    item: RecurrentTensor
    reason: str


@dataclass(frozen=True)
class Explanation:
    layer: RecurrentLayer
    convention: Convention
    gates: tuple[GateShare, ...]
    unsplit: tuple[Unsplit, ...]
    reconciliation: Reconciliation | None = None  # how the layer sits in its row
    selected_gate: str | None = None  # `explain --gate`: the one gate to show, as stored

    @property
    def params(self) -> int:
        return sum(g.params for g in self.gates) + sum(u.item.tensor.params for u in self.unsplit)

    @property
    def shown(self) -> tuple[GateShare, ...]:
        """The gates to show: every one, or the selected gate's (per direction)."""
        if self.selected_gate is None:
            return self.gates
        return tuple(share for share in self.gates if share.gate == self.selected_gate)

    @property
    def gate_order(self) -> tuple[str, ...]:
        return stored_gate_order(self.layer.cell, self.convention)

    @property
    def gate_names_known(self) -> bool:
        if self.layer.cell.kind not in CELLS:
            return False
        return bool(cell_gate_order(self.layer.cell, self.convention)) or (
            CELLS[self.layer.cell.kind].gates == 1
        )


@dataclass(frozen=True)
class PlainExplanation:
    """A layer without recurrence (Dense, Embedding, a convolution, ...): its count is the sum of
    its stored tensors, which the renderer relates to the layer type's closed form."""

    layer: Layer
    convention: Convention

    @property
    def params(self) -> int:
        return self.layer.params


def explain_model(
    model: Model, layer_name: str | None = None
) -> tuple[Explanation | PlainExplanation, ...]:
    """Every recurrent layer, or the one named (a non-recurrent layer too).

    Raises UsageError when no layer has that name."""
    layers = model.recurrent_layers
    convention = convention_of(model.format)
    if layer_name is not None:
        chosen = [layer for layer in layers if layer.name == layer_name]
        if not chosen:
            plain = [layer for layer in model.layers if layer.name == layer_name]
            if plain:
                return (PlainExplanation(plain[0], convention),)
            raise UsageError(_unknown_layer(model, layer_name))
        layers = tuple(chosen)
    reconciled = {id(item.layer): item for item in reconcile(model)}
    return tuple(
        replace(explain_layer(layer, convention), reconciliation=reconciled.get(id(layer)))
        for layer in layers
    )


# Letters that name the same gate in different frameworks' orders (`--gate c` finds PyTorch's g).
_SAME_GATE: Mapping[CellKind, tuple[frozenset[str], ...]] = MappingProxyType(
    {
        CellKind.LSTM: (frozenset({"c", "g"}),),
        CellKind.CONV_LSTM: (frozenset({"c", "g"}),),
        CellKind.GRU: (frozenset({"h", "n"}),),
    }
)


def select_gate(
    explanations: Sequence[Explanation | PlainExplanation], gate: str
) -> tuple[Explanation, ...]:
    """Each layer with only `gate` shown, as the file names it (LSTM i, f, c, o in Keras order,
    i, o, f, c in ONNX's, i, f, g, o in PyTorch's; GRU z, r, h or PyTorch's r, z, n). A letter
    of another framework's order for the same gate (c for g, h for n) and a block number of a
    lowered recurrence (`2` for `#2`) are taken too.

    Raises UsageError when a layer has no such gate or is not recurrent."""
    out = []
    for explanation in explanations:
        if isinstance(explanation, PlainExplanation):
            raise UsageError(
                f"--gate: '{explanation.layer.name}' ({explanation.layer.type}) is not "
                "recurrent and has no gates"
            )
        found = _gate_named(explanation, gate.strip())
        if found is None:
            order = ", ".join(_every_gate(explanation)) or "none"
            raise UsageError(
                f"--gate {gate}: {explanation.layer.name} ({explanation.layer.type}) has no such "
                f"gate; its gates in {explanation.convention.value} order: {order}"
                + ("" if len(explanations) == 1 else "; choose the layer with --layer")
            )
        out.append(replace(explanation, selected_gate=found))
    return tuple(out)


def _gate_named(explanation: Explanation, name: str) -> str | None:
    order = _every_gate(explanation)
    if name in order:
        return name
    if f"#{name}" in order:
        return f"#{name}"
    for same in _SAME_GATE.get(explanation.layer.cell.kind, ()):
        if name in same:
            matches = [gate for gate in order if gate in same]
            return matches[0] if len(matches) == 1 else None
    return None


def _every_gate(explanation: Explanation) -> tuple[str, ...]:
    """The layer's gates in stored order, a backward layer's own too (Bidirectional with a
    `backward_layer` of another cell)."""
    return tuple(dict.fromkeys(share.gate for share in explanation.gates)) or (
        explanation.gate_order
    )


def _unknown_layer(model: Model, name: str) -> str:
    recurrent = ", ".join(layer.name for layer in model.recurrent_layers) or "none"
    return f"no layer named '{name}' in {model.path}; recurrent layers: {recurrent}"


def explain_layer(layer: RecurrentLayer, convention: Convention) -> Explanation:
    layer = _plausible(layer)
    if layer.cell.kind not in CELLS:  # a block the cell table does not describe (Mamba, RWKV)
        reason = f"a {layer.cell.kind.value} block is not stacked per gate"
        return Explanation(layer, convention, (), tuple(Unsplit(t, reason) for t in layer.tensors))
    layout = LAYOUTS[convention]
    if layer.gates_last is not None:  # the layer says where its gate blocks are
        layout = replace(layout, matrix_gate_axis=-1 if layer.gates_last else -2)
    shares: dict[tuple[Direction | None, str], list[Slice]] = {}
    unsplit: list[Unsplit] = []
    runs = _runs(layer, convention, layout)
    for item in layer.tensors:
        for direction, prefix, shape in _per_direction(item, layer, layout):
            cell = _cell(layer, direction)
            run = runs.get(id(item))
            pieces = (
                _run_slices(item, run, layout, prefix, shape, cell.units)
                if run is not None
                else _split(item, cell, convention, layout, prefix, shape)
            )
            if isinstance(pieces, str):
                unsplit.append(Unsplit(item, pieces))
                continue
            for gate, piece in pieces:
                shares.setdefault((direction, gate), []).append(piece)
    gates = tuple(
        GateShare(direction, gate, tuple(slices)) for (direction, gate), slices in shares.items()
    )
    return Explanation(layer, convention, gates, tuple(unsplit))


def _runs(
    layer: RecurrentLayer, convention: Convention, layout: Layout
) -> dict[int, tuple[str, ...]]:
    """Where a layer stores one role in several tensors, each a run of whole gate blocks (a
    lowered graph's product per gate, or per pair of gates: Keras GRU reset_before applies
    U_z|U_r and U_h apart), which gates each tensor holds: the runs in stored order cover the
    gates in order. Tensors that name their gate (`RecurrentTensor.gate`) are not runs."""
    groups: dict[tuple[Direction | None, TensorRole], list[RecurrentTensor]] = {}
    for item in layer.tensors:
        if item.gate is None and item.role in MATRIX_ROLES | BIAS_ROLES:
            groups.setdefault((item.direction, item.role), []).append(item)
    found: dict[int, tuple[str, ...]] = {}
    for (direction, role), items in groups.items():
        cell = _cell(layer, direction)
        if len(items) < 2 or not cell.units:
            continue
        gates = stored_gate_order(cell, convention)
        axis = layout.matrix_gate_axis if role in MATRIX_ROLES else -1
        counts = []
        for item in items:
            shape = item.tensor.shape
            size = shape[axis] if shape else 0
            counts.append(size // cell.units if size and size % cell.units == 0 else 0)
        if 0 in counts or sum(counts) != len(gates):
            continue
        start = 0
        for item, taken in zip(items, counts, strict=True):
            found[id(item)] = gates[start : start + taken]
            start += taken
    return found


def _run_slices(
    item: RecurrentTensor,
    run: tuple[str, ...],
    layout: Layout,
    prefix: Index,
    shape: tuple[int, ...],
    units: int | None,
) -> list[tuple[str, Slice]] | str:
    axis = (layout.matrix_gate_axis if item.role in MATRIX_ROLES else -1) % len(shape)
    if units is None or shape[axis] != len(run) * units:
        return _no_split(shape, len(run), units)
    return _slices(item.tensor.name, item.role, run, prefix, shape, axis)


def stored_gate_order(cell: CellConfig, convention: Convention) -> tuple[str, ...]:
    """The file's gate order; where the file does not say (an exporter lowered the recurrence
    into plain ops), the blocks are numbered in stored order: #1, #2, ..."""
    if cell.kind not in CELLS:
        return ()
    order = cell_gate_order(cell, convention)
    if order:
        return order
    gates = CELLS[cell.kind].gates
    return CELLS[cell.kind].gate_order[Convention.KERAS] if gates == 1 else _numbered(gates)


def _numbered(gates: int) -> tuple[str, ...]:
    return tuple(f"#{position + 1}" for position in range(gates))


def _plausible(layer: RecurrentLayer) -> RecurrentLayer:
    """The layer with each width no layer can have (a crafted 4,000-digit `units` or kernel
    size) unknown: the split, the diagram and the terms are derived from the widths an
    explanation holds."""

    def kept(cell: CellConfig) -> CellConfig:
        units = plausible_width(cell.units)
        kernel = cell.kernel_size
        if not all(map(plausible_width, kernel)):
            kernel = ()  # unknown: no per-edge kernel elements
        if (units, kernel) == (cell.units, cell.kernel_size):
            return cell
        return replace(cell, units=units, kernel_size=kernel)

    backward = layer.backward_cell and kept(layer.backward_cell)
    cell, width = kept(layer.cell), plausible_width(layer.input_dim)
    if (cell, backward, width) == (layer.cell, layer.backward_cell, layer.input_dim):
        return layer
    return replace(layer, cell=cell, backward_cell=backward, input_dim=width)


def _cell(layer: RecurrentLayer, direction: Direction | None) -> CellConfig:
    if direction is Direction.BACKWARD and layer.backward_cell is not None:
        return layer.backward_cell
    return layer.cell


def _per_direction(
    item: RecurrentTensor, layer: RecurrentLayer, layout: Layout
) -> list[tuple[Direction | None, Index, tuple[int, ...]]]:
    """Peel a leading [num_directions] axis (ONNX W, R, B) off a tensor that still has one."""
    shape = item.tensor.shape
    base_rank = 2 if item.role in MATRIX_ROLES else 1
    has_axis = (
        layout.direction_axis
        and item.role in MATRIX_ROLES | BIAS_ROLES
        and len(shape) == base_rank + 1
        and shape[0] in (1, layer.directions)
    )
    if not has_axis:
        return [(item.direction, (), shape)]
    if shape[0] == 1:
        return [(item.direction, (0,), shape[1:])]
    return [(_DIRECTIONS[i], (i,), shape[1:]) for i in range(shape[0])]


def _split(
    item: RecurrentTensor,
    cell: CellConfig,
    convention: Convention,
    layout: Layout,
    prefix: Index,
    shape: tuple[int, ...],
) -> list[tuple[str, Slice]] | str:
    """The tensor's gate slices, or why it does not split."""
    name = item.tensor.name
    if item.gate is not None:  # Keras 1: the file already stores one tensor per gate
        whole: Index = prefix + (None,) * len(shape)
        return [(item.gate, Slice(name, item.role, whole, shape))]
    if item.role not in MATRIX_ROLES | BIAS_ROLES:
        return f"{item.role.value} weights are not stacked per gate"
    gates = stored_gate_order(cell, convention)
    if len(gates) != CELLS[cell.kind].gates or not shape:
        return f"the gate order {','.join(gates)} does not match a {cell.kind.value} cell"
    if item.role in MATRIX_ROLES:
        axis = _gate_axis(shape, layout.matrix_gate_axis, len(gates), cell.units)
        if axis is None:
            return _no_split(shape, len(gates), cell.units)
        return _slices(name, item.role, gates, prefix, shape, axis)
    return _split_bias(item, gates, prefix, shape, cell.units)


def _gate_axis(shape: tuple[int, ...], preferred: int, gates: int, units: int | None) -> int | None:
    """The layout's axis if it holds g·u; otherwise the one axis that does (a lowered graph
    may store a transposed kernel)."""

    def holds(size: int) -> bool:
        return size % gates == 0 and (units is None or size == gates * units)

    axis = preferred % len(shape)
    if holds(shape[axis]):
        return axis
    others = [i for i, size in enumerate(shape) if units is not None and size == gates * units]
    return others[0] if len(others) == 1 else None


def _split_bias(
    item: RecurrentTensor,
    gates: tuple[str, ...],
    prefix: Index,
    shape: tuple[int, ...],
    units: int | None,
) -> list[tuple[str, Slice]] | str:
    name, g = item.tensor.name, len(gates)
    width = g * units if units is not None else shape[-1]
    if width == 0 or shape[-1] % width or shape[-1] % g:
        return _no_split(shape, g, units)
    rows = math.prod(shape) // width
    if len(shape) == 2 and shape[0] in (1, 2) and shape[1] == width:
        # Keras GRU reset_after: (2, 3u), row 0 the input bias, row 1 the recurrent bias.
        halves = [((*prefix, row), shape[1:]) for row in range(shape[0])]
    elif len(shape) == 1 and rows in (1, 2):
        # One vector, or CuDNN / ONNX B holding the input bias then the recurrent bias.
        halves = [((*prefix, (row * width, (row + 1) * width)), (width,)) for row in range(rows)]
    else:
        return _no_split(shape, g, units)
    out: list[tuple[str, Slice]] = []
    for row, (index, half_shape) in enumerate(halves):
        role = item.role if len(halves) == 1 else _BIAS_HALVES[row]
        out += _slices(name, role, gates, index, half_shape, len(half_shape) - 1)
    return out


def _slices(
    name: str,
    role: TensorRole,
    gates: Sequence[str],
    prefix: Index,
    shape: tuple[int, ...],
    axis: int,
) -> list[tuple[str, Slice]]:
    """Cut `shape` into len(gates) equal blocks along `axis`; `prefix` indexes outer axes and
    may end in a range on the split axis (a bias half), which the blocks then subdivide."""
    block = shape[axis] // len(gates)
    offset = 0
    if prefix and isinstance(prefix[-1], tuple) and len(shape) == 1:
        offset, prefix = prefix[-1][0], prefix[:-1]
    out = []
    for position, gate in enumerate(gates):
        start = offset + position * block
        index: Index = prefix + tuple(
            (start, start + block) if i == axis else None for i in range(len(shape))
        )
        part = tuple(block if i == axis else size for i, size in enumerate(shape))
        out.append((gate, Slice(name, role, index, part)))
    return out


def _no_split(shape: tuple[int, ...], gates: int, units: int | None) -> str:
    if units is None:
        return f"shape {list(shape)} does not split into {gates} gates"
    return (
        f"shape {list(shape)} has no axis of {gates}·{units} = {gates * units}; not split by gate"
    )
