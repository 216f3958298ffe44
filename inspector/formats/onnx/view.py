"""The ONNX graph as the op-graph view the lowered-recurrence detectors read
(`inspector.formats.opgraph`), and the way back from what they find to the index's nodes and stored
tensors.

ONNX is the view's vocabulary, so nodes keep their op types; the view reuses the index's answers
(static values, the stored tensors behind each, Loop/Scan states, declared shapes and types)
rather than computing them again.
"""

from __future__ import annotations

from collections.abc import Iterable

from inspector.formats.onnx.graph import GNode, Index, Kind, Stored, ValueId
from inspector.formats.onnx.wire import Node as OnnxNode
from inspector.formats.opgraph import Node, OpGraph, Scope, Weight


class OnnxView:
    """One index's op graph: `graph` for the detectors, `gnode` and `stored` to map back."""

    def __init__(self, index: Index) -> None:
        self.stored: dict[str, Stored] = {}
        by_key: dict[str, Weight] = {}
        weights: dict[ValueId, Weight] = {}
        inputs: set[ValueId] = set()
        for vid, value in index.values.items():
            if value.kind is Kind.INPUT:
                inputs.add(vid)
            stored = value.stored
            if stored is None:
                continue
            self.stored.setdefault(stored.key, stored)
            weight = by_key.setdefault(
                stored.key, Weight(stored.key, stored.name, stored.shape, stored.dtype)
            )
            weights[vid] = weight
        scopes = [
            Scope(scope.id, scope.path, tuple(info.name for info in scope.graph.inputs))
            for scope in index.scopes
        ]
        self.gnode: dict[Node, GNode] = {}
        self.node: dict[GNode, Node] = {}
        for gnode in index.nodes:
            node = Node(
                op=gnode.op,
                native=gnode.op,
                label=gnode.label,
                scope=scopes[gnode.scope.id],
                index=gnode.index,
                order=gnode.order,
                inputs=gnode.inputs,
                outputs=tuple(index.output_ids(gnode)),
                children=tuple(scopes[child.id] for child in gnode.children),
                domain=gnode.node.domain,
                attributes=_attributes(gnode.node),
            )
            scopes[gnode.scope.id].nodes.append(node)
            self.gnode[node] = gnode
            self.node[gnode] = node

        # The index shares one set among the values computed from the same weights; so does
        # the view, converting each set once (a dict keyed by the set: its hash is cached and
        # the same object matches by identity).
        converted: dict[frozenset[Stored], frozenset[Weight]] = {}

        def roots(vid: ValueId) -> frozenset[Weight]:
            found = index.roots(vid)
            weights = converted.get(found)
            if weights is None:
                weights = converted[found] = frozenset(by_key[stored.key] for stored in found)
            return weights

        self.graph = OpGraph(
            scopes,
            weights=weights,
            static=index.static,
            graph_inputs=inputs,
            graph_outputs=index.graph_outputs,
            states={scope.id: index.states(scope) for scope in index.scopes},
            roots=roots,
            declared_shape=index.declared_shape,
            elem_type=index.elem_type,
        )

    def gnodes(self, nodes: Iterable[Node]) -> set[GNode]:
        return {self.gnode[node] for node in nodes}


def _attributes(node: OnnxNode) -> dict[str, int]:
    """The integer attributes the detectors read: Gemm's transB, and whether a Transpose swaps
    a matrix's two axes (`swaps`: no perm, which reverses every axis, or a perm exchanging the
    last two and keeping the leading ones)."""
    found: dict[str, int] = {}
    transposed = node.attribute("transB")
    if transposed is not None and transposed.i is not None:
        found["transB"] = int(transposed.i)
    if node.op_type == "Transpose":
        perm = node.attribute("perm")
        ints = perm.ints if perm is not None else ()
        count = len(ints)
        found["swaps"] = int(
            not ints
            or (
                count >= 2
                and ints[-2:] == (count - 1, count - 2)
                and ints[:-2] == tuple(range(count - 2))
            )
        )
    return found
