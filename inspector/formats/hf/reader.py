"""Hugging Face `save_pretrained` directories: config.json beside the weights, written as one
`model.safetensors`, as shards listed by `model.safetensors.index.json`, or (transformers 4's
`safe_serialization=False`) as `pytorch_model.bin` and its sharded index
(transformers/modeling_utils.py `save_pretrained`, `load_sharded_checkpoint`).

Each weights file is read by its own reader's metadata path (safetensors headers; torch.save
pickles as data, never unpickled); the tensors become layers and recurrent blocks by their
names with the configuration's dimensions (`inspector.formats.blocks`, `formats.hf.config`).

An index is a stranger's file: its shard names must be relative paths inside the directory
(`formats.hf.paths.member`), its size and shard count are bounded, and a tensor it lists that
no shard holds, or one two shards hold, is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inspector.errors import CorruptModelError, NotAModelError, NotFoundError
from inspector.formats import blocks
from inspector.formats.bounded_json import load_json
from inspector.formats.detect import HF_CONFIG, HF_WEIGHTS
from inspector.formats.hf.config import hyper, read_config
from inspector.formats.hf.paths import member
from inspector.formats.source import Source
from inspector.model import Detail, Excluded, FileFormat, Model, Tensor

MAX_INDEX_BYTES = 64 * 1024 * 1024  # a 100,000-tensor index is about 10 MB
MAX_SHARDS = 10_000  # the largest published checkpoints have a few hundred
MAX_NAMED = 8  # tensors named in one warning


@dataclass
class _Loaded:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    excluded: list[Excluded] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[Source] = field(default_factory=list)


def checkpoint_root(path: Source) -> tuple[Source, str | None]:
    """The directory and, when `path` is an index file, that index's name."""
    if path.is_dir():
        return path, None
    return path.parent, path.name


def read(path: Source) -> Model:
    root, index_name = checkpoint_root(path)
    config = read_config(member(root, HF_CONFIG, str(root)))
    weights = index_name or next((name for name in HF_WEIGHTS if (root / name).is_file()), None)
    if weights is None:
        raise NotFoundError(f"{root}: {HF_CONFIG} but no weights ({', '.join(HF_WEIGHTS)})")
    loaded = _Loaded()
    if weights.endswith(".index.json"):
        _read_index(root, weights, loaded)
    else:
        _read_weights(member(root, weights, str(root)), loaded)
    if not loaded.tensors:
        raise NotAModelError(f"{root}: the checkpoint's weights hold no tensors")
    grouped = blocks.group(list(loaded.tensors.values()), hyper(config), aliases=loaded.aliases)
    version = config.get("transformers_version")
    kind = "safetensors" if "safetensors" in weights else "torch.save"
    producer = f"transformers {version} ({kind})" if isinstance(version, str) else kind
    details = [Detail("weights", _files(loaded.files, weights))]
    model_type = config.get("model_type")
    if isinstance(model_type, str):
        details.insert(0, Detail("model_type", model_type[:80]))
    return Model(
        path=str(path),
        format=FileFormat.HF_CHECKPOINT,
        producer=producer[:120],
        layers=grouped.layers,
        recurrent_layers=grouped.recurrent,
        trainable_known=False,
        warnings=(*loaded.warnings, *grouped.warnings),
        excluded=tuple(loaded.excluded),
        details=tuple(details),
        decoder=grouped.decoder,
        # --max-file-size: what the model is read from (config.json, the index, the weights).
        stored_bytes=sum(file.size for file in _read_from(root, weights, loaded)),
    )


def _read_from(root: Source, weights: str, loaded: _Loaded) -> list[Source]:
    index = [member(root, weights, str(root))] if weights.endswith(".index.json") else []
    return [member(root, HF_CONFIG, str(root)), *index, *loaded.files]


def _files(files: list[Source], weights: str) -> str:
    if len(files) == 1:
        return files[0].name
    return f"{len(files)} shards listed by {weights}"


def weight_files(root: Source, index_name: str | None = None) -> dict[str, Source]:
    """Each tensor name the checkpoint's index lists and the shard holding it; for a checkpoint
    of one weights file, {"": that file}. Raises as `read` does for a bad index or shard."""
    weights = index_name or next((name for name in HF_WEIGHTS if (root / name).is_file()), None)
    if weights is None:
        raise NotFoundError(f"{root}: {HF_CONFIG} but no weights ({', '.join(HF_WEIGHTS)})")
    if not weights.endswith(".index.json"):
        return {"": member(root, weights, str(root))}
    weight_map = _index(root, weights)
    paths = {
        shard: _shard(root, shard, str(root / weights), weights)
        for shard in set(weight_map.values())
    }
    return {name: paths[shard] for name, shard in weight_map.items()}


def _index(root: Source, name: str) -> dict[str, str]:
    """The index's weight_map, every value a shard file name checked to be inside `root`."""
    index_path = member(root, name, str(root))
    where = str(index_path)
    try:
        with index_path.open() as handle:
            raw = handle.read(MAX_INDEX_BYTES + 1)
    except OSError as error:
        raise NotFoundError(f"{index_path}: cannot be read ({error.strerror or error})") from None
    document = load_json(raw, where, max_bytes=MAX_INDEX_BYTES)
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CorruptModelError(
            f"{where}: no 'weight_map' object of tensor names to shard files; not a "
            "transformers index"
        )
    odd = next((v for v in weight_map.values() if not isinstance(v, str)), None)
    if odd is not None:
        member(root, odd, where)  # raises: not a file name
    shards = dict.fromkeys(weight_map.values())
    if len(shards) > MAX_SHARDS:
        raise CorruptModelError(
            f"{where}: names {len(shards):,} shard files, over the {MAX_SHARDS:,} limit; refused"
        )
    return weight_map


def _read_index(root: Source, name: str, loaded: _Loaded) -> None:
    """Every shard the index names, each once; the index's tensor names held against them."""
    weight_map = _index(root, name)
    where = str(root / name)
    paths = [_shard(root, shard, where, name) for shard in dict.fromkeys(weight_map.values())]
    for path in paths:
        _read_weights(path, loaded)
    listed = [n for n in weight_map if n not in loaded.tensors and n not in loaded.aliases]
    if listed:
        loaded.warnings.append(
            f"{name} lists {len(listed):,} tensor(s) no shard holds: {_names(listed)}"
        )
    unlisted = [n for n in loaded.tensors if n not in weight_map]
    if unlisted:
        loaded.warnings.append(
            f"{len(unlisted):,} tensor(s) in the shards are not in {name} "
            f"(transformers does not load them; counted): {_names(unlisted)}"
        )


def _shard(root: Source, shard: object, where: str, index: str) -> Source:
    try:
        return member(root, shard, where)
    except NotFoundError as error:
        if "no such file" not in str(error):
            raise
        raise NotFoundError(
            f"{root / str(shard)}: listed by {index} but missing (an interrupted download?)"
        ) from None


def _read_weights(path: Source, loaded: _Loaded) -> None:
    loaded.files.append(path)
    if path.name.endswith(".safetensors"):
        _read_safetensors(path, loaded)
    else:
        _read_torch(path, loaded)


def _add(tensor: Tensor, path: Source, loaded: _Loaded) -> None:
    if tensor.name in loaded.tensors:
        raise CorruptModelError(
            f"{path}: tensor {tensor.name[:80]!r} is stored in another shard too; a checkpoint "
            "stores each tensor once"
        )
    loaded.tensors[tensor.name] = tensor


def _read_safetensors(path: Source, loaded: _Loaded) -> None:
    from inspector.formats.safetensors.reader import read_header

    header = read_header(path)
    for entry in header.entries:
        _add(entry.tensor(), path, loaded)
    loaded.aliases.update(_aliases(header.metadata))


def _aliases(metadata: Mapping[str, str]) -> dict[str, str]:
    """safetensors `save_model` records each dropped tied name: {"<dropped>": "<kept>"}."""
    return {k: v for k, v in metadata.items() if k != "format" and "." in k and "." in v}


def _read_torch(path: Source, loaded: _Loaded) -> None:
    from inspector.formats.torch.reader import read as read_torch

    shard = read_torch(path)
    for layer in shard.layers:
        for tensor in layer.tensors:
            _add(tensor, path, loaded)  # tied entries of one storage share one key
    loaded.excluded.extend(shard.excluded)
    loaded.warnings.extend(f"{path.name}: {warning}" for warning in shard.warnings)


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n[:80]) for n in names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED:,} more" if len(names) > MAX_NAMED else "")
