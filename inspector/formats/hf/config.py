"""A Hugging Face `config.json` in the block table's terms: which recurrent blocks the
architecture (`model_type`) has, their dimensions, the decoder's width and depth, and how many
of its layers keep a KV cache.

Each architecture's keys are a table (`ARCHITECTURES`): a block dimension maps to config
expressions tried in order (`inspector.dims`; the first whose keys are all numbers wins: Mamba's
`time_step_rank` may be "auto", then ceil(hidden_size / 16) as MambaConfig computes it). The
keys follow each model's `configuration_*.py` in transformers 5.25.

config.json is a stranger's file too: read with a size and element bound, a value used only
where it is a number of plausible size, anything else left to the tensors with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from inspector.dims import evaluate
from inspector.errors import CorruptModelError, InspectorError, NotFoundError
from inspector.formats.blocks import MAX_DIM, Hyper
from inspector.formats.bounded_json import load_json
from inspector.formats.source import Source

CONFIG_NAME = "config.json"
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # the largest real ones (id2label of 21k classes) ~1 MB
MAX_CONFIG_ITEMS = 500_000
MAX_LAYER_TYPES = 100_000  # a layer-type list longer than this describes no real model


@dataclass(frozen=True)
class Architecture:
    """One `model_type`: the block specs it has, its block dimensions by config expressions,
    the config key of a sliding window all its attention layers keep (RecurrentGemma's local
    attention), and how the configuration marks its attention layers (`_attention_layers`)."""

    specs: tuple[str, ...]
    dims: Mapping[str, tuple[str, ...]]
    window: str | None = None
    every_layer_attends: bool = False  # FalconH1: attention and Mamba side by side in each


def _keys(**dims: str | tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({k: (v,) if isinstance(v, str) else v for k, v in dims.items()})


_WIDTH = ("hidden_size", "d_model", "n_embd", "embedding_dim")
_DEPTH = ("num_hidden_layers", "num_layers", "n_layer", "num_blocks")

# configuration_mamba.py / configuration_falcon_mamba.py: intermediate_size = expand·hidden_size,
# time_step_rank "auto" = ceil(hidden_size / 16).
_MAMBA = _keys(
    d_model="hidden_size",
    d_inner=("intermediate_size", "expand*hidden_size"),
    d_state="state_size",
    d_conv="conv_kernel",
    dt_rank=("time_step_rank", "(hidden_size + 15)//16"),
    in_bias="use_bias",
    out_bias="use_bias",
    conv_bias="use_conv_bias",
    inner_norms="0",
)
# Bamba, GraniteMoeHybrid: mamba_d_head "auto" = mamba_expand·hidden_size // mamba_n_heads.
_BAMBA = _keys(
    d_model="hidden_size",
    d_inner="mamba_expand*hidden_size",
    d_state="mamba_d_state",
    d_conv="mamba_d_conv",
    n_groups="mamba_n_groups",
    n_heads="mamba_n_heads",
    head_dim=("mamba_d_head", "mamba_expand*hidden_size//mamba_n_heads"),
    in_bias="mamba_proj_bias",
    out_bias="mamba_proj_bias",
    conv_bias="mamba_conv_bias",
    gated_norm="1",
)
_GDN = _keys(
    d_model="hidden_size",
    n_k_heads="linear_num_key_heads",
    n_v_heads="linear_num_value_heads",
    d_k_head="linear_key_head_dim",
    d_v_head="linear_value_head_dim",
    d_conv="linear_conv_kernel_dim",
)
_LFM2 = _keys(d_model="hidden_size", d_conv="conv_L_cache", conv_bias="conv_bias")
_GDN_SPLIT = Architecture(("gated-deltanet-split",), _GDN)
# Kimi Delta Attention's keys (configuration_kimi_linear.py, configuration_bailing_hybrid.py).
_KDA = _keys(
    d_model="hidden_size",
    n_heads="linear_num_heads",
    head_dim="linear_head_dim",
    d_conv="linear_conv_kernel_dim",
)
_FALCON_H1_OWN = ("d_inner", "out_bias", "gated_norm")

ARCHITECTURES: Mapping[str, Architecture] = MappingProxyType(
    {
        "mamba": Architecture(("mamba",), _MAMBA),
        "falcon_mamba": Architecture(("mamba",), _MAMBA),
        "jamba": Architecture(
            ("mamba",),
            _keys(
                d_model="hidden_size",
                d_inner="mamba_expand*hidden_size",
                d_state="mamba_d_state",
                d_conv="mamba_d_conv",
                dt_rank=("mamba_dt_rank", "(hidden_size + 15)//16"),
                in_bias="mamba_proj_bias",
                out_bias="mamba_proj_bias",
                conv_bias="mamba_conv_bias",
                inner_norms="1",
            ),
        ),
        "zamba": Architecture(
            ("mamba-multihead",),
            _keys(
                d_model="hidden_size",
                d_inner="mamba_expand*hidden_size",
                d_state="mamba_d_state",
                d_conv="mamba_d_conv",
                dt_rank=("mamba_dt_rank", "(hidden_size + 15)//16"),
                n_heads="n_mamba_heads",
                in_bias="mamba_proj_bias",
                out_bias="mamba_proj_bias",
                conv_bias="mamba_conv_bias",
            ),
        ),
        "mamba2": Architecture(
            ("mamba2",),
            _keys(
                d_model="hidden_size",
                d_inner="expand*hidden_size",
                d_state="state_size",
                d_conv="conv_kernel",
                n_groups="n_groups",
                n_heads="num_heads",
                head_dim="head_dim",
                in_bias="use_bias",
                out_bias="use_bias",
                conv_bias="use_conv_bias",
                gated_norm="1",
            ),
        ),
        "zamba2": Architecture(
            ("mamba2",),
            _keys(
                d_model="hidden_size",
                d_inner="mamba_expand*hidden_size",
                d_state="mamba_d_state",
                d_conv="mamba_d_conv",
                n_groups="mamba_ngroups",
                n_heads="n_mamba_heads",
                head_dim="mamba_headdim",
                in_bias="add_bias_linear",
                out_bias="add_bias_linear",
                conv_bias="use_conv_bias",
                gated_norm="1",
            ),
        ),
        "bamba": Architecture(("mamba2",), _BAMBA),
        "granitemoehybrid": Architecture(("mamba2",), _BAMBA),
        # FalconH1Mixer: d_ssm wide, its own out_proj bias (projectors_bias), no gated norm
        # unless mamba_rms_norm; attention beside the mixer in every layer.
        "falcon_h1": Architecture(
            ("mamba2",),
            _keys(
                **{k: v for k, v in _BAMBA.items() if k not in _FALCON_H1_OWN},
                d_inner=("mamba_d_ssm", "mamba_expand*hidden_size"),
                out_bias="projectors_bias",
                gated_norm="mamba_rms_norm",
            ),
            every_layer_attends=True,
        ),
        # NemotronHMamba2Mixer: intermediate_size = mamba_num_heads·mamba_head_dim.
        "nemotron_h": Architecture(
            ("mamba2",),
            _keys(
                d_model="hidden_size",
                d_inner="mamba_num_heads*mamba_head_dim",
                d_state="ssm_state_size",
                d_conv="conv_kernel",
                n_groups="n_groups",
                n_heads="mamba_num_heads",
                head_dim="mamba_head_dim",
                in_bias="use_bias",
                out_bias="use_bias",
                conv_bias="use_conv_bias",
                gated_norm="1",
            ),
        ),
        "rwkv": Architecture(
            ("rwkv-time-mix", "rwkv-channel-mix"),
            _keys(
                d_model="hidden_size",
                d_att=("attention_hidden_size", "hidden_size"),
                d_ffn=("intermediate_size", "4*hidden_size"),
            ),
        ),
        "recurrent_gemma": Architecture(
            ("rg-lru",),
            _keys(
                d_model="hidden_size",
                d_lru=("lru_width", "hidden_size"),
                n_heads="num_attention_heads",
                d_conv="conv1d_width",
            ),
            window="attention_window_size",
        ),
        # xLSTMLayer: qk_dim = int(hidden_size·qk_dim_factor), v_dim likewise.
        "xlstm": Architecture(
            ("mlstm", "mlstm-fused"),
            _keys(
                d_model=("hidden_size", "embedding_dim"),
                qk_dim="hidden_size*qk_dim_factor",
                v_dim="hidden_size*v_dim_factor",
                n_heads="num_heads",
                use_bias="use_bias",
            ),
        ),
        "lfm2": Architecture(("short-conv",), _LFM2),
        "lfm2_moe": Architecture(("short-conv",), _LFM2),
        "qwen3_next": Architecture(("gated-deltanet",), _GDN),
        "qwen3_5": _GDN_SPLIT,
        "qwen3_5_text": _GDN_SPLIT,
        "qwen3_5_moe": _GDN_SPLIT,
        "qwen3_5_moe_text": _GDN_SPLIT,
        "lara_mini": _GDN_SPLIT,
        "qwen4_exp": _GDN_SPLIT,
        "qwen4_exp_text": _GDN_SPLIT,
        "olmo_hybrid": Architecture(("gated-deltanet-olmo",), _GDN),
        # configuration_kimi_linear.py; the original checkpoints' config.json nests these in
        # linear_attn_config (then read off the tensors, which give all four).
        "kimi_linear": Architecture(("kimi-delta-attention",), _KDA),
        # configuration_bailing_hybrid.py (BailingHybridDeltaAttention reads
        # linear_conv_kernel_dim, not short_conv_kernel_size).
        "bailing_hybrid": Architecture(("kimi-delta-attention-bailing",), _KDA),
        # configuration_glm5_next.py (GLM-5.3: the text model nested in text_config)
        "glm5_next": Architecture(("kimi-delta-attention-glm",), _KDA),
        "glm5_next_text": Architecture(("kimi-delta-attention-glm",), _KDA),
    }
)

# Layer types that keep a KV cache (configuration files' layer_types / layers_block_type /
# block_types; "hybrid" is Zamba's Mamba layer with the shared attention block).
_ATTENTION_TYPES = frozenset(
    {"attention", "full_attention", "sliding_attention", "hybrid", "attn", "global", "local"}
)
_LAYER_LISTS = ("layer_types", "layers_block_type", "block_types")
# Layer types and key prefixes by which a configuration marks a recurrent or linear-attention
# mixer (Qwen3-Next, OLMo-Hybrid, Kimi Linear, MiniMax: "linear_attention"; Jamba, Zamba:
# "mamba"; RecurrentGemma: "recurrent"; LFM2: "conv"; "hybrid", "hybrid_sliding": attention with
# a mixer beside it in one layer, Zamba's Mamba, ZAYA's convolutional attention, Inkling's short
# convolutions, whose caches keep conv states beside the keys and values): an architecture
# without a row here that shows one gets a warning rather than a silent reading as plain layers.
_MIXER_TYPES = frozenset(
    {"linear_attention", "mamba", "mamba2", "recurrent", "conv", "ssm", "hybrid", "hybrid_sliding"}
)
_MIXER_KEYS = ("linear_attn", "linear_num_", "linear_conv", "mamba_", "ssm_", "time_step")


def read_config(path: Source) -> dict[str, object]:
    """The JSON object of `path`, bounded. Raises NotFoundError, CorruptModelError."""
    try:
        with path.checked().open() as handle:  # never a FIFO: reading one could block forever
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise NotFoundError(f"{path}: cannot be read ({error.strerror or error})") from None
    document = load_json(raw, str(path), max_bytes=MAX_CONFIG_BYTES, max_items=MAX_CONFIG_ITEMS)
    if not isinstance(document, dict):
        raise CorruptModelError(f"{path}: not a JSON object; a config.json holds one")
    return document


def config_beside(path: Source) -> Hyper | None:
    """The hyperparameters of the config.json in a weights file's directory, where one is
    there, names an architecture, is not a link out of the directory and reads; otherwise
    None, or a Hyper carrying only a warning: a config.json that fails to read, is not a
    regular file (a FIFO, a device, a folder) or links out of the folder is never opened and
    said to be skipped."""
    config = path.parent / CONFIG_NAME
    if not config.exists():
        return None
    if not config.is_file() or not config.inside():
        # Never opened (a FIFO would block, a link out leaves the model's folder), but said:
        # the dimensions then come from the tensors, and the user should know why.
        why = "a link out of the folder" if config.is_file() else "not a regular file"
        return Hyper(
            None,
            CONFIG_NAME,
            warnings=(f"{config}: {why}; not read: dimensions from the tensors",),
        )
    try:
        document = read_config(config)
    except InspectorError as error:
        return Hyper(None, CONFIG_NAME, warnings=(f"{error}: dimensions from the tensors",))
    return hyper(document)


def hyper(document: Mapping[str, object]) -> Hyper | None:
    """The block table's view of a config.json; None where it names no model_type."""
    config = _text_config(document)
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        return None
    architecture = ARCHITECTURES.get(model_type)
    warnings: list[str] = []
    dims: dict[str, int] = {}
    if architecture is not None:
        for dim, expressions in architecture.dims.items():
            value = _first(expressions, config)
            if value is None:
                continue
            if not 0 <= value < MAX_DIM:
                warnings.append(
                    f"config.json gives {dim} = {value:,}, not a dimension a model can have: "
                    "it is read from the tensors instead"
                )
                continue
            dims[dim] = value
    depth = _first(_DEPTH, config)
    return Hyper(
        architecture=model_type,
        source=CONFIG_NAME,
        dims=MappingProxyType(dims),
        specs=frozenset(architecture.specs) if architecture else None,
        width=_plausible(_first(_WIDTH, config)),
        depth=_plausible(depth),
        attention_layers=_attention_layers(config, architecture, _plausible(depth)),
        window=_plausible(_first((architecture.window,), config))
        if architecture and architecture.window
        else None,
        tied_head=config.get("tie_word_embeddings", document.get("tie_word_embeddings")) is True,
        warnings=tuple(warnings),
        mixer_hint=None if architecture else _mixer_hint(config),
    )


def _mixer_hint(config: Mapping[str, object]) -> str | None:
    """What in a configuration marks a recurrent or linear-attention mixer (`_MIXER_TYPES` in
    its list of layer types, a `_MIXER_KEYS` key), said in a few words; None where nothing."""
    for key in _LAYER_LISTS:
        kinds = config.get(key)
        if isinstance(kinds, list):
            found = {k for k in kinds[:MAX_LAYER_TYPES] if isinstance(k, str) and k in _MIXER_TYPES}
            if found:
                return f"lists {', '.join(map(repr, sorted(found)))} layers ({key})"
    keys = sorted(key for key in config if key.startswith(_MIXER_KEYS))
    if keys:
        return f"sets {keys[0]}" + (
            f" and {len(keys) - 1:,} more such keys" if len(keys) > 1 else ""
        )
    return None


def _text_config(document: Mapping[str, object]) -> Mapping[str, object]:
    """A multimodal config keeps its language model in text_config (Qwen3.5, LFM2-VL)."""
    model_type = document.get("model_type")
    text = document.get("text_config")
    if isinstance(model_type, str) and model_type in ARCHITECTURES:
        return document
    if isinstance(text, dict) and isinstance(text.get("model_type"), str):
        return text
    return document


def _numbers(config: Mapping[str, object]) -> dict[str, Fraction]:
    """The config's numeric values (booleans as 0 and 1), the only ones expressions read."""
    out = {}
    for key, value in config.items():
        if isinstance(value, bool):
            out[key] = Fraction(int(value))
        elif isinstance(value, int | float) and abs(value) < MAX_DIM * MAX_DIM:
            out[key] = Fraction(value)  # NaN fails the bound; an infinite float too
    return out


def _first(expressions: tuple[str, ...], config: Mapping[str, object]) -> int | None:
    """The first expression the config's numbers evaluate, truncated as `int()` does
    (xLSTM's int(hidden_size * qk_dim_factor))."""
    numbers = _numbers(config)
    for expression in expressions:
        value = evaluate(expression, numbers)
        if value is not None:
            return int(value)
    return None


def _plausible(value: int | None) -> int | None:
    return value if value is not None and 0 < value < MAX_DIM else None


def _attention_layers(
    config: Mapping[str, object], architecture: Architecture | None, depth: int | None
) -> int | None:
    """How many layers keep a KV cache, as the configuration marks them: a list of layer
    types (repeated over the depth where shorter, RecurrentGemma's block_types pattern),
    NemotronH's hybrid_override_pattern ('*' an attention layer), a list of attention layer
    indices (Bamba, LFM2), Jamba's attn_layer_period and attn_layer_offset, or every layer
    (FalconH1). None where it does not say."""
    if architecture is not None and architecture.every_layer_attends:
        return depth
    for key in _LAYER_LISTS:
        kinds = config.get(key)
        if isinstance(kinds, list) and 0 < len(kinds) <= MAX_LAYER_TYPES:
            total = depth if depth is not None and depth <= MAX_LAYER_TYPES else len(kinds)
            return sum(
                1
                for i in range(total)
                if isinstance(kind := kinds[i % len(kinds)], str) and kind in _ATTENTION_TYPES
            )
    pattern = config.get("hybrid_override_pattern")
    if isinstance(pattern, str):
        return pattern.count("*")
    for key in ("attn_layer_indices", "full_attn_idxs"):
        indices = config.get(key)
        if isinstance(indices, list):
            return len(indices)
    period, offset = config.get("attn_layer_period"), config.get("attn_layer_offset")
    if isinstance(period, int) and isinstance(offset, int) and depth is not None:
        if 0 <= offset < period:  # the layers i < depth with i % period == offset
            return max(0, (depth - offset + period - 1) // period)
        return 0
    return None
