"""The recurrent blocks of a GGUF file: llama.cpp's tensor names (`blk.N.ssm_in`,
`blk.N.time_mix_*`, ...; gguf-py constants.py) recognised with the block table's llama.cpp
column (`inspector.blocks.Member.llama_cpp`, `formats.blocks.GGUF`), their dimensions from the
architecture's key/values (`mamba.ssm.state_size`, `rwkv6.wkv.head_size`, ...: gguf-py
constants.py `Keys`), one table row per `general.architecture` below.

Each block names the row of its `blk.N` (`blk.0.ssm`, `blk.0.time_mix`, `blk.0.channel_mix`);
a hybrid's attention layers (`blk.N.attn_k`, `blk.N.attn_v`) give the KV cache, which llama.cpp
keeps in F16 unless told otherwise (`--cache-type-k`, `--cache-type-v`), and its recurrent
memory in F32 (llama-memory-recurrent.cpp): the state streams' float32 of the block table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from inspector.dims import evaluate
from inspector.formats.blocks import GGUF, MAX_DIM, Hyper, decoder_of, recognise
from inspector.model import AttentionCache, Decoder, Layer, MetadataValue, RecurrentLayer

# llama.cpp's KV cache default: F16 keys and values (common/common.h, cache_type_k/v).
KV_DTYPE = ("float16", 2)


@dataclass(frozen=True)
class GgufArchitecture:
    """One `general.architecture`: its block specs and their dimensions as expressions over its
    key/values, written without the `{arch}.` prefix (`ssm.state_size`)."""

    specs: tuple[str, ...]
    dims: Mapping[str, str]


# llama.cpp's Mamba: dt_b_c_rms marks Falcon-Mamba, whose norms have no weights, so the
# weighted ones (Jamba's ssm_dt_norm, ...) are the jamba architecture's alone.
_MAMBA = MappingProxyType(
    {
        "d_model": "embedding_length",
        "d_inner": "ssm.inner_size",
        "d_state": "ssm.state_size",
        "d_conv": "ssm.conv_kernel",
        "dt_rank": "ssm.time_step_rank",
    }
)
# Mamba-2: llama.cpp writes the head count as ssm.time_step_rank (convert_hf_to_gguf.py
# Mamba2Model.set_gguf_parameters), a head's width is inner_size over it.
_MAMBA2 = MappingProxyType(
    {
        "d_model": "embedding_length",
        "d_inner": "ssm.inner_size",
        "d_state": "ssm.state_size",
        "d_conv": "ssm.conv_kernel",
        "n_groups": "ssm.group_count",
        "n_heads": "ssm.time_step_rank",
        "head_dim": "ssm.inner_size // ssm.time_step_rank",
        "gated_norm": "1",
    }
)
ARCHITECTURES: Mapping[str, GgufArchitecture] = MappingProxyType(
    {
        "mamba": GgufArchitecture(("mamba",), MappingProxyType({**_MAMBA, "inner_norms": "0"})),
        "jamba": GgufArchitecture(("mamba",), MappingProxyType({**_MAMBA, "inner_norms": "1"})),
        "mamba2": GgufArchitecture(("mamba2",), _MAMBA2),
        "falcon-h1": GgufArchitecture(("mamba2",), _MAMBA2),
        "granitehybrid": GgufArchitecture(("mamba2",), _MAMBA2),
        "nemotron_h": GgufArchitecture(("mamba2",), _MAMBA2),
        "nemotron_h_moe": GgufArchitecture(("mamba2",), _MAMBA2),
        "rwkv6": GgufArchitecture(
            ("rwkv6-time-mix", "rwkv6-channel-mix"),
            MappingProxyType(
                {
                    "d_model": "embedding_length",
                    "d_att": "embedding_length",
                    "head_size": "wkv.head_size",
                    "mix_dim": "time_mix_extra_dim",
                    "decay_dim": "time_decay_extra_dim",
                    "d_ffn": "feed_forward_length",
                }
            ),
        ),
    }
)


def hyper(metadata: Mapping[str, MetadataValue]) -> Hyper:
    """The block table's view of a GGUF file's key/values."""
    arch = metadata.get("general.architecture")
    arch = arch if isinstance(arch, str) else None
    own: dict[str, Fraction] = {}
    if arch is not None:
        prefix = arch + "."
        for key, value in metadata.items():
            if not key.startswith(prefix):
                continue
            if isinstance(value, bool):
                own[key[len(prefix) :]] = Fraction(int(value))
            elif isinstance(value, int) and 0 <= value < MAX_DIM:
                own[key[len(prefix) :]] = Fraction(value)
    architecture = ARCHITECTURES.get(arch or "")
    dims: dict[str, int] = {}
    for dim, expression in (architecture.dims if architecture else {}).items():
        size = evaluate(expression, own)
        if size is not None and size.denominator == 1 and 0 <= size < MAX_DIM:
            dims[dim] = int(size)
    width, depth = own.get("embedding_length"), own.get("block_count")
    return Hyper(
        architecture=arch,
        source="GGUF metadata",
        dims=MappingProxyType(dims),
        specs=frozenset(architecture.specs) if architecture else None,
        width=int(width) if width else None,
        depth=int(depth) if depth else None,
        kv_dtype=KV_DTYPE,
    )


def recurrent(
    layers: Sequence[Layer], metadata: Mapping[str, MetadataValue]
) -> tuple[tuple[RecurrentLayer, ...], Decoder | None]:
    """The recurrent blocks of a GGUF file's rows and the decoder they make up (None where
    there is no recurrent block)."""
    tensors = [tensor for layer in layers for tensor in layer.tensors]
    found = hyper(metadata)
    blocks = recognise(tensors, found, GGUF)
    if not blocks:
        return (), None
    return blocks, decoder_of(tensors, blocks, _attention(layers), found)


def _attention(layers: Sequence[Layer]) -> list[AttentionCache]:
    """A block's KV cache width: its attn_k and attn_v outputs (gguf-py ATTN_K, ATTN_V)."""
    caches = []
    for layer in layers:
        shapes = {tensor.name[len(layer.name) + 1 :]: tensor.shape for tensor in layer.tensors}
        k, v = shapes.get("attn_k.weight"), shapes.get("attn_v.weight")
        if k is not None and v is not None and len(k) == 2 and len(v) == 2:
            caches.append(AttentionCache(f"{layer.name}.attn", k[0] + v[0]))
    return caches
