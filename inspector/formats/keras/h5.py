"""Keras HDF5 files: full models written by `model.save("m.h5")` (Keras 1, 2, tf.keras and
Keras 3's legacy writer) and weights-only files.

Only metadata is read: attributes, group structure, dataset shapes and dtypes. No weight value
is ever loaded, no external link is followed, and the file is opened read-only.
"""

from __future__ import annotations

from collections.abc import Iterator

import h5py
import numpy as np

from inspector.counts import checked_count
from inspector.errors import CorruptModelError
from inspector.formats.bounded_json import load_json
from inspector.formats.hdf5_tree import (
    HDF5_ERRORS,
    child,
    datasets_under,
    external_references,
    is_hard_link,
    optimizer_state,
    tensor_of,
    text_attribute,
)
from inspector.formats.keras import infer as keras_infer
from inspector.formats.keras import layers as keras_layers
from inspector.formats.keras import v3 as keras_v3
from inspector.formats.keras.config import parse_model_config
from inspector.formats.source import Source
from inspector.model import FileFormat, Model, Tensor


def read(path: Source) -> Model:
    with path.open() as raw:  # h5py reads a file object: a local file or a URL's ranges
        try:
            handle = h5py.File(raw, "r")
        except HDF5_ERRORS as error:
            raise CorruptModelError(
                f"{path}: has an HDF5 signature but cannot be opened ({_short(error)}); "
                "the file is probably truncated or damaged"
            ) from None
        with handle:
            try:
                return _read_open(path, handle)
            except HDF5_ERRORS as error:
                raise CorruptModelError(
                    f"{path}: damaged Keras HDF5 file ({_short(error)})"
                ) from None


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


MAX_LAYERS = 100_000  # names in layer_names / weight_names; Keras models hold a few thousand

# Root entries a Keras writer puts in an HDF5 file; anything else is reported and ignored.
_KERAS_ROOT_KEYS = frozenset(
    {
        "model_weights",
        "optimizer_weights",
        "layers",
        "vars",
        "optimizer",
        "metrics",
        "top_level_model_weights",
    }
)


def _read_open(path: Source, handle: h5py.File) -> Model:
    raw_config = text_attribute(handle, "model_config", str(path))
    if raw_config is not None:
        return _full_model(path, handle, raw_config)
    if "layer_names" in handle.attrs:
        return _weights_only(path, handle)
    if isinstance(child(handle, "layers"), h5py.Group) or isinstance(
        child(handle, "vars"), h5py.Group
    ):
        return _v3_weights(path, handle)
    raise CorruptModelError(
        f"{path}: HDF5 file without a 'model_config' attribute or 'layer_names': "
        f"not a Keras model (top-level keys: {_keys(handle)})"
    )


def _full_model(path: Source, handle: h5py.File, raw_config: str) -> Model:
    warnings: list[str] = []
    config = parse_model_config(load_json(raw_config, f"{path}: 'model_config'"))
    weights_root = child(handle, "model_weights")
    if not isinstance(weights_root, h5py.Group):
        weights_root = handle  # Keras 1 before 1.0.x stored the layer groups at the root
    built = keras_layers.build(config, _groups(weights_root, warnings))
    return _model(path, handle, FileFormat.KERAS_H5, built, warnings, "optimizer_weights")


def _weights_only(path: Source, handle: h5py.File) -> Model:
    """Keras 1/2 `save_weights` files: the layer groups at the root, no config."""
    warnings: list[str] = []
    built = keras_infer.build_inferred(_groups(handle, warnings))
    return _model(path, handle, FileFormat.KERAS_H5_WEIGHTS, built, warnings, None)


def _v3_weights(path: Source, handle: h5py.File) -> Model:
    """Keras 3 `.weights.h5`: the v3 layout (`layers/<key>/.../vars/N`), no config."""
    built = keras_infer.build_inferred(keras_v3.top_level_groups(handle))
    return _model(path, handle, FileFormat.KERAS_V3_WEIGHTS, built, [], "optimizer")


def _groups(root: h5py.Group, warnings: list[str]) -> dict[str, list[Tensor]]:
    return {name: list(_layer_tensors(root, name, warnings)) for name in _layer_names(root)}


def _model(
    path: Source,
    handle: h5py.File,
    file_format: FileFormat,
    built: keras_layers.KerasBuild,
    warnings: list[str],
    optimizer_group: str | None,
) -> Model:
    warnings.extend(built.warnings)
    warnings.extend(external_references(handle))
    known = _KERAS_ROOT_KEYS | {layer.name for layer in built.layers}
    extra = sorted(key for key in handle if key not in known)
    if extra and file_format is not FileFormat.KERAS_H5_WEIGHTS:
        warnings.append(f"ignored non-Keras entries at the file root: {', '.join(extra[:8])}")
    return Model(
        path=str(path),
        format=file_format,
        producer=_producer(handle, str(path)),
        layers=built.layers,
        recurrent_layers=built.recurrent_layers,
        inputs=built.inputs,
        outputs=built.outputs,
        trainable_known=file_format is FileFormat.KERAS_H5,
        optimizer=optimizer_state(handle, optimizer_group, path) if optimizer_group else None,
        warnings=tuple(warnings),
    )


def _keys(group: h5py.Group) -> str:
    names = list(group.keys())[:8]
    return ", ".join(names) if names else "none"


def decode_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return decode_text(value.item())
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string attribute, found {type(value).__name__}")


def _string_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        what = "the count of names in a layer_names or weight_names attribute"
        checked_count(int(value.size), what, most=MAX_LAYERS)
    items = value.tolist() if isinstance(value, np.ndarray) else value
    if isinstance(items, (bytes, str)):
        items = [items]
    if not isinstance(items, list):
        raise TypeError(f"expected a list of names, found {type(value).__name__}")
    return [decode_text(item) for item in items]


def _layer_names(root: h5py.Group) -> list[str]:
    names = root.attrs.get("layer_names")
    if names is None:
        # Only groups reached through hard links: the link class is checked before any lookup,
        # so an external or soft link (to /etc/passwd, a FIFO, a cycle) is never resolved.
        return [
            name
            for name in root
            if is_hard_link(root, name) and isinstance(child(root, name), h5py.Group)
        ]
    return _string_list(names)


def _layer_tensors(root: h5py.Group, layer_name: str, warnings: list[str]) -> Iterator[Tensor]:
    group = child(root, layer_name)
    if not isinstance(group, h5py.Group):
        warnings.append(f"layer '{layer_name}' is listed in layer_names but has no group")
        return
    weight_names = group.attrs.get("weight_names")
    if weight_names is None:
        # Some writers omit the attribute for weightless layers; list what is stored.
        yield from (tensor for _, tensor in datasets_under(group))
        return
    for weight_name in _string_list(weight_names):
        dataset = child(group, weight_name)
        if not isinstance(dataset, h5py.Dataset):
            warnings.append(f"layer '{layer_name}': weight '{weight_name}' is not stored")
            continue
        yield tensor_of(dataset, weight_name)


def _producer(handle: h5py.File, where: str) -> str | None:
    version = text_attribute(handle, "keras_version", where)
    backend = text_attribute(handle, "backend", where)
    if version is None:
        return None
    text = f"keras {version[:200]}"
    if backend is not None:
        text += f" ({backend[:200]})"
    return text
