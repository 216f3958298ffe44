"""`keras_metadata.pb`, written beside `saved_model.pb` by tf.keras 2.x `model.save(dir)`
(tf_keras/protobuf/saved_metadata.proto):

    SavedMetadata { repeated SavedObject nodes = 1; }
    SavedObject   { int32 node_id = 2; string node_path = 3; string identifier = 4;
                    string metadata = 5; VersionDef version = 6; }

`node_path` names the object from the root (`root`, `root.layer_with_weights-0`,
`root.layer-1.cell`); `identifier` says what it is (`_tf_keras_sequential`, `_tf_keras_network`,
`_tf_keras_model`, `_tf_keras_layer`, `_tf_keras_rnn_layer`, `_tf_keras_metric`...); `metadata` is
JSON whose `class_name` and `config` are the Keras layer's (the root's: the model's) config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inspector.formats.protobuf import LENGTH, Buffer, expect, fields, integer, text

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024 * 1024  # one node's metadata; real models stay in the megabytes
MAX_NODES = 1_000_000


class MetadataError(Exception):
    """The file is not a readable SavedMetadata message or is beyond the limits."""


@dataclass(frozen=True)
class SavedNode:
    node_id: int
    node_path: str
    identifier: str
    metadata: tuple[int, int]  # where the JSON lies in the file (decoded only when needed)


def read_nodes(buf: Buffer) -> tuple[SavedNode, ...]:
    """Every node, in stored order; the JSON is located, not decoded. Raises MetadataError
    (and `protobuf.WireError` for malformed bytes)."""
    nodes: list[SavedNode] = []
    for item in fields(buf, 0, len(buf)):
        if item.number != 1:
            continue
        expect(item, LENGTH, "SavedMetadata.nodes")
        if len(nodes) >= MAX_NODES:
            raise MetadataError(f"more than {MAX_NODES:,} nodes")
        nodes.append(_node(buf, item.value, item.end))
    return tuple(nodes)


def _node(buf: Buffer, start: int, end: int) -> SavedNode:
    node_id, path, identifier, metadata = -1, "", "", (start, start)
    for item in fields(buf, start, end):
        if item.number == 2:
            node_id = integer(item, "SavedObject.node_id")
        elif item.number == 3:
            path = text(buf, item, "SavedObject.node_path")
        elif item.number == 4:
            identifier = text(buf, item, "SavedObject.identifier")
        elif item.number == 5:
            expect(item, LENGTH, "SavedObject.metadata")
            metadata = (item.value, item.end)
    return SavedNode(node_id, path, identifier, metadata)


def metadata_text(buf: Buffer, node: SavedNode) -> str:
    start, end = node.metadata
    if end - start > MAX_JSON_BYTES:
        raise MetadataError(
            f"the metadata of '{node.node_path}' is {end - start:,} bytes of JSON, over the "
            f"{MAX_JSON_BYTES:,}-byte limit"
        )
    return bytes(buf[start:end]).decode("utf-8", errors="replace")


def top_level(nodes: Sequence[SavedNode]) -> list[SavedNode]:
    """The root's direct children that are Keras layers (`root.layer-1`,
    `root.layer_with_weights-0`), in stored order."""
    return [
        node
        for node in nodes
        if node.node_path.count(".") == 1
        and node.node_path.startswith("root.layer")
        and node.identifier.startswith("_tf_keras")
        and node.identifier != "_tf_keras_metric"
    ]
