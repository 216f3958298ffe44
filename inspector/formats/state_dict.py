"""A PyTorch state dict (parameter name -> tensor) turned into layers and recurrent layers, by
PyTorch's parameter names alone: a state dict records no module classes. Shared by every reader
of a state dict (safetensors, torch.save checkpoints).

Recurrent modules are recognised by the names nn.RNN / nn.LSTM / nn.GRU give their parameters
(torch/nn/modules/rnn.py, `RNNBase.__init__`): `weight_ih_l{k}`, `weight_hh_l{k}`,
`bias_ih_l{k}`, `bias_hh_l{k}`, `weight_hr_l{k}` for projections (proj_size), `_reverse` for the
backward direction; nn.*Cell: the same names without `_l{k}`. The cell kind follows from the
shapes: weight_hh holds g·h rows for g gates (1, 3 or 4). Other tensors are grouped by module
(`fc.weight`, `fc.bias` -> `fc`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from inspector.cells import KIND_BY_GATES
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

_PARAMETER = re.compile(
    r"^(?:(?P<module>.*)\.)?(?P<param>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
    r"(?:_l(?P<layer>\d+))?(?P<reverse>_reverse)?$"
)
_ROLES: Mapping[str, TensorRole] = MappingProxyType(
    {
        "weight_ih": TensorRole.KERNEL,
        "weight_hh": TensorRole.RECURRENT_KERNEL,
        "bias_ih": TensorRole.INPUT_BIAS,
        "bias_hh": TensorRole.RECURRENT_BIAS,
        "weight_hr": TensorRole.PROJECTION,
    }
)
_TYPE = {CellKind.SIMPLE_RNN: "RNN", CellKind.LSTM: "LSTM", CellKind.GRU: "GRU"}


def group(tensors: Sequence[Tensor]) -> tuple[tuple[Layer, ...], tuple[RecurrentLayer, ...]]:
    """Every tensor in one layer row, in the state dict's order (a row where its first tensor
    is; the order modules were registered, `emb, lstm, fc`, never alphabetical): recurrent
    modules (one row per module and layer index, `lstm.l0`) and the other tensors grouped by
    module. Each tensor's `name` is its state-dict key."""
    position = {id(tensor): index for index, tensor in enumerate(tensors)}
    recurrent, rows = _recurrent_layers(tensors)
    claimed = {id(t.tensor) for layer in recurrent for t in layer.tensors}
    layers = [
        Layer(name, _type(members), tuple(members))
        for name, members in _modules(t for t in tensors if id(t) not in claimed)
    ]
    layers += rows
    layers.sort(key=lambda layer: min(position[id(t)] for t in layer.tensors))
    return tuple(layers), tuple(recurrent)


# --- recurrent modules ------------------------------------------------------------------


@dataclass
class _Group:
    module: str
    layer: int | None
    tensors: list[RecurrentTensor]


def _recurrent_layers(tensors: Sequence[Tensor]) -> tuple[list[RecurrentLayer], list[Layer]]:
    position = {id(tensor): index for index, tensor in enumerate(tensors)}
    groups: dict[tuple[str, int | None], _Group] = {}
    for tensor in tensors:
        found = _PARAMETER.match(tensor.name)
        if found is None:
            continue
        layer = int(found["layer"]) if found["layer"] is not None else None
        direction = Direction.BACKWARD if found["reverse"] else Direction.FORWARD
        module = found["module"] or ""
        item = groups.setdefault((module, layer), _Group(module, layer, []))
        item.tensors.append(RecurrentTensor(tensor, _ROLES[found["param"]], direction))
    layers: list[RecurrentLayer] = []
    rows: list[Layer] = []
    first = {key: min(position[id(t.tensor)] for t in item.tensors) for key, item in groups.items()}
    for key in sorted(groups, key=lambda k: (first[k], -1 if k[1] is None else k[1])):
        built = _layer(groups[key])
        if built is not None:
            layers.append(built)
            rows.append(Layer(built.name, built.type, tuple(t.tensor for t in built.tensors)))
    return layers, rows


def _layer(group: _Group) -> RecurrentLayer | None:
    """A recurrent layer from one module's parameters of one layer index, or None when the
    shapes do not make a recurrent cell (the tensors are then reported as plain tensors)."""
    by_role = {(t.role, t.direction): t.tensor for t in group.tensors}
    forward = Direction.FORWARD
    w_ih = by_role.get((TensorRole.KERNEL, forward))
    w_hh = by_role.get((TensorRole.RECURRENT_KERNEL, forward))
    w_hr = by_role.get((TensorRole.PROJECTION, forward))
    if w_ih is None or w_hh is None or len(w_ih.shape) != 2 or len(w_hh.shape) != 2:
        return None
    # With proj_size, weight_hr is (proj, hidden) and weight_hh (g·hidden, proj).
    hidden = w_hr.shape[1] if w_hr is not None and len(w_hr.shape) == 2 else w_hh.shape[1]
    if hidden == 0 or w_hh.shape[0] % hidden:
        return None
    kind = KIND_BY_GATES.get(w_hh.shape[0] // hidden)
    if kind is None:
        return None
    directions = 2 if any(t.direction is Direction.BACKWARD for t in group.tensors) else 1
    name = group.module or "cell"
    if group.layer is not None:
        name = f"{name}.l{group.layer}" if group.module else f"l{group.layer}"
    notes = []
    projection = None
    if w_hr is not None and len(w_hr.shape) == 2:
        projection = w_hr.shape[0]
        notes.append(
            f"proj_size={projection}: the hidden state is projected to {projection} "
            "values (weight_hr), the recurrent weights act on the projection"
        )
    has_bias = any(t.role is TensorRole.INPUT_BIAS for t in group.tensors)
    order = {TensorRole.KERNEL: 0, TensorRole.RECURRENT_KERNEL: 1, TensorRole.INPUT_BIAS: 2}
    tensors = sorted(
        group.tensors,
        key=lambda t: (t.direction is Direction.BACKWARD, order.get(t.role, 3), t.tensor.name),
    )
    return RecurrentLayer(
        name=name,
        type=_TYPE[kind],
        cell=CellConfig(
            kind=kind,
            units=hidden,
            use_bias=has_bias,
            # PyTorch's GRU applies the reset gate after the recurrent product (nn.GRU docs:
            # n = tanh(W_in x + b_in + r * (W_hn h + b_hn))): Keras reset_after=True.
            reset_after=True if kind is CellKind.GRU else None,
            bias=BiasConvention.DOUBLE if has_bias else BiasConvention.NONE,
            projection=projection,
        ),
        directions=directions,
        tensors=tuple(tensors),
        input_dim=w_ih.shape[1],
        input_dim_source=WidthSource.TENSOR,
        notes=tuple(notes),
    )


# --- other tensors ----------------------------------------------------------------------


def _modules(tensors: Iterable[Tensor]) -> list[tuple[str, list[Tensor]]]:
    """Tensors grouped by module: everything before the last dot (`fc.weight` -> `fc`)."""
    grouped: dict[str, list[Tensor]] = {}
    for tensor in tensors:
        module, _, _ = tensor.name.rpartition(".")
        grouped.setdefault(module or tensor.name, []).append(tensor)
    return list(grouped.items())


def _type(tensors: Sequence[Tensor]) -> str:
    """The state dict does not record module classes: say what the parameter names are."""
    names = sorted({t.name.rpartition(".")[2] for t in tensors})
    return "tensors (" + ", ".join(names) + ")" if len(names) <= 3 else "tensors"
