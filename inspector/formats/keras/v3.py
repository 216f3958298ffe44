"""The Keras v3 weights layout: `model.weights.h5` inside a `.keras` archive, and
`.weights.h5` files. Used by Keras 3 and by tf_keras's `.keras` writer.

Weights live at `layers/<key>/.../vars/<N>` where `<key>` is *not* the layer's name: Keras's
saving_lib names each child of a container after its class in snake case, numbered when repeated
in the same container (`lstm`, `lstm_1`, `input_layer_1`; keras/src/saving/saving_lib.py,
`_save_container_state`). Keras 3.15+ also writes the layer's real name as the `name` attribute of
its `vars` group. Nested models repeat the layout under `layers/<key>/layers/...`.

This module maps those groups back onto the configuration's layers and names each tensor by the
configuration path (`middle/inner/lstm/cell/vars/0`), so that `keras_layers` can assign roles.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

import h5py

from inspector.formats.hdf5_tree import child, datasets_under
from inspector.formats.keras.config import KerasLayer, KerasModelConfig, container_keys
from inspector.model import Tensor


def _named_groups(layers_group: h5py.Group) -> dict[str, str]:
    """Keras 3.15+: the real layer name written on each child's `vars` group."""
    names: dict[str, str] = {}
    for key in layers_group:
        group = child(layers_group, key)
        vars_group = child(group, "vars") if isinstance(group, h5py.Group) else None
        if isinstance(vars_group, h5py.Group):
            name = vars_group.attrs.get("name")
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            if isinstance(name, str):
                names.setdefault(name, key)
    return names


def map_layers(
    root: h5py.Group, config: KerasModelConfig, warnings: list[str]
) -> dict[str, list[Tensor]]:
    """Tensors per top-level config layer name."""
    layers_group = child(root, "layers")
    if not isinstance(layers_group, h5py.Group):
        return {}
    groups: dict[str, list[Tensor]] = {}
    used: set[str] = set()
    for layer, group in _pair(layers_group, config.layers, config.class_name, used):
        groups[layer.name] = list(_layer_tensors(group, layer, warnings, depth=0))
    for key in layers_group:
        stored = child(layers_group, key)
        if key not in used and isinstance(stored, h5py.Group):
            tensors = [t for _, t in datasets_under(stored, prefix=f"{key}/")]
            if tensors:
                warnings.append(f"weights group 'layers/{key}' matches no layer of the config")
                groups[key] = tensors
    return groups


def _pair(
    layers_group: h5py.Group, layers: Sequence[KerasLayer], class_name: str, used: set[str]
) -> Iterator[tuple[KerasLayer, h5py.Group]]:
    # A Sequential model's saved layer list leaves out its InputLayer.
    saved = [
        layer
        for layer in layers
        if not (class_name == "Sequential" and layer.class_name == "InputLayer")
    ]
    by_name = _named_groups(layers_group)
    for layer, key in zip(
        saved, container_keys([layer.class_name for layer in saved]), strict=True
    ):
        chosen = by_name.get(layer.name, key)
        group = child(layers_group, chosen)
        if isinstance(group, h5py.Group):
            used.add(chosen)
            yield layer, group


def _layer_tensors(
    group: h5py.Group, layer: KerasLayer, warnings: list[str], depth: int
) -> Iterator[Tensor]:
    if not layer.inner:
        for relative, tensor in datasets_under(group):
            yield replace(tensor, name=f"{layer.path}/{relative}")
        return
    own_vars = child(group, "vars")
    if isinstance(own_vars, h5py.Group):
        for relative, tensor in datasets_under(own_vars):
            yield replace(tensor, name=f"{layer.path}/vars/{relative}")
    inner_group = child(group, "layers")
    if isinstance(inner_group, h5py.Group) and depth < 64:
        used: set[str] = set()
        for inner, inner_stored in _pair(inner_group, layer.inner, layer.class_name, used):
            yield from _layer_tensors(inner_stored, inner, warnings, depth + 1)


def top_level_groups(root: h5py.Group) -> Mapping[str, list[Tensor]]:
    """Without a config (`.weights.h5`): tensors per stored group key, path-named."""
    layers_group = child(root, "layers")
    if not isinstance(layers_group, h5py.Group):
        return {}
    out: dict[str, list[Tensor]] = {}
    for key in layers_group:
        group = child(layers_group, key)
        if isinstance(group, h5py.Group):
            out[key] = [replace(t, name=f"{key}/{rel}") for rel, t in datasets_under(group)]
    return out
