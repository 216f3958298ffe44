"""Structure as data: what distinguishes SimpleRNN, LSTM, GRU and ConvLSTM cells.

Everything that depends on the cell kind (gate count, gate order per convention, bias
convention) is read from these tables, so the formula and the tensor split are written once.
The recurrent blocks of language models (Mamba, RWKV, ...) are no stack of gates: each has an
entry here with no gates, and its structure in `inspector.blocks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from inspector.model import BiasConvention, CellConfig, CellKind, FileFormat


class Convention(Enum):
    """Whose layout and gate order the stored tensors follow."""

    KERAS = "keras"
    ONNX = "onnx"
    PYTORCH = "pytorch"
    TFLITE = "tflite"


@dataclass(frozen=True)
class CellSpec:
    """`pointwise`: element-wise operations per unit per time step and direction besides the
    bias adds, as each convention's equations write the step (see `inspector.compute`)."""

    kind: CellKind
    gates: int
    gate_order: Mapping[Convention, tuple[str, ...]]
    pointwise: Mapping[Convention, int]


CELLS: Mapping[CellKind, CellSpec] = MappingProxyType(
    {
        CellKind.SIMPLE_RNN: CellSpec(
            CellKind.SIMPLE_RNN,
            1,
            {Convention.KERAS: ("h",), Convention.ONNX: ("h",), Convention.PYTORCH: ("h",)},
            # x·W + h·U, the activation
            {Convention.KERAS: 2, Convention.ONNX: 2, Convention.PYTORCH: 2},
        ),
        # Keras: keras/src/layers/rnn/lstm.py splits kernel as i, f, c, o.
        # ONNX: operator spec, "W[iofc]". PyTorch: nn.LSTM docs, W_ii|W_if|W_ig|W_io.
        CellKind.LSTM: CellSpec(
            CellKind.LSTM,
            4,
            {
                Convention.KERAS: ("i", "f", "c", "o"),
                Convention.ONNX: ("i", "o", "f", "c"),
                Convention.PYTORCH: ("i", "f", "g", "o"),
                # tensorflow/lite/kernels/lstm_shared.h: one tensor per gate, input (1..4),
                # recurrent (5..8) and bias (12..15) each in the order input, forget, cell,
                # output; one bias per gate.
                Convention.TFLITE: ("i", "f", "c", "o"),
            },
            # 4 sums x·W + h·U, 4 activations, c = f·c + i·g (3), h = o·tanh(c) (2)
            {Convention.KERAS: 13, Convention.ONNX: 13, Convention.PYTORCH: 13},
        ),
        # Keras: z, r, h; ONNX: "W[zrh]"; PyTorch: W_ir|W_iz|W_in.
        CellKind.GRU: CellSpec(
            CellKind.GRU,
            3,
            {
                Convention.KERAS: ("z", "r", "h"),
                Convention.ONNX: ("z", "r", "h"),
                Convention.PYTORCH: ("r", "z", "n"),
            },
            # z, r: a sum and a sigmoid each (4); the candidate: r times its recurrent part, a sum,
            # tanh (3); the blend: Keras `z·h + (1 - z)·hh` and ONNX `(1 - z)·h~ + z·H` take 4
            # (keras/src/layers/rnn/gru.py, ONNX GRU spec), PyTorch `n + z·(h - n)` 3
            # (aten/src/ATen/native/RNN.cpp, GRUCell).
            {Convention.KERAS: 11, Convention.ONNX: 11, Convention.PYTORCH: 10},
        ),
        CellKind.CONV_LSTM: CellSpec(
            CellKind.CONV_LSTM,
            4,
            {Convention.KERAS: ("i", "f", "c", "o")},
            {Convention.KERAS: 13},  # as LSTM, at every output position
        ),
        # The recurrent blocks of `inspector.blocks.BLOCKS`: their tensors are split by the
        # block table (input projection, convolution, state transition, ...), not by gate.
        **{
            kind: CellSpec(kind, 0, {Convention.KERAS: ()}, {Convention.KERAS: 0})
            for kind in (
                CellKind.MAMBA,
                CellKind.MAMBA2,
                CellKind.RWKV_TIME_MIX,
                CellKind.RWKV_CHANNEL_MIX,
                CellKind.MLSTM,
                CellKind.RG_LRU,
                CellKind.SHORT_CONV,
                CellKind.GATED_DELTANET,
                CellKind.KIMI_DELTA_ATTENTION,
            )
        },
    }
)


# A dense cell's kind from its gate count, for readers that see only stacked weights (weights-only
# files, lowered graphs, state dicts). ConvLSTM also has 4 gates; readers tell it by kernel rank.
KIND_BY_GATES: Mapping[int, CellKind] = MappingProxyType(
    {
        spec.gates: kind
        for kind, spec in CELLS.items()
        if kind is not CellKind.CONV_LSTM and spec.gates > 0
    }
)


@dataclass(frozen=True)
class KerasRecurrentClass:
    """A Keras recurrent layer or cell class.

    `bias` None means the bias convention follows the GRU `reset_after` flag.
    `conv_rank` is the number of spatial dimensions of a ConvLSTM kernel.
    """

    kind: CellKind
    bias: BiasConvention | None = BiasConvention.SINGLE
    conv_rank: int = 0
    peepholes: bool = False


_SIMPLE = KerasRecurrentClass(CellKind.SIMPLE_RNN)
_LSTM = KerasRecurrentClass(CellKind.LSTM)
_GRU = KerasRecurrentClass(CellKind.GRU, bias=None)

KERAS_RECURRENT: Mapping[str, KerasRecurrentClass] = MappingProxyType(
    {
        "SimpleRNN": _SIMPLE,
        "SimpleRNNCell": _SIMPLE,
        "LSTM": _LSTM,
        "LSTMCell": _LSTM,
        "LSTMV1": _LSTM,
        "UnifiedLSTM": _LSTM,
        "GRU": _GRU,
        "GRUCell": _GRU,
        "GRUV1": _GRU,
        "UnifiedGRU": _GRU,
        # CuDNN kernels keep PyTorch-style double biases (keras CuDNNLSTM: bias shape 8u).
        "CuDNNLSTM": KerasRecurrentClass(CellKind.LSTM, bias=BiasConvention.DOUBLE),
        "CuDNNGRU": KerasRecurrentClass(CellKind.GRU, bias=BiasConvention.DOUBLE),
        "PeepholeLSTMCell": KerasRecurrentClass(CellKind.LSTM, peepholes=True),
        "ConvLSTM1D": KerasRecurrentClass(CellKind.CONV_LSTM, conv_rank=1),
        "ConvLSTM2D": KerasRecurrentClass(CellKind.CONV_LSTM, conv_rank=2),
        "ConvLSTM3D": KerasRecurrentClass(CellKind.CONV_LSTM, conv_rank=3),
        "ConvLSTM1DCell": KerasRecurrentClass(CellKind.CONV_LSTM, conv_rank=1),
        "ConvLSTM2DCell": KerasRecurrentClass(CellKind.CONV_LSTM, conv_rank=2),
        "ConvLSTM3DCell": KerasRecurrentClass(CellKind.CONV_LSTM, conv_rank=3),
    }
)


def gate_count(kind: CellKind) -> int:
    return CELLS[kind].gates


def gate_order(kind: CellKind, convention: Convention) -> tuple[str, ...]:
    return CELLS[kind].gate_order[convention]


_CONVENTIONS: Mapping[FileFormat, Convention] = MappingProxyType(
    {
        FileFormat.ONNX: Convention.ONNX,
        FileFormat.SAFETENSORS: Convention.PYTORCH,
        FileFormat.PYTORCH: Convention.PYTORCH,
        FileFormat.HF_CHECKPOINT: Convention.PYTORCH,
        FileFormat.TFLITE: Convention.TFLITE,
        # GGUF shapes read in PyTorch's order (ne reversed) hold PyTorch's layout: llama.cpp's
        # converter writes the state dict's arrays as they are.
        FileFormat.GGUF: Convention.PYTORCH,
    }
)


def convention_of(file_format: FileFormat) -> Convention:
    """Whose layout and gate order a file's recurrent tensors follow."""
    return _CONVENTIONS.get(file_format, Convention.KERAS)


def cell_gate_order(cell: CellConfig, convention: Convention) -> tuple[str, ...]:
    """The order the file stores a cell's gates in: its own where it names them (Keras 1),
    else the cell table's order for the file's convention."""
    if cell.gate_order is not None:
        return cell.gate_order
    orders = CELLS[cell.kind].gate_order
    return orders.get(convention, orders[Convention.KERAS])


def pointwise_ops(kind: CellKind, convention: Convention) -> int:
    """Element-wise operations per unit per step and direction, bias adds excluded."""
    table = CELLS[kind].pointwise
    return table.get(convention, table[Convention.KERAS])


def bias_vectors(convention: BiasConvention) -> int:
    """Bias vectors of g·u elements per direction."""
    return {BiasConvention.NONE: 0, BiasConvention.SINGLE: 1, BiasConvention.DOUBLE: 2}[convention]
