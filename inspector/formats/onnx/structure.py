"""The structure of a decoded ONNX model: every graph and subgraph as a scope, every value with
where it comes from and who reads it, and the nodes of each scope in dependency order.

Validation happens here, once: a node reading a name nothing defines, a name defined twice in a
graph, or a cycle make the model corrupt (the ONNX IR spec requires graphs to be SSA, acyclic
and topologically sortable, with outer-scope names visible in subgraphs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from inspector.formats.onnx.dtypes import UNKNOWN_DTYPE, DType, dtype_of
from inspector.formats.onnx.graph_error import GraphError
from inspector.formats.onnx.scope import (
    GNode,
    Kind,
    LoopState,
    Origin,
    Scope,
    Stored,
    Value,
    ValueId,
    constant_stored,
    sparse_stored,
    stored_of,
)
from inspector.formats.onnx.wire import Graph, ModelMeta


class Structure:
    """Scopes, values, consumers and graph outputs of a model, validated."""

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
            stored = stored_of(meta, path, key, name, Origin.INITIALIZER)
            # IR < 4 lists initializers among the graph inputs too; the stored value wins.
            names[name] = Value(
                vid, Kind.STORED, stored=stored, info=declared.info if declared else None
            )
        for position, sparse in enumerate(graph.sparse_initializers):
            name = (sparse.values.name if sparse.values else "") or f"sparse_{position}"
            key = name if scope.id == 0 else f"{path}|{name}"
            names[name] = Value(
                ValueId(scope.id, name), Kind.STORED, stored=sparse_stored(sparse, path, key, name)
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


# The states a Loop or Scan body carries from one iteration to the next (ONNX Loop and Scan
# operator specs), and which of them the body hands back unchanged: constants an exporter threads
# through the loop (tf2onnx passes weights this way).


def states(structure: Structure, scope: Scope) -> list[LoopState]:
    """The states a Loop/Scan body carries from one iteration to the next."""
    owner = scope.owner
    if owner is None or owner.node.domain not in ("", "ai.onnx"):
        return []
    inputs = scope.graph.inputs
    outputs = scope.graph.outputs
    found = []
    for body_in, body_out, position in carried(structure, scope):
        body_vid = ValueId(scope.id, inputs[body_in].name)
        out_vid = ValueId(scope.id, outputs[body_out].name)
        producer = structure.producer(out_vid)
        unchanged = out_vid == body_vid or (
            producer is not None and producer.op == "Identity" and producer.input(0) == body_vid
        )
        found.append(LoopState(body_vid, owner.input(position), position, unchanged))
    return found


def passthrough(structure: Structure, scope: Scope) -> list[tuple[ValueId, ValueId]]:
    """(body input, outer initial value) of each state a Loop/Scan body returns unchanged."""
    return [
        (state.body, state.outer)
        for state in states(structure, scope)
        if state.unchanged and state.outer is not None
    ]


def carried(structure: Structure, scope: Scope) -> list[tuple[int, int, int]]:
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
        skip = 1 if structure.opset() < 9 else 0
        count = min(len(owner.inputs) - skip - scans, n_in - scans, n_out)
        return [(k, k, skip + k) for k in range(max(0, count))]
    return []
