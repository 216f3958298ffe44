"""Weights-only Keras files (`save_weights` HDF5, Keras 3 `.weights.h5`) store no configuration,
so the layer classes are unknown. Recurrent cells are recognised from their tensors alone:

- a recurrent kernel of shape `(u, g·u)` (or `(*k, f, g·f)` for ConvLSTM) gives the gate count g:
  1 SimpleRNN, 3 GRU, 4 LSTM;
- Keras 1 stores one tensor per gate (`W_i`, `U_i`, `b_i`, …): the gate letters give the kind;
- a bias of `g·u` is Keras's single bias, `(2, g·u)` a GRU with reset_after, `2·g·u` a CuDNN cell.

Every layer found this way says that its kind was inferred.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inspector.cells import KIND_BY_GATES
from inspector.formats.keras.layers import KerasBuild, assign_roles, direction_of, stored_gate_order
from inspector.model import (
    BiasConvention,
    CellConfig,
    CellKind,
    Direction,
    Layer,
    RecurrentLayer,
    RecurrentTensor,
    Tensor,
    TensorRole,
    WidthSource,
)

KIND_BY_GATE_LETTERS: Mapping[frozenset[str], CellKind] = {
    frozenset("icfo"): CellKind.LSTM,
    frozenset("zrh"): CellKind.GRU,
}


@dataclass(frozen=True)
class _Cell:
    path: str
    roles: tuple[RecurrentTensor, ...]
    kind: CellKind
    units: int
    gates: int


def build_inferred(groups: Mapping[str, Sequence[Tensor]]) -> KerasBuild:
    layers: list[Layer] = []
    recurrent: list[RecurrentLayer] = []
    for name, tensors in groups.items():
        cells = [cell for cell in (_cell(path, ts) for path, ts in _by_parent(tensors)) if cell]
        found = _layers_from_cells(name, cells)
        recurrent.extend(found)
        kind = found[0].type if len(found) == 1 else "?"
        layers.append(Layer(name, kind, tuple(tensors), trainable=None))
    warnings = (
        "weights-only file: no model config is stored, so layer classes are unknown and "
        "recurrent cell kinds are inferred from tensor shapes",
    )
    return KerasBuild(tuple(layers), tuple(recurrent), warnings)


def _by_parent(tensors: Sequence[Tensor]) -> list[tuple[str, list[Tensor]]]:
    """Tensors grouped by the path that holds them (one Keras cell each), in stored order."""
    parents: dict[str, list[Tensor]] = {}
    for tensor in tensors:
        parent = tensor.name.rsplit("/", 1)[0] if "/" in tensor.name else ""
        parents.setdefault(parent, []).append(tensor)
    return list(parents.items())


def _cell(path: str, tensors: Sequence[Tensor]) -> _Cell | None:
    roles = tuple(assign_roles(tensors, directions=1, positional=_is_cell_path(path)))
    recurrent = [r.tensor for r in roles if r.role is TensorRole.RECURRENT_KERNEL]
    if not recurrent or len(recurrent[0].shape) < 2:
        return None
    letters = stored_gate_order(roles)
    if letters:  # Keras 1: one (u, u) recurrent kernel per gate
        kind = KIND_BY_GATE_LETTERS.get(frozenset(letters))
        if kind is None:
            return None
        return _Cell(path, roles, kind, recurrent[0].shape[0], len(letters))
    if len(recurrent) > 1:
        return None
    units, columns = recurrent[0].shape[-2], recurrent[0].shape[-1]
    if units <= 0 or columns % units:
        return None
    gates = columns // units
    kind = KIND_BY_GATES.get(gates)
    if kind is None:
        return None
    if kind is CellKind.LSTM and len(recurrent[0].shape) > 2:
        kind = CellKind.CONV_LSTM
    return _Cell(path, roles, kind, units, gates)


def _is_cell_path(path: str) -> bool:
    """Keras v3 names variables by position; only recurrent cells live under `cell/vars`."""
    return "cell" in path.split("/") or "cells" in path.split("/")


def _layers_from_cells(name: str, cells: Sequence[_Cell]) -> list[RecurrentLayer]:
    directed = {direction_of(cell.path): cell for cell in cells}
    if len(cells) == 2 and set(directed) == {Direction.FORWARD, Direction.BACKWARD}:
        forward, backward = directed[Direction.FORWARD], directed[Direction.BACKWARD]
        tensors = tuple(
            RecurrentTensor(r.tensor, r.role, direction, r.gate)
            for cell, direction in ((forward, Direction.FORWARD), (backward, Direction.BACKWARD))
            for r in cell.roles
        )
        forward_config, backward_config = _config(forward), _config(backward)
        kinds = forward.kind.value
        if backward.kind is not forward.kind:
            kinds += f", {backward.kind.value}"
        return [
            RecurrentLayer(
                name=name,
                type=f"Bidirectional({kinds}) (inferred)",
                cell=forward_config,
                directions=2,
                tensors=tensors,
                backward_cell=backward_config if backward_config != forward_config else None,
                input_dim=_input_dim(forward),
                input_dim_source=WidthSource.TENSOR,
                notes=("layer class inferred from tensor shapes",),
            )
        ]
    return [
        RecurrentLayer(
            name=name if len(cells) == 1 else f"{name}/{cell.path.rsplit('/', 2)[-2]}",
            type=f"{cell.kind.value} (inferred)",
            cell=_config(cell),
            directions=1,
            tensors=cell.roles,
            input_dim=_input_dim(cell),
            input_dim_source=WidthSource.TENSOR,
            notes=("layer class inferred from tensor shapes",),
        )
        for cell in cells
    ]


def _config(cell: _Cell) -> CellConfig:
    biases = [r.tensor for r in cell.roles if r.role is TensorRole.BIAS]
    bias = BiasConvention.NONE
    reset_after: bool | None = None
    if biases:
        stored = sum(b.params for b in biases)
        bias = (
            BiasConvention.DOUBLE
            if stored == 2 * cell.gates * cell.units
            else (BiasConvention.SINGLE)
        )
        if cell.kind is CellKind.GRU:
            reset_after = bias is BiasConvention.DOUBLE
    recurrent = next(r.tensor for r in cell.roles if r.role is TensorRole.RECURRENT_KERNEL)
    kernel_size = recurrent.shape[:-2] if cell.kind is CellKind.CONV_LSTM else ()
    return CellConfig(
        kind=cell.kind,
        units=cell.units,
        use_bias=bool(biases),
        reset_after=reset_after,
        bias=bias,
        kernel_size=kernel_size,
        gate_order=stored_gate_order(cell.roles),
    )


def _input_dim(cell: _Cell) -> int | None:
    kernel = next((r.tensor for r in cell.roles if r.role is TensorRole.KERNEL), None)
    if kernel is None or len(kernel.shape) < 2:
        return None
    return kernel.shape[-2] if cell.kind is CellKind.CONV_LSTM else kernel.shape[0]
