"""Keras HDF5 files: full models written by `model.save("m.h5")` (Keras 1, 2, tf.keras and
Keras 3's legacy writer) and weights-only files.

Only metadata is read: attributes, group structure, dataset shapes and dtypes. No weight value
is ever loaded, no external link is followed, and the file is opened read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from inspector import keras_layers
from inspector.errors import CorruptModelError, UnsupportedModelError
from inspector.keras_config import parse_model_config
from inspector.model import FileFormat, Model, OptimizerState, Tensor


def read(path: Path) -> Model:
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise CorruptModelError(
            f"{path}: has an HDF5 signature but cannot be opened ({_short(error)}); "
            "the file is probably truncated or damaged"
        ) from None
    with handle:
        try:
            return _read_open(path, handle)
        except (KeyError, OSError, RuntimeError, ValueError, TypeError) as error:
            raise CorruptModelError(f"{path}: damaged Keras HDF5 file ({_short(error)})") from None


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _read_open(path: Path, handle: h5py.File) -> Model:
    warnings: list[str] = []
    raw_config = handle.attrs.get("model_config")
    if raw_config is None:
        if "layer_names" in handle.attrs:
            raise UnsupportedModelError(
                f"{path}: no 'model_config' attribute: this is a weights-only Keras file "
                "(save_weights); weights-only files are not supported yet"
            )
        raise CorruptModelError(
            f"{path}: HDF5 file without a 'model_config' attribute or 'layer_names': "
            f"not a Keras model (top-level keys: {_keys(handle)})"
        )
    document = _decode_json(path, raw_config, "model_config")
    config = parse_model_config(document)
    weights_root = handle.get("model_weights", getlink=False)
    if not isinstance(weights_root, h5py.Group):
        weights_root = handle  # Keras 1 stored the layer groups at the root
    groups = {
        name: list(_layer_tensors(weights_root, name, warnings))
        for name in _layer_names(weights_root)
    }
    built = keras_layers.build(config, groups)
    warnings.extend(built.warnings)
    warnings.extend(_external_links(handle))
    optimizer = _optimizer_state(handle, path)
    return Model(
        path=str(path),
        format=FileFormat.KERAS_H5,
        producer=_producer(handle),
        layers=built.layers,
        recurrent_layers=built.recurrent_layers,
        trainable_known=True,
        optimizer=optimizer,
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


def _decode_json(path: Path, value: object, what: str) -> object:
    try:
        return json.loads(decode_text(value))
    except (TypeError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CorruptModelError(f"{path}: '{what}' is not valid JSON ({_short(error)})") from None


def _string_list(value: object) -> list[str]:
    if value is None:
        return []
    items = value.tolist() if isinstance(value, np.ndarray) else value
    if isinstance(items, (bytes, str)):
        items = [items]
    if not isinstance(items, list):
        raise TypeError(f"expected a list of names, found {type(value).__name__}")
    return [decode_text(item) for item in items]


def _layer_names(root: h5py.Group) -> list[str]:
    names = root.attrs.get("layer_names")
    if names is None:
        return [name for name in root if isinstance(root.get(name, getlink=False), h5py.Group)]
    return _string_list(names)


def _layer_tensors(root: h5py.Group, layer_name: str, warnings: list[str]) -> Iterator[Tensor]:
    group = _safe_get(root, layer_name)
    if not isinstance(group, h5py.Group):
        warnings.append(f"layer '{layer_name}' is listed in layer_names but has no group")
        return
    weight_names = group.attrs.get("weight_names")
    if weight_names is None:
        # Some writers omit the attribute for weightless layers; list what is stored.
        yield from (tensor for _, tensor in _datasets_under(group))
        return
    for weight_name in _string_list(weight_names):
        dataset = _safe_get(group, weight_name)
        if not isinstance(dataset, h5py.Dataset):
            warnings.append(f"layer '{layer_name}': weight '{weight_name}' is not stored")
            continue
        yield tensor_of(dataset, weight_name)


def _safe_get(group: h5py.Group, name: str) -> object:
    """Follow hard links only: an external or soft link is never opened."""
    try:
        link = group.get(name, getlink=True)
    except (KeyError, ValueError):
        return None
    if not isinstance(link, h5py.HardLink):
        return None
    return group.get(name)


def tensor_of(dataset: h5py.Dataset, name: str) -> Tensor:
    shape = tuple(int(dim) for dim in dataset.shape)
    dtype = dataset.dtype
    return Tensor(
        key=dataset.name or name,
        name=name,
        shape=shape,
        dtype=str(dtype),
        itemsize=int(dtype.itemsize),
    )


def _datasets_under(group: h5py.Group) -> Iterator[tuple[str, Tensor]]:
    """Every dataset below `group`, through hard links only, in a stable order."""
    stack: list[tuple[str, h5py.Group]] = [("", group)]
    visited: set[str] = set()
    while stack:
        prefix, current = stack.pop()
        for name in sorted(current.keys()):
            child = _safe_get(current, name)
            relative = f"{prefix}{name}"
            if isinstance(child, h5py.Dataset):
                yield relative, tensor_of(child, relative)
            elif isinstance(child, h5py.Group) and child.name not in visited:
                visited.add(child.name or relative)
                stack.append((f"{relative}/", child))


def _external_links(handle: h5py.File) -> list[str]:
    found: list[str] = []

    def visit(name: str, link: object) -> None:
        if isinstance(link, h5py.ExternalLink):
            found.append(f"external link '{name}' -> {link.filename}:{link.path} was not followed")

    handle.visititems_links(visit)
    return found


@dataclass(frozen=True)
class _Totals:
    values: int
    nbytes: int


def _sum(tensors: Sequence[Tensor]) -> _Totals:
    return _Totals(sum(t.params for t in tensors), sum(t.nbytes for t in tensors))


def _optimizer_state(handle: h5py.File, path: Path) -> OptimizerState | None:
    group = _safe_get(handle, "optimizer_weights")
    if not isinstance(group, h5py.Group):
        return None
    totals = _sum([tensor for _, tensor in _datasets_under(group)])
    return OptimizerState(totals.values, totals.nbytes, path.stat().st_size)


def _producer(handle: h5py.File) -> str | None:
    version = handle.attrs.get("keras_version")
    backend = handle.attrs.get("backend")
    if version is None:
        return None
    text = f"keras {decode_text(version)}"
    if backend is not None:
        text += f" ({decode_text(backend)})"
    return text
