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

A recurrent block of a language model (`inspector.blocks`: Mamba, RWKV, ...) costs per token one
MAC per element of the weights that multiply its activations (`blocks.PRODUCT_ROLES`:
projections, the short convolution, gate weights) plus its recurrence (`BlockSpec.scan_macs`,
e.g. 3·d_inner·d_state + d_inner for Mamba's selective scan); its state is the block table's
streams (conv and SSM states...), each in the dtype the modeling file keeps it in.

What a deployment holds per sequence (`deployment`): every recurrent layer's and block's state,
constant in the context length, plus the KV cache the attention layers of a hybrid keep for the
context (for at most their sliding window); beside it, the KV cache of a transformer of the same
width and depth at that context: 2·d_model·layers·context elements (keys and values of full
multi-head attention in every layer).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from inspector.blocks import BLOCK_BY_NAME, LLAMA_CPP, PRODUCT_ROLES, resolved
from inspector.cells import Convention, bias_vectors, convention_of, gate_count, pointwise_ops
from inspector.counts import MAX_ELEMENTS, MAX_WIDTH
from inspector.dims import integer
from inspector.model import (
    STATE_DTYPES,
    BiasConvention,
    CellConfig,
    CellKind,
    Decoder,
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


DEFAULT_CONTEXT = 4096  # tokens, where --context does not say
# Rows a language model's reader makes of a module of plain projections (formats/blocks.py): each
# weight matrix multiplies the token once. Attention's products over the cached context are not
# counted (they grow with the context); a mixture of experts is not either (its MACs depend on
# the experts each token is routed to).
PROJECTION_ROWS = frozenset({"attention", "MLP"})


@dataclass(frozen=True)
class StateStream:
    """One vector a recurrent layer carries from step to step (per stream, batch of one).
    `dtype`/`itemsize`: a stream kept in a dtype of its own (a block's float32 scan state);
    None: the layer's `state_dtype`."""

    name: str  # "h" or "c"; a block's "conv", "ssm", ...
    direction: Direction | None
    floats: int
    dtype: str | None = None
    itemsize: int | None = None


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
        return self._scaled(
            sum(stream.floats * (stream.itemsize or self.state_itemsize) for stream in self.state)
        )

    def state_bytes_as(self, itemsize: int) -> int | None:
        """The state's bytes were every stream kept at `itemsize` bytes (--state-dtype)."""
        floats = self.state_floats
        return None if floats is None else floats * itemsize


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
    # is counted by those layers: only what else it holds is a layer of its own here. Rows
    # holding recurrent blocks named below them (GGUF's `blk.N`) are `_holders`.
    holders = _holders(model)
    recurrent_keys = {
        key
        for layer in model.recurrent_layers
        for item in layer.tensors
        for key in (item.tensor.key, *item.tensor.sources)
    }
    others = []
    for row in model.layers:
        if row.name in recurrent_names or row.name in holders:
            continue
        rest = _without(row, recurrent_keys)
        if (row.tensors or row.shared) and not (rest.tensors or rest.shared):
            continue  # every tensor it holds is a recurrent layer's
        others.append(rest)
    found = {layer.name: layer_compute(layer) for layer in others}
    found.update({name: item for name, item in holders.items() if item is not None})
    layers = tuple(item for item in found.values() if item is not None)
    uncounted = tuple(
        layer.name
        for layer in others
        if found[layer.name] is None
        and not any(f in layer.type.upper() for f in _NOT_COUNTED)
        and any(len(t.shape) >= 2 for t in _tensors(layer))
    )
    return Compute(recurrent, layers, seq_len, uncounted)


def _holders(model: Model) -> dict[str, LayerCompute | None]:
    """Rows holding recurrent blocks named below them (GGUF's `blk.N` holds `blk.N.ssm`): the
    matrices of such a row outside its blocks (a hybrid layer's attention projections) each
    multiply the token once; None where there are none."""
    under: dict[str, list[RecurrentLayer]] = {}  # module path -> the blocks below it
    for layer in model.recurrent_layers:
        if layer.cell.block is not None:
            position = layer.name.find(".")
            while position > 0:
                under.setdefault(layer.name[:position], []).append(layer)
                position = layer.name.find(".", position + 1)
    out: dict[str, LayerCompute | None] = {}
    for row in model.layers:
        inside = under.get(row.name)
        if not inside:
            continue
        keys = {item.tensor.key for b in inside for item in b.tensors}
        rest = [t for t in row.tensors if t.key not in keys and len(t.shape) == 2]
        out[row.name] = (
            LayerCompute(row.name, row.type, "matmul", sum(t.params for t in rest), None)
            if rest
            else None
        )
    return out


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
    return _bounded(math.prod(sizes) // cell.units)


def _bounded(count: int) -> int | None:
    """A product of a file's dimensions, or None (unknown) where it reaches a size no tensor has:
    every figure stays a number floats and text can hold (a crafted shape of many huge axes)."""
    return count if 0 <= count < MAX_ELEMENTS else None


def _implausible(layer: RecurrentLayer, cells: list[CellConfig]) -> bool:
    """A width no layer can have (zero, negative, a crafted 4,000-digit `units`): the check
    says which (report/analysis.py); no figure is derived from it."""
    widths = [layer.input_dim, *(c.units for c in cells), *(c.projection for c in cells)]
    widths += [k for c in cells for k in c.kernel_size]
    if any(w is not None and not 0 < w < MAX_WIDTH for w in widths):
        return True
    return any(_bounded(math.prod(c.kernel_size)) is None for c in cells)


def recurrent_compute(
    layer: RecurrentLayer,
    convention: Convention = Convention.KERAS,
    output_shape: tuple[Dim, ...] | None = None,
) -> RecurrentCompute:
    """One recurrent layer's MACs, element-wise work and state per time step, in `convention`'s
    equations for the element-wise part. Raises nothing: a figure the metadata does not give is
    None, with the reason."""
    if layer.cell.block is not None:
        return block_compute(layer)
    dtype, itemsize = _state_dtype(layer)
    directions: list[tuple[CellConfig, Direction | None]] = [(layer.cell, None)]
    if layer.directions == 2:
        backward = layer.backward_cell or layer.cell
        directions = [(layer.cell, Direction.FORWARD), (backward, Direction.BACKWARD)]
    if _implausible(layer, [cell for cell, _ in directions]):
        reason = "a width from the file is not a size a layer can have: no figures"
        return RecurrentCompute(layer.name, None, 0, (), 0, None, dtype, itemsize, reason)
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


def block_compute(layer: RecurrentLayer) -> RecurrentCompute:
    """A recurrent block's MACs per token (its weight products and its recurrence) and its state
    streams (`inspector.blocks.BlockSpec.state`). Its element-wise work is inside its MACs."""
    spec = BLOCK_BY_NAME.get(layer.cell.block or "")
    dtype, itemsize = _stored_float(item.tensor for item in layer.tensors)
    if spec is None:
        return RecurrentCompute(layer.name, None, 0, (), 0, 1, dtype, itemsize, "unknown block")
    values = resolved(spec, dict(layer.cell.dims))
    products = sum(
        item.tensor.params
        for item in layer.tensors
        if item.role in PRODUCT_ROLES and len(item.tensor.shape) >= 2
    )
    scan = integer(spec.scan_macs, values)
    streams = []
    unknown = []
    layout = layer.cell.layout
    for stream in spec.state:
        sizes = [integer(axis, values) for axis in stream.shape_in(layout)]
        if any(size is None or size < 0 for size in sizes):
            unknown.append(stream.name)
            continue
        # llama.cpp keeps its recurrent memory in F32 (llama-memory-recurrent.cpp, type_r/s)
        stream_dtype = "float32" if layout == LLAMA_CPP else stream.dtype or dtype
        streams.append(
            StateStream(
                stream.name,
                None,
                math.prod(size or 0 for size in sizes),
                stream_dtype,
                STATE_DTYPES.get(stream_dtype, itemsize),
            )
        )
    reasons = []
    if scan is None:
        reasons.append("the block's dimensions are unknown: no MACs for its recurrence")
    if unknown:
        reasons.append(f"state {', '.join(unknown)} unknown: its dimensions are unknown")
    return RecurrentCompute(
        layer=layer.name,
        macs_per_position=None if scan is None else products + scan,
        elementwise_per_position=0,
        state=tuple(streams),
        activations_per_position=0,
        positions=None if unknown else 1,
        state_dtype=dtype,
        state_itemsize=itemsize,
        reason="; ".join(reasons) or None,
    )


def _stored_float(tensors: Iterable[Tensor]) -> tuple[str, int]:
    """The floating-point dtype most elements are stored in: what activations (and a state kept
    in the model's dtype) run in; float32 where none is (a quantized model computes in float)."""
    counts: Counter[tuple[str, int]] = Counter()
    for tensor in tensors:
        if tensor.dtype.lower() in _FLOAT_DTYPES:
            counts[(tensor.dtype, tensor.itemsize)] += tensor.params
    return counts.most_common(1)[0][0] if counts else ("float32", 4)


@dataclass(frozen=True)
class KVCache:
    """One attention layer's KV cache at the context: `width` elements per token for `tokens`
    tokens (the context, or the sliding window where shorter), in `count` layers."""

    layer: str
    width: int
    tokens: int
    count: int
    window: int | None

    @property
    def elements(self) -> int:
        return self.width * self.tokens * self.count


@dataclass(frozen=True)
class Deployment:
    """What one sequence holds at inference (batch of one). `itemsize` None: every stream at
    its own dtype; otherwise the `--state-dtype` override, `dtype`, for all of it."""

    context: int
    dtype: str | None
    itemsize: int | None
    state_elements: int  # every recurrent layer's and block's state: constant in the context
    state_bytes: int
    state_complete: bool
    kv: tuple[KVCache, ...]
    kv_itemsize: int
    kv_dtype: str
    decoder: Decoder | None

    @property
    def kv_elements(self) -> int:
        return sum(item.elements for item in self.kv)

    @property
    def kv_bytes(self) -> int:
        return self.kv_elements * self.kv_itemsize

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.kv_bytes

    @property
    def transformer_kv_elements(self) -> int | None:
        """A transformer of the decoder's width and depth: keys and values of d_model each, in
        every layer, for every token of the context."""
        if self.decoder is None or not self.decoder.width or not self.decoder.depth:
            return None
        return 2 * self.decoder.width * self.decoder.depth * self.context

    @property
    def transformer_kv_bytes(self) -> int | None:
        elements = self.transformer_kv_elements
        return None if elements is None else elements * self.kv_itemsize


def deployment(
    model: Model, figures: Compute, context: int | None = None, state_dtype: str | None = None
) -> Deployment:
    """The state per sequence of `model` (its recurrent layers' `figures`) and its attention
    layers' KV cache at `context` tokens, at the stored dtypes or all at `state_dtype` (a name
    of STATE_DTYPES)."""
    tokens = DEFAULT_CONTEXT if context is None else context
    itemsize = STATE_DTYPES[state_dtype] if state_dtype is not None else None
    elements = sum(item.state_floats or 0 for item in figures.recurrent)
    stored = sum(item.state_bytes or 0 for item in figures.recurrent)
    decoder = model.decoder
    kv_dtype = state_dtype or (decoder.dtype if decoder else "float32")
    kv_itemsize = itemsize or (decoder.itemsize if decoder else 4)
    kv = tuple(
        KVCache(
            cache.layer,
            cache.width,
            min(tokens, cache.window) if cache.window else tokens,
            cache.count,
            cache.window,
        )
        for cache in (decoder.attention if decoder else ())
    )
    return Deployment(
        context=tokens,
        dtype=state_dtype,
        itemsize=itemsize,
        state_elements=elements,
        state_bytes=stored if itemsize is None else elements * itemsize,
        state_complete=figures.state_complete,
        kv=kv,
        kv_itemsize=kv_itemsize,
        kv_dtype=kv_dtype,
        decoder=decoder,
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
    if layer.type in PROJECTION_ROWS:  # a language model's attention or MLP module
        return LayerCompute(
            layer.name,
            layer.type,
            "matmul",
            sum(t.params for t in tensors if len(t.shape) == 2),
            None,
        )
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
    return _bounded(math.prod(sizes)) if len(sizes) == len(spatial) else None
