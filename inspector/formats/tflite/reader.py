"""TFLite models (`.tflite` flatbuffers, "TFL3" at byte 4), read with our own bounded flatbuffer
walk (`flatbuffer.py`, `schema.py`): only a handful of tables are needed, so the `flatbuffers`
runtime and TensorFlow's generated schema are not required.

What counts as a parameter: a tensor with a non-empty buffer (a constant) that holds weights:
floating-point, or integer with quantization scales (int8/int16 weights, int32 biases of
quantized ops), counted at its stored itemsize. Integer constants without scales (shapes,
indices, axes), scalars, and the constant initial values handed to a WHILE loop (initial
states) are listed as excluded. Tensors sharing one buffer count once. Buffer contents are
never read for a report: counts come from shapes.

Layers: every operator with weight inputs is a row. Recurrent layers: the fused ops
(`fused.py`), and recurrences the converter lowered into WHILE loops (`lowered.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from inspector.errors import CorruptModelError
from inspector.formats.source import Source
from inspector.formats.tflite import fused, lowered
from inspector.formats.tflite.flatbuffer import FlatError
from inspector.formats.tflite.schema import ModelInfo, OperatorInfo, SubGraphInfo, TensorInfo, parse
from inspector.model import (
    BiasConvention,
    CellConfig,
    Detail,
    Direction,
    Excluded,
    FileFormat,
    Layer,
    Model,
    RecurrentLayer,
    RecurrentTensor,
    Tensor,
    TensorRole,
    TensorSpec,
    WidthSource,
)


def read(path: Source) -> Model:
    with path.view() as buf:
        try:
            info = parse(buf)
        except FlatError as error:
            raise CorruptModelError(
                f"{path}: damaged TFLite flatbuffer ({error}); the file is truncated or not a "
                "TFLite model"
            ) from None
    return _Builder(path, info).model()


@dataclass
class _Builder:
    path: Source
    info: ModelInfo
    warnings: list[str] = field(default_factory=list)
    _producers: dict[int, dict[int, OperatorInfo]] = field(default_factory=dict)

    # --- tensors ----------------------------------------------------------------------

    def constant(self, tensor: TensorInfo) -> bool:
        buffers = self.info.buffer_bytes
        return 0 < tensor.buffer < len(buffers) and buffers[tensor.buffer] > 0

    def is_param(self, tensor: TensorInfo) -> bool:
        return (
            self.constant(tensor)
            and bool(tensor.shape)
            and (tensor.dtype.is_float or tensor.scales > 0)
        )

    def tensor(self, graph: SubGraphInfo, tensor: TensorInfo) -> Tensor:
        # Keyed by (subgraph, index): a tensor read by two ops counts once. Tensors that
        # share one buffer (the converter dedupes identical constants) are still distinct
        # weights of the model, as Keras counts them.
        return Tensor(
            f"{graph.index}:{tensor.index}",
            tensor.name or f"tensor_{tensor.index}",
            tensor.shape,
            tensor.dtype.name,
            tensor.dtype.itemsize,
        )

    def source(self, graph: SubGraphInfo, index: int) -> TensorInfo | None:
        """The weight behind an operator input: the constant itself, or the constant a
        DEQUANTIZE op widens (float16 and some int8 conversions store weights that way)."""
        if not 0 <= index < len(graph.tensors):
            return None
        tensor = graph.tensors[index]
        if self.is_param(tensor):
            return tensor
        producer = self.producers(graph).get(index)
        if producer is not None and producer.op == "DEQUANTIZE" and producer.inputs:
            first = producer.inputs[0]
            if 0 <= first < len(graph.tensors) and self.is_param(graph.tensors[first]):
                return graph.tensors[first]
        return None

    def producers(self, graph: SubGraphInfo) -> dict[int, OperatorInfo]:
        cached = self._producers.get(graph.index)
        if cached is None:
            cached = {out: op for op in graph.operators for out in op.outputs}
            self._producers[graph.index] = cached
        return cached

    def op_params(self, graph: SubGraphInfo, op: OperatorInfo) -> list[TensorInfo]:
        if op.op == "DEQUANTIZE":
            return []  # its constant is attributed to the ops that read its output
        out: dict[int, TensorInfo] = {}
        for index in op.inputs:
            found = self.source(graph, index)
            if found is not None:
                out.setdefault(found.index, found)
        return list(out.values())

    # --- model ------------------------------------------------------------------------

    def model(self) -> Model:
        layers: list[Layer] = []
        recurrent: list[RecurrentLayer] = []
        loops = lowered.find(self.info, self.source)
        built_loops = {
            loop.body: self._lowered(self.info.subgraphs[loop.body], loop) for loop in loops
        }
        initial = self._loop_initial_values()
        for graph in self.info.subgraphs:
            built = built_loops.get(graph.index)
            if built is not None:  # the body's weights make one row, the recurrent layer's
                tensors = {
                    self.tensor(graph, t).key: self.tensor(graph, t)
                    for op in graph.operators
                    for t in self.op_params(graph, op)
                }
                layers.append(Layer(built.name, built.type, tuple(tensors.values())))
                continue
            fused_ops: list[tuple[OperatorInfo, RecurrentLayer]] = []
            for op in graph.operators:
                if op.op == "WHILE" and op.body in built_loops:
                    fused_ops.append((op, built_loops[op.body]))
            for op in graph.operators:
                params = [
                    t
                    for t in self.op_params(graph, op)
                    if t.index not in initial.get(graph.index, ())
                ]
                if not params:
                    continue
                name = _op_name(graph, op)
                layers.append(Layer(name, op.op, tuple(self.tensor(graph, t) for t in params)))
                spec = fused.FUSED.get(op.op)
                if spec is not None:
                    found = self._fused(graph, op, spec, name)
                    if found is not None:
                        fused_ops.append((op, found))
                elif op.op == fused.SVDF:
                    self.warnings.append(
                        f"{name}: SVDF is a rank-factored filter over time, not a gated cell; its "
                        "weights are listed but no formula applies"
                    )
            recurrent.extend(self._pair_directions(graph, fused_ops))
        claimed = {t.key for layer in layers for t in layer.tensors}
        extra: list[Tensor] = []
        excluded_consts: dict[str, Tensor] = {}
        excluded_initial: dict[str, Tensor] = {}
        for graph in self.info.subgraphs:
            for tensor in graph.tensors:
                if not self.constant(tensor):
                    continue
                item = self.tensor(graph, tensor)
                if tensor.index in initial.get(graph.index, ()) and self.is_param(tensor):
                    excluded_initial.setdefault(item.key, item)
                elif not self.is_param(tensor):
                    excluded_consts.setdefault(item.key, item)
                elif item.key not in claimed:
                    extra.append(item)
                    claimed.add(item.key)
        excluded = []
        if excluded_initial:
            excluded.append(
                Excluded(
                    "constant initial values of WHILE loops (initial states), not weights",
                    tuple(excluded_initial.values()),
                )
            )
        if excluded_consts:
            excluded.append(
                Excluded(
                    "integer constants without quantization (shapes, indices, axes) and scalars: "
                    "operator arguments, not weights",
                    tuple(excluded_consts.values()),
                )
            )
        if extra:
            self.warnings.append(
                f"{len(extra)} weight tensor(s) used by no operator are counted as they are"
            )
        description = self.info.description
        producer = f"TFLite schema {self.info.version}" + (
            f" ({description})" if description else ""
        )
        main = self.info.subgraphs[0] if self.info.subgraphs else None
        return Model(
            path=str(self.path),
            format=FileFormat.TFLITE,
            producer=producer,
            layers=tuple(layers),
            recurrent_layers=tuple(recurrent),
            trainable_known=False,
            warnings=tuple(self.warnings),
            extra_tensors=tuple(extra),
            excluded=tuple(excluded),
            inputs=_specs(main, main.inputs) if main else (),
            outputs=_specs(main, main.outputs) if main else (),
            details=(
                Detail("subgraphs", str(len(self.info.subgraphs))),
                Detail("operators", str(sum(len(g.operators) for g in self.info.subgraphs))),
            ),
        )

    def _loop_initial_values(self) -> dict[int, set[int]]:
        """Constants handed to a WHILE loop or to a recurrent op's state inputs: initial
        states, not weights (as ONNX's initial_h / initial_c are not)."""
        found: dict[int, set[int]] = {}
        for graph in self.info.subgraphs:
            for op in graph.operators:
                spec = fused.FUSED.get(op.op)
                if op.op == "WHILE":
                    positions: Iterable[int] = range(len(op.inputs))
                elif spec is not None:
                    positions = spec.states
                elif op.op == fused.SVDF:
                    positions = fused.SVDF_STATES
                else:
                    continue
                for position in positions:
                    if position < len(op.inputs):
                        found_source = self.source(graph, op.inputs[position])
                        if found_source is not None:
                            found.setdefault(graph.index, set()).add(found_source.index)
        return found

    # --- recurrent layers -------------------------------------------------------------

    def _fused(
        self, graph: SubGraphInfo, op: OperatorInfo, spec: fused.FusedOp, name: str
    ) -> RecurrentLayer | None:
        roles: list[RecurrentTensor] = []
        notes: list[str] = []
        for position, index in enumerate(op.inputs):
            slot = spec.slots.get(position)
            tensor = self.source(graph, index) if slot is not None else None
            if slot is None or tensor is None:
                continue
            if slot.role is None:
                notes.append(
                    f"layer-normalization coefficients ({tensor.name}) are in the op's row, not "
                    "in the formula"
                )
                continue
            roles.append(
                RecurrentTensor(self.tensor(graph, tensor), slot.role, slot.direction, slot.gate)
            )
        forward = [r for r in roles if r.direction is Direction.FORWARD]
        kernel = _first(forward, TensorRole.KERNEL)
        recurrent = _first(forward, TensorRole.RECURRENT_KERNEL)
        if kernel is None or recurrent is None or len(kernel.shape) != 2:
            self.warnings.append(f"{name}: {op.op} without constant weights; not checked")
            return None
        if spec.per_gate and not any(
            r.gate == "i" and r.role is TensorRole.KERNEL for r in forward
        ):
            notes.append(
                "no input-gate tensors: the op couples the input and forget gates (CIFG), "
                "which the formula does not model"
            )
        if any(r.gate is not None and r.gate.startswith("aux") for r in roles):
            notes.append("auxiliary-input weights are counted with the kernels")
        reversed_input = _produced_by(graph, op.inputs[0] if op.inputs else -1, "REVERSE_V2")
        if reversed_input:
            notes.append(
                "runs backward over time: its input is reversed (REVERSE_V2), as for the "
                "backward layer of a converted Keras Bidirectional"
            )
        shared = _shared_slots(roles)
        if shared:
            notes.append(
                f"{shared}: the converter let identical constants share one tensor, so the file "
                "stores fewer values than the cell has parameters (the total counts each stored "
                "tensor once)"
            )
        has_bias = any(r.role is TensorRole.BIAS for r in roles)
        cell = CellConfig(
            kind=spec.kind,
            units=kernel.shape[0],
            use_bias=has_bias,
            bias=BiasConvention.SINGLE if has_bias else BiasConvention.NONE,
            peepholes=any(r.role is TensorRole.PEEPHOLE for r in roles),
        )
        return RecurrentLayer(
            name=name,
            type=op.op,
            cell=cell,
            directions=spec.directions,
            tensors=tuple(roles),
            input_dim=kernel.shape[1],
            input_dim_source=WidthSource.TENSOR,
            location=graph.name if graph.index else None,
            notes=tuple(notes),
        )

    def _pair_directions(
        self, graph: SubGraphInfo, found: Sequence[tuple[OperatorInfo, RecurrentLayer]]
    ) -> list[RecurrentLayer]:
        """The converter turns a Keras Bidirectional into two unidirectional ops, the backward
        one reading the time-reversed input (REVERSE_V2 of the same tensor): one layer of two
        directions again, as the source has it."""
        producers = self.producers(graph)
        merged: dict[int, RecurrentLayer] = {}
        used: set[int] = set()
        for backward_op, backward in found:
            reversed_inputs = [
                reverse.inputs[0]
                for reverse in (producers.get(i) for i in _sequence_inputs(backward_op))
                if reverse is not None and reverse.op == "REVERSE_V2" and reverse.inputs
            ]
            if not reversed_inputs:
                continue
            for forward_op, forward in found:
                if (
                    forward_op.index in used
                    or forward_op is backward_op
                    or forward.directions != 1
                    or backward.directions != 1
                    or reversed_inputs[0] not in _sequence_inputs(forward_op)
                    or forward.cell.kind is not backward.cell.kind
                    or forward.lowered is not backward.lowered
                ):
                    continue
                used.update({forward_op.index, backward_op.index})
                merged[forward_op.index] = _bidirectional(forward, backward)
                break
        out = []
        for op, layer in found:
            if op.index in merged:
                out.append(merged[op.index])
            elif op.index not in used:
                out.append(layer)
        return out

    def _lowered(self, graph: SubGraphInfo, loop: lowered.Loop) -> RecurrentLayer:
        roles = [
            RecurrentTensor(self.tensor(graph, tensor), role, Direction.FORWARD)
            for tensor, role in loop.tensors
        ]
        return RecurrentLayer(
            name=loop.name,
            type=f"WHILE({loop.kind.value})",
            cell=CellConfig(
                kind=loop.kind,
                units=loop.units,
                use_bias=loop.bias is not BiasConvention.NONE,
                reset_after=loop.reset_after,
                bias=loop.bias,
            ),
            directions=1,
            tensors=tuple(roles),
            input_dim=loop.input_dim,
            input_dim_source=WidthSource.TENSOR,
            lowered=True,
            location=graph.name or f"subgraph {graph.index}",
            notes=(
                f"lowered into a WHILE loop (body subgraph {graph.index}): weights found as "
                "FULLY_CONNECTED on the loop-carried state and on the step input",
                *(
                    ()
                    if loop.bias is not BiasConvention.NONE
                    else (
                        "no bias operand in the loop: the converter drops an all-zero bias, so "
                        "a layer built with biases that are still zero looks bias-free here",
                    )
                ),
            ),
        )


def _specs(graph: SubGraphInfo, indices: Sequence[int]) -> tuple[TensorSpec, ...]:
    """The main subgraph's inputs or outputs; `shape_signature` marks dynamic dimensions -1."""
    specs = []
    for index in indices:
        if not 0 <= index < len(graph.tensors):
            continue
        tensor = graph.tensors[index]
        dims: tuple[int | None, ...] = tensor.shape
        if tensor.shape_signature is not None and len(tensor.shape_signature) == len(tensor.shape):
            dims = tuple(None if d < 0 else d for d in tensor.shape_signature)
        specs.append(TensorSpec(tensor.name, dims, tensor.dtype.name))
    return tuple(specs)


def _sequence_inputs(op: OperatorInfo) -> tuple[int, ...]:
    """Where an op reads its sequence: a fused op's input 0; any operand of a WHILE loop."""
    if op.op == "WHILE":
        return op.inputs
    return op.inputs[:1]


def _bidirectional(forward: RecurrentLayer, backward: RecurrentLayer) -> RecurrentLayer:
    tensors = forward.tensors + tuple(
        RecurrentTensor(t.tensor, t.role, Direction.BACKWARD, t.gate) for t in backward.tensors
    )
    notes = dict.fromkeys(
        n for n in forward.notes + backward.notes if not n.startswith("runs back")
    )
    return RecurrentLayer(
        name=f"{forward.name}+{backward.name}",
        type=f"{forward.type} ×2",
        cell=forward.cell,
        directions=2,
        tensors=tensors,
        backward_cell=backward.cell if backward.cell != forward.cell else None,
        input_dim=forward.input_dim,
        input_dim_source=forward.input_dim_source,
        lowered=forward.lowered,
        location=forward.location,
        notes=(
            f"a bidirectional pair: {forward.name} runs forward, {backward.name} over the "
            "time-reversed input (REVERSE_V2), as the converter writes a Keras Bidirectional",
            *notes,
        ),
    )


def _shared_slots(roles: Sequence[RecurrentTensor]) -> str:
    """'tensor X fills 3 slots (bias i, c, o)' for each tensor read at several inputs."""
    slots: dict[str, list[RecurrentTensor]] = {}
    for item in roles:
        slots.setdefault(item.tensor.key, []).append(item)
    parts = [
        f"tensor '{items[0].tensor.name}' fills {len(items)} inputs ("
        + ", ".join(f"{r.role.value} {r.gate}" if r.gate else r.role.value for r in items)
        + ")"
        for items in slots.values()
        if len(items) > 1
    ]
    return "; ".join(parts)


def _first(roles: Sequence[RecurrentTensor], role: TensorRole) -> Tensor | None:
    return next((r.tensor for r in roles if r.role is role), None)


def _produced_by(graph: SubGraphInfo, tensor: int, op_name: str) -> bool:
    return any(op.op == op_name and tensor in op.outputs for op in graph.operators)


def _op_name(graph: SubGraphInfo, op: OperatorInfo) -> str:
    """`unidirectional_sequence_lstm_1` (operator index 1 of the main subgraph), prefixed by the
    subgraph's name elsewhere."""
    own = f"{op.op.lower()}_{op.index}"
    if graph.index == 0:
        return own
    return f"{graph.name or f'subgraph{graph.index}'}/{own}"
