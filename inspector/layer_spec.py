"""Size a recurrent layer before it exists: `rnninspect formula CELL --units U --input-dim D`.

Turns the command's words into the arguments of `formula.derive` (which holds the formula);
what differs between cells and conventions is read from the tables below and `cells.CELLS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from inspector.cells import CELLS, Convention
from inspector.errors import UsageError
from inspector.formula import Derivation, derive
from inspector.model import BiasConvention, CellKind


@dataclass(frozen=True)
class CellName:
    kind: CellKind
    conv_rank: int | None = None  # ConvLSTM1D/2D/3D; None: taken from --kernel-size


CELL_NAMES: Mapping[str, CellName] = MappingProxyType(
    {
        "simplernn": CellName(CellKind.SIMPLE_RNN),
        "rnn": CellName(CellKind.SIMPLE_RNN),
        "lstm": CellName(CellKind.LSTM),
        "gru": CellName(CellKind.GRU),
        "convlstm": CellName(CellKind.CONV_LSTM),
        "convlstm1d": CellName(CellKind.CONV_LSTM, 1),
        "convlstm2d": CellName(CellKind.CONV_LSTM, 2),
        "convlstm3d": CellName(CellKind.CONV_LSTM, 3),
    }
)

# Bias vectors per direction when use_bias is on. ONNX (LSTM/GRU/RNN operator spec: B holds
# Wb and Rb) and PyTorch (bias_ih and bias_hh) always keep two; Keras keeps one, except GRU with
# reset_after=True, its default since Keras 2.3 and in Keras 3 (keras/src/layers/rnn/gru.py).
BIAS_BY_CONVENTION: Mapping[Convention, BiasConvention] = MappingProxyType(
    {
        Convention.KERAS: BiasConvention.SINGLE,
        Convention.ONNX: BiasConvention.DOUBLE,
        Convention.PYTORCH: BiasConvention.DOUBLE,
        Convention.TFLITE: BiasConvention.SINGLE,  # lstm_shared.h: one bias per gate
    }
)
KERAS_GRU_RESET_AFTER_DEFAULT = True


@dataclass(frozen=True)
class LayerSpec:
    """A recurrent layer described on the command line, ready for the formula."""

    kind: CellKind
    convention: Convention
    units: int
    input_dim: int
    directions: int
    use_bias: bool
    reset_after: bool | None  # GRU only
    bias: BiasConvention
    kernel_size: tuple[int, ...]
    gate_order: tuple[str, ...]
    projection: int = 0  # PyTorch LSTM proj_size; 0: none

    def derivation(self) -> Derivation:
        return derive(
            self.kind,
            self.units,
            self.input_dim,
            directions=self.directions,
            bias=self.bias,
            kernel_size=self.kernel_size,
            projection=self.projection,
        )


def layer_spec(
    cell: str,
    *,
    units: int,
    input_dim: int,
    convention: Convention = Convention.KERAS,
    bidirectional: bool = False,
    use_bias: bool = True,
    reset_after: bool | None = None,
    kernel_size: tuple[int, ...] = (),
    proj_size: int = 0,
) -> LayerSpec:
    name = CELL_NAMES.get(cell.strip().lower())
    if name is None:
        known = ", ".join(CELL_NAMES)
        raise UsageError(f"unknown cell '{cell}': expected one of {known}")
    for option, value in (("--units", units), ("--input-dim", input_dim)):
        if value < 1:
            raise UsageError(f"{option}: expected a positive whole number, found {value}")
    kind = name.kind
    orders = CELLS[kind].gate_order
    if convention not in orders:
        raise UsageError(
            f"{kind.value} has no {convention.value} layout: only the "
            f"{', '.join(c.value for c in orders)} convention defines it"
        )
    if reset_after is not None and kind is not CellKind.GRU:
        raise UsageError(f"--reset-after/--no-reset-after apply to GRU only, not {kind.value}")
    if kind is CellKind.GRU and reset_after is None and convention is Convention.KERAS:
        reset_after = KERAS_GRU_RESET_AFTER_DEFAULT
    return LayerSpec(
        kind=kind,
        convention=convention,
        units=units,
        input_dim=input_dim,
        directions=2 if bidirectional else 1,
        use_bias=use_bias,
        reset_after=reset_after,
        bias=_bias(kind, convention, use_bias, reset_after),
        kernel_size=_kernel_size(name, kernel_size),
        gate_order=orders[convention],
        projection=_projection(kind, convention, units, proj_size),
    )


def _bias(
    kind: CellKind, convention: Convention, use_bias: bool, reset_after: bool | None
) -> BiasConvention:
    if not use_bias:
        return BiasConvention.NONE
    if kind is CellKind.GRU and convention is Convention.KERAS and reset_after:
        return BiasConvention.DOUBLE
    return BIAS_BY_CONVENTION[convention]


def _projection(kind: CellKind, convention: Convention, units: int, proj_size: int) -> int:
    """PyTorch's nn.LSTM(proj_size=p) (torch/nn/modules/rnn.py, RNNBase.__init__): LSTM only,
    0 <= p < hidden_size; 0 means no projection."""
    if not proj_size:
        return 0
    if kind is not CellKind.LSTM or convention is not Convention.PYTORCH:
        raise UsageError(
            f"--proj-size applies to a PyTorch LSTM only (--convention pytorch), not "
            f"{kind.value} in the {convention.value} convention"
        )
    if not 0 < proj_size < units:
        raise UsageError(
            f"--proj-size: PyTorch requires 0 < proj_size < units ({units}), found {proj_size}"
        )
    return proj_size


def _kernel_size(name: CellName, sizes: tuple[int, ...]) -> tuple[int, ...]:
    if name.kind is not CellKind.CONV_LSTM:
        if sizes:
            raise UsageError(f"--kernel-size applies to ConvLSTM only, not {name.kind.value}")
        return ()
    if not sizes:
        raise UsageError("ConvLSTM needs --kernel-size, e.g. --kernel-size 3x3")
    if any(size < 1 for size in sizes):
        raise UsageError(f"--kernel-size: expected positive sizes, found {list(sizes)}")
    rank = name.conv_rank
    if rank is not None and len(sizes) == 1:
        return sizes * rank  # Keras: kernel_size=3 on ConvLSTM2D means (3, 3)
    if rank is not None and len(sizes) != rank:
        raise UsageError(
            f"--kernel-size: ConvLSTM{rank}D takes {rank} sizes (or one for all), "
            f"found {len(sizes)}"
        )
    return sizes


def parse_kernel_size(values: list[str]) -> tuple[int, ...]:
    """`--kernel-size 3 --kernel-size 3`, `--kernel-size 3x3` and `--kernel-size 3,3` alike."""
    sizes: list[int] = []
    for value in values:
        for part in value.lower().replace(",", "x").split("x"):
            if not part.strip().isdigit():
                raise UsageError(
                    f"--kernel-size: expected whole numbers such as 3 or 3x3, found '{value}'"
                )
            sizes.append(int(part))
    return tuple(sizes)
