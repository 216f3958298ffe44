"""ONNX models (.onnx): RNN/LSTM/GRU nodes split into their tensors, lowered recurrences, and
a total with a stated definition.

The file is memory-mapped read-only and its protobuf wire format walked directly
(`inspector.formats.onnx.wire`): names, shapes, dtypes, attributes and the graph come out, weight
payloads are skipped by length and never read. External data files are listed (name, size),
never opened, and only looked up inside the model's folder. A weight computed inside the graph
gets its shape from propagation along its static chain (`inspector.formats.onnx.shapes`); the
`onnx` package is not used (tests hold this reader to it, tests/test_onnx_wire.py).

Totals. ONNX has no notion of "parameter"; rnninspect defines

    total_params = the elements of the distinct tensors stored in the model (the initializers
                   of every graph and subgraph plus the values of Constant nodes) that are
                   - floating-point, or
                   - weights of a quantized op, whatever their dtype, counted at their own
                     itemsize (`inspector.formats.onnx.quantized.QUANT_INPUTS`: DequantizeLinear
                     input 0, DynamicQuantizeLSTM W/R, MatMulInteger, ConvInteger, QLinearMatMul
                     and QLinearConv weights, QAttention, DynamicQuantizeMatMul, QGemm...),
                   excluding
                   - tensors used only as the initial state of recurrent ops (initial_h and
                     initial_c of RNN/LSTM/GRU and DynamicQuantizeLSTM nodes; the initial value of
                     a state a Loop or Scan body updates from step to step), also when they
                     reach it through data-movement ops (Identity, Cast, CastLike, Expand,
                     Unsqueeze, Squeeze, Reshape, Flatten, Concat, Tile, Transpose, Slice);
                   - scales and zero points of quantization (every use is a scale or zero-point
                     input, or a float multiplied by DynamicQuantizeLinear's scale);
                   - integer, boolean and string tensors that are no op's weight (shapes,
                     indices, axes).

A tensor reached from several nodes counts once, in one row. Excluded tensors are listed with
the reason. Weights given as graph inputs (ONNX backend tests) are not stored in the file: they
appear in the recurrent split and its formula check, not in the total. Each weighted node is a
layer row holding the stored tensors it reads (a recurrence's row holds all of its stored
tensors); a later node reading a tensor an earlier row holds lists it as shared with that row;
counted tensors no weighted node reads (single-value constants of weightless nodes) make the row
`(outside layers)`, so the rows sum to the total.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from inspector.cells import gate_count
from inspector.counts import quoted
from inspector.errors import (
    CorruptModelError,
    InspectorError,
    NotAModelError,
    UnsupportedModelError,
)
from inspector.formats import lowered as onnx_lowered
from inspector.formats.onnx import wire as onnx_wire
from inspector.formats.onnx.graph import (
    DKind,
    DType,
    GNode,
    GraphError,
    Index,
    Kind,
    Origin,
    Stored,
    ValueId,
    dtype_of,
    one_line,
)
from inspector.formats.onnx.keys import external_file, split_view_key, view_key
from inspector.formats.onnx.operands import operand_defects
from inspector.formats.onnx.quantized import (
    CONTRIB_DOMAIN,
    CONTRIB_RECURRENT,
    DYNAMIC_SCALE_OUTPUT,
    QUANT_INPUTS,
    QuantRole,
)
from inspector.formats.onnx.shapes import Shapes
from inspector.formats.onnx.view import OnnxView
from inspector.formats.opgraph import RootWorkError
from inspector.formats.ranges import Buffer
from inspector.formats.source import Source
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
    SharedTensor,
    Tensor,
    TensorRole,
    TensorSpec,
    WidthSource,
)

OUTSIDE_LAYERS = "(outside layers)"  # the row of counted tensors no weighted node reads
RECURRENT_OPS = {"RNN": CellKind.SIMPLE_RNN, "LSTM": CellKind.LSTM, "GRU": CellKind.GRU}
# Operator spec input positions: X, W, R, B, sequence_lens, initial_h, initial_c, P.
_W, _R, _B, _P = 1, 2, 3, 7
_BIAS_ROLES = frozenset({TensorRole.BIAS, TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS})
_STATE_INPUTS = {CellKind.SIMPLE_RNN: (5,), CellKind.GRU: (5,), CellKind.LSTM: (5, 6)}
_DATA_MOVEMENT = frozenset(
    {
        "Identity",
        "Cast",
        "CastLike",
        "Expand",
        "Unsqueeze",
        "Squeeze",
        "Reshape",
        "Flatten",
        "Concat",
        "Tile",
        "Transpose",
        "Slice",
    }
)
_MODEL_FIELDS = {
    (1, 0),
    (2, 2),
    (3, 2),
    (4, 2),
    (5, 0),
    (6, 2),
    (7, 2),
    (8, 2),
    (14, 2),
    (20, 2),
    (25, 2),
    (26, 2),
}
_STANDARD = ("", "ai.onnx")


def read(path: Source) -> Model:
    if path.size == 0:
        raise NotAModelError(f"{path}: empty file, expected an ONNX model")
    with path.view() as buf:
        meta = _parse(path, buf)
        try:
            index = Index(meta)
        except GraphError as error:
            raise CorruptModelError(f"{path}: invalid ONNX graph: {error}") from None
        try:
            return _Reader(path, meta, index, buf).model()
        except RootWorkError as error:
            raise UnsupportedModelError(f"{path}: {error}") from None


def _parse(path: Source, buf: Buffer) -> onnx_wire.ModelMeta:
    plausible = onnx_wire.first_field(buf) in _MODEL_FIELDS
    try:
        meta = onnx_wire.parse_model(buf)
    except onnx_wire.WireError as error:
        if not plausible:
            raise NotAModelError(_not_onnx(path, buf)) from None
        raise CorruptModelError(
            f"{path}: damaged ONNX file: {error} (byte {error.offset:,} of {len(buf):,}); "
            "the file is probably truncated or corrupted"
        ) from None
    except onnx_wire.TooLargeError as error:
        raise UnsupportedModelError(f"{path}: {error}: too large to inspect") from None
    if meta.graph is None:
        if not plausible:
            raise NotAModelError(_not_onnx(path, buf))
        raise CorruptModelError(
            f"{path}: ONNX ModelProto without a graph (field 7); nothing to inspect"
        )
    return meta


def _not_onnx(path: Source, buf: Buffer) -> str:
    from inspector.formats.detect import describe

    head = bytes(buf[:512])
    return (
        f"{path}: not an ONNX model: found {describe(head)} that does not decode as a "
        "protobuf ModelProto"
    )


def _signature(
    infos: Sequence[onnx_wire.ValueInfo], *, skip: frozenset[str]
) -> tuple[TensorSpec, ...]:
    """The graph's inputs or outputs as declared (ValueInfoProto): symbolic dims keep their
    dim_param names, an undeclared dim is None, an undeclared type's dtype is None."""
    return tuple(
        TensorSpec(
            info.name,
            info.shape,
            dtype_of(info.elem_type).name if info.elem_type is not None else None,
        )
        for info in infos
        if info.name not in skip
    )


@dataclass(frozen=True)
class _Input:
    """One weight input of a fused recurrent node."""

    label: str  # W, R, B, P
    vid: ValueId
    name: str
    key: str
    shape: tuple[int, ...] | None
    dtype: DType
    source: str
    problem: str | None = None  # an op on its way has operands its spec refuses


@dataclass
class _Recurrence:
    layer: RecurrentLayer
    claimed: set[Stored]
    members: set[GNode]
    state_inputs: set[tuple[GNode, int]]
    order: int
    row_type: str
    sources: dict[str, frozenset[Stored]]  # each tensor's key (a view's base): its stored roots


@dataclass
class _Row:
    name: str
    type: str
    order: int
    tensors: list[Stored] = field(default_factory=list)
    shared: list[tuple[Stored, str]] = field(default_factory=list)  # (tensor, holding row)
    output_shape: tuple[int | str | None, ...] | None = None  # the node's first output, declared
    # The keys in `tensors` and `shared`: a row reading thousands of tensors checks each in
    # constant time, not by a scan of the lists (quadratic, cubic over a chain of such rows).
    _keys: set[str] = field(default_factory=set, repr=False)

    def take(self, stored: Stored, holder: dict[str, _Row]) -> None:
        """Hold the tensor, or, when an earlier row holds it, list it as shared with that row."""
        if stored.key in self._keys:
            return
        self._keys.add(stored.key)
        held = holder.setdefault(stored.key, self)
        if held is self:
            self.tensors.append(stored)
        else:
            self.shared.append((stored, held.name))


class _Reader:
    def __init__(self, path: Source, meta: onnx_wire.ModelMeta, index: Index, buf: Buffer) -> None:
        self.path = path
        self.meta = meta
        self.index = index
        self.buf = buf
        self.warnings: list[str] = []
        self.shapes = Shapes(index)

    # --- the model --------------------------------------------------------------------

    def model(self) -> Model:
        index = self.index
        stored = _unique(index.stored_tensors())
        self._check_payloads(stored)
        fused = [g for g in index.nodes if _recurrent_op(g)]
        recurrences = [self._fused(gnode) for gnode in fused]
        view = OnnxView(index)
        lowered, lowered_warnings = onnx_lowered.find(view.graph, {view.node[g] for g in fused})
        recurrences += [self._lowered(item, view) for item in lowered]
        for item in lowered:
            self.warnings.extend(item.warnings)
        self.warnings.extend(lowered_warnings)

        state_uses = {use for r in recurrences for use in r.state_inputs} | self._loop_states()
        vids = {value.stored.key: vid for vid, value in index.values.items() if value.stored}
        counted: list[Stored] = []
        states: list[Stored] = []
        quantization: list[Stored] = []
        non_float: list[Stored] = []
        for tensor in stored:
            vid = vids[tensor.key]
            role = self._quant_role(vid)
            if role is QuantRole.SCALE or role is QuantRole.ZERO_POINT:
                quantization.append(tensor)
            elif role is None and tensor.dtype.kind is not DKind.FLOAT:
                non_float.append(tensor)
            elif self._only_initial_state(vid, state_uses):
                states.append(tensor)
            else:
                counted.append(tensor)
        counted_keys = {t.key for t in counted}
        self._other_recurrent_ops(counted_keys)
        layers, extras = self._rows(recurrences, counted_keys)

        excluded = []
        if states:
            excluded.append(Excluded("initial states of recurrent ops", _tensors(states)))
        if quantization:
            excluded.append(
                Excluded(
                    "scales and zero points of quantization (they say how a weight or an "
                    "activation is stored; the weights themselves are counted)",
                    _tensors(quantization),
                )
            )
        if non_float:
            excluded.append(
                Excluded(
                    "integer and other non-floating tensors that are no op's weight (shapes, "
                    "indices, axes)",
                    _tensors(non_float),
                )
            )
        details = self._details(stored, extras)  # adds warnings about external data
        return Model(
            path=str(self.path),
            format=FileFormat.ONNX,
            producer=f"{self.meta.producer_name} {self.meta.producer_version}".strip() or None,
            layers=tuple(layers),
            recurrent_layers=tuple(r.layer for r in recurrences),
            trainable_known=False,
            warnings=tuple(dict.fromkeys(one_line(w) for w in self.warnings)),
            extra_tensors=_tensors(extras),
            excluded=tuple(excluded),
            details=tuple(details),
            inputs=_signature(self.meta.graph.inputs, skip=self._initializer_names())
            if self.meta.graph
            else (),
            outputs=_signature(self.meta.graph.outputs, skip=frozenset())
            if self.meta.graph
            else (),
        )

    def _initializer_names(self) -> frozenset[str]:
        """Graph inputs that an initializer also names are weights with a default (IR < 4
        lists every initializer as an input), not the model's inputs."""
        graph = self.meta.graph
        return frozenset(t.name for t in graph.initializers) if graph else frozenset()

    # --- fused RNN / LSTM / GRU nodes ---------------------------------------------------

    def _fused(self, gnode: GNode) -> _Recurrence:
        op = gnode.op
        contrib = CONTRIB_RECURRENT.get(op) if gnode.node.domain == CONTRIB_DOMAIN else None
        kind = contrib.kind if contrib is not None else RECURRENT_OPS[op]
        # W [dirs, input, g·h], R [dirs, h, g·h] (DynamicQuantizeLSTM) instead of [dirs, g·h, *]
        gates_last = contrib is not None and contrib.gates_last
        gates = gate_count(kind)
        where = f"{op} '{gnode.label}' in {gnode.scope.path}"
        notes: list[str] = [contrib.note] if contrib is not None else []
        inputs = {
            label: self._input(gnode, position, label)
            for label, position in (("W", _W), ("R", _R), ("B", _B), ("P", _P))
            if kind is CellKind.LSTM or label != "P"
        }
        w, r, b, p = inputs["W"], inputs["R"], inputs["B"], inputs.get("P")
        direction_attr = gnode.node.attribute("direction")
        direction = (
            (direction_attr.s or b"forward").decode("utf-8", "replace")
            if (direction_attr is not None and direction_attr.s is not None)
            else "forward"
        )
        directions = {
            "forward": [Direction.FORWARD],
            "reverse": [Direction.BACKWARD],
            "bidirectional": [Direction.FORWARD, Direction.BACKWARD],
        }.get(direction)
        if directions is None:
            self.warnings.append(f"{where}: unknown direction '{direction}'")
            count = w.shape[0] if w is not None and w.shape else 1
            directions = [Direction.FORWARD, Direction.BACKWARD][:count] or [Direction.FORWARD]
        units = _attr_int(gnode, "hidden_size")
        r_units = None
        if r is not None and r.shape:
            r_units = r.shape[1] if gates_last and len(r.shape) == 3 else r.shape[-1]
        if units is None:
            if r_units is not None:
                units = r_units
                notes.append("hidden_size is not set: taken from R's shape")
        elif r is not None and r_units is not None and r_units != units:
            self.warnings.append(
                f"{where}: hidden_size={units} but R has shape {list(r.shape or ())}"
            )
        tensors: list[RecurrentTensor] = []
        for item, role, parts in (
            (w, TensorRole.KERNEL, 1),
            (r, TensorRole.RECURRENT_KERNEL, 1),
            (b, TensorRole.INPUT_BIAS, 2),
            (p, TensorRole.PEEPHOLE, 1),
        ):
            if item is None:
                continue
            notes.append(f"{item.label}: {item.source}")
            tensors += self._views(item, role, parts, directions, where)
        if kind is CellKind.GRU:
            notes.append(f"linear_before_reset={_attr_int(gnode, 'linear_before_reset') or 0}")
        if _attr_int(gnode, "layout"):
            notes.append("layout=1: batch-major inputs and outputs; the weights are unchanged")
        if _attr_int(gnode, "input_forget"):
            notes.append("input_forget=1: input and forget gates coupled")
        activations = gnode.node.attribute("activations")
        if activations is not None and activations.list_count:
            notes.append(f"{activations.list_count} activation functions set by attribute")
        gate_axis, input_axis = (2, 1) if gates_last else (1, 2)
        input_dim = None
        if w is not None and w.shape:
            input_dim = w.shape[input_axis] if len(w.shape) == 3 else w.shape[-1]
            if len(w.shape) == 3 and w.shape[gate_axis] != gates * (units or 0):
                expected = (
                    f"[{len(directions)}, input, {gates}·{units}]"
                    if gates_last
                    else f"[{len(directions)}, {gates}·{units}, input]"
                )
                self.warnings.append(f"{where}: W has shape {list(w.shape)}, expected {expected}")
        defects = [item.problem for item in inputs.values() if item is not None and item.problem]
        operand_shapes = {label: item.shape for label, item in inputs.items() if item is not None}
        for label, position in zip(("initial_h", "initial_c"), _STATE_INPUTS[kind], strict=False):
            state = gnode.input(position)
            if state is not None:
                operand_shapes[label] = _concrete(self.index.declared_shape(state))
        defects += operand_defects(
            op, gates, units, len(directions), operand_shapes, gates_last=gates_last
        )
        layer = RecurrentLayer(
            name=gnode.label,
            type=op,
            cell=CellConfig(
                kind=kind,
                units=units,
                use_bias=b is not None,
                # ONNX GRU linear_before_reset=1 is Keras's reset_after=True (and PyTorch's GRU).
                reset_after=bool(_attr_int(gnode, "linear_before_reset"))
                if kind is CellKind.GRU
                else None,
                bias=BiasConvention.DOUBLE,
                peepholes=p is not None,
            ),
            directions=len(directions),
            tensors=tuple(tensors),
            input_dim=input_dim,
            input_dim_source=WidthSource.TENSOR if input_dim is not None else WidthSource.UNKNOWN,
            lowered=False,
            gates_last=True if gates_last else None,
            location=gnode.scope.path,
            notes=tuple(notes),
            defects=tuple(dict.fromkeys(defects)),
        )
        given = [
            item.label
            for item in inputs.values()
            if item is not None
            and self.index.value(item.vid).kind is Kind.INPUT
            and item.vid not in self.index.aliases
        ]
        if given:
            self.warnings.append(
                f"{where}: {', '.join(given)} are graph inputs, not stored in the file: the "
                "formula check uses their declared shapes; the total does not include them"
            )
        sources = {
            item.key: self.index.roots(item.vid)
            for item in inputs.values()
            if item is not None and item.vid in self.index.static
        }
        if contrib is not None:
            for position, label in contrib.extra_weights.items():
                vid = gnode.input(position)
                if vid is not None and vid in self.index.static:
                    sources[f"{gnode.label}|{label}"] = self.index.roots(vid)
        claimed: set[Stored] = set().union(*sources.values())
        state_inputs = {(gnode, position) for position in _STATE_INPUTS[kind]}
        return _Recurrence(layer, claimed, {gnode}, state_inputs, gnode.order, op, sources)

    def _input(self, gnode: GNode, position: int, label: str) -> _Input | None:
        vid = gnode.input(position)
        if vid is None:
            return None  # absent, or an empty name: the optional input is not given
        index = self.index
        value = index.value(vid)
        shape = _concrete(index.declared_shape(vid))
        if value.stored is not None:
            stored = value.stored
            where = "" if vid.scope == gnode.scope.id else f" of {stored.location}"
            source = f"{stored.origin.value} '{stored.name}'{where}"
            key = stored.key
        else:
            key = f"{index.scopes[vid.scope].path}|{vid.name}"
            producer = value.producer
            if vid in index.aliases:
                outer = index.aliases[vid]
                source = f"loop-carried copy of '{outer.name}'"
                shape = shape or _concrete(index.declared_shape(outer))
            elif value.kind is Kind.INPUT:
                source = (
                    f"graph input '{vid.name}' (declared shape; its values are not stored "
                    "in the file)"
                    if vid.scope == 0
                    else f"subgraph input '{vid.name}'"
                )
            else:
                assert producer is not None
                roots = sorted(index.roots(vid), key=lambda s: s.key) if vid in index.static else []
                source = f"computed by {producer.op} '{producer.label}'"
                if roots:
                    names = ", ".join(f"'{s.name}'" for s in roots[:4])
                    more = f" and {len(roots) - 4} more" if len(roots) > 4 else ""
                    source += f" from {roots[0].origin.value}s {names}{more}"
            if shape is None:
                shape = self.shapes.shape(vid)
                if shape is not None:
                    source += " (shape propagated through the graph)"
                problem = self.shapes.problem(vid)
                if problem is not None:
                    direct = producer is not None and problem.startswith(
                        f"{producer.op} '{producer.label}' "
                    )
                    return _Input(
                        label,
                        vid,
                        vid.name,
                        key,
                        None,
                        index.elem_type(vid),
                        source,
                        f"{label} is {'' if direct else 'computed from '}{problem}; "
                        "onnxruntime would refuse this graph",
                    )
        dtype = index.elem_type(vid)
        if dtype.kind is DKind.UNKNOWN:
            sources = index.roots(vid) if vid in index.static else frozenset()
            floats = sorted(
                (s for s in sources if s.dtype.kind is DKind.FLOAT), key=lambda s: s.key
            )
            if floats:
                dtype = floats[0].dtype
        return _Input(label, vid, vid.name, key, shape, dtype, source)

    def _views(
        self,
        item: _Input,
        role: TensorRole,
        parts: int,
        directions: list[Direction],
        where: str,
    ) -> list[RecurrentTensor]:
        """Per-direction (and, for B, per-half) views of one stacked ONNX weight."""
        if item.shape is None:
            self.warnings.append(
                f"{where}: the shape of {item.label} ('{item.name}') is unknown (neither "
                "stored nor declared, and not propagated along the graph from stored tensors); "
                "its formula check cannot be completed"
            )
            return []
        dtype, itemsize = item.dtype.name, item.dtype.itemsize
        shape = item.shape
        # The stored tensors each view is a part of, or is computed from in the graph: what
        # lets a report reconcile the split with the row holding those tensors.
        roots = self.index.roots(item.vid) if item.vid in self.index.static else frozenset()
        sources = tuple(sorted(stored.key for stored in roots))
        if not shape or shape[0] != len(directions) or (parts == 2 and shape[-1] % 2):
            self.warnings.append(
                f"{where}: {item.label} has shape {list(shape)}, expected "
                f"{len(directions)} direction(s) first"
            )
            whole = Tensor(item.key, item.name, shape, dtype, itemsize, sources=sources)
            fallback = TensorRole.BIAS if parts == 2 else role
            return [RecurrentTensor(whole, fallback, None)]
        views = []
        inner = shape[1:]
        for d, direction in enumerate(directions):
            if parts == 1:
                tensor = Tensor(
                    view_key(item.key, d),
                    view_key(item.name, d),
                    inner,
                    dtype,
                    itemsize,
                    sources=sources,
                )
                views.append(RecurrentTensor(tensor, role, direction))
                continue
            half = inner[-1] // 2
            for part, part_role in ((0, TensorRole.INPUT_BIAS), (1, TensorRole.RECURRENT_BIAS)):
                tensor = Tensor(
                    view_key(item.key, d, part, half),
                    view_key(item.name, d, part, half),
                    (*inner[:-1], half),
                    dtype,
                    itemsize,
                    sources=sources,
                )
                views.append(RecurrentTensor(tensor, part_role, direction))
        return views

    # --- lowered recurrences ------------------------------------------------------------

    def _lowered(self, item: onnx_lowered.Lowered, view: OnnxView) -> _Recurrence:
        directions = item.directions
        tensors = tuple(
            RecurrentTensor(_tensor(view.stored[weight.key]), role, direction)
            for weight, role, direction in item.tensors
        )
        kind = item.kind or CellKind.SIMPLE_RNN
        notes = list(item.notes)
        if item.kind is None:
            notes.append("cell kind unknown: reported as SimpleRNN")
        layer = RecurrentLayer(
            name=item.name,
            type=item.type,
            cell=CellConfig(
                kind=kind,
                units=item.units,
                # Bias tensors found but not one cell's whole vectors still mean it has biases.
                use_bias=item.bias is not BiasConvention.NONE
                or any(role in _BIAS_ROLES for _, role, _ in item.tensors),
                bias=item.bias,
                peepholes=item.peepholes,
                gate_order=(),  # a lowered graph does not say which slice is which gate
            ),
            directions=directions,
            tensors=tensors,
            input_dim=item.input_dim,
            input_dim_source=(
                WidthSource.TENSOR if item.input_dim is not None else WidthSource.UNKNOWN
            ),
            lowered=True,
            gates_last=item.gates_last,
            location=item.location,
            notes=tuple(notes),
        )
        order = min(g.order for g in item.members)
        claimed = {view.stored[weight.key] for weight in item.claimed}
        sources = {stored.key: frozenset({stored}) for stored in claimed}
        states = {(view.gnode[node], position) for node, position in item.state_inputs}
        return _Recurrence(
            layer, claimed, view.gnodes(item.members), states, order, item.type, sources
        )

    def _other_recurrent_ops(self, counted: set[str]) -> None:
        """Warn about recurrent-looking ops this reader does not split, saying truthfully which
        of their stored inputs the total counts."""
        for gnode in self.index.nodes:
            domain = gnode.node.domain
            if (
                domain in _STANDARD
                or _recurrent_op(gnode)
                or not re.search(r"(LSTM|GRU|RNN)", gnode.op)
            ):
                continue
            inputs = sorted(
                {
                    stored
                    for vid in gnode.inputs
                    if vid is not None and vid in self.index.static
                    for stored in self.index.roots(vid)
                },
                key=lambda s: s.key,
            )
            held = [s for s in inputs if s.key in counted]
            left = [s for s in inputs if s.key not in counted]
            fate = f"its {len(held)} stored weight input(s) ({sum(s.elements for s in held):,} "
            fate += "values) are counted in the total, not split"
            if left:
                fate += (
                    f"; {len(left)} other(s) ({', '.join(s.name for s in left[:4])}) are listed "
                    "under Not counted"
                )
            self.warnings.append(
                f"{gnode.op} '{gnode.label}' ({domain}) in {gnode.scope.path} is a recurrent op "
                f"this reader does not know: {fate}"
            )
        for function in self.meta.functions:
            ops = sorted({n.op_type for n in function.nodes if n.op_type in RECURRENT_OPS})
            if ops:
                self.warnings.append(
                    f"model-local function '{function.name}' contains {', '.join(ops)} nodes, "
                    "whose weights arrive as call arguments and are not split"
                )
        if self.meta.has_training_info:
            self.warnings.append("training_info present: its graphs are not inspected")

    # --- what counts -----------------------------------------------------------------

    def _quant_role(self, vid: ValueId) -> QuantRole | None:
        """What a stored tensor is to the quantized ops that read it (through data movement):
        a weight if any reads it as one, else a scale or zero point if all of its uses are
        such; None when no quantized op reads it as either."""
        roles: set[QuantRole | None] = set()
        stack = [vid]
        seen: set[ValueId] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for gnode, position in self.index.uses(current):
                if gnode.op in _DATA_MOVEMENT and (position == 0 or gnode.op == "Concat"):
                    stack.extend(self.index.output_ids(gnode))
                    continue
                roles.add(self._role_at(gnode, position))
        if QuantRole.WEIGHT in roles:
            return QuantRole.WEIGHT
        if roles and None not in roles:
            return QuantRole.SCALE if QuantRole.SCALE in roles else QuantRole.ZERO_POINT
        return None

    def _role_at(self, gnode: GNode, position: int) -> QuantRole | None:
        table = QUANT_INPUTS.get(gnode.op)
        if table is not None:
            return table.get(position)
        other = gnode.input(1 - position) if gnode.op == "Mul" and len(gnode.inputs) == 2 else None
        value = self.index.values.get(other) if other is not None else None
        if (
            value is not None
            and value.producer is not None
            and (value.producer.op, value.output_index) == DYNAMIC_SCALE_OUTPUT
        ):
            return QuantRole.SCALE
        return None

    def _loop_states(self) -> set[tuple[GNode, int]]:
        """The initial values of the states every Loop/Scan body updates from step to step: a
        loop that carries a state forward is a recurrence, whatever its body computes."""
        uses: set[tuple[GNode, int]] = set()
        for scope in self.index.scopes:
            owner = scope.owner
            if owner is None or owner.op not in ("Loop", "Scan"):
                continue
            uses.update(
                (owner, state.position) for state in self.index.states(scope) if not state.unchanged
            )
        return uses

    def _only_initial_state(self, vid: ValueId, state_uses: set[tuple[GNode, int]]) -> bool:
        """Every use of the value ends, through data movement only, in an initial state."""
        stack = [vid]
        seen: set[ValueId] = set()
        found = False
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in self.index.graph_outputs:
                return False
            for gnode, position in self.index.uses(current):
                if (gnode, position) in state_uses:
                    found = True
                elif gnode.op in _DATA_MOVEMENT and (position == 0 or gnode.op == "Concat"):
                    stack.extend(self.index.output_ids(gnode))
                else:
                    return False
        return found

    def _reaches(self, vid: ValueId, accept: Callable[[GNode, int], bool]) -> bool:
        """Some use of the value, possibly through data movement, satisfies `accept`."""
        stack = [vid]
        seen: set[ValueId] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for gnode, position in self.index.uses(current):
                if accept(gnode, position):
                    return True
                if gnode.op in _DATA_MOVEMENT and (position == 0 or gnode.op == "Concat"):
                    stack.extend(self.index.output_ids(gnode))
        return False

    def _rows(
        self, recurrences: list[_Recurrence], counted: set[str]
    ) -> tuple[list[Layer], list[Stored]]:
        """One row per recurrence and per other node reading stored tensors. Each counted tensor
        is held by exactly one row, so the rows sum to the total: recurrences come first (in
        graph order), then the other nodes; a later row reading a tensor an earlier one holds
        lists it as shared with that row (silero-vad runs one LSTM in two `If` branches)."""
        index = self.index
        rows: list[_Row] = []
        holder: dict[str, _Row] = {}
        owner: dict[GNode, _Row] = {}
        recurrence_rows: list[tuple[_Recurrence, _Row]] = []
        for recurrence in sorted(recurrences, key=lambda r: r.order):
            row = _Row(recurrence.layer.name, recurrence.row_type, recurrence.order)
            for stored in sorted(recurrence.claimed, key=lambda s: s.key):
                if stored.key in counted:
                    row.take(stored, holder)
            rows.append(row)
            recurrence_rows.append((recurrence, row))
            for gnode in recurrence.members:
                owner.setdefault(gnode, row)
        plain: dict[GNode, _Row] = {}
        for gnode in index.nodes:
            if gnode.op == "Constant" and gnode.node.domain in _STANDARD:
                continue
            target = owner.get(gnode)
            outputs = index.output_ids(gnode)
            if target is None and outputs and all(v in index.static for v in outputs):
                continue  # prepares a weight for a later node, which gets the row
            for vid in gnode.inputs:
                if vid is None or vid not in index.static:
                    continue
                for root in sorted(index.roots(vid), key=lambda s: s.key):
                    if root.key not in counted:
                        continue
                    held = holder.get(root.key)
                    if held is not None and (root.elements <= 1 or held is target):
                        continue  # a scalar reused, or a tensor this row already holds
                    if target is None:
                        shape = index.declared_shape(outputs[0]) if outputs else None
                        target = plain.setdefault(
                            gnode, _Row(gnode.label, gnode.op, gnode.order, output_shape=shape)
                        )
                    target.take(root, holder)
        extras: list[Stored] = []
        for row in plain.values():
            if not row.shared and all(s.elements <= 1 for s in row.tensors):
                for stored in row.tensors:
                    del holder[stored.key]
                extras.extend(row.tensors)
            else:
                rows.append(row)
        loose = {s.key for s in extras}
        extras += [
            s
            for s in _unique(index.stored_tensors())
            if s.key in counted and s.key not in holder and s.key not in loose
        ]
        for recurrence, row in recurrence_rows:
            recurrence.layer = _mark_shared(recurrence, row, holder)
        rows.sort(key=lambda row: row.order)
        if extras:
            # Scalars of weightless nodes and tensors no node reads (an initializer returned as
            # an output): counted in the total, so they get a row of their own at the end.
            rows.append(_Row(OUTSIDE_LAYERS, "constants", len(index.nodes), list(extras)))
        layers = [
            Layer(
                row.name,
                row.type,
                _tensors(row.tensors),
                shared=tuple(SharedTensor(_tensor(s), held) for s, held in row.shared),
                output_shape=row.output_shape,
            )
            for row in rows
        ]
        return layers, extras

    # --- checks and facts -------------------------------------------------------------

    def _check_payloads(self, stored: list[Stored]) -> None:
        """Declared shapes must match the stored byte counts: a mismatch means damage (or a
        tampered shape), and counting it would report nonsense."""
        for tensor in stored:
            meta = tensor.meta
            if meta is None or meta.is_external or meta.has_segment:
                continue
            count = tensor.elements
            bits = tensor.dtype.bits
            scale = 2 if tensor.dtype.name.startswith("complex") else 1
            found: str | None = None
            if meta.raw_bytes is not None:
                if bits and meta.raw_bytes != math.ceil(count * bits / 8):
                    found = f"{meta.raw_bytes:,} bytes of raw data"
            elif meta.fixed_count is not None:
                if meta.fixed_count != count * scale:
                    found = f"{meta.fixed_count:,} values"
            elif meta.varint_max:
                if bits >= 8 and not meta.varint_min <= count * scale <= meta.varint_max:
                    found = f"between {meta.varint_min:,} and {meta.varint_max:,} values"
            elif meta.string_count:
                if meta.string_count != count:
                    found = f"{meta.string_count:,} strings"
            elif count:
                self.warnings.append(
                    f"tensor '{tensor.name}' in {tensor.location} declares {count:,} elements "
                    "but stores no data (a structure-only file?)"
                )
            if found is not None:
                raise CorruptModelError(
                    one_line(
                        f"{self.path}: tensor '{tensor.name}' declares shape {list(tensor.shape)} "
                        f"({count:,} {tensor.dtype.name} elements) but stores {found}: "
                        "the file is damaged"
                    )
                )

    def _details(self, stored: list[Stored], extras: list[Stored]) -> list[Detail]:
        meta = self.meta
        details = [Detail("ir_version", str(meta.ir_version) if meta.ir_version else "unknown")]
        opsets = ", ".join(f"{domain or 'ai.onnx'} {version}" for domain, version in meta.opsets)
        details.append(Detail("opsets", opsets or "none declared"))
        details.append(
            Detail(
                "graphs",
                f"{_counted(len(self.index.nodes), 'node')} in "
                f"{_counted(len(self.index.scopes), 'graph')}",
            )
        )
        main, sub = initializer_elements(self.index)
        count = sum(1 for s in stored if s.origin is not Origin.CONSTANT)
        details.append(
            Detail(
                "initializers",
                f"{_counted(count, 'tensor')}, {_counted(main + sub, 'element')} "
                f"({main:,} in the main graph, "
                f"{sub:,} in subgraphs)",
            )
        )
        constants = [s for s in stored if s.origin is Origin.CONSTANT]
        if constants:
            details.append(
                Detail(
                    "constant nodes",
                    f"{_counted(len(constants), 'tensor')}, "
                    f"{_counted(sum(s.elements for s in constants), 'element')}",
                )
            )
        external = self._external(stored)
        if external:
            details.append(Detail("external data", external))
        if extras:
            details.append(
                Detail(
                    "outside layer rows",
                    f"{_counted(len(extras), 'constant')}, "
                    f"{_counted(sum(s.elements for s in extras), 'element')} "
                    f"(counted in the total, in the row '{OUTSIDE_LAYERS}')",
                )
            )
        return details

    def _external(self, stored: list[Stored]) -> str:
        """Name and size of each external data file; files are stat-ed, never opened, and
        only inside the model's folder."""
        base = self.path.parent
        sizes: dict[str, int | None] = {}
        for tensor in stored:
            meta = tensor.meta
            if meta is None or not meta.is_external:
                continue
            entries = dict(meta.external)
            location = entries.get("location", "")
            if not location:
                self.warnings.append(f"tensor '{tensor.name}': external data without a location")
                continue
            if location not in sizes:
                sizes[location] = self._external_size(base, location)
            size = sizes[location]
            try:
                offset = int(entries.get("offset", "0") or 0)
                length = int(entries["length"]) if entries.get("length") else None
            except ValueError:
                self.warnings.append(f"tensor '{tensor.name}': unreadable external offset/length")
                continue
            expected = -(-tensor.elements * tensor.dtype.bits // 8)  # exact for any size
            if length is not None and tensor.dtype.bits and length != expected:
                self.warnings.append(
                    f"tensor '{tensor.name}': external length {quoted(length)} bytes, but its "
                    f"shape {list(tensor.shape)} needs {expected:,}"
                )
            end = offset + (length if length is not None else expected)
            if size is not None and end > size:
                self.warnings.append(
                    f"tensor '{tensor.name}': external data ends at byte {quoted(end)} but "
                    f"'{location}' holds {size:,} bytes"
                )
        return ", ".join(
            f"{name} ({size:,} bytes)" if size is not None else f"{name} (not available)"
            for name, size in sizes.items()
        )

    def _external_size(self, base: Source, location: str) -> int | None:
        target = external_file(base, location)
        if target is None:
            self.warnings.append(
                f"external data path '{location}' points outside the model's folder: "
                "not opened (rnninspect reads nothing outside it)"
            )
            return None
        if not target.exists():
            self.warnings.append(
                f"external data file '{location}' is missing; shapes come from the model "
                "file, so the counts are unaffected"
            )
            return None
        try:
            return target.size
        except InspectorError as error:
            self.warnings.append(f"external data file '{location}': {error}")
        return None


def _mark_shared(recurrence: _Recurrence, row: _Row, holder: dict[str, _Row]) -> RecurrentLayer:
    """Mark the layer's tensors whose stored tensors (a view's base, or the tensors a computed
    weight is made from) another row holds."""
    layer = recurrence.layer
    marked = []
    for item in layer.tensors:
        view = split_view_key(item.tensor.key)
        base = view.base if view is not None else item.tensor.key
        roots = recurrence.sources.get(base, frozenset())
        others = [
            held.name
            for stored in sorted(roots, key=lambda s: s.key)
            if stored.elements > 1
            and (held := holder.get(stored.key)) is not None
            and held is not row
        ]
        marked.append(replace(item, shared_with=others[0]) if others else item)
    return replace(layer, tensors=tuple(marked))


def initializer_elements(index: Index) -> tuple[int, int]:
    """Elements of all initializers: (main graph, subgraphs), whatever their dtype."""
    main = sub = 0
    for value in index.values.values():
        stored = value.stored
        if stored is None or stored.origin is Origin.CONSTANT:
            continue
        if value.id.scope == 0:
            main += stored.elements
        else:
            sub += stored.elements
    return main, sub


def _recurrent_op(gnode: GNode) -> bool:
    """An RNN/LSTM/GRU node, or an onnxruntime contrib recurrent op this reader splits."""
    if gnode.node.domain in _STANDARD:
        return gnode.op in RECURRENT_OPS
    return gnode.node.domain == CONTRIB_DOMAIN and gnode.op in CONTRIB_RECURRENT


def _attr_int(gnode: GNode, name: str) -> int | None:
    attr = gnode.node.attribute(name)
    return attr.i if attr is not None else None


def _concrete(shape: tuple[int | str | None, ...] | None) -> tuple[int, ...] | None:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(d for d in shape if isinstance(d, int))


def _unique(tensors: Iterable[Stored]) -> list[Stored]:
    seen: dict[str, Stored] = {}
    for tensor in tensors:
        seen.setdefault(tensor.key, tensor)
    return list(seen.values())


def _tensor(stored: Stored) -> Tensor:
    return Tensor(stored.key, stored.name, stored.shape, stored.dtype.name, stored.dtype.itemsize)


def _tensors(stored: Iterable[Stored]) -> tuple[Tensor, ...]:
    return tuple(_tensor(s) for s in stored)


def _counted(number: int, word: str) -> str:
    """`1 tensor`, `2 tensors`: a detail line reads as a sentence."""
    return f"{number:,} {word}{'' if number == 1 else 's'}"
