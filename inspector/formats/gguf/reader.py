"""GGUF files (llama.cpp's container) as a Model: tensors under llama.cpp's names, one row per
block, the file's key/values as `Model.metadata`.

Shapes follow PyTorch's order (slowest dimension first), i.e. GGUF's ne[] reversed: GGUF
stores ne0, the fastest-varying dimension, first, and llama.cpp's converter writes a PyTorch
(out, in) weight as ne = [in, out] (`TensorInfo.shape`). Dtypes are ggml type names (F32,
Q4_K, ...). A quantized tensor counts as parameters at its element count and as bytes at its
blocks' size (`Tensor.stored_bytes`), which `--max-size` measures.

Rows: `blk.N.*` tensors (also `v.blk.N`, `enc.blk.N` of encoders and projectors) form block N;
every other tensor forms a row of its own name without the `.weight`/`.bias` suffix
(`token_embd`, `output_norm`, `output`). What a block computes (Mamba, RWKV-6, ...) is
recognised from llama.cpp's tensor names and the key/values (`formats.gguf.recurrent`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from inspector.formats.gguf.container import Container, TensorInfo, read_container
from inspector.formats.gguf.recurrent import recurrent
from inspector.formats.gguf.types import FILE_TYPES
from inspector.formats.source import Source
from inspector.model import Detail, FileFormat, Layer, MetadataValue, Model, Tensor

GGML_MAX_NAME = 64  # ggml_tensor.name[GGML_MAX_NAME]: llama.cpp refuses longer names

# A block's prefix: `blk.N` and, in multimodal and encoder-decoder files, `v.blk.N`,
# `enc.blk.N`, `dec.blk.N` (gguf-py constants.py TENSOR_NAMES).
_BLOCK = re.compile(r"^((?:[a-z_]+\.)?blk\.([0-9]{1,9}))\.")

# Rows outside the blocks, by llama.cpp's names (gguf-py constants.py MODEL_TENSOR).
_ROW_TYPES: Mapping[str, str] = {
    "token_embd": "token embedding",
    "token_embd_norm": "norm",
    "token_types": "token type embedding",
    "position_embd": "position embedding",
    "output_norm": "norm",
    "output": "output projection",
    "rope_freqs": "rope frequencies",
}


def tensor_of(info: TensorInfo) -> Tensor:
    kind = info.type
    return Tensor(
        key=info.name,
        name=info.name,
        shape=info.shape,
        dtype=kind.name,
        itemsize=0 if kind.quantized else kind.size,
        stored_bytes=info.nbytes if kind.quantized else None,
    )


def read(path: Source) -> Model:
    container = read_container(path)
    metadata = container.metadata
    arch = _text(metadata, "general.architecture")
    layers = _layers(container.tensors, arch)
    recurrent_layers, decoder = recurrent(layers, metadata)
    return Model(
        path=str(path),
        format=FileFormat.GGUF,
        producer=_producer(container, arch),
        layers=layers,
        recurrent_layers=recurrent_layers,
        trainable_known=False,
        warnings=_warnings(container, arch),
        details=_details(container, arch),
        metadata=dict(metadata),
        decoder=decoder,
    )


def _layers(infos: tuple[TensorInfo, ...], arch: str | None) -> tuple[Layer, ...]:
    rows: dict[str, list[Tensor]] = {}
    order: dict[str, tuple[int, int, int]] = {}
    for index, info in enumerate(infos):
        block = _BLOCK.match(info.name)
        if block is not None:
            row, key = block.group(1), (1, int(block.group(2)), index)
        else:
            row = (
                info.name.rsplit(".", 1)[0]
                if info.name.endswith((".weight", ".bias"))
                else info.name
            )
            key = (0 if row.startswith("token_") else 2, 0, index)
        rows.setdefault(row, []).append(tensor_of(info))
        order.setdefault(row, key)
    block_type = f"{arch} block" if arch else "block"
    return tuple(
        Layer(
            name,
            block_type if order[name][0] == 1 else _ROW_TYPES.get(name, "tensors"),
            tuple(tensors),
        )
        for name, tensors in sorted(rows.items(), key=lambda item: order[item[0]])
    )


def _text(metadata: Mapping[str, MetadataValue], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) and value else None


def _producer(container: Container, arch: str | None) -> str:
    name = _text(container.metadata, "general.name")
    what = " ".join(part for part in (arch, repr(name) if name else None) if part)
    return f"GGUF v{container.version}" + (f": {what}" if what else "")


def _details(container: Container, arch: str | None) -> tuple[Detail, ...]:
    metadata = container.metadata
    found = [Detail("GGUF version", str(container.version))]
    if arch:
        found.append(Detail("architecture", arch))
    file_type = metadata.get("general.file_type")
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        found.append(Detail("file type", FILE_TYPES.get(file_type, f"unknown ({file_type})")))
    quantization = metadata.get("general.quantization_version")
    if isinstance(quantization, int) and not isinstance(quantization, bool):
        found.append(Detail("quantization version", str(quantization)))
    types = Counter(info.type.name for info in container.tensors)
    if types:
        found.append(Detail("tensor types", ", ".join(f"{n} x{c}" for n, c in types.most_common())))
    if container.big_endian:
        found.append(Detail("byte order", "big-endian"))
    if container.alignment != 32:
        found.append(Detail("alignment", str(container.alignment)))
    return tuple(found)


def _warnings(container: Container, arch: str | None) -> tuple[str, ...]:
    metadata = container.metadata
    found: list[str] = []
    if arch is None:
        found.append("no general.architecture: the file does not say which model it holds")
    count = metadata.get("split.count")
    if isinstance(count, int) and not isinstance(count, bool) and count > 1:
        number = metadata.get("split.no")
        shard = f"shard {number + 1} of {count}" if isinstance(number, int) else "one shard"
        found.append(f"{shard} of a split GGUF model: the counts cover this file's tensors only")
    if not container.tensors:
        found.append("no tensors: a vocabulary-only or metadata-only GGUF file")
    long_names = [
        info.name for info in container.tensors if len(info.name.encode()) >= GGML_MAX_NAME
    ]
    if long_names:
        found.append(
            f"{len(long_names):,} tensor names of {GGML_MAX_NAME} bytes or more (first: "
            f"'{long_names[0]}'): llama.cpp refuses them (GGML_MAX_NAME)"
        )
    return tuple(found)
