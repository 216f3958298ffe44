"""Walking an HDF5 tree safely: hard links only (an external or soft link is never opened, and
its link class is checked before any lookup), metadata only (a dataset's shape and dtype, never
its values), each object once, bounded depth and count. Virtual datasets (VDS) are reported
like external datasets and never read: their data lives in other files."""

from __future__ import annotations

import re
from collections.abc import Iterator

import h5py
import numpy as np

from inspector.counts import checked_shape
from inspector.errors import CorruptModelError
from inspector.formats.source import Source
from inspector.model import OptimizerState, Tensor

_MAX_DEPTH = 64
MAX_OBJECTS = 200_000  # groups and datasets walked in one file: bounds time on hostile input
MAX_ATTRIBUTE_BYTES = 64 * 1024 * 1024  # a text attribute (model_config), like .keras JSON

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


def is_hard_link(group: h5py.Group, name: str) -> bool:
    try:
        return isinstance(group.get(name, getlink=True), h5py.HardLink)
    except (KeyError, ValueError, TypeError):
        return False


def outside_data(dataset: h5py.Dataset) -> str | None:
    """Where a dataset's data lives when not in this file: external raw files or the source
    files of a virtual dataset; None for ordinary datasets."""
    if dataset.external:
        return "external file(s) " + ", ".join(sorted({str(e[0]) for e in dataset.external}))
    if dataset.is_virtual:
        sources = sorted({source.file_name for source in dataset.virtual_sources()})
        return "a virtual dataset over " + ", ".join(sources)
    return None


def tensor_of(dataset: h5py.Dataset, name: str) -> Tensor:
    dtype = dataset.dtype
    if dataset.shape is None:
        raise CorruptModelError(
            f"dataset '{dataset.name or name}' has a null dataspace (no elements, no shape): "
            "not a weight; the file is damaged"
        )
    what = f"dataset '{dataset.name or name}'"
    shape = checked_shape(
        (int(dim) for dim in dataset.shape), what, bits=8 * dtype.itemsize, room=_room(dataset)
    )
    return Tensor(
        key=dataset.name or name, name=name, shape=shape, dtype=str(dtype), itemsize=dtype.itemsize
    )


# The most a filter can shrink data (zlib's deflate: 1032 to 1); HDF5 files may compress.
_MOST_COMPRESSED = 1032


def _room(dataset: h5py.Dataset) -> int | None:
    """The bytes the file can hold for a dataset's data: the file's size (times what a filter
    can compress), or None for data that lives in other files (external, virtual), which
    the walk reports and never reads."""
    if dataset.external or dataset.is_virtual:
        return None
    size = int(dataset.file.id.get_filesize())
    return size * _MOST_COMPRESSED if dataset.id.get_create_plist().get_nfilters() else size


def natural_key(name: str) -> list[object]:
    """`vars/10` after `vars/2`: Keras numbers variables, h5py lists them as text."""
    return [
        (0, int(part)) if part.isdecimal() and part.isascii() else (1, part)
        for part in re.split(r"([0-9]+)", name)
    ]


def datasets_under(group: h5py.Group, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """Every dataset below `group` in natural order, as (relative path, tensor)."""
    for relative, item in _walk(group, prefix, 0, {hash(group.id)}):
        if isinstance(item, h5py.Dataset):
            yield relative, tensor_of(item, relative)


def _walk(
    group: h5py.Group, prefix: str, depth: int, visited: set[int]
) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
    """(path, object) below `group` through hard links, each object once (a hard link can
    make a cycle or reach one group by many paths)."""
    if depth > _MAX_DEPTH:
        return
    for name in sorted(group.keys(), key=natural_key):
        item = child(group, name)
        if not isinstance(item, (h5py.Group, h5py.Dataset)):
            continue
        key = hash(item.id)
        if key in visited:
            continue
        visited.add(key)
        if len(visited) > MAX_OBJECTS:
            raise CorruptModelError(
                f"more than {MAX_OBJECTS:,} groups and datasets; refused as a hostile file"
            )
        relative = f"{prefix}{name}"
        yield relative, item
        if isinstance(item, h5py.Group):
            yield from _walk(item, f"{relative}/", depth + 1, visited)


def external_references(root: h5py.Group) -> list[str]:
    """Soft and external links and datasets whose data lives in other files (external or
    virtual): reported, never opened. Only hard links are walked to find them."""
    found: list[str] = []
    groups: list[tuple[str, h5py.Group]] = [("", root)]
    groups += [
        (path, item)
        for path, item in _walk(root, "", 0, {hash(root.id)})
        if isinstance(item, h5py.Group)
    ]
    for prefix, group in groups:
        for name in group:
            path = f"{prefix}/{name}" if prefix else name
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                found.append(
                    f"external link '{path}' -> {link.filename}:{link.path} was not followed"
                )
            elif isinstance(link, h5py.SoftLink):
                found.append(f"soft link '{path}' -> {link.path} was not followed")
            else:
                item = child(group, name)
                where = outside_data(item) if isinstance(item, h5py.Dataset) else None
                if where is not None:
                    found.append(f"dataset '{path}' keeps its data in {where}; not read")
    return found


def text_attribute(node: h5py.HLObject, name: str, where: str) -> str | None:
    """A scalar text attribute (`model_config`, `keras_version`), or None when absent. Its
    stored size is checked before it is read (fixed-length text), and its length before it is
    decoded; a non-scalar or non-text attribute raises CorruptModelError."""
    if name not in node.attrs:
        return None
    attribute = h5py.h5a.open(node.id, name.encode())
    shape = attribute.shape
    if shape not in ((), (1,)):
        raise CorruptModelError(f"{where}: attribute '{name}' has shape {shape}, expected text")
    dtype = attribute.dtype
    if dtype.kind in ("S", "U") and dtype.itemsize > MAX_ATTRIBUTE_BYTES:
        raise CorruptModelError(
            f"{where}: attribute '{name}' is {dtype.itemsize:,} bytes, over the "
            f"{MAX_ATTRIBUTE_BYTES:,}-byte limit; refused"
        )
    value = node.attrs.get(name)
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else None
    if isinstance(value, bytes):
        if len(value) > MAX_ATTRIBUTE_BYTES:
            raise CorruptModelError(
                f"{where}: attribute '{name}' is {len(value):,} bytes, over the "
                f"{MAX_ATTRIBUTE_BYTES:,}-byte limit; refused"
            )
        return value.decode("utf-8")
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_BYTES:
            raise CorruptModelError(
                f"{where}: attribute '{name}' is {len(value):,} characters, over the "
                f"{MAX_ATTRIBUTE_BYTES:,} limit; refused"
            )
        return value
    raise CorruptModelError(f"{where}: attribute '{name}' is not text")


def optimizer_state(root: h5py.Group, name: str, path: Source) -> OptimizerState | None:
    """Optimizer slots saved beside the model (`optimizer_weights` in HDF5 models, `optimizer`
    in the Keras v3 layout): never model parameters, reported on their own."""
    group = child(root, name)
    if not isinstance(group, h5py.Group):
        return None
    tensors = [tensor for _, tensor in datasets_under(group)]
    return OptimizerState(sum(t.params for t in tensors), sum(t.nbytes for t in tensors), path.size)
