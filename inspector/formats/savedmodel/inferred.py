"""Layers of a Keras model saved without its configuration: `tf.saved_model.save(model)` of a
tf_keras model, or Keras 3 `model.export(dir)`. No layer class or config is stored, but the
checkpoint's object graph still says which variables belong together and in what order:

- tf_keras objects keep their Keras dependencies: the root's children `layer-N` (every layer,
  in the model's order) and `layer_with_weights-N`, each layer's `variables` list
  (tf_keras/src/engine/base_layer.py `_trackable_children`);
- Keras 3's export archive tracks the model's `variables` list in the model's order, and a
  second list `_all_variables` of the variables its serving functions capture
  (keras/src/export/saved_model_export_archive.py), a copy of the same values;
- `tf.saved_model.save` of a Keras 3 model tracks the model's own attributes: a Functional
  model's `_operations` list (its layers in order, the InputLayer first), a Sequential's
  `_layers` (keras/src/models/functional.py, sequential.py), each layer's weights below it
  (`_operations/1/cell/kernel`).

Each variable's TensorFlow name (`lstm/lstm_cell/kernel`, Keras 3:
`sequential/lstm/lstm_cell/kernel`) names its layer; recurrent cells are then recognised by the
weights-only rules of `keras/infer.py` (kernel `(d, g·u)`, recurrent kernel `(u, g·u)`, bias).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from inspector.formats.savedmodel.objects import ObjectGraph, Variable
from inspector.model import Tensor

_LAYER_CHILD = re.compile(r"^layer(?:_with_weights)?-(\d+)$")
# Keras 3 models' tracked lists of layers (tf.saved_model.save of a Functional or Sequential).
_KERAS3_LISTS = ("_operations", "_layers")
# keras/src/random/seed_generator.py names its state variable so: dropout's random state.
SEED_STATE = "seed_generator_state"
SERVING_COPIES = "_all_variables/"


def layer_variables(graph: ObjectGraph) -> list[tuple[str, list[Variable]]]:
    """(layer name, its variables) in the model's order; empty when the graph records no
    Keras layers or variable list."""
    layers, prefixed = _keras_layers(graph)
    if layers:
        if prefixed:  # a Keras 3 Sequential's names start with the model's: drop that part
            heads = {v.full_name.split("/", 1)[0] for _, vs in layers for v in vs}
            prefixed = len(heads) == 1 and all(
                v.full_name.count("/") >= 2 for _, vs in layers for v in vs
            )
        return [
            (_name(variables, f"layer-{index}", 1 if prefixed else 0), variables)
            for index, variables in layers
        ]
    listed = graph.child(0, "variables")
    if listed is None:
        return []
    return _by_name([v for v in graph.variables_under(0) if v.full_name])


def _keras_layers(graph: ObjectGraph) -> tuple[list[tuple[int, list[Variable]]], bool]:
    """tf_keras: the root's `layer-N` children (falling back to `layer_with_weights-N`), each
    once, by N; Keras 3: the children `0`, `1`, ... of the root's `_operations` or `_layers`
    list. And whether the list was a Keras 3 Sequential's `_layers`, whose variables' names
    start with the model's name (`sequential/lstm/lstm_cell/kernel`)."""
    if not graph.nodes:
        return [], False
    sequential = False
    indexed: dict[int, tuple[int, int]] = {}  # node -> (rank, N)
    for name, node in graph.nodes[0].children:
        found = _LAYER_CHILD.match(name)
        if found is None:
            continue
        rank = (0 if "_with_" not in name else 1, int(found[1]))
        if node not in indexed or rank < indexed[node]:
            indexed[node] = rank
    if not indexed:
        for list_name in _KERAS3_LISTS:
            listed = graph.child(0, list_name)
            if listed is None:
                continue
            sequential = list_name == "_layers"
            for name, node in graph.nodes[listed].children:
                if name.isdigit() and node not in indexed:
                    indexed[node] = (0, int(name))
            break
    ordered = sorted(indexed, key=lambda node: indexed[node])
    return [(indexed[node][1], list(graph.variables_under(node))) for node in ordered], sequential


def _name(variables: list[Variable], fallback: str, skip: int = 0) -> str:
    """The layer's name: the first part of its variables' TensorFlow names (after `skip`
    parts that name the model)."""
    heads = {parts[skip] for v in variables if len(parts := v.full_name.split("/")) > skip + 1}
    return heads.pop() if len(heads) == 1 else fallback


def _by_name(variables: list[Variable]) -> list[tuple[str, list[Variable]]]:
    """Variables grouped by layer name, in first-seen order. Keras 3 prefixes the names of a
    Sequential model's variables with the model's (`sequential/lstm/lstm_cell/kernel`): a first
    part shared by every layer's variables is dropped, unless what follows it is the two
    directions of one Bidirectional layer (`bidirectional/forward_lstm/...`)."""
    parts = [v.full_name.split("/") for v in variables]
    layered = [p for p in parts if len(p) > 2]
    seconds = {p[1] for p in layered}
    strip = (
        len({p[0] for p in layered}) == 1
        and not all(s.startswith(("forward_", "backward_")) for s in seconds)
        and all(len(p) > 2 or p[-1] == SEED_STATE for p in parts)
    )
    groups: dict[str, list[Variable]] = {}
    for variable, part in zip(variables, parts, strict=True):
        name = part[1] if strip and len(part) > 2 else part[0]
        groups.setdefault(name, []).append(variable)
    return list(groups.items())


def renamed(variables: list[Variable], tensors: Mapping[str, Tensor]) -> list[Tensor]:
    """The stored tensors of `variables`, named by their TensorFlow names."""
    out = []
    for variable in variables:
        tensor = tensors.get(variable.checkpoint_key)
        if tensor is not None:
            out.append(
                Tensor(
                    tensor.key,
                    variable.full_name,
                    tensor.shape,
                    tensor.dtype,
                    tensor.itemsize,
                    tensor.trainable,
                )
            )
    return out
