"""The data model every reader produces and everything downstream consumes.

Readers describe what is *stored* in a file (tensors, layers, recurrent layers with their
configuration); `analysis` derives the checks and totals; `render` formats them. Nothing here
formats for display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


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
    # The file's own typed key/values where its format has them (GGUF: `general.architecture`,
    # `{arch}.block_count`, `{arch}.ssm.state_size`...), for analysis to read hyperparameters
    # from; empty for other formats. A plain dict (a worker pickles the model back), never
    # changed after the reader returns; not hashed.
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict, hash=False)
    decoder: Decoder | None = None
