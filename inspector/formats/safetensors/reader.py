"""PyTorch state dicts saved as `.safetensors`: an 8-byte little-endian header length, a JSON
header `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the
tensor bytes (https://github.com/huggingface/safetensors, "Format").

A checkpoint sharded by `save_pretrained` / `huggingface_hub.save_torch_state_dict` is read
from its `model.safetensors.index.json` (`{"metadata": {"total_size"}, "weight_map": {tensor:
shard file}}`, huggingface_hub/serialization/_torch.py): each shard's header, found beside the
index and never outside its folder, and no tensor data.

Only the header is read for a report; nothing is ever unpickled, and the `safetensors` package is
not needed. Layers and recurrent modules come from PyTorch's parameter names
(`inspector.formats.state_dict`), the recurrent blocks of language models from transformers'
(`inspector.formats.blocks`, with the dimensions of a config.json beside the file).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from inspector.counts import checked_shape, quoted
from inspector.errors import CorruptModelError, NotAModelError, NotFoundError
from inspector.formats import blocks
from inspector.formats.bounded_json import MAX_JSON_BYTES, check_json_size, load_json
from inspector.formats.detect import SAFETENSORS_HEADER_LENGTH, SAFETENSORS_MAX_HEADER
from inspector.formats.source import Source
from inspector.model import Detail, FileFormat, Layer, Model, SharedTensor, Tensor

HEADER_LENGTH = SAFETENSORS_HEADER_LENGTH
MAX_HEADER_BYTES = SAFETENSORS_MAX_HEADER


@dataclass(frozen=True)
class DType:
    name: str  # numpy's name, as reports show dtypes
    itemsize: int
    numpy: str | None  # numpy type string the values decode as; None: not decoded


# safetensors `Dtype` names (safetensors/src/tensor.rs).
DTYPES: Mapping[str, DType] = MappingProxyType(
    {
        "BOOL": DType("bool", 1, "|b1"),
        "U8": DType("uint8", 1, "|u1"),
        "I8": DType("int8", 1, "|i1"),
        "U16": DType("uint16", 2, "<u2"),
        "I16": DType("int16", 2, "<i2"),
        "U32": DType("uint32", 4, "<u4"),
        "I32": DType("int32", 4, "<i4"),
        "U64": DType("uint64", 8, "<u8"),
        "I64": DType("int64", 8, "<i8"),
        "F16": DType("float16", 2, "<f2"),
        "BF16": DType("bfloat16", 2, None),  # decoded by widening to float32
        "F32": DType("float32", 4, "<f4"),
        "F64": DType("float64", 8, "<f8"),
        "F8_E4M3": DType("float8e4m3fn", 1, None),
        "F8_E5M2": DType("float8e5m2", 1, None),
    }
)


@dataclass(frozen=True)
class Entry:
    """One tensor of the header: where its bytes are in the file."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    begin: int  # absolute file offsets
    end: int
    shard: str = ""  # the shard file holding it, relative to the index ("": the one file)

    def tensor(self) -> Tensor:
        return Tensor(self.name, self.name, self.shape, self.dtype.name, self.dtype.itemsize)


@dataclass(frozen=True)
class Header:
    entries: tuple[Entry, ...]
    metadata: Mapping[str, str]
    shards: tuple[tuple[str, int], ...] = ()  # (file, bytes) of a sharded checkpoint


INDEX_SUFFIX = ".safetensors.index.json"
MAX_SHARDS = 10_000  # files one index may name; the largest published checkpoints use ~200


def is_index(path: Source) -> bool:
    return path.name.lower().endswith(INDEX_SUFFIX)


def read_any(path: Source) -> Header:
    """The header of a safetensors file, or of every shard an index names."""
    return read_index(path) if is_index(path) else read_header(path)


def read_index(path: Source) -> Header:
    """The shards' headers of a sharded checkpoint, each tensor in the shard the index names.
    Raises NotFoundError, UnsupportedModelError (a shard named outside the folder),
    CorruptModelError."""
    where = f"{path}: safetensors index"
    check_json_size(path.size, where)
    with path.open() as handle:
        document = load_json(handle.read(MAX_JSON_BYTES + 1), where)
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CorruptModelError(f"{where} has no 'weight_map' of tensor names to shard files")
    shards = sorted(set(weight_map.values()))
    if len(shards) > MAX_SHARDS:
        raise CorruptModelError(f"{where} names {len(shards):,} shards, over {MAX_SHARDS:,}")
    entries: list[Entry] = []
    metadata: dict[str, str] = {}
    sizes = []
    for shard in shards:
        file = path.parent / shard
        header = read_header(file)
        sizes.append((shard, file.size))
        metadata = {**header.metadata, **metadata}
        entries += [replace(entry, shard=shard) for entry in header.entries]
    held = {entry.name: entry.shard for entry in entries}
    if len(held) < len(entries):
        twice = sorted({e.name for e in entries if held[e.name] != e.shard})[:3]
        raise CorruptModelError(f"{where}: tensors stored in two shards: {', '.join(twice)}")
    astray = sorted(name for name, shard in weight_map.items() if held.get(name) != shard)
    if astray:
        raise CorruptModelError(
            f"{where}: '{astray[0]}' is not in the shard the index names"
            + (f" (and {len(astray) - 1:,} more)" if len(astray) > 1 else "")
        )
    return Header(tuple(entries), MappingProxyType(metadata), tuple(sizes))


def read_header(path: Source) -> Header:
    """Parse and validate the header. Raises NotFoundError, NotAModelError, CorruptModelError."""
    try:
        with path.open() as handle:
            size = path.size
            prefix = handle.read(HEADER_LENGTH.size)
            if len(prefix) < HEADER_LENGTH.size:
                raise NotAModelError(f"{path}: {size} bytes: too short for a safetensors header")
            (length,) = HEADER_LENGTH.unpack(prefix)
            if length > MAX_HEADER_BYTES or length > size - HEADER_LENGTH.size:
                raise CorruptModelError(
                    f"{path}: safetensors header claims {length:,} bytes but the file holds "
                    f"{size:,}; the file is truncated or not a safetensors file"
                )
            raw = handle.read(length)
    except OSError as error:
        raise NotFoundError(f"{path}: cannot be read ({error.strerror or error})") from None
    document = load_json(raw, f"{path}: safetensors header", max_bytes=MAX_HEADER_BYTES)
    if not isinstance(document, dict):
        raise CorruptModelError(f"{path}: safetensors header is not a JSON object")
    start = HEADER_LENGTH.size + length
    entries = [
        _entry(path, name, value, start, size)
        for name, value in document.items()
        if name != "__metadata__"
    ]
    metadata = document.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise CorruptModelError(f"{path}: safetensors '__metadata__' is not a JSON object")
    ordered = sorted(entries, key=lambda e: (e.begin, e.end))
    for before, after in itertools.pairwise(ordered):
        if after.begin < before.end and after.begin < after.end:
            raise CorruptModelError(
                f"{path}: safetensors tensors '{before.name}' and '{after.name}' overlap "
                f"(bytes {after.begin - start:,} to {min(before.end, after.end) - start:,}); "
                "each byte belongs to one tensor: the file is damaged or crafted"
            )
    return Header(
        tuple(ordered),
        MappingProxyType({str(k): str(v) for k, v in metadata.items()}),
    )


def _entry(path: Source, name: str, value: object, start: int, size: int) -> Entry:
    where = f"{path}: safetensors tensor '{name}'"
    if not isinstance(value, dict):
        raise CorruptModelError(f"{where} is not described by a JSON object")
    dtype = DTYPES.get(str(value.get("dtype")))
    if dtype is None:
        known = ", ".join(DTYPES)
        raise CorruptModelError(
            f"{where} has dtype {value.get('dtype')!r}; expected one of {known}"
        )
    shape = value.get("shape")
    offsets = value.get("data_offsets")
    if not isinstance(shape, list):
        raise CorruptModelError(f"{where} has shape {shape!r}; expected a list of sizes")
    shape = checked_shape(shape, where)  # the room: data_offsets, checked exactly below
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_natural(o) for o in offsets)):
        raise CorruptModelError(f"{where} has data_offsets {offsets!r}; expected [begin, end]")
    begin, end = start + offsets[0], start + offsets[1]
    needed = math.prod(shape) * dtype.itemsize
    if end - begin != needed or end > size:
        raise CorruptModelError(
            f"{where}: shape {list(shape)} needs {needed:,} bytes but data_offsets "
            f"[{quoted(offsets[0])}, {quoted(offsets[1])}] give {quoted(end - begin)} (file "
            f"holds {size - start:,} bytes of data); the file is damaged"
        )
    return Entry(name, dtype, shape, begin, end)


def natural_order(name: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key reading each run of digits as a number (`layers.2` before `layers.10`):
    safetensors' writer stores tensors sorted by dtype and name, so a file has no model order to
    keep (issue 22 item 7) and the modules' indices are the best order there is. Digit runs
    compare by length, then text: no int() of a 5,000-digit run (Python refuses it)."""
    return tuple(
        (0, len(part), part) if part.isdigit() else (1, 0, part)
        for part in _RUNS.split(name)
        if part
    )


_RUNS = re.compile(r"(\d+)")


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read(path: Source) -> Model:
    header = read_any(path)
    from inspector.formats.hf.config import config_beside

    found = blocks.group(
        [entry.tensor() for entry in header.entries],
        config_beside(path),
        aliases={k: v for k, v in header.metadata.items() if _PARAMETER_NAME.match(k)},
    )
    layers, tied = _tied(list(found.layers), header)
    layers.sort(key=lambda layer: natural_order(layer.name))
    fmt = header.metadata.get("format")
    details: tuple[Detail, ...] = (
        (Detail("tied weights", ", ".join(f"{alias} = {kept}" for alias, kept in tied)),)
        if tied
        else ()
    )
    if header.shards:
        listed = ", ".join(f"{name} ({size:,} bytes)" for name, size in header.shards[:8])
        more = f", ... ({len(header.shards)} in all)" if len(header.shards) > 8 else ""
        details += (Detail("shards", listed + more),)
    return Model(
        path=str(path),
        format=FileFormat.SAFETENSORS,
        producer=f"safetensors ({fmt})" if fmt else "safetensors",
        layers=tuple(layers),
        recurrent_layers=found.recurrent,
        trainable_known=False,
        details=details,
        stored_bytes=path.size + sum(size for _, size in header.shards) if header.shards else None,
        warnings=found.warnings,
        decoder=found.decoder,
    )


def _tied(layers: list[Layer], header: Header) -> tuple[list[Layer], list[tuple[str, str]]]:
    """Tied weights: `safetensors.torch.save_model` stores a tensor two parameters share once
    and records `{"<dropped name>": "<kept name>"}` in `__metadata__` (safetensors/torch.py,
    `_remove_duplicate_names`). The dropped name's module lists the kept tensor as shared with
    the row that holds it, so it counts once and the module still shows what it reads."""
    names = {entry.name: entry for entry in header.entries}
    holder = {t.name: layer.name for layer in layers for t in layer.tensors}
    tied: list[tuple[str, str]] = []
    shared: dict[str, list[SharedTensor]] = {}
    for alias, kept in sorted(header.metadata.items()):
        if alias in names or kept not in holder or not _PARAMETER_NAME.match(alias):
            continue
        module = alias.rpartition(".")[0] or alias
        tied.append((alias, kept))
        shared.setdefault(module, []).append(SharedTensor(names[kept].tensor(), holder[kept]))
    result = []
    for layer in layers:
        extra = [s for s in shared.pop(layer.name, []) if s.owner != layer.name]
        result.append(replace(layer, shared=layer.shared + tuple(extra)) if extra else layer)
    for module, items in shared.items():
        result.append(Layer(module, "tensors (tied)", (), shared=tuple(items)))
    return result, tied


# A state-dict key: dotted module path and parameter name (metadata values that are not names
# of dropped tensors, such as {"format": "pt"}, do not match).
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[\w]+)+$")
