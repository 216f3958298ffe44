"""TFLite's fused recurrent operators and the meaning of each input position.

Input positions follow the kernels (tensorflow/lite/kernels/lstm_shared.h for LSTM and
UNIDIRECTIONAL_SEQUENCE_LSTM; bidirectional_sequence_lstm.cc, basic_rnn.cc,
unidirectional_sequence_rnn.cc, bidirectional_sequence_rnn.cc, svdf.cc). TFLite stores one
tensor per LSTM gate: input-to-{input, forget, cell, output} weights of shape [units, input],
recurrent-to-{...} of [units, output], gate biases of [units], peepholes (cell-to-gate) of
[units], the projection [output, units] and its bias, and layer-norm coefficients of [units].
The input gate's tensors are absent (-1) when the cell couples input and forget gates (CIFG).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from inspector.model import CellKind, Direction, TensorRole


@dataclass(frozen=True)
class Slot:
    role: TensorRole | None  # None: a layer-norm coefficient (no formula role)
    gate: str | None
    direction: Direction = Direction.FORWARD


_GATES = ("i", "f", "c", "o")


def _lstm_slots(first: int, direction: Direction) -> dict[int, Slot]:
    """lstm_shared.h: kInputToInputWeightsTensor = 1 ... kProjectionBiasTensor = 17, relative
    to `first` for the backward half of a bidirectional op."""
    slots: dict[int, Slot] = {}
    for k, gate in enumerate(_GATES):
        slots[first + k] = Slot(TensorRole.KERNEL, gate, direction)  # 1..4
        slots[first + 4 + k] = Slot(TensorRole.RECURRENT_KERNEL, gate, direction)  # 5..8
        slots[first + 11 + k] = Slot(TensorRole.BIAS, gate, direction)  # 12..15
    for k, gate in enumerate(("i", "f", "o")):
        slots[first + 8 + k] = Slot(TensorRole.PEEPHOLE, gate, direction)  # 9..11
    slots[first + 15] = Slot(TensorRole.PROJECTION, None, direction)  # 16 weights
    slots[first + 16] = Slot(TensorRole.PROJECTION, None, direction)  # 17 bias
    return slots


_UNI_LSTM = {
    **_lstm_slots(1, Direction.FORWARD),
    # 18, 19: output and cell state (variables); 20..23: layer-norm coefficients.
    **{20 + k: Slot(None, gate) for k, gate in enumerate(_GATES)},
}
# bidirectional_sequence_lstm.cc: forward 1..17, backward 18..34, states 35..38, aux input 39,
# forward aux weights 40..43, backward aux weights 44..47 (extra input weights, counted apart).
_BI_LSTM = {
    **_lstm_slots(1, Direction.FORWARD),
    **_lstm_slots(18, Direction.BACKWARD),
    **{40 + k: Slot(TensorRole.KERNEL, f"aux_{gate}") for k, gate in enumerate(_GATES)},
    **{
        44 + k: Slot(TensorRole.KERNEL, f"aux_{gate}", Direction.BACKWARD)
        for k, gate in enumerate(_GATES)
    },
}
# basic_rnn.cc / unidirectional_sequence_rnn.cc: input 0, weights 1 [units, input], recurrent
# weights 2 [units, units], bias 3, hidden state 4.
_RNN = {
    1: Slot(TensorRole.KERNEL, None),
    2: Slot(TensorRole.RECURRENT_KERNEL, None),
    3: Slot(TensorRole.BIAS, None),
}
# bidirectional_sequence_rnn.cc: fw weights 1, fw recurrent 2, fw bias 3, fw state 4, bw 5..8,
# aux input 9, fw aux weights 10, bw aux weights 11.
_BI_RNN = {
    **_RNN,
    5: Slot(TensorRole.KERNEL, None, Direction.BACKWARD),
    6: Slot(TensorRole.RECURRENT_KERNEL, None, Direction.BACKWARD),
    7: Slot(TensorRole.BIAS, None, Direction.BACKWARD),
    10: Slot(TensorRole.KERNEL, "aux"),
    11: Slot(TensorRole.KERNEL, "aux", Direction.BACKWARD),
}


@dataclass(frozen=True)
class FusedOp:
    kind: CellKind
    directions: int
    slots: Mapping[int, Slot]
    per_gate: bool  # one tensor per gate (LSTM) rather than one for all
    states: frozenset[int]  # positions of the state inputs (a constant there is an initial state)


FUSED: Mapping[str, FusedOp] = MappingProxyType(
    {
        "LSTM": FusedOp(CellKind.LSTM, 1, _UNI_LSTM, True, frozenset({18, 19})),
        "UNIDIRECTIONAL_SEQUENCE_LSTM": FusedOp(
            CellKind.LSTM, 1, _UNI_LSTM, True, frozenset({18, 19})
        ),
        "BIDIRECTIONAL_SEQUENCE_LSTM": FusedOp(
            CellKind.LSTM, 2, _BI_LSTM, True, frozenset({35, 36, 37, 38})
        ),
        "RNN": FusedOp(CellKind.SIMPLE_RNN, 1, _RNN, False, frozenset({4})),
        "UNIDIRECTIONAL_SEQUENCE_RNN": FusedOp(CellKind.SIMPLE_RNN, 1, _RNN, False, frozenset({4})),
        "BIDIRECTIONAL_SEQUENCE_RNN": FusedOp(
            CellKind.SIMPLE_RNN, 2, _BI_RNN, False, frozenset({4, 8})
        ),
    }
)

# svdf.cc: input 0, weights_feature 1 [filters, input], weights_time 2 [filters, memory],
# bias 3 [units], state 4. A rank-factored filter over time, not a gated cell: reported as a
# recurrent op without a closed-form check.
SVDF = "SVDF"
SVDF_STATES = frozenset({4})
