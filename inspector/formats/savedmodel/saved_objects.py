"""The object graph inside `saved_model.pb` (tensorflow/core/protobuf/saved_model.proto,
meta_graph.proto, saved_object_graph.proto), read for the few fields that say what the objects
are; function graphs (`graph_def`, most of the file) are skipped by their length:

    SavedModel       { int64 saved_model_schema_version = 1;
                       repeated MetaGraphDef meta_graphs = 2; }
    MetaGraphDef     { MetaInfoDef meta_info_def = 1; ... SavedObjectGraph object_graph_def = 7; }
    MetaInfoDef      { ... string tensorflow_version = 5; }
    SavedObjectGraph { repeated SavedObject nodes = 1; ... }
    SavedObject      { repeated ObjectReference children = 1;
                       oneof kind { SavedUserObject user_object = 4; SavedVariable variable = 7;
                                    SavedVariable variable = 7; ... } }
    SavedUserObject  { string identifier = 1; VersionDef version = 2; string metadata = 3; }

Keras marks its objects by identifier (`_tf_keras_sequential`, `_tf_keras_network`,
`_tf_keras_layer`, `_tf_keras_rnn_layer`, ...; tf_keras/src/saving/legacy/saved_model/
constants.py). Up to TF 2.4, `model.save(dir)` wrote each layer's Keras metadata JSON into
`SavedUserObject.metadata` (TF 2.5 moved it to `keras_metadata.pb`): the same nodes, paths and
JSON `keras_metadata.pb` holds, so the same Keras modules read them.

A path of child names (`root.layer_with_weights-0.cell`) names the same object here and in the
checkpoint's object graph (`objects.py`), which ties it to its checkpoint keys.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from inspector.formats.protobuf import LENGTH, Buffer, expect, fields, text
from inspector.formats.savedmodel.metadata import SavedNode
from inspector.formats.savedmodel.objects import object_reference

MAX_NODES = 1_000_000
# Child references of all nodes together; a real model's graph holds a few per object.
MAX_CHILDREN = 8_000_000
KERAS_PREFIX = "_tf_keras"


class ObjectGraphError(Exception):
    """The object graph is beyond the limits (malformed bytes raise protobuf.WireError)."""


@dataclass(frozen=True)
class SavedObject:
    children: tuple[tuple[str, int], ...]  # (local name, node id), in stored order
    identifier: str  # a user object's identifier; "" for other kinds
    metadata: tuple[int, int]  # where a user object's metadata JSON lies in the file


@dataclass(frozen=True)
class SavedObjectGraph:
    nodes: tuple[SavedObject, ...]
    tensorflow_version: str | None

    @property
    def is_keras(self) -> bool:
        """Written from a Keras model: the root is a Keras object."""
        return bool(self.nodes) and self.nodes[0].identifier.startswith(KERAS_PREFIX)

    def keras_nodes(self) -> list[SavedNode]:
        """The Keras objects that carry metadata JSON (TF < 2.5), as keras_metadata.pb would
        list them: each under the first path a breadth-first walk from the root reaches it by."""
        found: list[SavedNode] = []
        for node_id, path in self._paths():
            node = self.nodes[node_id]
            if node.identifier.startswith(KERAS_PREFIX) and node.metadata[1] > node.metadata[0]:
                found.append(SavedNode(node_id, path, node.identifier, node.metadata))
        return found

    def _paths(self) -> list[tuple[int, str]]:
        if not self.nodes:
            return []
        paths: dict[int, str] = {0: "root"}
        queue = deque([0])
        while queue:
            node_id = queue.popleft()
            for name, child in self.nodes[node_id].children:
                if 0 <= child < len(self.nodes) and child not in paths:
                    paths[child] = f"{paths[node_id]}.{name}"
                    queue.append(child)
        return sorted(paths.items())


def read(buf: Buffer) -> SavedObjectGraph:
    """The first meta graph's object graph and TensorFlow version. Raises
    `protobuf.WireError` for malformed bytes and ObjectGraphError past the limits."""
    for item in fields(buf, 0, len(buf)):
        if item.number == 2:
            expect(item, LENGTH, "SavedModel.meta_graphs")
            return _meta_graph(buf, item.value, item.end)
    return SavedObjectGraph((), None)


def _meta_graph(buf: Buffer, start: int, end: int) -> SavedObjectGraph:
    version: str | None = None
    nodes: tuple[SavedObject, ...] = ()
    for item in fields(buf, start, end):
        if item.number == 1:
            expect(item, LENGTH, "MetaGraphDef.meta_info_def")
            for info in fields(buf, item.value, item.end):
                if info.number == 5:
                    version = text(buf, info, "MetaInfoDef.tensorflow_version")[:64] or None
        elif item.number == 7:
            expect(item, LENGTH, "MetaGraphDef.object_graph_def")
            nodes = _nodes(buf, item.value, item.end)
    return SavedObjectGraph(nodes, version)


def _nodes(buf: Buffer, start: int, end: int) -> tuple[SavedObject, ...]:
    nodes: list[SavedObject] = []
    children = 0
    for item in fields(buf, start, end):
        if item.number != 1:
            continue
        expect(item, LENGTH, "SavedObjectGraph.nodes")
        if len(nodes) >= MAX_NODES:
            raise ObjectGraphError(f"more than {MAX_NODES:,} objects in saved_model.pb")
        node = _node(buf, item.value, item.end)
        children += len(node.children)
        if children > MAX_CHILDREN:
            raise ObjectGraphError(
                f"more than {MAX_CHILDREN:,} child references in saved_model.pb's object graph"
            )
        nodes.append(node)
    return tuple(nodes)


def _node(buf: Buffer, start: int, end: int) -> SavedObject:
    children: list[tuple[str, int]] = []
    identifier = ""
    metadata = (start, start)
    for item in fields(buf, start, end):
        if item.number == 1:
            expect(item, LENGTH, "SavedObject.children")
            children.append(object_reference(buf, item))
        elif item.number == 4:
            expect(item, LENGTH, "SavedObject.user_object")
            for user in fields(buf, item.value, item.end):
                if user.number == 1:
                    identifier = text(buf, user, "SavedUserObject.identifier")
                elif user.number == 3:
                    expect(user, LENGTH, "SavedUserObject.metadata")
                    metadata = (user.value, user.end)
    return SavedObject(tuple(children), identifier, metadata)
