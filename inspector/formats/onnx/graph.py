"""An index over a decoded ONNX model: every graph and subgraph as a scope, every value with
where it comes from, who reads it, whether it is static (computable from stored tensors alone)
and which stored tensors it derives from.

Validation happens here, once: a node reading a name nothing defines, a name defined twice in a
graph, or a cycle make the model corrupt (the ONNX IR spec requires graphs to be SSA, acyclic
and topologically sortable, with outer-scope names visible in subgraphs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from inspector.formats.onnx.wire import Graph, ModelMeta, Node, SparseMeta, TensorMeta, ValueInfo


class GraphError(Exception):
    """The graph structure is invalid (message is one line for the user)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: str, limit: int = 600) -> str:
    """Names come from the file and may hold newlines or control characters: escape them so a
    message stays one line, and cap its length."""
    cleaned = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


class DKind(Enum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DType:
    name: str
    bits: int
    kind: DKind

    @property
    def itemsize(self) -> int:
        return max(1, self.bits // 8)


# TensorProto.DataType (onnx.proto3).
DTYPES: dict[int, DType] = {
    1: DType("float32", 32, DKind.FLOAT),
    2: DType("uint8", 8, DKind.INT),
    3: DType("int8", 8, DKind.INT),
    4: DType("uint16", 16, DKind.INT),
    5: DType("int16", 16, DKind.INT),
    6: DType("int32", 32, DKind.INT),
    7: DType("int64", 64, DKind.INT),
    8: DType("string", 0, DKind.STRING),
    9: DType("bool", 8, DKind.BOOL),
    10: DType("float16", 16, DKind.FLOAT),
    11: DType("float64", 64, DKind.FLOAT),
    12: DType("uint32", 32, DKind.INT),
    13: DType("uint64", 64, DKind.INT),
    14: DType("complex64", 64, DKind.FLOAT),
    15: DType("complex128", 128, DKind.FLOAT),
    16: DType("bfloat16", 16, DKind.FLOAT),
    17: DType("float8e4m3fn", 8, DKind.FLOAT),
    18: DType("float8e4m3fnuz", 8, DKind.FLOAT),
    19: DType("float8e5m2", 8, DKind.FLOAT),
    20: DType("float8e5m2fnuz", 8, DKind.FLOAT),
    21: DType("uint4", 4, DKind.INT),
    22: DType("int4", 4, DKind.INT),
    23: DType("float4e2m1", 4, DKind.FLOAT),
    24: DType("float8e8m0", 8, DKind.FLOAT),
    25: DType("uint2", 2, DKind.INT),
    26: DType("int2", 2, DKind.INT),
}
UNKNOWN_DTYPE = DType("unknown", 0, DKind.UNKNOWN)


def dtype_of(code: int | None) -> DType:
    return DTYPES.get(code or 0, UNKNOWN_DTYPE)


class Origin(Enum):
    INITIALIZER = "initializer"
    SPARSE = "sparse initializer"
    CONSTANT = "Constant node"


@dataclass(frozen=True)
class Stored:
    """A tensor whose values are stored in the file."""

    key: str  # unique in the model
    name: str
    location: str
    origin: Origin
    shape: tuple[int, ...]
    dtype: DType
    meta: TensorMeta | None  # None for Constant value_float(s)/value_int(s)

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


class Kind(Enum):
    STORED = "stored"
    INPUT = "graph input"
    NODE = "node output"


@dataclass(frozen=True)
class ValueId:
    scope: int
    name: str


@dataclass
class Value:
    id: ValueId
    kind: Kind
    stored: Stored | None = None
    info: ValueInfo | None = None  # declared type (graph input, value_info, output)
    producer: GNode | None = None
    output_index: int = 0


@dataclass(eq=False)
class GNode:
    """A node together with the scope it sits in."""

    node: Node
    scope: Scope
    index: int  # position in its graph
    order: int  # position in the whole model, graphs depth-first
    inputs: tuple[ValueId | None, ...] = ()  # None: empty name (absent optional input)
    implicit: tuple[ValueId, ...] = ()  # outer-scope values its subgraphs read
    children: tuple[Scope, ...] = ()

    @property
    def op(self) -> str:
        return self.node.op_type

    @property
    def label(self) -> str:
        return self.node.name or f"{self.node.op_type}_{self.index}"

    def input(self, position: int) -> ValueId | None:
        return self.inputs[position] if position < len(self.inputs) else None


@dataclass(frozen=True)
class LoopState:
    body: ValueId  # the body input holding the state
    outer: ValueId | None  # its initial value, an input of the Loop/Scan node
    position: int  # which input of the Loop/Scan node
    unchanged: bool  # the body returns it as it came: a constant threaded through the loop


@dataclass(eq=False)
class Scope:
    id: int
    path: str
    graph: Graph
    parent: Scope | None
    owner: GNode | None
    names: dict[str, Value] = field(default_factory=dict)
    nodes: list[GNode] = field(default_factory=list)


def constant_stored(node: Node, location: str, key: str, name: str) -> Stored | None:
    """The tensor a Constant node stores (onnx Constant-13+ attributes), or None."""
    for attr in node.attributes:
        if attr.name == "value" and attr.t is not None:
            return _stored_of(attr.t, location, key, name, Origin.CONSTANT)
        if attr.name == "sparse_value" and attr.sparse:
            return _sparse_stored(attr.sparse[0], location, key, name)
        if attr.name == "value_float":
            return Stored(key, name, location, Origin.CONSTANT, (), DTYPES[1], None)
        if attr.name == "value_int":
            return Stored(key, name, location, Origin.CONSTANT, (), DTYPES[7], None)
        if attr.name == "value_string":
            return Stored(key, name, location, Origin.CONSTANT, (), DTYPES[8], None)
        if attr.name in ("value_floats", "value_ints", "value_strings"):
            code = {"value_floats": 1, "value_ints": 7, "value_strings": 8}[attr.name]
            shape = (attr.list_count,)
            return Stored(key, name, location, Origin.CONSTANT, shape, DTYPES[code], None)
    return None


def _stored_of(meta: TensorMeta, location: str, key: str, name: str, origin: Origin) -> Stored:
    for dim in meta.dims:
        if dim < 0:
            raise GraphError(f"tensor '{name}' in {location} has a negative dimension {dim}")
    return Stored(key, name, location, origin, meta.dims, dtype_of(meta.data_type), meta)


def _sparse_stored(sparse: SparseMeta, location: str, key: str, name: str) -> Stored:
    """A sparse tensor counts the values it stores, not its dense size."""
    values = sparse.values
    count = math.prod(values.dims) if values is not None else 0
    dtype = dtype_of(values.data_type if values is not None else None)
    return Stored(key, name, location, Origin.SPARSE, (count,), dtype, values)


class Index:
    def __init__(self, model: ModelMeta) -> None:
        if model.graph is None:
            raise GraphError("the ModelProto has no graph")
        self.model = model
        self.scopes: list[Scope] = []
        self.nodes: list[GNode] = []
        self.values: dict[ValueId, Value] = {}
        self.consumers: dict[ValueId, list[tuple[GNode, int]]] = {}
        self.graph_outputs: set[ValueId] = set()
        self.main = self._add_scope(model.graph, "main", None, None)
        for scope in self.scopes:
            for value in scope.names.values():
                self.values[value.id] = value
        # Deepest scopes first: a subgraph's outer reads become implicit inputs of its owner
        # before the owner's own scope is linked.
        for scope in reversed(self.scopes):
            self._link(scope)
        for scope in self.scopes:
            self._check_acyclic(scope)
        self.static: set[ValueId] = set()
        self.aliases: dict[ValueId, ValueId] = {}
        self._mark_static()
        self._roots: dict[ValueId, frozenset[Stored]] = {}

    # --- construction -----------------------------------------------------------------

    def _add_scope(
        self, graph: Graph, path: str, parent: Scope | None, owner: GNode | None
    ) -> Scope:
        scope = Scope(len(self.scopes), path, graph, parent, owner)
        self.scopes.append(scope)
        names = scope.names
        for info in graph.inputs:
            if info.name:
                vid = ValueId(scope.id, info.name)
                names[info.name] = Value(vid, Kind.INPUT, info=info)
        for position, meta in enumerate(graph.initializers):
            name = meta.name or f"initializer_{position}"
            vid = ValueId(scope.id, name)
            declared = names.get(name)
            key = name if scope.id == 0 else f"{path}|{name}"
            if declared is not None and declared.kind is Kind.STORED:
                raise GraphError(f"initializer '{name}' is defined twice in {path}")
            stored = _stored_of(meta, path, key, name, Origin.INITIALIZER)
            # IR < 4 lists initializers among the graph inputs too; the stored value wins.
            names[name] = Value(
                vid, Kind.STORED, stored=stored, info=declared.info if declared else None
            )
        for position, sparse in enumerate(graph.sparse_initializers):
            name = (sparse.values.name if sparse.values else "") or f"sparse_{position}"
            key = name if scope.id == 0 else f"{path}|{name}"
            names[name] = Value(
                ValueId(scope.id, name), Kind.STORED, stored=_sparse_stored(sparse, path, key, name)
            )
        for position, node in enumerate(graph.nodes):
            gnode = GNode(node, scope, position, len(self.nodes))
            self.nodes.append(gnode)
            scope.nodes.append(gnode)
            for out_index, output in enumerate(node.outputs):
                if not output:
                    continue
                if output in names:
                    what = names[output].kind.value
                    raise GraphError(
                        f"'{output}' in {path} is produced by node '{gnode.label}' but is "
                        f"already a {what}: ONNX graphs must assign each name once"
                    )
                vid = ValueId(scope.id, output)
                value = Value(vid, Kind.NODE, producer=gnode, output_index=out_index)
                if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                    key = output if scope.id == 0 else f"{path}|{output}"
                    value.stored = constant_stored(node, path, key, output)
                names[output] = value
            children = []
            for label, sub in node.subgraphs():
                child_path = f"{path}/{gnode.label}:{label}"
                children.append(self._add_scope(sub, child_path, scope, gnode))
            gnode.children = tuple(children)
        for info in graph.value_info:
            declared = names.get(info.name)
            if declared is not None and declared.info is None:
                declared.info = info
        return scope

    def _link(self, scope: Scope) -> None:
        for info in scope.graph.outputs:
            vid = self.resolve(scope, info.name)
            if vid is None:
                raise GraphError(
                    f"graph output '{info.name}' of {scope.path} is not produced by any node, "
                    "initializer or graph input"
                )
            self.graph_outputs.add(vid)
            value = self.values[vid]
            if value.info is None:
                value.info = info
        for gnode in scope.nodes:
            resolved: list[ValueId | None] = []
            for position, name in enumerate(gnode.node.inputs):
                if not name:
                    resolved.append(None)
                    continue
                vid = self.resolve(scope, name)
                if vid is None:
                    raise GraphError(
                        f"node '{gnode.label}' ({gnode.op}) in {scope.path} reads '{name}', "
                        "which no node, initializer or graph input defines"
                    )
                resolved.append(vid)
                self.consumers.setdefault(vid, []).append((gnode, position))
            gnode.inputs = tuple(resolved)
        # Outer-scope reads from subgraphs become implicit inputs of the owning node, so that
        # cycle checks and static analysis see them.
        if scope.owner is not None:
            outer = {
                vid
                for gnode in scope.nodes
                for vid in gnode.inputs
                if vid is not None and vid.scope != scope.id
            }
            outer |= {
                vid for gnode in scope.nodes for vid in gnode.implicit if vid.scope != scope.id
            }
            owner = scope.owner
            owner.implicit = tuple(
                sorted(set(owner.implicit) | outer, key=lambda v: (v.scope, v.name))
            )

    def resolve(self, scope: Scope | None, name: str) -> ValueId | None:
        while scope is not None:
            value = scope.names.get(name)
            if value is not None:
                return value.id
            scope = scope.parent
        return None

    def _check_acyclic(self, scope: Scope) -> None:
        """Kahn's algorithm over the nodes of one graph (ONNX requires a DAG)."""
        pending: dict[int, int] = {}
        waiting: dict[int, list[GNode]] = {}
        ready: list[GNode] = []
        for gnode in scope.nodes:
            deps: set[int] = set()
            for vid in (*gnode.inputs, *gnode.implicit):
                producer = self.producer(vid) if vid is not None and vid.scope == scope.id else None
                if producer is not None:
                    deps.add(producer.index)
            pending[gnode.index] = len(deps)
            for dep in deps:
                waiting.setdefault(dep, []).append(gnode)
            if not deps:
                ready.append(gnode)
        done = 0
        while ready:
            gnode = ready.pop()
            done += 1
            for follower in waiting.get(gnode.index, ()):
                pending[follower.index] -= 1
                if pending[follower.index] == 0:
                    ready.append(follower)
        if done != len(scope.nodes):
            stuck = next(g for g in scope.nodes if pending[g.index] > 0)
            raise GraphError(
                f"the graph {scope.path} has a cycle through node '{stuck.label}' ({stuck.op})"
            )

    # --- static values and their stored roots -----------------------------------------

    _NOT_STATIC = frozenset(
        {
            "RandomNormal",
            "RandomUniform",
            "RandomNormalLike",
            "RandomUniformLike",
            "Multinomial",
            "Bernoulli",
            "Dropout",
        }
    )

    def _mark_static(self) -> None:
        for vid, value in self.values.items():
            if value.kind is Kind.STORED or value.stored is not None:
                self.static.add(vid)
        for scope in self.scopes:
            self._alias_passthrough(scope)
            for gnode in self.topological(scope):
                if (
                    gnode.children
                    or gnode.op in self._NOT_STATIC
                    or gnode.node.domain not in ("", "ai.onnx")
                ):
                    continue
                if gnode.op == "Constant":
                    continue  # already marked through its stored value
                inputs = [vid for vid in (*gnode.inputs, *gnode.implicit) if vid is not None]
                if inputs and all(vid in self.static for vid in inputs):
                    for output in gnode.node.outputs:
                        if output:
                            self.static.add(ValueId(scope.id, output))

    def _alias_passthrough(self, scope: Scope) -> None:
        """A Loop or Scan state that the body hands back unchanged is a constant the exporter
        threads through the loop (tf2onnx passes weights this way): inside the body it is the
        outer value."""
        owner = scope.owner
        if owner is None:
            return
        for body_vid, outer_vid in self.passthrough(scope):
            if outer_vid in self.static:
                self.static.add(body_vid)
                self.aliases[body_vid] = outer_vid

    def states(self, scope: Scope) -> list[LoopState]:
        """The states a Loop/Scan body carries from one iteration to the next."""
        owner = scope.owner
        if owner is None or owner.node.domain not in ("", "ai.onnx"):
            return []
        inputs = scope.graph.inputs
        outputs = scope.graph.outputs
        found = []
        for body_in, body_out, position in self.carried(scope):
            body_vid = ValueId(scope.id, inputs[body_in].name)
            out_vid = ValueId(scope.id, outputs[body_out].name)
            producer = self.producer(out_vid)
            unchanged = out_vid == body_vid or (
                producer is not None and producer.op == "Identity" and producer.input(0) == body_vid
            )
            found.append(LoopState(body_vid, owner.input(position), position, unchanged))
        return found

    def passthrough(self, scope: Scope) -> list[tuple[ValueId, ValueId]]:
        """(body input, outer initial value) of each state a Loop/Scan body returns unchanged."""
        return [
            (state.body, state.outer)
            for state in self.states(scope)
            if state.unchanged and state.outer is not None
        ]

    def carried(self, scope: Scope) -> list[tuple[int, int, int]]:
        """(body input, body output, owner input) positions of a Loop/Scan body's states."""
        owner = scope.owner
        if owner is None:
            return []
        n_in, n_out = len(scope.graph.inputs), len(scope.graph.outputs)
        if owner.op == "Loop":
            # Loop: body(iter, cond, v...) -> (cond, v..., scan...); node(M, cond, v_initial...)
            count = min(n_in - 2, n_out - 1, len(owner.inputs) - 2)
            return [(2 + k, 1 + k, 2 + k) for k in range(max(0, count))]
        if owner.op == "Scan":
            attr = owner.node.attribute("num_scan_inputs")
            scans = attr.i if attr is not None and attr.i is not None else 0
            # Scan-8 takes an optional sequence_lens first; Scan-9+ does not.
            skip = 1 if self.opset() < 9 else 0
            count = min(len(owner.inputs) - skip - scans, n_in - scans, n_out)
            return [(k, k, skip + k) for k in range(max(0, count))]
        return []

    def opset(self, domain: str = "") -> int:
        for name, version in self.model.opsets:
            if name in (domain, "ai.onnx" if domain == "" else domain):
                return version
        return 0

    def topological(self, scope: Scope) -> list[GNode]:
        """The scope's nodes in an order where producers come first (the file order when it
        is already sorted, as the IR spec requires)."""
        placed: set[int] = set()
        order: list[GNode] = []
        by_index = scope.nodes

        def deps(gnode: GNode) -> Iterator[GNode]:
            for vid in (*gnode.inputs, *gnode.implicit):
                if vid is None or vid.scope != scope.id:
                    continue
                producer = self.values[vid].producer
                if producer is not None and producer.index not in placed:
                    yield producer

        for start in by_index:
            if start.index in placed:
                continue
            stack = [start]
            while stack:
                top = stack[-1]
                if top.index in placed:
                    stack.pop()
                    continue
                missing = next(deps(top), None)
                if missing is None:
                    placed.add(top.index)
                    order.append(top)
                    stack.pop()
                else:
                    stack.append(missing)
        return order

    def roots(self, vid: ValueId) -> frozenset[Stored]:
        """The stored tensors a static value is computed from (itself when stored)."""
        cached = self._roots.get(vid)
        if cached is not None:
            return cached
        result: set[Stored] = set()
        stack = [vid]
        seen: set[ValueId] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            value = self.values.get(current)
            if value is None:
                continue
            if value.stored is not None:
                result.add(value.stored)
                continue
            alias = self.aliases.get(current)
            if alias is not None:
                stack.append(alias)
                continue
            if current not in self.static or value.producer is None:
                continue
            producer = value.producer
            stack.extend(v for v in (*producer.inputs, *producer.implicit) if v is not None)
        frozen = frozenset(result)
        self._roots[vid] = frozen
        return frozen

    # --- queries ----------------------------------------------------------------------

    def value(self, vid: ValueId) -> Value:
        return self.values[vid]

    def uses(self, vid: ValueId) -> list[tuple[GNode, int]]:
        return self.consumers.get(vid, [])

    def producer(self, vid: ValueId | None) -> GNode | None:
        if vid is None:
            return None
        value = self.values.get(vid)
        return value.producer if value is not None else None

    def output_ids(self, gnode: GNode) -> list[ValueId]:
        return [ValueId(gnode.scope.id, name) for name in gnode.node.outputs if name]

    def stored_tensors(self) -> Iterator[Stored]:
        for value in self.values.values():
            if value.stored is not None:
                yield value.stored

    def declared_shape(self, vid: ValueId) -> tuple[int | str | None, ...] | None:
        value = self.values.get(vid)
        if value is None:
            return None
        if value.stored is not None:
            return value.stored.shape
        if value.info is not None:
            return value.info.shape
        return None

    def elem_type(self, vid: ValueId) -> DType:
        value = self.values.get(vid)
        if value is None:
            return UNKNOWN_DTYPE
        if value.stored is not None:
            return value.stored.dtype
        if value.info is not None:
            return dtype_of(value.info.elem_type)
        return UNKNOWN_DTYPE

    def descendants(self, scope: Scope) -> Iterable[Scope]:
        """The scope and every scope nested inside it."""
        stack = [scope]
        while stack:
            current = stack.pop()
            yield current
            for gnode in current.nodes:
                stack.extend(gnode.children)
