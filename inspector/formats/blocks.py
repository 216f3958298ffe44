"""The recurrent blocks of a language model's state dict, recognised by their tensor names: the
block table (`inspector.blocks`) says which names a Mamba mixer, an RWKV time-mix, an RG-LRU
block ... stores; a module holding (nearly) all of one spec's tensors is that block. The
attention and MLP modules of a hybrid around them become one plain row each, and the attention
layers' key and value widths give the KV cache a sequence keeps.

Dimensions come from the checkpoint's configuration where it has one (`Hyper`, from
config.json or GGUF metadata) and are otherwise read off the tensors (`BlockSpec.read_off`);
the formula check then holds every tensor against them.

How a container spells a block's tensors is a `Naming`: transformers' state-dict names are the
table's own (`HF`); another naming (llama.cpp's GGUF names) is one more column of spellings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from inspector.blocks import BLOCKS, LLAMA_CPP, BlockSpec, Member, resolved
from inspector.dims import integer
from inspector.formats import state_dict
from inspector.formula import derive_block
from inspector.model import (
    AttentionCache,
    CellConfig,
    Decoder,
    Layer,
    RecurrentLayer,
    RecurrentTensor,
    SharedTensor,
    Tensor,
    TensorRole,
    WidthSource,
)

MAX_DIM = 1 << 31  # a dimension beyond this describes no model that can exist


@dataclass(frozen=True)
class Hyper:
    """What a checkpoint's own metadata states about its recurrent language model, in the
    block table's names. `specs` limits recognition to the blocks the architecture has (None:
    any); `attention_layers` counts the layers that keep a KV cache (a block shared by several
    layers counts in each)."""

    architecture: str | None
    source: str  # where it was read: "config.json", "GGUF metadata"
    dims: Mapping[str, int] = field(default_factory=dict)
    specs: frozenset[str] | None = None
    width: int | None = None
    depth: int | None = None
    attention_layers: int | None = None
    window: int | None = None
    tied_head: bool = False  # the output head reuses the token embedding (not stored twice)
    # The dtype a runtime keeps the KV cache in where the weights do not say (llama.cpp: F16)
    kv_dtype: tuple[str, int] | None = None
    warnings: tuple[str, ...] = ()
    # What the metadata says of a recurrent or linear-attention mixer whose architecture has no
    # row of the table ("lists 'linear_attention' layers (layer_types)"); None where it says none
    mixer_hint: str | None = None


@dataclass(frozen=True)
class Naming:
    """How a container names a block's tensors. `spell(spec, member)` is the tensor's name
    after the block's prefix and a dot (None: this naming does not store it). `layout` is
    `CellConfig.layout` (None: transformers' names and shapes). `whole_module`: every tensor
    under the block's prefix belongs to the block's row (transformers' modules); otherwise
    several blocks share one prefix and only the spelled tensors are theirs (GGUF's flat
    `blk.N.` namespace: the SSM and, in a hybrid, the attention of one layer)."""

    name: str
    spell: Callable[[BlockSpec, Member], str | None]
    layout: str | None = None
    whole_module: bool = True


HF = Naming("transformers", lambda spec, m: m.name if spec.in_transformers else None)
# gguf-py constants.py TENSOR_NAMES, the column `Member.llama_cpp` of the block table.
GGUF = Naming(
    "llama.cpp",
    lambda spec, m: m.llama_cpp.name if m.llama_cpp else None,
    LLAMA_CPP,
    whole_module=False,
)

# Modules of a hybrid that are plain layers, by the tensors that identify them (transformers'
# attention modules: q/k/v_proj; its MLPs in their several spellings).
# Multi-head latent attention (DeepSeek-V3, Kimi Linear): kv_a_proj_with_mqa makes the latent.
ATTENTION_ANCHORS: tuple[frozenset[str], ...] = (
    frozenset({"k_proj.weight", "v_proj.weight"}),
    frozenset({"kv_a_proj_with_mqa.weight", "kv_b_proj.weight"}),
)
MLP_ANCHORS: tuple[frozenset[str], ...] = tuple(
    frozenset(names)
    for names in (
        ("up_proj.weight", "down_proj.weight"),
        ("gate_up_proj.weight", "down_proj.weight"),
        ("w1.weight", "w2.weight"),
        ("proj_up.weight", "proj_down.weight"),
        ("input_linear.weight", "output_linear.weight"),
    )
)
MOE_ANCHORS: tuple[frozenset[str], ...] = tuple(
    frozenset(names)
    for names in (
        ("experts.gate_up_proj", "experts.down_proj"),
        ("gate.weight", "experts.down_proj"),
        ("gate.weight", "shared_expert_gate.weight"),
        # DeepSeek-V3's router (Kimi Linear's block_sparse_moe): its score-correction bias
        ("gate.weight", "gate.e_score_correction_bias"),
        # A mixture whose experts are stored one by one (experts.0.down_proj.weight, ...):
        # its router is the anchor (Jamba's, GraniteMoe's)
        ("router.weight",),
    )
)
# Tensors only a recurrent or linear-attention mixer stores: Mamba's and the delta rules' A_log
# and dt_bias, RWKV's time_decay and time_first, the RG-LRU's recurrent_param, MiniMax's
# lightning-attention slope_rate. A module holding one that no block claims is a mixer the block
# table does not know: said, never read silently as plain layers.
MIXER_MARKERS = frozenset(
    {"A_log", "dt_bias", "time_decay", "time_first", "recurrent_param", "slope_rate"}
)
MAX_NAMED_MODULES = 3  # modules an unknown-mixer warning names; the count says how many more
# A language model's token embedding and output head, by transformers' module names.
EMBEDDINGS = frozenset({"embed_tokens", "embeddings", "embedding", "wte", "word_embeddings"})
HEADS = frozenset({"lm_head", "head", "embed_out"})
# Module paths are never nested deeper than this in a real model (transformers' deepest, an
# adapter inside a shared block, is 8): a crafted name's ancestry is not walked further.
MAX_MODULE_DEPTH = 16
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layers|blocks|h|blk)\.(\d+)(?:\.|$)")
_FLOAT = ("float", "bfloat", "half", "double")


@dataclass(frozen=True)
class Grouped:
    """A state dict's rows, its recurrent layers and blocks, and the decoder they make up
    (None where no recurrent block was found)."""

    layers: tuple[Layer, ...]
    recurrent: tuple[RecurrentLayer, ...]
    decoder: Decoder | None = None
    warnings: tuple[str, ...] = ()


@dataclass
class _Candidate:
    spec: BlockSpec
    prefix: str
    members: dict[str, Tensor]  # member name -> tensor


def group(
    tensors: Sequence[Tensor],
    hyper: Hyper | None = None,
    naming: Naming = HF,
    aliases: Mapping[str, str] = MappingProxyType({}),
) -> Grouped:
    """Every tensor in one row: recurrent blocks (one row per block module), the attention and
    MLP modules of a model that has such blocks, then the rest as `state_dict.group` makes
    them. `aliases`: names a file dropped for a tensor it stores once under another name (tied
    weights, safetensors `save_model`), alias -> kept name."""
    blocks = _blocks(tensors, hyper, naming)
    warnings = hyper.warnings if hyper else ()
    if not blocks:
        plain_layers, cells = state_dict.group(tensors)
        return Grouped(plain_layers, cells, None, (*warnings, *unknown_mixers(tensors, (), hyper)))
    recurrent: list[RecurrentLayer] = []
    rows: list[Layer] = []
    for candidate in blocks:
        built, row = _block(candidate, hyper, naming)
        recurrent.append(built)
        rows.append(row)
    if naming.whole_module:  # a block module's other tensors stay in its row, outside the split
        rows = _with_module_rest(rows, tensors)
    warnings = (*warnings, *unknown_mixers(tensors, rows, hyper))
    claimed = {t.name for row in rows for t in row.tensors}
    rest = [t for t in tensors if t.name not in claimed]
    plain, attention = _plain_modules(rest, naming)
    rows += plain
    claimed.update(t.name for row in plain for t in row.tensors)
    others, classic = state_dict.group([t for t in tensors if t.name not in claimed])
    others = tuple(_named(layer) for layer in others)
    if hyper is not None and hyper.tied_head:
        others += _tied_head(others)
    decoder = decoder_of(tensors, recurrent, attention, hyper, aliases)
    return Grouped(
        tuple(sorted([*rows, *others], key=lambda layer: layer.name)),
        tuple(sorted([*recurrent, *classic], key=lambda layer: layer.name)),
        decoder,
        warnings,
    )


def unknown_mixers(
    tensors: Sequence[Tensor], blocks: Sequence[Layer], hyper: Hyper | None
) -> tuple[str, ...]:
    """A warning where the tensors (`MIXER_MARKERS` outside every block row) or, when no block
    was found, the metadata (`Hyper.mixer_hint`) show a recurrent or linear-attention mixer
    the block table does not know: its parameters are still counted, as plain tensors, but
    neither checked nor in the state per sequence."""
    held = {t.name for row in blocks for t in row.tensors}
    found: dict[str, set[str]] = {}
    for tensor in tensors:
        module, _, leaf = tensor.name.rpartition(".")
        if leaf in MIXER_MARKERS and tensor.name not in held:
            found.setdefault(module, set()).add(leaf)
    named = f" (model_type {hyper.architecture})" if hyper and hyper.architecture else ""
    consequence = (
        "counted as plain tensors, without a formula check, and the state it keeps per "
        "sequence is not in the report"
    )
    if found:
        modules = sorted(found)
        more = len(modules) - MAX_NAMED_MODULES
        shown = ", ".join(m or "(top level)" for m in modules[:MAX_NAMED_MODULES])
        leaves = ", ".join(sorted(set().union(*found.values())))
        verb = "holds" if len(modules) == 1 else "hold"
        return (
            f"{shown}{f' and {more:,} more modules' if more > 0 else ''} {verb} {leaves}: a "
            f"recurrent or linear-attention mixer the block table does not know{named}, "
            + consequence,
        )
    if hyper is not None and hyper.mixer_hint and not blocks:
        return (
            f"{hyper.source} {hyper.mixer_hint}{named}: a recurrent or linear-attention mixer "
            "the block table does not know, " + consequence,
        )
    return ()


def recognise(
    tensors: Sequence[Tensor], hyper: Hyper | None, naming: Naming
) -> tuple[RecurrentLayer, ...]:
    """The recurrent blocks among `tensors`, for a reader that keeps its own rows (GGUF's one
    row per `blk.N`: each block names a row by its prefix)."""
    return tuple(
        _block(candidate, hyper, naming)[0] for candidate in _blocks(tensors, hyper, naming)
    )


# --- recognition ---------------------------------------------------------------------------


def _spellings(naming: Naming) -> dict[str, list[tuple[BlockSpec, Member]]]:
    out: dict[str, list[tuple[BlockSpec, Member]]] = {}
    for spec in BLOCKS:
        for member in spec.members:
            spelled = naming.spell(spec, member)
            if spelled:
                out.setdefault(spelled, []).append((spec, member))
    return out


def _blocks(tensors: Sequence[Tensor], hyper: Hyper | None, naming: Naming) -> list[_Candidate]:
    """The modules that are recurrent blocks: for each module prefix, the spec whose tensors
    it holds most completely (every always-stored tensor; or, failing that, most of them and
    at least three, the missing ones then named as defects)."""
    spellings = _spellings(naming)
    depth = max((spelled.count(".") + 1 for spelled in spellings), default=1)
    found: dict[tuple[str, str], _Candidate] = {}
    for tensor in tensors:
        parts = tensor.name.split(".")
        for cut in range(max(0, len(parts) - depth), len(parts)):
            suffix = ".".join(parts[cut:])
            for spec, member in spellings.get(suffix, ()):
                if hyper is not None and hyper.specs is not None and spec.name not in hyper.specs:
                    continue
                prefix = ".".join(parts[:cut])
                key = (prefix, spec.name)
                found.setdefault(key, _Candidate(spec, prefix, {})).members[member.name] = tensor
    by_prefix: dict[str, list[_Candidate]] = {}
    for candidate in found.values():
        by_prefix.setdefault(candidate.prefix, []).append(candidate)
    order = {spec.name: index for index, spec in enumerate(BLOCKS)}
    chosen: list[_Candidate] = []
    for candidates in by_prefix.values():
        # The best fit first; another spec only where its tensors are all others (GGUF's
        # time mix and channel mix of one blk.N), never a second reading of the same tensors.
        candidates.sort(key=lambda c: (_complete(c), _score(c), -order[c.spec.name]), reverse=True)
        taken: set[str] = set()
        for candidate in candidates:
            names = {t.name for t in candidate.members.values()}
            required = [m for m in candidate.spec.members if m.flag is None]
            enough = _recurrent(candidate) and (
                _complete(candidate)
                or (_score(candidate) >= 3 and 2 * _score(candidate) >= len(required))
            )
            if enough and not names & taken:
                chosen.append(candidate)
                taken |= names
            if not naming.whole_module or not enough:
                continue
            break  # a transformers module is one block
    # A block inside another block's module (a spec's tensors nested deeper) is the outer one's.
    chosen.sort(key=lambda c: (len(c.prefix), c.prefix))
    kept: list[_Candidate] = []
    prefixes: set[str] = set()
    for candidate in chosen:
        outer = [a for a in _ancestors(candidate.prefix + ".") if a != candidate.prefix]
        if ("" in prefixes and candidate.prefix) or any(a in prefixes for a in outer):
            continue
        kept.append(candidate)
        prefixes.add(candidate.prefix)
    return kept


# The roles an attention module's tensors take too (q/k/v/o projections, norms): a module that
# holds nothing else of a spec is no recurrent block (a plain attention beside Kimi's KDA).
_PLAIN_ROLES = frozenset(
    {TensorRole.IN_PROJ, TensorRole.OUT_PROJ, TensorRole.QUERY, TensorRole.KEY, TensorRole.VALUE}
    | {TensorRole.NORM}
)


def _recurrent(candidate: _Candidate) -> bool:
    """The module holds a tensor of the recurrence itself (a convolution, a gate, a decay)."""
    return any(candidate.spec.member(name).role not in _PLAIN_ROLES for name in candidate.members)


def _score(candidate: _Candidate) -> int:
    return sum(1 for m in candidate.spec.members if m.flag is None and m.name in candidate.members)


def _complete(candidate: _Candidate) -> bool:
    return all(m.name in candidate.members for m in candidate.spec.members if m.flag is None)


def _ancestors(name: str) -> Iterable[str]:
    """The module paths `name` sits in, outermost first, at most MAX_MODULE_DEPTH deep."""
    position = name.find(".")
    depth = 0
    while position > 0 and depth < MAX_MODULE_DEPTH:
        yield name[:position]
        position = name.find(".", position + 1)
        depth += 1


def _with_module_rest(rows: list[Layer], tensors: Sequence[Tensor]) -> list[Layer]:
    """Each block row with the other tensors its module holds."""
    index = {row.name: position for position, row in enumerate(rows)}
    held = {t.name for row in rows for t in row.tensors}
    extra: dict[int, list[Tensor]] = {}
    for tensor in tensors:
        if tensor.name in held:
            continue
        owner = next((index[a] for a in _ancestors(tensor.name) if a in index), None)
        if owner is not None:
            extra.setdefault(owner, []).append(tensor)
    return [
        replace(row, tensors=row.tensors + tuple(extra.get(position, ())))
        for position, row in enumerate(rows)
    ]


def _block(
    candidate: _Candidate, hyper: Hyper | None, naming: Naming = HF
) -> tuple[RecurrentLayer, Layer]:
    spec, prefix = candidate.spec, candidate.prefix
    shapes = {name: tensor.shape for name, tensor in candidate.members.items()}
    dims, source, notes = block_dims(spec, shapes, hyper, naming.layout)
    values = resolved(spec, dims)
    resplit = [
        count.name
        for count in derive_block(spec, dims, shapes, naming.layout).members
        if count.axes == spec.member(count.name).resaved
    ]
    if resplit:
        notes.append(
            f"{', '.join(resplit)} are split in equal pieces as transformers' save_pretrained "
            "writes back a tensor it concatenates on loading (torch.chunk), not at the "
            "original widths: every channel is there, checked against that split"
        )
    missing = [
        naming.spell(spec, m) or m.name
        for m in spec.members
        if m.flag is None and m.name not in candidate.members and naming.spell(spec, m)
    ]
    defects = tuple(
        f"{name} is missing: a {spec.module} stores it ({spec.source.split(';')[0]})"
        for name in missing
    )
    members = [
        RecurrentTensor(tensor, member.role, None, member=member.name)
        for member in spec.members
        if (tensor := candidate.members.get(member.name)) is not None
    ]
    name = prefix or spec.module
    if not naming.whole_module:  # blk.N holds more than this block: blk.N.ssm, blk.N.time_mix
        name = f"{prefix}.{_label(spec, naming)}" if prefix else _label(spec, naming)
    layer = RecurrentLayer(
        name=name,
        type=spec.module,
        cell=CellConfig(
            kind=spec.kind,
            units=values.get(spec.units),
            dims=tuple(sorted(dims.items(), key=lambda item: _order(spec, item[0]))),
            block=spec.name,
            layout=naming.layout,
        ),
        directions=1,
        tensors=tuple(members),
        input_dim=values.get(spec.model_width),
        input_dim_source=source,
        notes=tuple(notes),
        defects=defects,
    )
    return layer, Layer(name, spec.module, tuple(item.tensor for item in members))


def _label(spec: BlockSpec, naming: Naming) -> str:
    """What a naming's tensor names of a block begin with: `ssm`, `time_mix`, `channel_mix`."""
    words = [re.split(r"[_.]", spelled) for m in spec.members if (spelled := naming.spell(spec, m))]
    common = []
    for group in zip(*words, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    return "_".join(common) or spec.name


def _order(spec: BlockSpec, dim: str) -> tuple[int, str]:
    """The spec's dimensions in its order, then its flags by name."""
    return (spec.dims.index(dim), "") if dim in spec.dims else (len(spec.dims), dim)


def block_dims(
    spec: BlockSpec,
    shapes: Mapping[str, tuple[int, ...]],
    hyper: Hyper | None,
    layout: str | None = None,
) -> tuple[dict[str, int], WidthSource, list[str]]:
    """A block's dimensions: the configuration's, then what the tensors give for the rest
    (`BlockSpec.read_off`, in order). The source is CONFIG where the configuration gave the
    model width; the notes say which values were assumed. `shapes` are the stored ones (by
    member name) in `layout`; read-offs name an axis of transformers' shape, found in
    another layout's by the dimension it holds (conv1d's d_conv: axis 2 there, 1 in GGUF)."""
    dims = {k: v for k, v in (hyper.dims if hyper else {}).items()}
    source = WidthSource.CONFIG if spec.model_width in dims else WidthSource.TENSOR
    notes: list[str] = []
    members = {member.name: member for member in spec.members}

    def axis(name: str, index: int) -> int | None:
        shape, member = shapes.get(name), members.get(name)
        if shape is None or member is None or not -len(member.shape) <= index < len(member.shape):
            return None
        axes = member.shape_in(layout)
        if axes is not member.shape:
            wanted = member.shape[index]
            if wanted not in axes:
                return None
            index = axes.index(wanted)
        return shape[index] if len(shape) == len(axes) else None

    for item in spec.read_off:
        if item.dim in dims:
            continue
        value = integer(item.expression, resolved(spec, dims), axis)
        if value is not None and 0 < value < MAX_DIM:
            dims[item.dim] = value
            if item.assumed:
                notes.append(item.assumed)
    return dims, source, notes


# --- plain modules of a hybrid -------------------------------------------------------------


def _plain_modules(
    tensors: Sequence[Tensor], naming: Naming
) -> tuple[list[Layer], list[AttentionCache]]:
    """Attention and MLP modules as one row each (outermost first: an MLP inside a mixture of
    experts is the mixture's), and each attention module's KV width."""
    if not naming.whole_module:
        return [], []
    # Every anchor is a module's child and its tensor ("k_proj.weight", "experts.down_proj").
    by_module: dict[str, dict[str, Tensor]] = {}
    for tensor in tensors:
        module, _, child = tensor.name.rpartition(".")
        module, _, parent = module.rpartition(".")
        if parent:
            by_module.setdefault(module, {})[f"{parent}.{child}"] = tensor
    kinds: dict[str, str] = {}
    for module, inner in by_module.items():
        if any(anchor <= inner.keys() for anchor in ATTENTION_ANCHORS):
            kinds[module] = "attention"
        elif any(anchor <= inner.keys() for anchor in MOE_ANCHORS):
            kinds[module] = "mixture of experts"
        elif any(anchor <= inner.keys() for anchor in MLP_ANCHORS):
            kinds[module] = "MLP"
    members: dict[str, list[Tensor]] = {}
    for tensor in tensors:  # the outermost such module holds it (an MLP inside a MoE: the MoE)
        owner = next((a for a in _ancestors(tensor.name) if a in kinds), None)
        if owner is not None:
            members.setdefault(owner, []).append(tensor)
    rows, caches = [], []
    for module in sorted(members):
        rows.append(Layer(module, kinds[module], tuple(members[module])))
        if kinds[module] == "attention":
            # by their names inside the module (an indexer's tensors sit deeper)
            inside = {t.name[len(module) + 1 :]: t for t in members[module]}
            width = _kv_width(inside)
            if width:
                caches.append(AttentionCache(module, width))
    return rows, caches


def _named(layer: Layer) -> Layer:
    """A language model's embedding (a lookup) and output head (a Linear), by module name."""
    if len(layer.tensors) != 1 or len(layer.tensors[0].shape) != 2:
        return layer
    leaf = layer.name.rpartition(".")[2]
    if leaf in EMBEDDINGS:
        return replace(layer, type="embedding")
    if leaf in HEADS:
        return replace(layer, type="Linear")
    return layer


def _tied_head(rows: Sequence[Layer]) -> tuple[Layer, ...]:
    """The output head a tied checkpoint does not store (save_pretrained drops lm_head.weight
    when tie_word_embeddings is set): a row reading the embedding, so a token's MACs count the
    head's product and the total counts the weights once."""
    embeddings = [row for row in rows if row.type == "embedding"]
    if len(embeddings) != 1 or any(row.type == "Linear" for row in rows):
        return ()
    (embedding,) = embeddings
    shared = SharedTensor(embedding.tensors[0], embedding.name)
    return (Layer("lm_head", "Linear", (), shared=(shared,)),)


def _kv_width(members: Mapping[str, Tensor]) -> int:
    """Elements a token adds to the cache: the key and value projections' outputs; for latent
    attention the latent and the shared rotary key, kv_a_proj_with_mqa's output
    (kv_lora_rank + qk_rope_head_dim: transformers caches them compressed,
    modeling_deepseek_v3.py / modeling_kimi_linear.py `cache.update(kv_nope, k_rot, ...)`),
    plus a k-pool sparse-attention indexer's packed keys where it has one (GLM-5.3's
    Glm5NextTextIndexer: its key, its pool-gate scores and one valid-mask channel per token,
    `cache.update_indexer(torch.cat([k, gate_scores, valid_channel], -1))`)."""
    latent = members.get("kv_a_proj_with_mqa.weight")
    if latent is not None and len(latent.shape) == 2:
        return latent.shape[0] + _indexer_width(members)
    return sum(
        members[name].shape[0]
        for name in ("k_proj.weight", "v_proj.weight")
        if name in members and len(members[name].shape) == 2
    )


def _indexer_width(members: Mapping[str, Tensor]) -> int:
    key = members.get("indexer.wk.weight")
    gate = members.get("indexer.index_kpool_compress_gate")
    if key is None or gate is None or len(key.shape) != 2 or len(gate.shape) != 2:
        return 0
    return key.shape[0] + gate.shape[0] + 1


# --- the decoder -----------------------------------------------------------------------------


def decoder_of(
    tensors: Sequence[Tensor],
    blocks: Sequence[RecurrentLayer],
    attention: Sequence[AttentionCache],
    hyper: Hyper | None,
    aliases: Mapping[str, str] = MappingProxyType({}),
) -> Decoder:
    """The decoder the blocks and attention layers make up: width and depth from the
    metadata, else from the blocks and the layer indices of the tensor names."""
    widths = Counter(layer.input_dim for layer in blocks if layer.input_dim)
    width = (hyper.width if hyper else None) or (widths.most_common(1)[0][0] if widths else 0)
    indices = {
        index
        for t in tensors
        if (m := _LAYER_INDEX.search(t.name)) and (index := int(m[1])) < MAX_DIM
    }
    depth = (hyper.depth if hyper else None) or (max(indices) + 1 if indices else len(blocks))
    dtype, itemsize = (hyper.kv_dtype if hyper else None) or _dtype(
        item.tensor for layer in blocks for item in layer.tensors
    )
    window = hyper.window if hyper else None
    caches = [AttentionCache(c.layer, c.width, window) for c in attention]
    wanted = hyper.attention_layers if hyper else None
    if wanted is None:  # tied aliases of an attention module: one more layer keeps a cache
        held = {c.layer for c in caches}
        wanted = len(caches) + len(
            {
                alias.rsplit(".", 2)[0]
                for alias in aliases
                if alias.endswith(".k_proj.weight") and alias.rsplit(".", 2)[0] not in held
            }
        )
    if caches and wanted > len(caches) and len({c.width for c in caches}) == 1:
        # A block shared by several layers (Zamba's shared transformer) is stored once and
        # keeps a cache in each layer that applies it.
        extra = wanted - len(caches)
        caches[-1] = AttentionCache(caches[-1].layer, caches[-1].width, window, 1 + extra)
    return Decoder(
        architecture=hyper.architecture if hyper else None,
        width=width,
        depth=depth,
        dtype=dtype,
        itemsize=itemsize,
        attention=tuple(caches),
    )


def _dtype(tensors: Iterable[Tensor]) -> tuple[str, int]:
    """The floating-point dtype most of the blocks' elements are stored in (float32 where
    none is: a quantized model computes in float)."""
    counts: Counter[tuple[str, int]] = Counter()
    for tensor in tensors:
        if tensor.dtype.lower().startswith(_FLOAT):
            counts[(tensor.dtype, tensor.itemsize)] += tensor.params
    return counts.most_common(1)[0][0] if counts else ("float32", 4)
