"""A TFLite model as the op graph the lowered-recurrence detectors read
(`inspector.formats.opgraph`): every subgraph a scope, each WHILE op a loop whose body subgraph is
its child scope, the constants and resource variables as weights.

TFLite builtins are mapped onto ONNX's operator names where they mean the same
(schema.fbs and the kernels in tensorflow/lite/kernels/): FULLY_CONNECTED computes
x·Wᵀ + b with W stored (out, in), which is Gemm with transB=1 and the bias as its third input;
BATCH_MATMUL is MatMul; LOGISTIC is Sigmoid; UNPACK, SPLIT and SPLIT_V split a tensor (SPLIT
takes the axis first, so its operands are swapped into Split's order); PACK and CONCATENATION
join; STRIDED_SLICE and SLICE slice; WHILE is Loop (body inputs, outputs and the op's operands
line up one to one: schema.fbs WhileOptions). Flex ops (TensorFlow kernels the file asks the
Flex delegate to run, custom code `Flex` + the TensorFlow op name: a converter writes them where no
builtin computes the op, e.g. a cell run in float16) are mapped the same way by their TensorFlow
name (`FLEX`); a FlexMatMul whose weight's last axis meets the data's (`transpose_b`) is Gemm
with transB=1. Every other op keeps its own name.

Weights: every constant (a tensor whose buffer holds bytes), keyed `subgraph:tensor`; and each
READ_VARIABLE of a resource variable, which holds the variable's value: the constant an
initialiser subgraph assigns it (ASSIGN_VARIABLE, run once by CALL_ONCE), or, when none does, a
weight the file does not store (`Weight.stored` False) with the shape the read declares.
Subgraphs are visited from the main one through WHILE bodies with an explicit nesting limit and
never twice, so no walk recurses or loops on a hostile file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from types import MappingProxyType

from inspector.errors import CorruptModelError
from inspector.formats.opgraph import (
    DKind,
    DType,
    LoopState,
    Node,
    OpGraph,
    Scope,
    StaticRoots,
    ValueId,
    Weight,
)
from inspector.formats.ranges import Buffer
from inspector.formats.tflite import schema
from inspector.formats.tflite.flatbuffer import FlatError
from inspector.formats.tflite.schema import ModelInfo, OperatorInfo, SubGraphInfo, TensorInfo

MAX_NESTING = 64  # WHILE loops inside loop bodies; converters nest one per stacked cell at most
# A resource variable has no buffer to bound its shape; one larger than this is no real model.
MAX_VARIABLE_ELEMENTS = 2**40

OPS: Mapping[str, str] = MappingProxyType(
    {
        "FULLY_CONNECTED": "Gemm",
        "BATCH_MATMUL": "MatMul",
        "CONV_2D": "Conv",
        "DEPTHWISE_CONV_2D": "Conv",
        "ADD": "Add",
        "ADD_N": "Sum",
        "SUB": "Sub",
        "MUL": "Mul",
        "DIV": "Div",
        "NEG": "Neg",
        "LOGISTIC": "Sigmoid",
        "TANH": "Tanh",
        "RELU": "Relu",
        "RELU6": "Clip",
        "RELU_N1_TO_1": "Clip",
        "RELU_0_TO_1": "Clip",
        "SPLIT": "Split",
        "SPLIT_V": "Split",
        "UNPACK": "Split",
        "PACK": "Concat",
        "CONCATENATION": "Concat",
        "RESHAPE": "Reshape",
        "SQUEEZE": "Squeeze",
        "EXPAND_DIMS": "Unsqueeze",
        "TRANSPOSE": "Transpose",
        "STRIDED_SLICE": "Slice",
        "SLICE": "Slice",
        "GATHER": "Gather",
        "CAST": "Cast",
        "DEQUANTIZE": "DequantizeLinear",
        "QUANTIZE": "QuantizeLinear",
        "SOFTMAX": "Softmax",
        "WHILE": "Loop",
        "SHAPE": "Shape",
    }
)
# Flex ops by their TensorFlow name (tensorflow/core/ops/math_ops.cc, array_ops.cc), as OPS.
FLEX: Mapping[str, str] = MappingProxyType(
    {
        "FlexMatMul": "MatMul",
        "FlexBatchMatMulV2": "MatMul",
        "FlexBatchMatMulV3": "MatMul",
        "FlexAdd": "Add",
        "FlexAddV2": "Add",
        "FlexBiasAdd": "Add",
        "FlexSub": "Sub",
        "FlexMul": "Mul",
        "FlexSigmoid": "Sigmoid",
        "FlexTanh": "Tanh",
        "FlexRelu": "Relu",
        "FlexSplit": "Split",
        "FlexSplitV": "Split",
        "FlexUnpack": "Split",
        "FlexPack": "Concat",
        "FlexConcatV2": "Concat",
        "FlexReshape": "Reshape",
        "FlexSqueeze": "Squeeze",
        "FlexExpandDims": "Unsqueeze",
        "FlexTranspose": "Transpose",
        "FlexStridedSlice": "Slice",
        "FlexSlice": "Slice",
        "FlexGatherV2": "Gather",
        "FlexCast": "Cast",
        "FlexIdentity": "Identity",
    }
)
# Ops whose outputs are not a function of their operands (state, control flow, randomness) and
# ops rnninspect does not know (custom and Flex ops): never static, whatever they read.
_NOT_STATIC = frozenset(
    {
        "VAR_HANDLE",
        "READ_VARIABLE",
        "ASSIGN_VARIABLE",
        "WHILE",
        "IF",
        "CALL",
        "CALL_ONCE",
        "RANDOM_STANDARD_NORMAL",
        "RANDOM_UNIFORM",
        "MULTINOMIAL",
    }
)


def _dtype(dtype: schema.DType) -> DType:
    if dtype.is_float:
        kind = DKind.FLOAT
    elif dtype.name in ("resource", "variant"):
        kind = DKind.OPAQUE
    elif dtype.name == "string":
        kind = DKind.STRING
    elif dtype.name == "bool":
        kind = DKind.BOOL
    else:
        kind = DKind.INT
    return DType(dtype.name, dtype.stored_bits, kind)


_DTYPES = {dtype: _dtype(dtype) for dtype in schema.DTYPES.values()}


def dtype_of(dtype: schema.DType) -> DType:
    return _DTYPES.get(dtype) or _dtype(dtype)


def vid(graph: int, tensor: int) -> ValueId:
    return ValueId(graph, str(tensor))


def tensor_key(graph: int, tensor: int) -> str:
    return f"{graph}:{tensor}"


def op_label(graph: SubGraphInfo, op: OperatorInfo) -> str:
    """`fully_connected_3` (operator 3 of the main subgraph), prefixed by the subgraph's name
    elsewhere."""
    own = f"{op.op.lower()}_{op.index}"
    if graph.index == 0:
        return own
    return f"{graph.name or f'subgraph{graph.index}'}/{own}"


def loop_name(graph: SubGraphInfo, op: OperatorInfo, body: SubGraphInfo | None) -> str:
    """A WHILE loop is named for the layer its body computes (`sequential/lstm/while_body` ->
    `sequential/lstm`), else as any op."""
    if body is not None and body.name.rstrip("/").endswith("while_body"):
        name = body.name.rstrip("/").removesuffix("while_body").rstrip("/")
        if name:
            return name
    return op_label(graph, op)


class TfliteView:
    """The op graph of one model, with the way back from its nodes to the file's operators."""

    def __init__(self, info: ModelInfo, buf: Buffer) -> None:
        self.info = info
        self._buf = buf
        self._content: dict[tuple[int, int], bytes | None] = {}  # (buffer, bytes) -> bytes
        self.owner: dict[int, tuple[SubGraphInfo, OperatorInfo]] = {}  # body -> its WHILE
        self._positions: dict[int, dict[str, int]] = {}  # body -> its inputs' positions
        self.order = self._scope_order()
        self.scopes = {
            g.index: Scope(g.index, g.name or f"subgraph {g.index}", tuple(map(str, g.inputs)))
            for g in info.subgraphs
        }
        self.tensors: dict[ValueId, TensorInfo] = {}
        self.operator: dict[Node, tuple[SubGraphInfo, OperatorInfo]] = {}
        self.node: dict[tuple[int, int], Node] = {}
        weights: dict[ValueId, Weight] = {}
        # Tensors of one subgraph reading one buffer as the same shape and type hold the same
        # values: one weight (TOCO gives each unrolled step its own tensor of the kernel, all on
        # one buffer).
        same: dict[tuple[int, int, tuple[int, ...], schema.DType, int], Weight] = {}
        for graph in info.subgraphs:
            for tensor in graph.tensors:
                value = vid(graph.index, tensor.index)
                self.tensors[value] = tensor
                if self.constant(tensor):
                    weights[value] = same.setdefault(
                        (graph.index, tensor.buffer, tensor.shape, tensor.dtype, tensor.scales),
                        Weight(
                            tensor_key(graph.index, tensor.index),
                            tensor.name or f"tensor_{tensor.index}",
                            tensor.shape,
                            dtype_of(tensor.dtype),
                            quantized=tensor.scales > 0,
                        ),
                    )
        self._nodes()
        self.aliases: dict[ValueId, ValueId] = {}
        static = set(weights)
        self._variables(weights, static)
        states: dict[int, list[LoopState]] = {}
        for index in self.order:
            graph = info.subgraphs[index]
            states[index] = self._states(graph, static)
            self._propagate(graph, static)
        graph_inputs = {vid(g.index, t) for g in info.subgraphs for t in g.inputs}
        graph_outputs = {vid(g.index, t) for g in info.subgraphs for t in g.outputs}

        def operands(value: ValueId) -> tuple[ValueId, ...]:
            alias = self.aliases.get(value)
            if alias is not None:
                return (alias,)
            node = self.graph.producer(value) if value in static else None
            return tuple(v for v in node.inputs if v is not None) if node is not None else ()

        self.weights = weights
        self.graph = OpGraph(
            [self.scopes[index] for index in self.order],
            weights=weights,
            static=static,
            graph_inputs=graph_inputs,
            graph_outputs=graph_outputs,
            states=states,
            roots=StaticRoots(weights.get, operands),
            declared_shape=self._declared_shape,
            elem_type=self._elem_type,
            content=self.content,
        )

    def constant(self, tensor: TensorInfo) -> bool:
        buffers = self.info.buffer_bytes
        return 0 < tensor.buffer < len(buffers) and buffers[tensor.buffer] > 0

    def content(self, weight: Weight) -> bytes | None:
        """A stored weight's bytes (read once per buffer, only when a detector asks); None for
        variables, packed types and buffers that do not hold the shape."""
        if not weight.stored:
            return None
        graph, index = (int(part) for part in weight.key.split(":"))
        tensor = self.info.subgraphs[graph].tensors[index]
        bits = tensor.dtype.stored_bits
        if not bits or bits % 8:
            return None
        key = (tensor.buffer, weight.elements * bits // 8)
        if key not in self._content:
            try:
                data = schema.buffer_content(self._buf, *key)
            except FlatError:
                data = None
            self._content[key] = data if isinstance(data, bytes) else None
        return self._content[key]

    # --- scopes ---------------------------------------------------------------------------

    def _scope_order(self) -> list[int]:
        """Subgraphs from the main one through WHILE bodies (each body right after the scopes
        before it, owned by the first loop that names it), then the rest (conditions,
        initialisers, other signatures) in file order."""
        subgraphs = self.info.subgraphs
        order: list[int] = []
        depth: dict[int, int] = {}
        parent: dict[int, int] = {}
        pending = deque([0] if subgraphs else [])
        queued = set(pending)
        while pending:
            index = pending.popleft()
            order.append(index)
            graph = subgraphs[index]
            for op in graph.operators:
                body = op.body
                if op.op != "WHILE" or body is None or not 0 <= body < len(subgraphs):
                    continue
                ancestor: int | None = index
                while ancestor is not None:
                    if ancestor == body:
                        raise CorruptModelError(
                            f"WHILE op {op.index} of subgraph {index} runs subgraph {body}, "
                            "which encloses it, as its body: a loop that contains itself"
                        )
                    ancestor = parent.get(ancestor)
                if body in queued:
                    continue
                if depth.get(index, 0) + 1 > MAX_NESTING:
                    raise CorruptModelError(
                        f"WHILE loops nested more than {MAX_NESTING} deep (subgraph {body})"
                    )
                depth[body] = depth.get(index, 0) + 1
                parent[body] = index
                self.owner[body] = (graph, op)
                pending.append(body)
                queued.add(body)
        seen = set(order)
        return order + [g.index for g in subgraphs if g.index not in seen]

    def _nodes(self) -> None:
        order = 0
        for index in self.order:
            graph = self.info.subgraphs[index]
            scope = self.scopes[index]
            count = len(graph.tensors)
            for op in graph.operators:
                inputs = tuple(vid(index, t) if 0 <= t < count else None for t in op.inputs)
                if op.op in ("SPLIT", "FlexSplit") and len(inputs) >= 2:
                    inputs = (inputs[1], inputs[0], *inputs[2:])  # (axis, x) -> Split(x, axis)
                name = OPS.get(op.op) or FLEX.get(op.op, op.op)
                transposed = op.op == "FULLY_CONNECTED" or (
                    op.op in ("FlexMatMul", "FlexBatchMatMulV2", "FlexBatchMatMulV3")
                    and _transpose_b(graph, op)
                )
                if transposed and name == "MatMul":
                    name = "Gemm"  # x·Wᵀ
                body = op.body
                owned = body is not None and self.owner.get(body) == (graph, op)
                body_graph = self.info.subgraphs[body] if owned and body is not None else None
                node = Node(
                    op=name,
                    native=op.op,
                    label=(
                        loop_name(graph, op, body_graph)
                        if op.op == "WHILE"
                        else op_label(graph, op)
                    ),
                    scope=scope,
                    index=op.index,
                    order=order,
                    inputs=inputs,
                    outputs=tuple(vid(index, t) for t in op.outputs if 0 <= t < count),
                    children=(self.scopes[body],) if owned and body is not None else (),
                    attributes={"transB": 1} if transposed else {},
                )
                order += 1
                scope.nodes.append(node)
                self.operator[node] = (graph, op)
                self.node[(index, op.index)] = node

    # --- values -----------------------------------------------------------------------------

    def outer(self, value: ValueId) -> ValueId:
        """A body input's value outside the loop, through every enclosing loop (at most
        MAX_NESTING of them)."""
        for _ in range(MAX_NESTING + 1):
            owned = self.owner.get(value.scope)
            if owned is None:
                return value
            graph, op = owned
            position = self._input_position(value.scope).get(value.name)
            if position is None or position >= len(op.inputs) or op.inputs[position] < 0:
                return value
            value = vid(graph.index, op.inputs[position])
        return value

    def _input_position(self, scope: int) -> dict[str, int]:
        """Where each of a body's inputs stands among them (the first place, if listed twice),
        worked out once per body: a loop passing thousands of handles is not scanned per read."""
        positions = self._positions.get(scope)
        if positions is None:
            positions = {}
            for position, tensor in enumerate(self.info.subgraphs[scope].inputs):
                positions.setdefault(str(tensor), position)
            self._positions[scope] = positions
        return positions

    def _variables(self, weights: dict[ValueId, Weight], static: set[ValueId]) -> None:
        """READ_VARIABLE outputs hold a variable's value: the constant ASSIGN_VARIABLE gives it,
        or a weight the file does not store."""
        # VAR_HANDLE output -> the variable: (container, shared_name), which initialiser and
        # model subgraphs share (schema.fbs VarHandleOptions), else the handle tensor itself.
        handles: dict[ValueId, tuple[str, str]] = {}
        for graph in self.info.subgraphs:
            for op in graph.operators:
                if op.op == "VAR_HANDLE" and op.outputs and 0 <= op.outputs[0] < len(graph.tensors):
                    container, shared = op.variable or ("", "")
                    own = tensor_key(graph.index, op.outputs[0])
                    handles[vid(graph.index, op.outputs[0])] = (
                        (container, shared) if shared else (own, graph.tensors[op.outputs[0]].name)
                    )
        assigned: dict[tuple[str, str], ValueId] = {}
        reads: list[tuple[Node, tuple[str, str] | None]] = []
        for node, (_, op) in self.operator.items():
            if op.op not in ("ASSIGN_VARIABLE", "READ_VARIABLE") or not node.inputs:
                continue
            handle = node.inputs[0]
            identity = handles.get(self.outer(handle)) if handle is not None else None
            if op.op == "ASSIGN_VARIABLE":
                value = node.input(1)
                if identity is not None and value is not None and value in weights:
                    assigned.setdefault(identity, value)
            else:
                reads.append((node, identity))
        for node, identity in reads:
            if not node.outputs:
                continue
            out = node.outputs[0]
            source = assigned.get(identity) if identity is not None else None
            if source is not None:
                self.aliases[out] = source
                static.add(out)
                continue
            tensor = self.tensors[out]
            elements = 1
            for dim in tensor.shape:
                elements *= dim
                if elements > MAX_VARIABLE_ELEMENTS:
                    raise CorruptModelError(
                        f"resource variable '{tensor.name}' declares more than "
                        f"{MAX_VARIABLE_ELEMENTS:,} elements"
                    )
            name = identity[1] if identity is not None and identity[1] else tensor.name
            key = (
                f"variable:{identity[0]}/{identity[1]}"
                if identity
                else f"variable:{out.scope}:{out.name}"
            )
            weights[out] = Weight(key, name, tensor.shape, dtype_of(tensor.dtype), stored=False)
            static.add(out)

    def _states(self, graph: SubGraphInfo, static: set[ValueId]) -> list[LoopState]:
        """A body's loop variables: input k, output k and the WHILE's operand k line up; one
        the body returns as it came is a value threaded through the loop (weights, in older
        converters), an alias of the outer value."""
        owned = self.owner.get(graph.index)
        if owned is None:
            return []
        outer_graph, op = owned
        found = []
        for position, (first, last) in enumerate(zip(graph.inputs, graph.outputs, strict=False)):
            if position >= len(op.inputs) or not 0 <= first < len(graph.tensors):
                continue
            outer = (
                vid(outer_graph.index, op.inputs[position]) if op.inputs[position] >= 0 else None
            )
            inside = vid(graph.index, first)
            unchanged = first == last
            if unchanged and outer is not None and outer in static:
                static.add(inside)
                self.aliases[inside] = outer
            found.append(LoopState(inside, outer, position, unchanged))
        return found

    def _propagate(self, graph: SubGraphInfo, static: set[ValueId]) -> None:
        """Outputs of ops computed from static values alone are static (file order is the
        execution order TFLite requires; an op out of order is simply not static)."""
        for op in graph.operators:
            if op.op in _NOT_STATIC or op.op not in schema.BUILTIN_NAMES:
                continue
            node = self.node[(graph.index, op.index)]
            inputs = [v for v in node.inputs if v is not None]
            if inputs and all(v in static for v in inputs):
                static.update(node.outputs)

    def _declared_shape(self, value: ValueId) -> tuple[int | str | None, ...] | None:
        tensor = self.tensors.get(value)
        if tensor is None:
            return None
        signature = tensor.shape_signature
        if signature is not None and len(signature) == len(tensor.shape):
            return tuple(None if d < 0 else d for d in signature)
        return tensor.shape

    def _elem_type(self, value: ValueId) -> DType:
        tensor = self.tensors.get(value)
        return dtype_of(tensor.dtype) if tensor is not None else DType("unknown", 0, DKind.UNKNOWN)


def _transpose_b(graph: SubGraphInfo, op: OperatorInfo) -> bool:
    """Whether a FlexMatMul multiplies by its second operand transposed: TensorFlow's
    `transpose_b` (BatchMatMul's `adj_y`) in the op's NodeDef; where that cannot be read, by the
    shapes (the weight's last axis meets the data's, its first does not)."""
    if op.flex_true is not None:
        return bool(op.flex_true & {"transpose_b", "adj_y"})
    if len(op.inputs) < 2 or not all(0 <= t < len(graph.tensors) for t in op.inputs[:2]):
        return False
    data, weight = (graph.tensors[t].shape for t in op.inputs[:2])
    if len(weight) != 2 or not data:
        return False
    return weight[1] == data[-1] != weight[0]
