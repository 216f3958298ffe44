"""Recurrences the TFLite converter lowered into a WHILE loop instead of a fused op (Keras GRU
and SimpleRNN, LSTMs with options the fused kernel lacks).

The body subgraph applies the cell once per step. Its weights are the constant operands of
FULLY_CONNECTED ops (weights [out, in], TFLite's transposed layout): one applied directly to a
loop-carried body input (the hidden state) is the recurrent kernel [g·u, u]; one applied to the
step's input (gathered from the sequence) is the kernel [g·u, d]. The row ratio g gives the cell
(1 SimpleRNN, 3 GRU, 4 LSTM); two bias operands are GRU's reset_after biases (Keras's (2, 3u)
bias split per matmul), one a single bias. Found the way ONNX Loop bodies are
(inspector/formats/onnx/lowered.py), from the graph's structure alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inspector.formats.tflite.schema import ModelInfo, SubGraphInfo, TensorInfo
from inspector.model import BiasConvention, CellKind, TensorRole

_KIND_BY_GATES = {1: CellKind.SIMPLE_RNN, 3: CellKind.GRU, 4: CellKind.LSTM}


@dataclass(frozen=True)
class Loop:
    body: int  # subgraph index
    name: str
    kind: CellKind
    units: int
    input_dim: int
    bias: BiasConvention
    reset_after: bool | None
    tensors: tuple[tuple[TensorInfo, TensorRole], ...]


Source = Callable[[SubGraphInfo, int], TensorInfo | None]  # the weight behind an op input


def find(info: ModelInfo, source: Source) -> list[Loop]:
    found: list[Loop] = []
    seen: set[int] = set()
    for graph in info.subgraphs:
        for op in graph.operators:
            body = op.body
            if op.op != "WHILE" or body is None or body in seen:
                continue
            if not 0 <= body < len(info.subgraphs) or body == graph.index:
                continue
            loop = _cell(info.subgraphs[body], source)
            if loop is not None:
                seen.add(body)
                found.append(loop)
    return found


def _cell(body: SubGraphInfo, source: Source) -> Loop | None:
    state_inputs = set(body.inputs)
    recurrent: list[tuple[TensorInfo, TensorInfo | None]] = []
    kernels: list[tuple[TensorInfo, TensorInfo | None]] = []
    for op in body.operators:
        if op.op != "FULLY_CONNECTED" or len(op.inputs) < 2:
            continue
        weight = source(body, op.inputs[1])
        if weight is None or len(weight.shape) != 2:
            continue
        operand = source(body, op.inputs[2]) if len(op.inputs) > 2 else None
        target = recurrent if op.inputs[0] in state_inputs else kernels
        target.append((weight, operand))
    if len(recurrent) != 1:
        return None
    (recurrent_weight, recurrent_bias) = recurrent[0]
    rows, units = recurrent_weight.shape
    if units == 0 or rows % units or rows // units not in _KIND_BY_GATES:
        return None
    matching = [(w, b) for w, b in kernels if w.shape[0] == rows]
    if len(matching) != 1:
        return None
    kernel, kernel_bias = matching[0]
    kind = _KIND_BY_GATES[rows // units]
    tensors: list[tuple[TensorInfo, TensorRole]] = [
        (kernel, TensorRole.KERNEL),
        (recurrent_weight, TensorRole.RECURRENT_KERNEL),
    ]
    biases = [b for b in (kernel_bias, recurrent_bias) if b is not None]
    reset_after: bool | None = None
    if len(biases) == 2:
        bias = BiasConvention.DOUBLE
        tensors += [(biases[0], TensorRole.INPUT_BIAS), (biases[1], TensorRole.RECURRENT_BIAS)]
    elif biases:
        bias = BiasConvention.SINGLE
        tensors.append((biases[0], TensorRole.BIAS))
    else:
        bias = BiasConvention.NONE
    if kind is CellKind.GRU:
        reset_after = len(biases) == 2
    name = body.name.removesuffix("/while_body").removesuffix("while_body").rstrip("/")
    return Loop(
        body=body.index,
        name=name or f"while_body_{body.index}",
        kind=kind,
        units=units,
        input_dim=kernel.shape[1],
        bias=bias,
        reset_after=reset_after,
        tensors=tuple(tensors),
    )
