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

from inspector.cells import KIND_BY_GATES
from inspector.formats.tflite.schema import ModelInfo, SubGraphInfo, TensorInfo
from inspector.model import BiasConvention, CellKind, TensorRole


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


_Product = tuple[TensorInfo, TensorInfo | None]  # a FULLY_CONNECTED's weight and bias


def _cell(body: SubGraphInfo, source: Source) -> Loop | None:
    state_inputs = set(body.inputs)
    producers = {out: op for op in body.operators for out in op.outputs}
    on_state: list[_Product] = []  # applied to a loop-carried value: the hidden state
    on_step: list[_Product] = []  # applied to the step's input, gathered from the sequence
    derived: list[_Product] = []  # applied to something computed in the step (GRU r ⊙ h)
    for op in body.operators:
        if op.op != "FULLY_CONNECTED" or len(op.inputs) < 2:
            continue
        weight = source(body, op.inputs[1])
        if weight is None or len(weight.shape) != 2:
            continue
        product = (weight, source(body, op.inputs[2]) if len(op.inputs) > 2 else None)
        producer = producers.get(op.inputs[0])
        if op.inputs[0] in state_inputs:
            on_state.append(product)
        elif producer is not None and producer.op == "GATHER":
            on_step.append(product)
        else:
            derived.append(product)
    if len(on_state) != 1 or len(on_step) > 1:
        return None
    units = on_state[0][0].shape[1]
    # Keras GRU(reset_after=False) multiplies the state by U_z|U_r, and r ⊙ h by U_h apart.
    recurrent = on_state + [p for p in derived if p[0].shape[1] == units]
    rows = sum(weight.shape[0] for weight, _ in recurrent)
    kernels = on_step or [p for p in derived if p[0].shape[0] == rows and p not in recurrent]
    if units == 0 or rows % units or rows // units not in KIND_BY_GATES or len(kernels) != 1:
        return None
    kernel, kernel_bias = kernels[0]
    if kernel.shape[0] != rows:
        return None
    kind = KIND_BY_GATES[rows // units]
    tensors: list[tuple[TensorInfo, TensorRole]] = [(kernel, TensorRole.KERNEL)]
    tensors += [(weight, TensorRole.RECURRENT_KERNEL) for weight, _ in recurrent]
    biases = [b for b in (kernel_bias, *(bias for _, bias in recurrent)) if b is not None]
    reset_after: bool | None = None
    if len(biases) == 2:
        bias = BiasConvention.DOUBLE
        tensors += [(biases[0], TensorRole.INPUT_BIAS), (biases[1], TensorRole.RECURRENT_BIAS)]
    elif len(biases) == 1:
        bias = BiasConvention.SINGLE
        tensors.append((biases[0], TensorRole.BIAS))
    elif biases:
        return None
    else:
        bias = BiasConvention.NONE
    if kind is CellKind.GRU:
        reset_after = len(biases) == 2 and len(recurrent) == 1
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
