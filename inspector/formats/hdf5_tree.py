"""Walking an HDF5 tree safely: hard links only (an external or soft link is never opened),
metadata only (a dataset's shape and dtype, never its values), bounded depth."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import h5py

from inspector.model import OptimizerState, Tensor

_MAX_DEPTH = 64

# What h5py raises on a damaged file: libhdf5 errors arrive as OSError, RuntimeError, KeyError
# or ValueError, and an error inside h5py's object lock as SystemError.
HDF5_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    RuntimeError,
    SystemError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    OverflowError,
    UnicodeDecodeError,
)


def child(group: h5py.Group, name: str) -> object:
    """`group[name]` if it is reached through a hard link, else None."""
    try:
        link = group.get(name, getlink=True)
    except (KeyError, ValueError, TypeError):
        return None
    if not isinstance(link, h5py.HardLink):
        return None
    return group.get(name)


def tensor_of(dataset: h5py.Dataset, name: str) -> Tensor:
    dtype = dataset.dtype
    return Tensor(
        key=dataset.name or name,
        name=name,
        shape=tuple(int(dim) for dim in dataset.shape),
        dtype=str(dtype),
        itemsize=int(dtype.itemsize),
    )


def natural_key(name: str) -> list[object]:
    """`vars/10` after `vars/2`: Keras numbers variables, h5py lists them as text."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def datasets_under(group: h5py.Group, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """Every dataset below `group` in natural order, as (relative path, tensor)."""
    yield from _walk(group, prefix, depth=0, visited=set())


def _walk(
    group: h5py.Group, prefix: str, depth: int, visited: set[str]
) -> Iterator[tuple[str, Tensor]]:
    if depth > _MAX_DEPTH:
        return
    for name in sorted(group.keys(), key=natural_key):
        item = child(group, name)
        relative = f"{prefix}{name}"
        if isinstance(item, h5py.Dataset):
            yield relative, tensor_of(item, relative)
        elif isinstance(item, h5py.Group):
            key = item.name or relative
            if key in visited:
                continue
            visited.add(key)
            yield from _walk(item, f"{relative}/", depth + 1, visited)


def external_references(root: h5py.Group) -> list[str]:
    """External links and datasets whose data lives in other files: reported, never opened."""
    found: list[str] = []

    def visit_link(name: str, link: object) -> None:
        if isinstance(link, h5py.ExternalLink):
            found.append(f"external link '{name}' -> {link.filename}:{link.path} was not followed")

    def visit_object(name: str, item: object) -> None:
        if isinstance(item, h5py.Dataset) and item.external:
            files = ", ".join(sorted({str(entry[0]) for entry in item.external}))
            found.append(f"dataset '{name}' keeps its data in external file(s) {files}; not read")

    root.visititems_links(visit_link)
    root.visititems(visit_object)
    return found


def optimizer_state(root: h5py.Group, name: str, path: Path) -> OptimizerState | None:
    """Optimizer slots saved beside the model (`optimizer_weights` in HDF5 models, `optimizer`
    in the Keras v3 layout): never model parameters, reported on their own."""
    group = child(root, name)
    if not isinstance(group, h5py.Group):
        return None
    tensors = [tensor for _, tensor in datasets_under(group)]
    return OptimizerState(
        sum(t.params for t in tensors), sum(t.nbytes for t in tensors), path.stat().st_size
    )
