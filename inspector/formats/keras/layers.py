"""Turn a parsed Keras configuration plus the tensors stored per layer into the data model:
`Layer` rows and `RecurrentLayer` entries with each tensor's role and direction.

Format-independent: the HDF5 reader and the `.keras` reader both feed it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from inspector.cells import KERAS_RECURRENT, KerasRecurrentClass, gate_count
from inspector.formats.keras.config import (
    JSON,
    KerasLayer,
    KerasModelConfig,
    as_int,
    as_mapping,
    as_str,
    container_keys,
    units_of,
    walk_layers,
)
from inspector.formats.keras.shapes import declared_shape
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
    TensorSpec,
    WidthSource,
)

# Weights Keras keeps out of `trainable_weights` whatever the layer's `trainable` flag.
NON_TRAINABLE: Mapping[str, frozenset[str]] = {
    "BatchNormalization": frozenset({"moving_mean", "moving_variance"}),
    "SyncBatchNormalization": frozenset({"moving_mean", "moving_variance"}),
    "Normalization": frozenset({"mean", "variance", "count"}),
}
_ALWAYS_NON_TRAINABLE = frozenset({"moving_mean", "moving_variance"})
_POSITIONAL_NON_TRAINABLE: Mapping[str, int] = {
    "BatchNormalization": 2,
    "SyncBatchNormalization": 2,
    "Normalization": 3,
}

# Stored weight names (last path component, without ':0') and the role they play.
ROLE_BY_NAME: Mapping[str, TensorRole] = {
    "kernel": TensorRole.KERNEL,
    "recurrent_kernel": TensorRole.RECURRENT_KERNEL,
    "bias": TensorRole.BIAS,
    "input_bias": TensorRole.INPUT_BIAS,
    "recurrent_bias": TensorRole.RECURRENT_BIAS,
}
# Position of each tensor in a Keras cell's weight list (the order `cell.weights` uses).
ROLE_BY_POSITION = (TensorRole.KERNEL, TensorRole.RECURRENT_KERNEL, TensorRole.BIAS)
# Peephole LSTM cells append three diagonal weights after the bias.
_PEEPHOLE_NAMES = frozenset(
    {"input_gate_peephole_weights", "forget_gate_peephole_weights", "output_gate_peephole_weights"}
)


# Keras 1 stored one dataset per gate: `lstm_1_W_i:0` (input kernel of gate i), `U` the
# recurrent kernel, `b` the bias; SimpleRNN has `W`, `U`, `b` without a gate letter.
_KERAS1_NAME = re.compile(r"(?:^|_)([WUb])(?:_([a-z]))?$")
_KERAS1_ROLE: Mapping[str, TensorRole] = {
    "W": TensorRole.KERNEL,
    "U": TensorRole.RECURRENT_KERNEL,
    "b": TensorRole.BIAS,
}


def base_name(weight_name: str) -> str:
    """`bidirectional/forward_lstm/lstm_cell/kernel:0` -> `kernel`."""
    last = weight_name.rstrip("/").rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


@dataclass(frozen=True)
class KerasBuild:
    layers: tuple[Layer, ...]
    recurrent_layers: tuple[RecurrentLayer, ...]
    warnings: tuple[str, ...]
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()


def build(config: KerasModelConfig, groups: Mapping[str, Sequence[Tensor]]) -> KerasBuild:
    """`groups` maps each top-level layer name to the tensors stored for it, in stored order;
    each tensor's `name` is its stored weight name."""
    warnings: list[str] = []
    layers: list[Layer] = []
    recurrent: list[RecurrentLayer] = []
    seen: set[str] = set()
    for layer in config.walk():
        if layer.class_name == "Lambda":
            warnings.append(
                f"Lambda layer '{layer.path}' is present; its stored code is never decoded or run"
            )
    for layer in config.layers:
        if layer.class_name == "InputLayer" and config.class_name == "Sequential":
            continue  # Keras's Sequential.layers omits the input layer
        seen.add(layer.name)
        stored = groups.get(layer.name)
        if stored is None:
            stored = ()
            if _expects_weights(layer):
                warnings.append(f"layer '{layer.name}' has no stored weights in the file")
        tensors = with_trainable(stored, layer)
        layers.append(
            Layer(
                layer.name,
                layer.class_name,
                tensors,
                trainable=layer.trainable,
                output_shape=layer.output_shape,
            )
        )
        recurrent.extend(_recurrent_in(layer, tensors, warnings))
    for name, stored in groups.items():
        if name not in seen and stored:
            warnings.append(f"weights group '{name}' is not in the model config; listed as is")
            layers.append(Layer(name, "?", tuple(stored), trainable=None))
    inputs, outputs = signature(config)
    return KerasBuild(tuple(layers), tuple(recurrent), tuple(warnings), inputs, outputs)


def signature(config: KerasModelConfig) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The model's inputs (its InputLayers, or the shape a Sequential's first layer declares)
    and outputs (`output_layers`, or a Sequential's last layer) with the shapes the
    configuration gives and the dtypes the layers declare (a DTypePolicy's compute dtype)."""
    by_name = {layer.name: layer for layer in config.layers}
    if config.input_names:
        starts = [by_name[name] for name in config.input_names if name in by_name]
    else:
        starts = [layer for layer in config.layers if layer.class_name == "InputLayer"]
        if not starts and config.layers and declared_shape(config.layers[0].config):
            first = config.layers[0]
            starts = [replace(first, output_shape=declared_shape(first.config))]
    if config.output_names:
        ends = [by_name[name] for name in config.output_names if name in by_name]
    else:
        ends = [config.layers[-1]] if config.layers else []
    return (
        tuple(TensorSpec(layer.name, layer.output_shape, _dtype(layer.config)) for layer in starts),
        tuple(TensorSpec(layer.name, layer.output_shape, _dtype(layer.config)) for layer in ends),
    )


def _dtype(config: JSON) -> str | None:
    """`"float32"`, or a DTypePolicy `{"config": {"name": "mixed_float16"}}` -> float16."""
    value = config.get("dtype")
    if isinstance(value, Mapping):
        value = as_mapping(value.get("config")).get("name")
    if not isinstance(value, str):
        return None
    return value.removeprefix("mixed_")


def _expects_weights(layer: KerasLayer) -> bool:
    return layer.class_name in KERAS_RECURRENT or layer.class_name in (
        "Dense",
        "Embedding",
        "Bidirectional",
    )


def with_trainable(tensors: Sequence[Tensor], layer: KerasLayer) -> tuple[Tensor, ...]:
    """Mark each tensor trainable as Keras counts it: not if its layer (or an enclosing model)
    is frozen, and never for statistics such as BatchNormalization's moving mean/variance."""
    fixed = NON_TRAINABLE.get(layer.class_name, _ALWAYS_NON_TRAINABLE)
    # Keras v3 files name variables by position: BatchNormalization stores its two moving
    # statistics last (keras/src/layers/normalization/batch_normalization.py, build()).
    positional_fixed = _POSITIONAL_NON_TRAINABLE.get(layer.class_name, 0)
    out = []
    for index, tensor in enumerate(tensors):
        name = base_name(tensor.name)
        statistic = name in fixed or (name.isdigit() and index >= len(tensors) - positional_fixed)
        out.append(
            replace(tensor, trainable=_owner_trainable(tensor.name, layer) and not statistic)
        )
    return tuple(out)


def _owner_trainable(weight_name: str, layer: KerasLayer) -> bool:
    """A nested model's weight is trainable only if the inner layer that owns it is."""
    if not layer.inner:
        return layer.trainable
    parts = set(weight_name.split("/"))
    for inner in walk_layers(layer.inner):
        if inner.name in parts:
            return inner.trainable
    return layer.trainable


# -------------------------------------------------------------------------- recurrent layers


def _recurrent_in(
    layer: KerasLayer, tensors: Sequence[Tensor], warnings: list[str]
) -> list[RecurrentLayer]:
    if not layer.inner:
        return recurrent_layers(layer, tensors)
    # A model used as a layer: give each inner recurrent layer the tensors naming it.
    out: list[RecurrentLayer] = []
    inner_layers = list(walk_layers(layer.inner))
    for inner in inner_layers:
        if inner.inner:
            continue
        own = [t for t in tensors if t.name.startswith(f"{inner.path}/")] or [
            t for t in tensors if inner.name in t.name.split("/")
        ]
        out.extend(recurrent_layers(inner, own, name=inner.path))
    return out


def recurrent_layers(
    layer: KerasLayer, tensors: Sequence[Tensor], *, name: str | None = None
) -> list[RecurrentLayer]:
    """The recurrent view of a layer: none if it is not recurrent, one entry per cell for
    `RNN([cells])` / `StackedRNNCells`, else one."""
    class_name, config, _, _ = _unwrap(layer)
    cells = _stacked_cells(config) if class_name == "RNN" else []
    if len(cells) < 2:
        found = _recurrent_layer(layer, tensors, name=name or layer.name)
        return [found] if found else []
    out: list[RecurrentLayer] = []
    input_width = layer.input_width
    keys = container_keys([cell_class for cell_class, _ in cells])
    for index, ((cell_class, cell_config), key) in enumerate(zip(cells, keys, strict=True)):
        cell_name = as_str(cell_config.get("name")) or key
        own = [t for t in tensors if {cell_name, key} & set(t.name.split("/"))]
        cell_layer = KerasLayer(
            name=cell_name,
            class_name=cell_class,
            config=cell_config,
            path=f"{layer.path}/{cell_name}",
            trainable=layer.trainable,
            input_width=input_width,
        )
        found = _recurrent_layer(cell_layer, own, name=f"{name or layer.name}/{cell_name}")
        if found is None:
            continue
        out.append(
            replace(found, type=f"{layer.class_name}({cell_class} {index + 1}/{len(cells)})")
        )
        input_width = found.cell.units  # the next cell reads this cell's output
    return out


def _stacked_cells(config: JSON) -> list[tuple[str, JSON]]:
    cell = config.get("cell")
    if isinstance(cell, Mapping) and cell.get("class_name") == "StackedRNNCells":
        cell = as_mapping(cell.get("config")).get("cells")
    if not isinstance(cell, list):
        return []
    return [
        (
            as_str(as_mapping(item).get("class_name")) or "?",
            as_mapping(as_mapping(item).get("config")),
        )
        for item in cell
    ]


def _recurrent_layer(
    layer: KerasLayer, tensors: Sequence[Tensor], *, name: str
) -> RecurrentLayer | None:
    class_name, config, directions, backward_entry = _unwrap(layer)
    spec = KERAS_RECURRENT.get(class_name)
    cell_config = config
    if spec is None and class_name == "RNN":
        cell_class, cell_config = _single_cell(config)
        spec = KERAS_RECURRENT.get(cell_class)
    if spec is None:
        return None
    # Forward first: the v3 layout lists `backward_layer` before `forward_layer`.
    roles = sorted(
        assign_roles(tensors, directions), key=lambda r: r.direction is Direction.BACKWARD
    )
    forward_roles = [r for r in roles if r.direction is not Direction.BACKWARD]
    cell = _cell_config(spec, cell_config, forward_roles)
    backward = None
    if backward_entry is not None:
        backward_class, backward_config = backward_entry
        backward_spec = KERAS_RECURRENT.get(backward_class, spec)
        backward_roles = [r for r in roles if r.direction is Direction.BACKWARD]
        backward = _cell_config(backward_spec, backward_config, backward_roles)
        if backward_class != class_name:
            class_name = f"{class_name}, {backward_class}"
    input_dim, source = _input_dim(layer, spec, roles)
    return RecurrentLayer(
        name=name,
        type=layer.class_name
        if layer.class_name == class_name
        else f"{layer.class_name}({class_name})",
        cell=cell,
        directions=directions,
        tensors=tuple(roles),
        backward_cell=backward if backward != cell else None,
        input_dim=input_dim,
        input_dim_source=source,
    )


def _unwrap(layer: KerasLayer) -> tuple[str, JSON, int, tuple[str, JSON] | None]:
    """(class, config, directions, backward layer's (class, config)) seen through
    Bidirectional and TimeDistributed wrappers."""
    class_name, config = layer.class_name, layer.config
    directions = 1
    backward: tuple[str, JSON] | None = None
    for _ in range(4):
        if class_name not in ("Bidirectional", "TimeDistributed"):
            break
        inner = as_mapping(config.get("layer"))
        if class_name == "Bidirectional":
            directions = 2
            backward_layer = as_mapping(config.get("backward_layer"))
            if backward_layer:
                backward = (
                    as_str(backward_layer.get("class_name")) or "?",
                    as_mapping(backward_layer.get("config")),
                )
        class_name, config = as_str(inner.get("class_name")) or "?", as_mapping(inner.get("config"))
    return class_name, config, directions, backward


def _single_cell(config: JSON) -> tuple[str, JSON]:
    cell = config.get("cell")
    if isinstance(cell, list) and len(cell) == 1:
        cell = cell[0]
    cell_map = as_mapping(cell)
    return as_str(cell_map.get("class_name")) or "?", as_mapping(cell_map.get("config"))


def assign_roles(
    tensors: Sequence[Tensor], directions: int, *, positional: bool = True
) -> list[RecurrentTensor]:
    """Role, direction and gate of each tensor of a recurrent layer, from stored names: Keras 2
    (`kernel`, `recurrent_kernel`, `bias`), Keras 1 (`W_i`, `U_i`, `b_i`), Keras v3 (`vars/0..2`)
    and, with `positional`, from the order Keras stores a cell's weights in."""
    out: list[RecurrentTensor] = []
    half = len(tensors) // 2
    for index, tensor in enumerate(tensors):
        direction = direction_of(tensor.name)
        if direction is None and directions == 2:
            # No forward_/backward_ naming: Keras stores the forward layer's weights first.
            direction = Direction.FORWARD if index < half else Direction.BACKWARD
        name = base_name(tensor.name)
        keras1 = _KERAS1_NAME.search(name)
        if name not in ROLE_BY_NAME and keras1 is not None:
            out.append(
                RecurrentTensor(tensor, _KERAS1_ROLE[keras1.group(1)], direction, keras1.group(2))
            )
            continue
        role = ROLE_BY_NAME.get(name)
        if role is None and name in _PEEPHOLE_NAMES:
            role = TensorRole.PEEPHOLE
        if role is None and positional:
            position = (
                int(name)
                if name.isdecimal() and name.isascii()
                else index % half
                if half
                else index
            )
            # Cells list kernel, recurrent kernel, bias; peephole cells add three diagonals.
            role = ROLE_BY_POSITION[position] if position < 3 else TensorRole.PEEPHOLE
        if role is None:
            role = TensorRole.BIAS
        out.append(RecurrentTensor(tensor, role, direction))
    return out


def stored_gate_order(roles: Sequence[RecurrentTensor]) -> tuple[str, ...] | None:
    gates: list[str] = []
    for item in roles:
        if item.gate is not None and item.gate not in gates:
            gates.append(item.gate)
    return tuple(gates) or None


def direction_of(weight_name: str) -> Direction | None:
    """`forward_*` / `backward_*` (Keras 2/3 HDF5) or `forward_layer` / `backward_layer` (v3
    layout) anywhere in a stored path."""
    for part in weight_name.split("/"):
        if part.startswith("forward_") or part == "forward_layer":
            return Direction.FORWARD
        if part.startswith("backward_") or part == "backward_layer":
            return Direction.BACKWARD
    return None


def _first_with(roles: Sequence[RecurrentTensor], role: TensorRole) -> Tensor | None:
    for item in roles:
        if item.role is role:
            return item.tensor
    return None


def _cell_config(
    spec: KerasRecurrentClass, config: JSON, roles: Sequence[RecurrentTensor]
) -> CellConfig:
    units = units_of(config)
    recurrent_kernel = _first_with(roles, TensorRole.RECURRENT_KERNEL)
    gates = stored_gate_order(roles)
    if units is None and recurrent_kernel is not None and recurrent_kernel.shape:
        per_gate = 1 if gates else gate_count(spec.kind)
        units = recurrent_kernel.shape[-1] // per_gate
    use_bias = config.get("use_bias", config.get("bias", True)) is not False
    reset_after: bool | None = None
    bias = spec.bias
    if spec.kind is CellKind.GRU and spec.bias is None:
        stated = config.get("reset_after")
        if isinstance(stated, bool):
            reset_after = stated
        else:  # Keras before 2.1.3 had no reset_after; read the bias layout instead
            bias_tensor = _first_with(roles, TensorRole.BIAS)
            reset_after = bias_tensor is not None and len(bias_tensor.shape) == 2
        bias = BiasConvention.DOUBLE if reset_after else BiasConvention.SINGLE
    if not use_bias:
        bias = BiasConvention.NONE
    kernel_size: tuple[int, ...] = ()
    if spec.conv_rank:
        kernel_size = _kernel_size(config.get("kernel_size"), spec.conv_rank)
    return CellConfig(
        kind=spec.kind,
        units=units,
        use_bias=use_bias,
        reset_after=reset_after,
        bias=bias,
        peepholes=spec.peepholes,
        kernel_size=kernel_size,
        gate_order=gates,
    )


def _kernel_size(value: object, rank: int) -> tuple[int, ...]:
    single = as_int(value)
    if single is not None:
        return (single,) * rank
    if isinstance(value, list):
        sizes = tuple(as_int(v) for v in value)
        if all(s is not None for s in sizes):
            return tuple(s for s in sizes if s is not None)
    return ()


def _input_dim(
    layer: KerasLayer, spec: KerasRecurrentClass, roles: Sequence[RecurrentTensor]
) -> tuple[int | None, WidthSource]:
    if layer.input_width is not None:
        return layer.input_width, WidthSource.CONFIG
    kernel = _first_with(roles, TensorRole.KERNEL)
    if kernel is None or not kernel.shape:
        return None, WidthSource.UNKNOWN
    # Keras kernels are (input, gates·units); ConvLSTM kernels (*kernel_size, in, gates·filters).
    axis = -2 if spec.conv_rank and len(kernel.shape) >= 2 else 0
    return kernel.shape[axis], WidthSource.TENSOR
