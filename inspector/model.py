"""The data model every reader produces and everything downstream consumes.

Readers describe what is *stored* in a file (tensors, layers, recurrent layers with their
configuration); `analysis` derives the checks and totals; `render` formats them. Nothing here
formats for display.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from inspector.counts import MAX_ELEMENTS, NAME_LIMIT, TEXT_LIMIT, checked_shape, shortened


def _dims(dims: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
    """A signature's or an output's shape with symbolic names shortened and sizes no tensor can
    have (a configuration's 4,000-digit dimension) as unknown: such a shape is shown, never
    computed with."""
    if dims is None or all(_fits(d) for d in dims):
        return dims
    return tuple(shortened(d) if isinstance(d, str) else d if _fits(d) else None for d in dims)


def _fits(dim: Dim) -> bool:
    if isinstance(dim, str):
        return len(dim) <= NAME_LIMIT
    return dim is None or abs(dim) < MAX_ELEMENTS


class FileFormat(Enum):
    KERAS_H5 = "keras-h5"
    KERAS_H5_WEIGHTS = "keras-h5-weights"
    KERAS_V3 = "keras-v3"
    KERAS_V3_WEIGHTS = "keras-v3-weights"
    GGUF = "gguf"  # llama.cpp's container (ggml tensors, typed key/value metadata)
    ONNX = "onnx"
    SAFETENSORS = "safetensors"  # a PyTorch state dict saved with safetensors
    PYTORCH = "pytorch"  # a torch.save file (state dict or checkpoint), read without unpickling
    TF_SAVEDMODEL = "tf-savedmodel"  # a TensorFlow SavedModel directory
    TFLITE = "tflite"  # a TensorFlow Lite flatbuffer
    # A Hugging Face `save_pretrained` directory: config.json beside safetensors or torch.save
    # weights, one file or shards listed by an index.
    HF_CHECKPOINT = "hf-checkpoint"


class CellKind(Enum):
    SIMPLE_RNN = "SimpleRNN"
    LSTM = "LSTM"
    GRU = "GRU"
    CONV_LSTM = "ConvLSTM"
    # The recurrent blocks of state-space and linear-recurrent language models: not a stack of
    # g gate blocks but a set of named tensors whose shapes follow the block's dimensions
    # (`inspector.blocks.BLOCKS`, one entry per transformers modeling class).
    MAMBA = "Mamba"
    MAMBA2 = "Mamba-2"
    RWKV_TIME_MIX = "RWKV time-mix"
    RWKV_CHANNEL_MIX = "RWKV channel-mix"
    MLSTM = "mLSTM"
    RG_LRU = "RG-LRU"
    SHORT_CONV = "ShortConv"
    GATED_DELTANET = "GatedDeltaNet"
    KIMI_DELTA_ATTENTION = "KimiDeltaAttention"


class TensorRole(Enum):
    KERNEL = "kernel"
    RECURRENT_KERNEL = "recurrent_kernel"
    BIAS = "bias"
    INPUT_BIAS = "input_bias"
    RECURRENT_BIAS = "recurrent_bias"
    PEEPHOLE = "peephole"
    PROJECTION = "projection"
    # Roles inside the recurrent blocks of `CellKind.MAMBA` and the kinds after it, by the names
    # transformers' modeling files give the tensors (modeling_mamba.py, modeling_rwkv.py, ...).
    IN_PROJ = "in_proj"
    CONV1D = "conv1d"
    X_PROJ = "x_proj"
    DT_PROJ = "dt_proj"
    DT_BIAS = "dt_bias"
    A_LOG = "A_log"
    D_SKIP = "D"
    NORM = "norm"
    OUT_PROJ = "out_proj"
    TIME_DECAY = "time_decay"
    TIME_FIRST = "time_first"
    TIME_MIX = "time_mix"
    QUERY = "query"
    KEY = "key"
    VALUE = "value"
    RECEPTANCE = "receptance"
    GATE = "gate"  # an output gate's projection (Mamba's z inside in_proj aside)
    INPUT_GATE = "input_gate"
    FORGET_GATE = "forget_gate"
    RECURRENCE_GATE = "recurrence_gate"
    RECURRENT_PARAM = "recurrent_param"
    BETA = "beta"  # a delta rule's write strength
    DECAY = "decay"  # a delta rule's decay (its dt)


class Direction(Enum):
    FORWARD = "forward"
    BACKWARD = "backward"


class BiasConvention(Enum):
    """How many bias vectors a cell keeps per direction (see `cells.CELLS`)."""

    NONE = "none"  # use_bias=False
    SINGLE = "single"  # g·u: Keras
    DOUBLE = "double"  # 2·g·u: Keras GRU reset_after, CuDNN, PyTorch, ONNX


class Check(Enum):
    OK = "ok"
    MISMATCH = "mismatch"
    UNVERIFIED = "unverified"


class WidthSource(Enum):
    """Where a recurrent layer's input width came from."""

    CONFIG = "config"  # propagated through the model's own configuration
    TENSOR = "tensor"  # read off the kernel's shape
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Tensor:
    """One stored weight array. Only its metadata; the data is never read for a report.

    `key` identifies the stored array inside the file (an HDF5 dataset path, an ONNX tensor
    name): a tensor reached from two layers is one tensor and counts once in the totals.
    """

    key: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    itemsize: int
    trainable: bool | None = None
    # For a tensor a recurrent split shows but the file does not store as such (a view of an
    # ONNX W per direction, a W computed in the graph): the keys of the stored tensors it is a
    # part of or is computed from. Empty for a stored tensor itself.
    sources: tuple[str, ...] = ()
    # The bytes the file stores where they are not elements x itemsize: a block-quantized
    # tensor (GGUF Q4_0 packs 32 elements in 18 bytes), whose itemsize is then 0.
    stored_bytes: int | None = None

    def __post_init__(self) -> None:
        checked_shape(self.shape, f"tensor '{shortened(self.name)}'")

    @property
    def params(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        if self.stored_bytes is not None:
            return self.stored_bytes
        return self.params * self.itemsize


@dataclass(frozen=True)
class SharedTensor:
    """A stored tensor a row reads but another row holds: it counts once, in `owner`'s row."""

    tensor: Tensor
    owner: str  # the name of the row (layer) the tensor is attributed to


# A value of a file's own typed metadata (GGUF key/values): a number, a flag, a string, or an
# array of them.
MetadataValue = int | float | bool | str | tuple["MetadataValue", ...]


# One dimension of a signature or output shape: a size, a symbolic name ("batch", "seq"), or
# None where the file leaves it open.
Dim = int | str | None


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (batch axis included) and element type."""

    name: str
    shape: tuple[Dim, ...] | None  # None: the file does not give the rank
    dtype: str | None


@dataclass(frozen=True)
class Layer:
    """A layer (Keras) or weighted node (ONNX) with the tensors it owns.

    A stored tensor is attributed to one row only, so the rows sum to the total: `tensors` are
    the ones this row holds, `shared` the ones it reads that an earlier row holds (silero-vad's
    LSTM in two `If` branches, tied weights).
    """

    name: str
    type: str
    tensors: tuple[Tensor, ...]
    trainable: bool | None = None
    shared: tuple[SharedTensor, ...] = ()
    # The (first) output's shape, batch axis included, where the configuration determines it.
    output_shape: tuple[Dim, ...] | None = None

    @property
    def params(self) -> int:
        return sum(t.params for t in self.tensors)

    @property
    def shared_with(self) -> tuple[str, ...]:
        """The rows holding the tensors this row shares, in order, each once."""
        return tuple(dict.fromkeys(item.owner for item in self.shared))


@dataclass(frozen=True)
class RecurrentTensor:
    tensor: Tensor
    role: TensorRole
    direction: Direction | None
    gate: str | None = None  # set where a file stores one tensor per gate (Keras 1)
    shared_with: str | None = None  # the row that holds the stored tensor, when not this one
    member: str | None = None  # a recurrent block's tensor: its name in the block table


@dataclass(frozen=True)
class CellConfig:
    """What the file's configuration says about one recurrent cell (per direction).

    Fields are None where the file does not say; the formula then takes them from the
    tensor shapes and the check says so.
    """

    kind: CellKind
    units: int | None
    use_bias: bool = True
    reset_after: bool | None = None  # GRU only
    bias: BiasConvention | None = None  # None: derive from the cell table and reset_after
    peepholes: bool = False
    kernel_size: tuple[int, ...] = ()  # ConvLSTM only
    gate_order: tuple[str, ...] | None = None  # None: the cell table's order for the format
    projection: int | None = None  # PyTorch LSTM proj_size: the hidden state's projected width
    # A recurrent block's dimensions by the block table's names (`inspector.blocks`), e.g.
    # (("d_model", 768), ("d_state", 16), ...); empty for the gated cells above.
    dims: tuple[tuple[str, int], ...] = ()
    block: str | None = None  # the block table's entry (`inspector.blocks.BLOCK_BY_NAME`)
    layout: str | None = None  # whose names and shapes a block's tensors follow (None: HF's)


@dataclass(frozen=True)
class RecurrentLayer:
    """A recurrent layer (Keras) or recurrent op (ONNX), split into its tensors."""

    name: str
    type: str
    cell: CellConfig
    directions: int
    tensors: tuple[RecurrentTensor, ...]
    backward_cell: CellConfig | None = None  # a Bidirectional backward_layer configured apart
    input_dim: int | None = None
    input_dim_source: WidthSource = WidthSource.UNKNOWN
    lowered: bool = False
    # Where the matrices stack their gate blocks when the layer departs from its format's
    # convention: True (inputs, g·u) — DynamicQuantizeLSTM, a lowered x @ W; False (g·u, inputs)
    # — a single-step cell's Gemm with transB=1. None: the format's convention.
    gates_last: bool | None = None
    location: str | None = None  # where it sits (ONNX subgraph path, nested model path)
    notes: tuple[str, ...] = ()
    # Why the file is invalid for this layer whatever the counts (operands an op's spec
    # refuses, e.g. a computed W that is a Concat of mismatched shapes): the check fails.
    defects: tuple[str, ...] = ()

    @property
    def params(self) -> int:
        """Every parameter of the cell, shared or not: what the formula is checked against."""
        return sum(t.tensor.params for t in self.tensors)

    @property
    def shared_with(self) -> tuple[str, ...]:
        """The rows holding tensors of this layer that its own row does not, each once."""
        return tuple(dict.fromkeys(t.shared_with for t in self.tensors if t.shared_with))


@dataclass(frozen=True)
class OptimizerState:
    values: int
    nbytes: int
    file_bytes: int

    @property
    def share_of_file(self) -> float:
        return self.nbytes / self.file_bytes if self.file_bytes else 0.0


@dataclass(frozen=True)
class Excluded:
    """Stored tensors left out of the totals on purpose, and why (e.g. ONNX initial states)."""

    reason: str
    tensors: tuple[Tensor, ...]

    @property
    def params(self) -> int:
        return sum(t.params for t in self.tensors)


@dataclass(frozen=True)
class Detail:
    """A fact about the file worth showing (IR version, opsets, external data files...)."""

    key: str
    value: str


# Bytes per element of the dtypes a state or a KV cache may be held in (`--state-dtype`).
STATE_DTYPES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8": 1,
    "int8": 1,
}


@dataclass(frozen=True)
class AttentionCache:
    """The KV cache one attention layer of a hybrid language model keeps per sequence: `width`
    elements per token (its key and value projections' outputs), for at most `window` tokens
    (a sliding window; None: the whole context), in `count` layers (a block shared by several
    layers keeps a cache in each)."""

    layer: str
    width: int
    window: int | None = None
    count: int = 1


@dataclass(frozen=True)
class Decoder:
    """A language model's decoder stack, where the reader recognised one: what its state per
    sequence and a same-sized transformer's KV cache follow from. `width` is d_model, `depth`
    the decoder layers; `dtype` the stored floating-point dtype activations run in."""

    architecture: str | None  # config.json's model_type, GGUF's general.architecture
    width: int
    depth: int
    dtype: str
    itemsize: int
    attention: tuple[AttentionCache, ...] = ()


@dataclass(frozen=True)
class Model:
    """Everything a reader found in one file."""

    path: str
    format: FileFormat
    producer: str | None
    layers: tuple[Layer, ...]
    recurrent_layers: tuple[RecurrentLayer, ...]
    trainable_known: bool = True
    optimizer: OptimizerState | None = None
    warnings: tuple[str, ...] = ()
    extra_tensors: tuple[Tensor, ...] = field(default=())  # counted in totals, owned by no layer
    excluded: tuple[Excluded, ...] = ()
    # Weights the graph applies whose values the file does not hold (TFLite resource variables
    # no initialiser assigns), with the shapes the graph declares: the total cannot count them,
    # so it is not the model's size (the size gates refuse such a file).
    unstored: tuple[Tensor, ...] = ()
    details: tuple[Detail, ...] = ()
    # The model's signature where the file states it (ONNX graph inputs/outputs, Keras
    # InputLayer shapes); empty where it does not.
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    # Bytes of every file the model was read from, when a reader read several (a sharded
    # checkpoint's index and shards); None: the file or directory the user named alone.
    stored_bytes: int | None = None
    # The file's own typed key/values where its format has them (GGUF: `general.architecture`,
    # `{arch}.block_count`, `{arch}.ssm.state_size`...), for analysis to read hyperparameters
    # from; empty for other formats. A plain dict (a worker pickles the model back), never
    # changed after the reader returns; not hashed.
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict, hash=False)
    decoder: Decoder | None = None


# --- what a report keeps of the text a file supplies ------------------------------------------

# The text fields of each class of the model, with the length each keeps. `Model.path` is the
# caller's (bounded by the file system). `Tensor.key` and `Tensor.sources` identify stored
# arrays: shortened too (the digest keeps distinct keys distinct), unless the caller reads values
# by them (`compare`: `bounded(model, keys=False)`).
_KEYS = (("key", NAME_LIMIT), ("sources", NAME_LIMIT))
_TEXT: dict[type, tuple[tuple[str, int], ...]] = {
    Tensor: (("name", NAME_LIMIT), ("dtype", NAME_LIMIT), *_KEYS),
    SharedTensor: (("owner", NAME_LIMIT),),
    TensorSpec: (("name", NAME_LIMIT), ("dtype", NAME_LIMIT)),
    Layer: (("name", NAME_LIMIT), ("type", NAME_LIMIT)),
    RecurrentTensor: (("gate", NAME_LIMIT), ("shared_with", NAME_LIMIT)),
    CellConfig: (("gate_order", NAME_LIMIT),),
    RecurrentLayer: (
        ("name", NAME_LIMIT),
        ("type", NAME_LIMIT),
        ("location", NAME_LIMIT),
        ("notes", TEXT_LIMIT),
        ("defects", TEXT_LIMIT),
    ),
    Excluded: (("reason", TEXT_LIMIT),),
    Detail: (("key", NAME_LIMIT), ("value", TEXT_LIMIT)),
    AttentionCache: (("layer", NAME_LIMIT),),
    Decoder: (("architecture", NAME_LIMIT), ("dtype", NAME_LIMIT)),
    Model: (("producer", NAME_LIMIT), ("warnings", TEXT_LIMIT)),
}
_SHAPES = {TensorSpec: "shape", Layer: "output_shape"}
_MAX_DEPTH = 8  # a model nests 5 deep: model, recurrent layer, recurrent tensor, tensor


def bounded(model: Model, *, keys: bool = True) -> Model:
    """The model as a report keeps it: every text the file supplied (names, types, dtypes,
    producer, notes, warnings, details, and with `keys` the tensors' keys) shortened to
    NAME_LIMIT or TEXT_LIMIT characters (`shortened`: the full length and a digest said), every
    dimension of a signature or an output shape no tensor can have made unknown (None). Applied
    once, where every reader's model passes (`formats.read_model`), after the reader: readers
    work with whole names (the state-dict grouping splits a parameter's name at its dots).
    Objects left as they are where nothing changes; a tensor reached from two rows stays one
    object."""
    result = _bounded(model, {}, 0, keys)
    assert isinstance(result, Model)
    return result


def _bounded(item: object, seen: dict[int, object], depth: int, keys: bool) -> object:
    if isinstance(item, tuple):
        items = tuple(_bounded(part, seen, depth + 1, keys) for part in item)
        return item if all(a is b for a, b in zip(items, item, strict=True)) else items
    fields = _TEXT.get(type(item))
    if fields is None:  # enums, numbers, None: nothing from a file to shorten
        return item
    known = seen.get(id(item))
    if known is not None:
        return known
    if depth > _MAX_DEPTH:
        raise ValueError(f"a model nested more than {_MAX_DEPTH} deep")
    changes: dict[str, object] = {}
    for name, limit in fields:
        if not keys and (name, limit) in _KEYS and type(item) is Tensor:
            continue
        value = getattr(item, name)
        if isinstance(value, str):
            kept: object = shortened(value, limit)
        elif isinstance(value, tuple):
            kept = tuple(shortened(v, limit) if isinstance(v, str) else v for v in value)
        else:
            continue
        if kept != value:
            changes[name] = kept
    shape = _SHAPES.get(type(item))
    if shape is not None:
        dims = getattr(item, shape)
        if _dims(dims) is not dims:
            changes[shape] = _dims(dims)
    for field_ in dataclasses.fields(item):  # type: ignore[arg-type]
        value = getattr(item, field_.name)
        if isinstance(value, (tuple, *_TEXT)) and field_.name not in changes:
            inner = _bounded(value, seen, depth + 1, keys)
            if inner is not value:
                changes[field_.name] = inner
    result = dataclasses.replace(item, **changes) if changes else item  # type: ignore[type-var]
    seen[id(item)] = result
    return result
