"""TFLite models (`.tflite` flatbuffers, "TFL3" at byte 4), read with our own bounded flatbuffer
walk (`flatbuffer.py`, `schema.py`): only a handful of tables are needed, so the `flatbuffers`
runtime and TensorFlow's generated schema are not required.

What counts as a parameter: a constant (a tensor whose buffer holds bytes) that an operator reads
and that holds weights: floating-point, or integer with quantization scales (int8 weights, int32
biases of quantized ops), counted at its stored itemsize, once per stored buffer (converters let
tensors of several subgraphs, or equal constants, share one buffer). Not counted, each listed with
the reason: integer constants without scales (shapes, indices, axes) and scalars; constants only
handed to a loop variable a WHILE body updates, or to a recurrent op's state inputs (initial
states, the output buffers a loop fills); all-zero bias operands a converter gave a recurrence's
products beside its real bias (`Lowered.fillers`); and weights no operator reads (a copy a
converter left in the main graph). Counts come from shapes; buffer contents are read only where a
detector asks whether a constant is all zero or equals another (`TfliteView.content`).

Layers: every operator with weights is a row. Recurrent layers: the fused ops (`fused.py`), and
recurrences the converter lowered into plain ops, found by the detectors every op-graph format
shares (`inspector.formats.lowered`) on the model's op graph (`view.py`): WHILE loop bodies,
chains of unrolled steps, single steps. A recurrence's row holds the weights of all its ops.
Weights kept in resource variables (VAR_HANDLE / READ_VARIABLE) that no initialiser assigns are
not in the file: they appear in the splits with the shapes the graph declares, never in the total
(`Model.unstored`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace

from inspector.errors import CorruptModelError, UnsupportedModelError
from inspector.formats import lowered
from inspector.formats.lowered.directions import pairs
from inspector.formats.lowered.walk import BIAS_INPUT
from inspector.formats.opgraph import Node, RootWorkError, ValueId, Weight
from inspector.formats.source import Source
from inspector.formats.tflite import fused
from inspector.formats.tflite.flatbuffer import FlatError
from inspector.formats.tflite.schema import ModelInfo, OperatorInfo, SubGraphInfo, TensorInfo, parse
from inspector.formats.tflite.view import TfliteView, tensor_key, vid
from inspector.model import (
    BiasConvention,
    CellConfig,
    CellKind,
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

_BIAS_ROLES = frozenset({TensorRole.BIAS, TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS})
_MATRIX_ROLES = frozenset({TensorRole.KERNEL, TensorRole.RECURRENT_KERNEL})


def read(path: Source) -> Model:
    with path.view() as buf:
        try:
            info = parse(buf)
        except FlatError as error:
            raise CorruptModelError(
                f"{path}: damaged TFLite flatbuffer ({error}); the file is truncated or not a "
                "TFLite model"
            ) from None
        try:
            view = TfliteView(info, buf)
        except CorruptModelError as error:
            raise CorruptModelError(f"{path}: invalid TFLite model: {error}") from None
        try:
            return _Builder(path, info, view).model()
        except RootWorkError as error:
            raise UnsupportedModelError(f"{path}: {error}") from None


@dataclass
class _Recurrence:
    layer: RecurrentLayer
    members: set[Node]  # the ops whose weights the layer's row holds
    anchor: Node  # the op that reads the sequence: the fused op, the WHILE, the first step


@dataclass
class _Builder:
    path: Source
    info: ModelInfo
    view: TfliteView
    warnings: list[str] = field(default_factory=list)
    _stored: dict[int, Tensor] = field(default_factory=dict)  # buffer -> its tensor
    _variables: dict[str, Tensor] = field(default_factory=dict)
    read: set[ValueId] = field(default_factory=set)  # every value an operator reads

    def __post_init__(self) -> None:
        graph = self.view.graph
        # Each buffer is one stored tensor: the first weight an op reads from it (else the first
        # tensor read from it, else any), so a weight never takes a shape constant's identity.
        read = [v for node in graph.nodes for v in node.inputs if v is not None]
        tensors = self.view.tensors
        weights = [v for v in read if v in tensors and self.is_param(tensors[v])]
        for value in [*weights, *read, *tensors]:
            tensor = tensors.get(value)
            if tensor is not None and self.view.constant(tensor):
                self._stored.setdefault(tensor.buffer, self._own(value.scope, tensor))
        self.read = set(read)

    # --- tensors ----------------------------------------------------------------------

    def is_param(self, tensor: TensorInfo) -> bool:
        return (
            self.view.constant(tensor)
            and bool(tensor.shape)
            and (tensor.dtype.is_float or tensor.scales > 0)
        )

    def _own(self, graph: int, tensor: TensorInfo) -> Tensor:
        return Tensor(
            tensor_key(graph, tensor.index),
            tensor.name or f"tensor_{tensor.index}",
            tensor.shape,
            tensor.dtype.name,
            tensor.dtype.itemsize,
        )

    def stored(self, tensor: TensorInfo) -> Tensor:
        """The stored tensor holding a constant's bytes: one per buffer."""
        return self._stored[tensor.buffer]

    def split_tensor(self, graph: int, tensor: TensorInfo) -> Tensor:
        """How a recurrent split shows a constant: its buffer's tensor, or where it reads the
        same bytes with another shape or type, a view of it."""
        stored = self.stored(tensor)
        if stored.shape == tensor.shape and stored.dtype == tensor.dtype.name:
            return stored
        return replace(self._own(graph, tensor), sources=(stored.key,))

    def weight_tensor(self, weight: Weight) -> Tensor:
        if weight.stored:
            graph, index = (int(part) for part in weight.key.split(":"))
            return self.split_tensor(graph, self.info.subgraphs[graph].tensors[index])
        known = self._variables.get(weight.key)
        if known is None:
            known = Tensor(
                weight.key, weight.name, weight.shape, weight.dtype.name, weight.dtype.itemsize
            )
            self._variables[weight.key] = known
        return known

    def source(self, graph: SubGraphInfo, index: int) -> TensorInfo | None:
        """The weight behind an operator input: the constant itself, or the constant a
        DEQUANTIZE op widens (float16 and some int8 conversions store weights that way)."""
        if not 0 <= index < len(graph.tensors):
            return None
        tensor = graph.tensors[index]
        if self.is_param(tensor):
            return tensor
        producer = self.view.graph.producer(vid(graph.index, index))
        if producer is not None and producer.native == "DEQUANTIZE" and producer.inputs:
            first = producer.inputs[0]
            inner = self.view.tensors.get(first) if first is not None else None
            if inner is not None and self.is_param(inner):
                return inner
        return None

    def node_params(self, node: Node, states: set[ValueId]) -> list[Tensor]:
        """The stored weights an op reads (a DEQUANTIZE's constant counts where it is used)."""
        if node.native == "DEQUANTIZE":
            return []
        graph, op = self.view.operator[node]
        out: dict[str, Tensor] = {}
        for index in op.inputs:
            tensor = self.source(graph, index)
            if tensor is not None and vid(graph.index, tensor.index) not in states:
                stored = self.stored(tensor)
                out.setdefault(stored.key, stored)
        return list(out.values())

    # --- model ------------------------------------------------------------------------

    def model(self) -> Model:
        graph = self.view.graph
        recurrences = self._fused_ops()
        covered = {r.anchor for r in recurrences}
        found, found_warnings = lowered.find(graph, covered)
        self.warnings.extend(found_warnings)
        for item in found:
            self.warnings.extend(item.warnings)
            recurrences.append(self._lowered(item))
        states = self._initial_states(
            {use for item in found for use in (*item.state_inputs, *item.first_step)}
        )
        fillers = self._fillers(
            {w for item in found for w in item.fillers},
            {node for item in found for node in item.members},
        )
        recurrences = self._pair_directions(recurrences)
        layers = self._rows(recurrences, states | fillers)
        held = {t.key for layer in layers for t in layer.tensors}
        excluded = self._excluded(held, states, fillers)
        variables = {w.key: w for w in self.view.weights.values() if not w.stored}
        unstored = tuple(self.weight_tensor(w) for w in variables.values())
        if unstored:
            implied = sum(t.params for t in unstored)
            self.warnings.append(
                f"weights not in the file: the graph reads {len(unstored)} resource variable(s) "
                f"no initialiser assigns, {implied:,} parameters by the shapes it declares; the "
                "total counts none of them, so it is not the model's size"
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
            recurrent_layers=tuple(r.layer for r in recurrences),
            trainable_known=False,
            warnings=tuple(self.warnings),
            excluded=tuple(excluded),
            unstored=unstored,
            inputs=_specs(main, main.inputs) if main else (),
            outputs=_specs(main, main.outputs) if main else (),
            details=(
                Detail("subgraphs", str(len(self.info.subgraphs))),
                Detail("operators", str(sum(len(g.operators) for g in self.info.subgraphs))),
            ),
        )

    def _rows(self, recurrences: list[_Recurrence], states: set[ValueId]) -> list[Layer]:
        """One row per op with weights; a recurrence's ops make one row, where its first op is."""
        member_of = {node: r for r in recurrences for node in r.members}
        rows: list[tuple[str, str, dict[str, Tensor]]] = []  # a row's tensors by key, in order
        row_of: dict[int, dict[str, Tensor]] = {}
        for node in self.view.graph.nodes:
            params = self.node_params(node, states)
            recurrence = member_of.get(node)
            if recurrence is None:
                if params:
                    rows.append((node.label, node.native, {t.key: t for t in params}))
                continue
            tensors = row_of.get(id(recurrence))
            if tensors is None:
                tensors = row_of[id(recurrence)] = {}
                rows.append((recurrence.layer.name, recurrence.layer.type, tensors))
            for tensor in params:
                tensors.setdefault(tensor.key, tensor)
        return [Layer(name, type_, tuple(tensors.values())) for name, type_, tensors in rows]

    def _initial_states(self, lowered_states: set[tuple[Node, int]]) -> set[ValueId]:
        """Constants an op only reads as a starting state: a loop variable the WHILE body
        updates (the recurrent state, the buffer the loop writes its outputs into), a recurrent
        op's state input, or what an unrolled chain's first step reads in place of the state
        (the zero state, its product folded to constants). A constant also read as an operand
        elsewhere is a weight."""
        graph = self.view.graph
        found: set[ValueId] = set()
        for value, tensor in self.view.tensors.items():
            if not self.view.constant(tensor):
                continue
            uses = graph.uses(value)
            if uses and all(use in lowered_states or self._state_use(*use) for use in uses):
                found.add(value)
        return found

    def _fillers(self, weights: set[Weight], members: set[Node]) -> set[ValueId]:
        """Constants holding a detector's all-zero filler (`Lowered.fillers`) that are read
        only as the bias operand of a recurrence's products: no parameter of the model. A
        constant on the same buffer read anywhere else (a Dense's own zero bias) still counts."""
        graph = self.view.graph
        buffers = {self.view.tensors[vid(*map(int, w.key.split(":")))].buffer for w in weights}
        on: dict[int, list[ValueId]] = {}
        for value, tensor in self.view.tensors.items():
            if tensor.buffer in buffers and self.view.constant(tensor):
                on.setdefault(tensor.buffer, []).append(value)
        found: set[ValueId] = set()
        for values in on.values():
            uses = [use for value in values for use in graph.uses(value)]
            if uses and all(
                node in members and BIAS_INPUT.get(node.op) == position for node, position in uses
            ):
                found.update(values)
        return found

    def _state_use(self, node: Node, position: int) -> bool:
        op = self.view.operator[node][1]
        if op.op == "DEQUANTIZE":  # a float16 state widened on its way in
            uses = [use for out in node.outputs for use in self.view.graph.uses(out)]
            return bool(uses) and all(
                next_node.native != "DEQUANTIZE" and self._state_use(next_node, at)
                for next_node, at in uses
            )
        spec = fused.FUSED.get(op.op)
        if spec is not None:
            return position in spec.states
        if op.op == fused.SVDF:
            return position in fused.SVDF_STATES
        if op.op != "WHILE" or op.body is None or not 0 <= op.body < len(self.info.subgraphs):
            return False
        body = self.info.subgraphs[op.body]
        if position >= len(body.inputs) or position >= len(body.outputs):
            return False
        return body.inputs[position] != body.outputs[position]  # updated by the body

    def _excluded(
        self, held: set[str], states: set[ValueId], fillers: set[ValueId]
    ) -> list[Excluded]:
        initial: dict[str, Tensor] = {}
        zeros: dict[str, Tensor] = {}
        arguments: dict[str, Tensor] = {}
        dead: dict[str, Tensor] = {}
        for value, tensor in self.view.tensors.items():
            if not self.view.constant(tensor):
                continue
            stored = self.stored(tensor)
            if stored.key in held:
                continue
            if not self.is_param(tensor):
                arguments.setdefault(stored.key, stored)
            elif value in fillers:
                zeros.setdefault(stored.key, stored)
            elif value in states:
                initial.setdefault(stored.key, stored)
            elif value not in self.read:
                dead.setdefault(stored.key, stored)
        for key in initial:
            arguments.pop(key, None)
        out = []
        if initial:
            out.append(
                Excluded(
                    "initial states: what a recurrence starts from (a WHILE loop's state and the "
                    "buffer it writes its outputs into, a recurrent op's state inputs, the zero "
                    "state of an unrolled chain's first step and its product folded to "
                    "constants): values computed before any step, not weights",
                    tuple(initial.values()),
                )
            )
        if zeros:
            out.append(
                Excluded(
                    "all-zero bias operands: zeros the converter gave a recurrence's products "
                    "where the source's product has no bias (TOCO gives every FULLY_CONNECTED "
                    "one): they add nothing and hold no parameter of the model",
                    tuple(zeros.values()),
                )
            )
        if dead:
            out.append(
                Excluded(
                    "weights no operator reads (a copy the converter left in the file): stored, "
                    "but not part of the model",
                    tuple(dead.values()),
                )
            )
        if arguments:
            out.append(
                Excluded(
                    "integer constants without quantization (shapes, indices, axes) and scalars: "
                    "operator arguments, not weights",
                    tuple(arguments.values()),
                )
            )
        return out

    # --- fused recurrent ops ----------------------------------------------------------

    def _fused_ops(self) -> list[_Recurrence]:
        found = []
        for node in self.view.graph.nodes:
            graph, op = self.view.operator[node]
            spec = fused.FUSED.get(op.op)
            if spec is not None:
                layer = self._fused(graph, op, spec, node.label)
                if layer is not None:
                    found.append(_Recurrence(layer, {node}, node))
            elif op.op == fused.SVDF:
                self.warnings.append(
                    f"{node.label}: SVDF is a rank-factored filter over time, not a gated cell; "
                    "its weights are listed but no formula applies"
                )
        return found

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
                RecurrentTensor(
                    self.split_tensor(graph.index, tensor), slot.role, slot.direction, slot.gate
                )
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
        if self._reversed(graph, op.inputs[0] if op.inputs else -1):
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

    def _reversed(self, graph: SubGraphInfo, index: int) -> int | None:
        """The tensor a REVERSE_V2 reversed to make this one, or None."""
        producer = self.view.graph.producer(vid(graph.index, index))
        if producer is None or producer.native != "REVERSE_V2" or not producer.inputs:
            return None
        first = producer.inputs[0]
        return int(first.name) if first is not None else None

    # --- lowered recurrences ----------------------------------------------------------

    def _lowered(self, item: lowered.Lowered) -> _Recurrence:
        loop = next(
            (n for n in sorted(item.members, key=lambda n: n.order) if n.native == "WHILE"), None
        )
        kind = item.kind or CellKind.SIMPLE_RNN
        tensors = tuple(
            RecurrentTensor(self.weight_tensor(weight), role, direction)
            for weight, role, direction in item.tensors
        )
        notes = list(item.notes)
        if item.kind is None:
            notes.append("cell kind unknown: reported as SimpleRNN")
        has_bias = any(role in _BIAS_ROLES for _, role, _ in item.tensors)
        notes.append(self._bias_note(item, has_bias))
        if any(not weight.stored for weight, _, _ in item.tensors):
            notes.append(
                "weights in resource variables the file does not store: shapes from the "
                "graph's READ_VARIABLE ops, values absent"
            )
        recurrent = [w for w, role, _ in item.tensors if role is TensorRole.RECURRENT_KERNEL]
        reset_after: bool | None = None
        if kind is CellKind.GRU:
            if item.bias is BiasConvention.DOUBLE:
                reset_after = True
            elif len(recurrent) == 2 and item.units is not None:
                reset_after = False  # Keras reset_before: U_z|U_r on h, U_h on r ⊙ h
        layer = RecurrentLayer(
            name=item.name,
            type=(
                f"WHILE({kind.value})" + (" ×2" if item.directions == 2 else "")
                if loop is not None
                else item.type
            ),
            cell=CellConfig(
                kind=kind,
                units=item.units,
                use_bias=item.bias is not BiasConvention.NONE or has_bias,
                reset_after=reset_after,
                bias=item.bias,
                peepholes=item.peepholes,
                gate_order=(),  # a lowered graph does not say which slice is which gate
            ),
            directions=item.directions,
            tensors=tensors,
            input_dim=item.input_dim,
            input_dim_source=(
                WidthSource.TENSOR if item.input_dim is not None else WidthSource.UNKNOWN
            ),
            lowered=True,
            gates_last=True if self._applied_by(item, "MatMul") else item.gates_last,
            location=item.location,
            notes=tuple(notes),
        )
        anchor = loop or min(item.members, key=lambda n: n.order)
        return _Recurrence(layer, set(item.members), anchor)

    def _operands(self, item: lowered.Lowered, op: str, position: int) -> set[Weight]:
        """The weights the layer's `op` nodes read at `position`."""
        found: set[Weight] = set()
        for node in item.members:
            value = node.input(position)
            if node.op == op and value is not None and value in self.view.graph.static:
                found |= self.view.graph.roots(value)
        return found

    def _applied_by(self, item: lowered.Lowered, op: str) -> bool:
        """Whether the layer's matrices are applied by `op` (MatMul keeps them (in, g·u), as
        Keras does; FULLY_CONNECTED stores them (g·u, in))."""
        matrices = {w for w, role, _ in item.tensors if role in _MATRIX_ROLES}
        return bool(matrices & self._operands(item, op, 1))

    def _bias_note(self, item: lowered.Lowered, has_bias: bool) -> str:
        if not has_bias:
            return (
                "no constant reaches the gate sums: the converter dropped the bias (it does so "
                "when every bias value is zero, as in a freshly initialised layer); checked "
                "without one"
            )
        operands = self._operands(item, "Gemm", 2)
        said = [
            f"'{weight.name}' "
            + (
                "(a FULLY_CONNECTED bias operand)"
                if weight in operands
                else "(added to the products)"
            )
            for weight, role, _ in item.tensors
            if role in _BIAS_ROLES
        ]
        return "bias: " + ", ".join(dict.fromkeys(said))

    # --- directions -------------------------------------------------------------------

    def _pair_directions(self, found: list[_Recurrence]) -> list[_Recurrence]:
        """The converter turns a Keras Bidirectional into two unidirectional ops, the backward
        one reading the time-reversed input (REVERSE_V2 of what the forward one reads): one
        layer of two directions again, as the source has it (loops are paired where they are
        found, `lowered.directions`)."""

        def cell(index: int) -> Hashable | None:
            item = found[index]  # two directions: one scope, one kind of cell, both lowered or not
            if item.layer.directions != 1:
                return None
            return (item.anchor.scope, item.layer.cell.kind, item.layer.lowered)

        backward_of = pairs(self.view.graph, [item.anchor for item in found], cell)
        backwards = set(backward_of.values())
        out = []
        for f, item in enumerate(found):
            if f in backward_of:
                backward = found[backward_of[f]]
                item = _Recurrence(
                    _bidirectional(item.layer, backward.layer),
                    item.members | backward.members,
                    item.anchor,
                )
            if f not in backwards:
                out.append(item)
        return out


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


def _bidirectional(forward: RecurrentLayer, backward: RecurrentLayer) -> RecurrentLayer:
    tensors = forward.tensors + tuple(
        RecurrentTensor(t.tensor, t.role, Direction.BACKWARD, t.gate) for t in backward.tensors
    )
    tensors = tuple(
        RecurrentTensor(t.tensor, t.role, Direction.FORWARD, t.gate) if t.direction is None else t
        for t in tensors
    )
    notes = dict.fromkeys(
        n for n in forward.notes + backward.notes if not n.startswith("runs back")
    )
    shared = _shared_slots([t for t in tensors if t.direction is Direction.BACKWARD], tensors)
    if shared:
        notes[
            f"{shared}: the converter stored equal constants of the two directions once, so "
            "the file holds fewer values than the layer has parameters (the total counts each "
            "stored tensor once)"
        ] = None
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
        gates_last=forward.gates_last,
        location=forward.location,
        notes=(
            f"a bidirectional pair: {forward.name} runs forward, {backward.name} over the "
            "time-reversed input (REVERSE_V2), as the converter writes a Keras Bidirectional",
            *notes,
        ),
    )


def _shared_slots(
    roles: Sequence[RecurrentTensor], among: Sequence[RecurrentTensor] | None = None
) -> str:
    """'tensor X fills 3 slots (bias i, c, o)' for each tensor read at several inputs (of those
    that `roles` reads, counted over `among`)."""
    slots: dict[str, list[RecurrentTensor]] = {}
    keys = {item.tensor.key for item in roles}
    for item in roles if among is None else among:
        if item.tensor.key in keys:
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
