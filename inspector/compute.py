"""Compute and state of a model, from its metadata alone: multiply-accumulates (MACs) per time
step, element-wise work, the state carried between steps.

Per direction of a recurrent layer, with d the input width, u the units, g the gates (from the
cell table, `inspector.cells`, like the parameter formula):

    matrix MACs per step  g·(u·d + u·r) + p·u     r = u, or p with a projection (PyTorch
                                                   proj_size: h is projected from u to p)
    element-wise per step b·g·u + e·u (+ 6·u with peepholes)
                          b bias vectors added, e the cell's element-wise operations per unit
                          (`cells.pointwise_ops`: sums of the two products, activations, gate
                          products, the state update; each add, multiply or nonlinearity on one
                          element counts 1)
    state                 h (r floats) and, for LSTM and ConvLSTM, c (u floats)

A ConvLSTM multiplies these by its output positions (the product of the spatial output shape),
known only where the layer's output shape is. Other layers, applied once (per output position):
a dense or convolution layer costs the elements of its weight matrix or kernel (a dense layer's
`d·u`; a convolution's `k·c_in·c_out / groups` per output position); an embedding is a lookup,
0 MACs. Normalisation and other layers are not counted.

MACs, not FLOPs: PyTorch's `torch.utils.flop_counter` and TensorFlow's profiler count one
multiply-accumulate of a matrix product as 2 FLOPs. The weights are shared across time steps, so
compute scales with the sequence length T and the parameter count does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from inspector.cells import Convention, bias_vectors, convention_of, gate_count, pointwise_ops
from inspector.model import (
    BiasConvention,
    CellConfig,
    CellKind,
    Dim,
    Direction,
    Layer,
    Model,
    RecurrentLayer,
    Tensor,
    TensorRole,
)

_PEEPHOLE_OPS = 6  # three peephole products and the three sums they join (per unit)
_FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64", "half", "float", "double"})
# Type fragments (upper case) of layers no closed form here fits: normalisations, recurrences.
_NOT_COUNTED = ("NORM", "LSTM", "GRU", "RNN", "RECURRENT")


@dataclass(frozen=True)
class StateStream:
    """One vector a recurrent layer carries from step to step (per stream, batch of one)."""

    name: str  # "h" or "c"
    direction: Direction | None
    floats: int


@dataclass(frozen=True)
class RecurrentCompute:
    """One recurrent layer's figures per time step (all directions). `per_position` figures are
    for one output position (1 for every cell but ConvLSTM); a per-step figure is None where the
    metadata does not give it, and `reason` says why."""

    layer: str
    macs_per_position: int | None  # the matrix products, projection included
    elementwise_per_position: int
    state: tuple[StateStream, ...]  # floats per output position
    activations_per_position: int  # the g·u gate values and the new state
    positions: int | None
    state_dtype: str
    state_itemsize: int
    reason: str | None = None

    def _scaled(self, value: int | None) -> int | None:
        return None if value is None or self.positions is None else value * self.positions

    @property
    def macs_per_step(self) -> int | None:
        return self._scaled(self.macs_per_position)

    @property
    def elementwise_per_step(self) -> int | None:
        return self._scaled(self.elementwise_per_position)

    @property
    def activations_per_step(self) -> int | None:
        return self._scaled(self.activations_per_position)

    @property
    def state_floats(self) -> int | None:
        return self._scaled(sum(stream.floats for stream in self.state))

    @property
    def state_bytes(self) -> int | None:
        floats = self.state_floats
        return None if floats is None else floats * self.state_itemsize


@dataclass(frozen=True)
class LayerCompute:
    """A non-recurrent layer applied once: `kind` is "matmul", "conv" or "lookup"."""

    layer: str
    type: str
    kind: str
    macs_per_position: int
    positions: int | None  # output positions where the output shape gives them

    @property
    def macs(self) -> int | None:
        if self.kind == "conv":
            return None if self.positions is None else self.macs_per_position * self.positions
        return self.macs_per_position


@dataclass(frozen=True)
class Compute:
    recurrent: tuple[RecurrentCompute, ...]
    layers: tuple[LayerCompute, ...]
    seq_len: int | None = None
    # Layers holding a weight matrix that no rule here fits (a state-dict matrix without a
    # bias: an Embedding or a Linear without bias?): their MACs are not in the totals.
    uncounted: tuple[str, ...] = ()

    @property
    def recurrent_macs_per_step(self) -> int:
        return sum(item.macs_per_step or 0 for item in self.recurrent)

    @property
    def layer_macs(self) -> int:
        return sum(item.macs or 0 for item in self.layers)

    @property
    def macs_per_step(self) -> int:
        """Every recurrent layer's step plus every other layer applied once: exact for a model
        that runs once per step (a single-step cell, per-step heads), an upper bound where a head
        runs once per sequence."""
        return self.recurrent_macs_per_step + self.layer_macs

    @property
    def complete(self) -> bool:
        """Every recurrent layer and every counted layer has its figure."""
        return not self.missing

    @property
    def missing(self) -> tuple[str, ...]:
        """Every layer whose MACs the totals leave out, each once: the uncounted matrices, and
        the recurrent and other layers whose figure the metadata does not give."""
        names = [
            *self.uncounted,
            *(item.layer for item in self.recurrent if item.macs_per_step is None),
            *(item.layer for item in self.layers if item.macs is None),
        ]
        return tuple(dict.fromkeys(names))

    @property
    def state_complete(self) -> bool:
        return all(item.state_floats is not None for item in self.recurrent)

    @property
    def elementwise_per_step(self) -> int:
        return sum(item.elementwise_per_step or 0 for item in self.recurrent)

    @property
    def state_floats(self) -> int:
        return sum(item.state_floats or 0 for item in self.recurrent)

    @property
    def state_bytes(self) -> int:
        return sum(item.state_bytes or 0 for item in self.recurrent)

    @property
    def macs_per_sequence(self) -> int | None:
        return None if self.seq_len is None else self.seq_len * self.macs_per_step


def compute(model: Model, seq_len: int | None = None) -> Compute:
    """The figures of every recurrent layer and every dense, convolution and embedding layer.
    `seq_len`: the time steps T for the per-sequence total."""
    recurrent_names = {layer.name for layer in model.recurrent_layers}
    shapes = {layer.name: layer.output_shape for layer in model.layers}
    convention = convention_of(model.format)
    recurrent = tuple(
        recurrent_compute(layer, convention, shapes.get(layer.name))
        for layer in model.recurrent_layers
    )
    # A row holding recurrent layers' tensors (a nested model's row holds its inner LSTM's)
    # is counted by those layers: only what else it holds is a layer of its own here.
    recurrent_keys = {
        key
        for layer in model.recurrent_layers
        for item in layer.tensors
        for key in (item.tensor.key, *item.tensor.sources)
    }
    others = []
    for row in model.layers:
        if row.name in recurrent_names:
            continue
        rest = _without(row, recurrent_keys)
        if (row.tensors or row.shared) and not (rest.tensors or rest.shared):
            continue  # every tensor it holds is a recurrent layer's
        others.append(rest)
    found = {layer.name: layer_compute(layer) for layer in others}
    layers = tuple(item for item in found.values() if item is not None)
    uncounted = tuple(
        layer.name
        for layer in others
        if found[layer.name] is None
        and not any(f in layer.type.upper() for f in _NOT_COUNTED)
        and any(len(t.shape) >= 2 for t in _tensors(layer))
    )
    return Compute(recurrent, layers, seq_len, uncounted)


def _bias(cell: CellConfig) -> int:
    if not cell.use_bias:
        return 0
    return bias_vectors(cell.bias if cell.bias is not None else BiasConvention.SINGLE)


def _projection(layer: RecurrentLayer, units: int) -> int | None:
    """The projected width p (PyTorch weight_hr: (p, u)), or None without a projection."""
    tensor = next((t.tensor for t in layer.tensors if t.role is TensorRole.PROJECTION), None)
    if tensor is None or units <= 0:
        return None
    return tensor.params // units


def _state_dtype(layer: RecurrentLayer) -> tuple[str, int]:
    """The stored dtype of the recurrent weights where it is a float; the state of a quantized
    cell is float32 (ONNX DynamicQuantizeLSTM computes in float)."""
    for role in (TensorRole.RECURRENT_KERNEL, TensorRole.KERNEL, TensorRole.BIAS):
        for item in layer.tensors:
            if item.role is role and item.tensor.dtype.lower() in _FLOAT_DTYPES:
                return item.tensor.dtype, item.tensor.itemsize
    return "float32", 4


def _positions(cell: CellConfig, output_shape: tuple[Dim, ...] | None) -> int | None:
    """A ConvLSTM's spatial output positions: its output shape `(batch, [time,] *body)` holds
    the spatial axes and the channels (`units`) in either order, so the positions are the
    body's product over the units. 1 for every other cell."""
    if cell.kind is not CellKind.CONV_LSTM:
        return 1
    rank = len(cell.kernel_size)
    if output_shape is None or not rank or not cell.units:
        return None
    body = output_shape[1:]
    if len(body) == rank + 2:  # return_sequences: a time axis first
        body = body[1:]
    sizes = [d for d in body if isinstance(d, int)]
    if len(body) != rank + 1 or len(sizes) != len(body) or cell.units not in sizes:
        return None
    return math.prod(sizes) // cell.units


def recurrent_compute(
    layer: RecurrentLayer,
    convention: Convention = Convention.KERAS,
    output_shape: tuple[Dim, ...] | None = None,
) -> RecurrentCompute:
    """One recurrent layer's MACs, element-wise work and state per time step, in `convention`'s
    equations for the element-wise part. Raises nothing: a figure the metadata does not give is
    None, with the reason."""
    dtype, itemsize = _state_dtype(layer)
    directions: list[tuple[CellConfig, Direction | None]] = [(layer.cell, None)]
    if layer.directions == 2:
        backward = layer.backward_cell or layer.cell
        directions = [(layer.cell, Direction.FORWARD), (backward, Direction.BACKWARD)]
    positions = _positions(layer.cell, output_shape)
    reasons = []
    if positions is None:
        reasons.append("output positions unknown: figures are per output position")
    macs: int | None = 0
    elementwise = activations = 0
    state: list[StateStream] = []
    for cell, direction in directions:
        if cell.units is None:
            reason = "units unknown: neither the configuration nor a recurrent kernel gives them"
            return RecurrentCompute(layer.name, None, 0, (), 0, None, dtype, itemsize, reason)
        u, g = cell.units, gate_count(cell.kind)
        p = cell.projection or _projection(layer, u)
        r = p if p is not None else u
        k = math.prod(cell.kernel_size) if cell.kernel_size else 1
        if layer.input_dim is None:
            macs = None
        elif macs is not None:
            macs += g * k * (u * layer.input_dim + u * r) + (p or 0) * u
        elementwise += _bias(cell) * g * u + pointwise_ops(cell.kind, convention) * u
        if cell.peepholes:
            elementwise += _PEEPHOLE_OPS * u
        streams = [StateStream("h", direction, r)]
        if cell.kind in (CellKind.LSTM, CellKind.CONV_LSTM):
            streams.append(StateStream("c", direction, u))
        state.extend(streams)
        activations += g * u + sum(stream.floats for stream in streams)
    if macs is None:
        reasons.append("input width unknown: no matrix MACs")
    return RecurrentCompute(
        layer=layer.name,
        macs_per_position=macs,
        elementwise_per_position=elementwise,
        state=tuple(state),
        activations_per_position=activations,
        positions=positions,
        state_dtype=dtype,
        state_itemsize=itemsize,
        reason="; ".join(reasons) or None,
    )


def _without(layer: Layer, keys: set[str]) -> Layer:
    """The layer without the tensors stored under `keys`."""
    return replace(
        layer,
        tensors=tuple(t for t in layer.tensors if t.key not in keys),
        shared=tuple(item for item in layer.shared if item.tensor.key not in keys),
    )


def _tensors(layer: Layer) -> list[Tensor]:
    """The tensors the layer computes with, tied ones held by another row included."""
    return [*layer.tensors, *(item.tensor for item in layer.shared)]


def layer_compute(layer: Layer) -> LayerCompute | None:
    """A dense, convolution or embedding layer's MACs for one application; None for any other
    layer, or one whose metadata does not say which it is: a state-dict row (`tensors (...)`)
    holding one matrix and no bias may be an Embedding (a lookup) or a Linear without bias."""
    kind = layer.type.lower()
    if "gather" in kind or "embedding" in kind:
        return LayerCompute(layer.name, layer.type, "lookup", 0, None)
    if any(fragment in layer.type.upper() for fragment in _NOT_COUNTED):
        return None
    tensors = _tensors(layer)
    matrices = [t for t in tensors if len(t.shape) >= 2]
    if len(matrices) != 1:
        return None
    unnamed = layer.type.startswith("tensors (")
    if unnamed and not any(len(t.shape) == 1 for t in tensors):
        return None
    rank, elements = len(matrices[0].shape), matrices[0].params
    convolution = "CONV" in layer.type.upper()
    if rank == 2 and not convolution:
        return LayerCompute(layer.name, layer.type, "matmul", elements, None)
    if rank >= 3 and (convolution or unnamed):
        return LayerCompute(
            layer.name,
            layer.type,
            "conv",
            elements,
            _conv_positions(layer.output_shape, matrices[0].shape),
        )
    return None


def _conv_positions(shape: tuple[Dim, ...] | None, kernel: tuple[int, ...]) -> int | None:
    """Output positions of a convolution: its output's spatial dimensions. The channels sit last
    where the kernel ends with the filters (Keras `(*k, c_in, c_out)`), first where it starts
    with them (ONNX and PyTorch `(c_out, c_in/groups, *k)`)."""
    if shape is None or len(shape) < 3:
        return None
    body = shape[1:]
    if body[-1] == kernel[-1]:
        spatial = body[:-1]
    elif body[0] == kernel[0]:
        spatial = body[1:]
    else:
        return None
    sizes = [d for d in spatial if isinstance(d, int)]
    return math.prod(sizes) if len(sizes) == len(spatial) else None
