"""Quantized ONNX models: which inputs of the quantized ops are weights (parameters, whatever
their dtype) and which are the scales and zero points that only describe them, and the
onnxruntime contrib recurrent ops.

Input positions follow the operator specs: ONNX Operators.md (DequantizeLinear, QuantizeLinear,
MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv) and onnxruntime's ContribOperators.md
for the com.microsoft ops (DynamicQuantizeLSTM, DynamicQuantizeMatMul, MatMulIntegerToFloat,
QAttention, QGemm, QLinearAdd/Mul, AttnLSTM). A data input (the activation a quantized op
reads) is listed as a weight too: it is only ever a stored tensor when the exporter folded a
constant operand into it (a quantized bias fed to QLinearAdd), and then it is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from inspector.model import CellKind


class QuantRole(Enum):
    WEIGHT = "weight"
    SCALE = "scale"
    ZERO_POINT = "zero point"


_W, _S, _Z = QuantRole.WEIGHT, QuantRole.SCALE, QuantRole.ZERO_POINT
# QLinear binary ops (com.microsoft QLinearAdd, QLinearMul): A, A_scale, A_zp, B, B_scale, B_zp,
# C_scale, C_zp.
_QLINEAR_BINARY = MappingProxyType({0: _W, 1: _S, 2: _Z, 3: _W, 4: _S, 5: _Z, 6: _S, 7: _Z})

QUANT_INPUTS: Mapping[str, Mapping[int, QuantRole]] = MappingProxyType(
    {
        "DequantizeLinear": MappingProxyType({0: _W, 1: _S, 2: _Z}),
        "QuantizeLinear": MappingProxyType({1: _S, 2: _Z}),
        "DynamicQuantizeLSTM": MappingProxyType({1: _W, 2: _W, 8: _S, 9: _Z, 10: _S, 11: _Z}),
        "MatMulInteger": MappingProxyType({0: _W, 1: _W, 2: _Z, 3: _Z}),
        "ConvInteger": MappingProxyType({0: _W, 1: _W, 2: _Z, 3: _Z}),
        "QLinearMatMul": _QLINEAR_BINARY,
        # x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B (int32 bias)
        "QLinearConv": MappingProxyType(
            {0: _W, 1: _S, 2: _Z, 3: _W, 4: _S, 5: _Z, 6: _S, 7: _Z, 8: _W}
        ),
        # input, weight, bias, input_scale, weight_scale, mask_index, input_zp, weight_zp, past
        "QAttention": MappingProxyType({0: _W, 1: _W, 3: _S, 4: _S, 6: _Z, 7: _Z}),
        # A, B, b_scale, b_zero_point, bias
        "DynamicQuantizeMatMul": MappingProxyType({0: _W, 1: _W, 2: _S, 3: _Z}),
        # A, B, a_scale, b_scale, a_zp, b_zp, bias
        "MatMulIntegerToFloat": MappingProxyType({0: _W, 1: _W, 2: _S, 3: _S, 4: _Z, 5: _Z}),
        # A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp
        "QGemm": MappingProxyType({0: _W, 1: _S, 2: _Z, 3: _W, 4: _S, 5: _Z, 6: _W, 7: _S, 8: _Z}),
        "QLinearAdd": _QLINEAR_BINARY,
        "QLinearMul": _QLINEAR_BINARY,
    }
)
# DynamicQuantizeLinear's outputs: y, y_scale, y_zero_point. A stored float multiplied by its
# y_scale is the weight's scale of a dynamically quantized MatMul (MatMulInteger -> Cast -> Mul).
DYNAMIC_SCALE_OUTPUT = ("DynamicQuantizeLinear", 1)


@dataclass(frozen=True)
class ContribRecurrent:
    """An onnxruntime com.microsoft recurrent op and how it stores its weights."""

    kind: CellKind
    gates_last: bool  # W [dirs, input, g·h], R [dirs, h, g·h] instead of ONNX's [dirs, g·h, *]
    extra_weights: Mapping[int, str]  # further weight inputs: held in the row, not in the split
    note: str


CONTRIB_RECURRENT: Mapping[str, ContribRecurrent] = MappingProxyType(
    {
        # ContribOperators.md: W [num_directions, input_size, 4*hidden_size] and R
        # [num_directions, hidden_size, 4*hidden_size], gates iofc like ONNX LSTM; B [dirs, 8h].
        "DynamicQuantizeLSTM": ContribRecurrent(
            CellKind.LSTM,
            gates_last=True,
            extra_weights=MappingProxyType({}),
            note=(
                "com.microsoft DynamicQuantizeLSTM (onnxruntime quantize_dynamic): W and R are "
                "quantized and stored transposed against ONNX LSTM, [dirs, input, 4·h] and "
                "[dirs, h, 4·h]; they count at their own itemsize, their scales and zero points "
                "are not parameters"
            ),
        ),
        # ContribOperators.md: W [num_directions, 4*hidden_size, input_size] over concat(X,
        # attention), R [num_directions, 4*hidden_size, hidden_size]; QW, MW, V, AW are the
        # attention mechanism's weights.
        "AttnLSTM": ContribRecurrent(
            CellKind.LSTM,
            gates_last=False,
            extra_weights=MappingProxyType({8: "QW", 9: "MW", 10: "V", 13: "AW"}),
            note=(
                "com.microsoft AttnLSTM: the cell reads concat(x, attention), so the input width "
                "is W's last dimension; the attention weights (QW, MW, V, AW) are in the layer's "
                "row, not in the cell's split"
            ),
        ),
    }
)
CONTRIB_DOMAIN = "com.microsoft"
