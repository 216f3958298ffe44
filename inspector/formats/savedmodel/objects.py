"""The checkpoint's object graph, `_CHECKPOINTABLE_OBJECT_GRAPH`: a scalar string tensor in the
data shard holding a serialized `TrackableObjectGraph`
(tensorflow/core/protobuf/trackable_object_graph.proto):

    TrackableObjectGraph { repeated TrackableObject nodes = 1; }
    TrackableObject { repeated ObjectReference children = 1; repeated SerializedTensor
                      attributes = 2; repeated SlotVariableReference slot_variables = 3; }
    ObjectReference  { int32 node_id = 1; string local_name = 2; }
    SerializedTensor { string name = 1; string full_name = 2; string checkpoint_key = 3; }

Node 0 is the root (the Keras model). A variable is saved once, under the first path that
reaches it (so an LSTM's kernel may be keyed `variables/0/...` rather than
`layer_with_weights-0/cell/kernel/...`): the graph is what ties every checkpoint key to the
layer that owns it. A string tensor is stored as `varint length, 4-byte checksum, bytes`
(tensor_bundle.cc, WriteStringTensor).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from inspector.errors import CorruptModelError
from inspector.formats.protobuf import (
    LENGTH,
    Buffer,
    Field,
    WireError,
    expect,
    fields,
    integer,
    text,
)
from inspector.formats.protobuf import varint as read_varint

KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MAX_GRAPH_BYTES = 256 * 1024 * 1024
MAX_NODES = 2_000_000
MAX_DEPTH = 64
# Children looked at by every layer's variable lookup together. Each keras_metadata layer walks
# its node's children: 20,000 layers over a node with 300,000 children (a 4.6 MB directory)
# took more than a minute of CPU. A real model looks at a few per variable.
MAX_VISITS = 4_000_000


@dataclass(frozen=True)
class Variable:
    full_name: str  # the TF variable name: `lstm/lstm_cell/kernel`
    checkpoint_key: str


@dataclass(frozen=True)
class TrackableNode:
    children: tuple[tuple[str, int], ...]  # (local name, node id)
    variable: Variable | None


@dataclass(frozen=True)
class ObjectGraph:
    nodes: tuple[TrackableNode, ...]
    # A node's children by name, built on first lookup (the first of a repeated name wins);
    # and the children visited so far (MAX_VISITS).
    _named: dict[int, dict[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _visits: list[int] = field(default_factory=lambda: [0], init=False, repr=False, compare=False)

    def child(self, node_id: int, name: str) -> int | None:
        if not 0 <= node_id < len(self.nodes):
            return None
        named = self._named.get(node_id)
        if named is None:
            children = self.nodes[node_id].children
            self._visit(len(children))
            named = {}
            for local_name, child_id in children:
                named.setdefault(local_name, child_id)
            self._named[node_id] = named
        return named.get(name)

    def _visit(self, count: int) -> None:
        self._visits[0] += count
        if self._visits[0] > MAX_VISITS:
            raise CorruptModelError(
                f"the checkpoint object graph makes the layers visit more than {MAX_VISITS:,} "
                "children in all; refused"
            )

    def resolve(self, node_path: str) -> int | None:
        """`root.layer_with_weights-0.cell` -> node id."""
        parts = node_path.split(".")
        if parts[0] != "root":
            return None
        node: int | None = 0
        for part in parts[1:]:
            if node is None:
                return None
            node = self.child(node, part)
        return node

    def variables_under(self, node_id: int) -> Iterator[Variable]:
        """A layer's variables in its own order: its `variables` list (Keras tracks
        `layer.variables` as a child of that name), else every variable reachable below it."""
        listed = self.child(node_id, "variables")
        if listed is not None:
            self._visit(len(self.nodes[listed].children))
            for _, child_id in self.nodes[listed].children:
                if 0 <= child_id < len(self.nodes):
                    variable = self.nodes[child_id].variable
                    if variable is not None:
                        yield variable
            return
        yield from self._reachable(node_id, set(), 0)

    def _reachable(self, node_id: int, seen: set[int], depth: int) -> Iterator[Variable]:
        if depth > MAX_DEPTH or node_id in seen or not 0 <= node_id < len(self.nodes):
            return
        seen.add(node_id)
        node = self.nodes[node_id]
        self._visit(len(node.children))
        if node.variable is not None:
            yield node.variable
        for name, child_id in node.children:
            if name not in ("keras_api", "optimizer"):
                yield from self._reachable(child_id, seen, depth + 1)


def string_scalar(buf: bytes) -> tuple[int, int]:
    """Where the bytes of a saved scalar string lie in its stored entry."""
    length, pos = read_varint(buf, 0, len(buf))
    pos += 4  # masked crc32c of the length varints
    if length > len(buf) - pos:
        raise WireError(f"string of {length} bytes in a {len(buf)}-byte entry", pos)
    return pos, pos + length


def parse(buf: Buffer, start: int, end: int) -> ObjectGraph:
    """Raises `protobuf.WireError` for malformed bytes, ValueError past the node limit."""
    nodes: list[TrackableNode] = []
    for item in fields(buf, start, end):
        if item.number != 1:
            continue
        expect(item, LENGTH, "TrackableObjectGraph.nodes")
        if len(nodes) >= MAX_NODES:
            raise ValueError(f"more than {MAX_NODES:,} objects in the object graph")
        nodes.append(_node(buf, item.value, item.end))
    return ObjectGraph(tuple(nodes))


def object_reference(buf: Buffer, item: Field) -> tuple[str, int]:
    """An ObjectReference (trackable_object_graph.proto, also SavedObject.children in
    saved_object_graph.proto): its (local_name, node_id); node_id -1 where it is missing."""
    node_id, name = -1, ""
    for ref in fields(buf, item.value, item.end):
        if ref.number == 1:
            node_id = integer(ref, "ObjectReference.node_id")
        elif ref.number == 2:
            name = text(buf, ref, "ObjectReference.local_name")
    return name, node_id


def _node(buf: Buffer, start: int, end: int) -> TrackableNode:
    children: list[tuple[str, int]] = []
    variable: Variable | None = None
    for item in fields(buf, start, end):
        if item.number == 1:
            expect(item, LENGTH, "TrackableObject.children")
            children.append(object_reference(buf, item))
        elif item.number == 2:
            expect(item, LENGTH, "TrackableObject.attributes")
            attr_name = full_name = key = ""
            for attr in fields(buf, item.value, item.end):
                if attr.number == 1:
                    attr_name = text(buf, attr, "SerializedTensor.name")
                elif attr.number == 2:
                    full_name = text(buf, attr, "SerializedTensor.full_name")
                elif attr.number == 3:
                    key = text(buf, attr, "SerializedTensor.checkpoint_key")
            if attr_name == "VARIABLE_VALUE" and key:
                variable = Variable(full_name or key, key)
    return TrackableNode(tuple(children), variable)
