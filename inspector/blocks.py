"""Structure as data for the recurrent blocks of state-space and linear-recurrent language
models: one `BlockSpec` per transformers modeling class, naming each tensor the block stores,
its role, which part of the block it is, and its shape written in the block's dimensions.

The parameter formula (`inspector.formula.derive_block`), the state a sequence carries and the
MACs of a token (`inspector.compute`) and the recognition of a block by its tensor names
(`inspector.formats.blocks`) all read this table; a second naming of the same tensors
(llama.cpp's GGUF names) is a column of it, not code.

Shapes are PyTorch's (`nn.Linear.weight` is `(out_features, in_features)`, `nn.Conv1d.weight`
`(channels, 1, kernel)` for a depthwise convolution) and are written in `inspector.dims`
expressions. Each spec cites the modeling file it follows (transformers 5.25) and the paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from types import MappingProxyType

from inspector.dims import integer
from inspector.model import CellKind, TensorRole

LLAMA_CPP = "llama.cpp"  # the layout of a GGUF file's tensors (CellConfig.layout)


class Part(Enum):
    """Which part of a recurrent block a tensor belongs to."""

    INPUT_PROJECTION = "input projection"
    TOKEN_SHIFT = "token shift"  # RWKV's mix of this token with the previous one
    CONVOLUTION = "convolution"  # the short causal convolution before the recurrence
    STATE_TRANSITION = "state transition"  # what moves the state from one token to the next
    GATES = "gates"
    NORM = "norm"
    OUTPUT_PROJECTION = "output projection"


class Stored(Enum):
    """What a naming stores of a tensor's values."""

    AS_IS = "as is"
    # llama.cpp's converter stores Mamba's A = -exp(A_log), not A_log
    # (convert_hf_to_gguf.py, MambaModel and Mamba2Model.modify_tensors).
    NEG_EXP = "-exp"


@dataclass(frozen=True)
class Spelling:
    """The same tensor under another naming (llama.cpp's GGUF names): its name after the
    block's `blk.N.`, its shape there where it differs (in PyTorch's order; GGUF's ne reversed),
    and what it stores of the values."""

    name: str
    shape: tuple[str, ...] | None = None
    values: Stored = Stored.AS_IS


@dataclass(frozen=True)
class Member:
    """One tensor of a block. `name` is its key under the block's module in a transformers state
    dict (llama.cpp's name for a block transformers does not have); `shape` its shape in
    PyTorch's layout; `flag` the block dimension (0 or 1) that says whether it is stored (a bias
    behind `use_conv_bias`), None when it always is; `llama_cpp` how gguf-py's constants.py
    spells it in a GGUF file (None: llama.cpp does not store it)."""

    name: str
    role: TensorRole
    part: Part
    shape: tuple[str, ...]
    flag: str | None = None
    llama_cpp: Spelling | None = None
    # The shape transformers' save_pretrained writes instead where it splits a tensor it
    # concatenates on loading back with torch.chunk (core_model_loading.py: Concatenate's
    # reverse is Chunk, equal pieces and a shorter last one), not at the original widths.
    resaved: tuple[str, ...] | None = None

    def shape_in(self, layout: str | None) -> tuple[str, ...]:
        """The shape under a layout: None transformers', LLAMA_CPP GGUF's."""
        if layout == LLAMA_CPP and self.llama_cpp is not None and self.llama_cpp.shape:
            return self.llama_cpp.shape
        return self.shape


@dataclass(frozen=True)
class Stream:
    """One tensor of the state a block carries from token to token, per sequence. `dtype` None:
    the model's dtype; otherwise the dtype the modeling file allocates it in whatever the
    weights are (RWKV's WKV sums, RG-LRU's recurrence: float32). `llama_cpp`: its shape in
    llama.cpp's recurrent memory where it differs (a convolution keeps d_conv - 1 inputs there,
    d_conv in transformers' cache); llama.cpp keeps every stream in F32."""

    name: str
    shape: tuple[str, ...]
    dtype: str | None = None
    llama_cpp: tuple[str, ...] | None = None

    def shape_in(self, layout: str | None) -> tuple[str, ...]:
        return self.llama_cpp if layout == LLAMA_CPP and self.llama_cpp else self.shape


@dataclass(frozen=True)
class ReadOff:
    """Where a dimension is read from the stored tensors when no configuration gives it.
    `assumed` (a reason) marks a value the tensors cannot separate from another dimension and
    that is taken as the field's usual one; the report says so."""

    dim: str
    expression: str
    assumed: str | None = None


@dataclass(frozen=True)
class BlockSpec:
    """`dims` are the dimensions a configuration gives, in the order reports show them;
    `derived` more dimensions computed from those, in order; `units` the one a report shows as
    the block's width (its `units`), `model_width` the residual stream's (its input width).
    `scan_macs` counts the multiply-accumulates of one token's recurrence beyond the weight
    products (which cost one MAC per weight element)."""

    name: str
    kind: CellKind
    module: str  # the transformers class
    source: str  # modeling file and paper
    dims: tuple[str, ...]
    members: tuple[Member, ...]
    read_off: tuple[ReadOff, ...]
    state: tuple[Stream, ...]
    scan_macs: str
    units: str
    model_width: str = "d_model"
    derived: tuple[tuple[str, str], ...] = ()
    in_transformers: bool = True  # False: a block only llama.cpp has (RWKV-6), named by it

    def member(self, name: str) -> Member:
        return next(member for member in self.members if member.name == name)


S = Spelling
NEG_EXP = Stored.NEG_EXP
_IN = Part.INPUT_PROJECTION
_CONV = Part.CONVOLUTION
_STATE = Part.STATE_TRANSITION
_GATES = Part.GATES
_NORM = Part.NORM
_OUT = Part.OUTPUT_PROJECTION
_SHIFT = Part.TOKEN_SHIFT
R = TensorRole

_MAMBA_IO = (
    Member("in_proj.weight", R.IN_PROJ, _IN, ("2*d_inner", "d_model"), None, S("ssm_in.weight")),
    Member("in_proj.bias", R.IN_PROJ, _IN, ("2*d_inner",), "in_bias"),
    # llama.cpp squeezes the depthwise kernel's channel axis: (d_inner, d_conv)
    Member(
        "conv1d.weight",
        R.CONV1D,
        _CONV,
        ("d_inner", "1", "d_conv"),
        None,
        S("ssm_conv1d.weight", ("d_inner", "d_conv")),
    ),
    Member("conv1d.bias", R.CONV1D, _CONV, ("d_inner",), "conv_bias", S("ssm_conv1d.bias")),
)
_OUT_PROJ = (
    Member("out_proj.weight", R.OUT_PROJ, _OUT, ("d_model", "d_inner"), None, S("ssm_out.weight")),
    Member("out_proj.bias", R.OUT_PROJ, _OUT, ("d_model",), "out_bias"),
)

MAMBA = BlockSpec(
    name="mamba",
    kind=CellKind.MAMBA,
    module="MambaMixer",
    source=(
        "transformers models/mamba/modeling_mamba.py MambaMixer (FalconMambaMixer, "
        "JambaMambaMixer alike); Gu & Dao 2023, Mamba, Algorithm 2 and eq. (2a)-(2b)"
    ),
    dims=("d_model", "d_inner", "d_state", "d_conv", "dt_rank"),
    members=(
        *_MAMBA_IO,
        # x_proj makes Δ (dt_rank), B and C (d_state each) input dependent: the selection.
        Member(
            "x_proj.weight",
            R.X_PROJ,
            _STATE,
            ("dt_rank + 2*d_state", "d_inner"),
            None,
            S("ssm_x.weight"),
        ),
        Member(
            "dt_proj.weight", R.DT_PROJ, _STATE, ("d_inner", "dt_rank"), None, S("ssm_dt.weight")
        ),
        Member("dt_proj.bias", R.DT_PROJ, _STATE, ("d_inner",), None, S("ssm_dt.bias")),
        Member("A_log", R.A_LOG, _STATE, ("d_inner", "d_state"), None, S("ssm_a", None, NEG_EXP)),
        Member("D", R.D_SKIP, _STATE, ("d_inner",), None, S("ssm_d")),
        # Jamba normalises Δ, B and C (modeling_jamba.py JambaMambaMixer).
        Member(
            "dt_layernorm.weight",
            R.NORM,
            _NORM,
            ("dt_rank",),
            "inner_norms",
            S("ssm_dt_norm.weight"),
        ),
        Member(
            "b_layernorm.weight", R.NORM, _NORM, ("d_state",), "inner_norms", S("ssm_b_norm.weight")
        ),
        Member(
            "c_layernorm.weight", R.NORM, _NORM, ("d_state",), "inner_norms", S("ssm_c_norm.weight")
        ),
        *_OUT_PROJ,
    ),
    read_off=(
        ReadOff("d_model", "out_proj.weight[0]"),
        ReadOff("d_inner", "A_log[0]"),
        ReadOff("d_state", "A_log[1]"),
        ReadOff("d_conv", "conv1d.weight[2]"),
        ReadOff("dt_rank", "dt_proj.weight[1]"),
    ),
    # LinearAttentionLayer (cache_utils.py): conv_states (d_inner, d_conv) in the model's
    # dtype; the selective scan's state (d_inner, d_state) kept in float32 (modeling_mamba.py).
    state=(
        Stream("conv", ("d_inner", "d_conv"), None, ("d_inner", "d_conv - 1")),
        Stream("ssm", ("d_inner", "d_state"), "float32"),
    ),
    # h = exp(Δ·A)·h + Δ·B·x and y = C·h + D·x: three products per state element, one per channel
    scan_macs="3*d_inner*d_state + d_inner",
    units="d_inner",
)

# Zamba keeps one selective scan per head: x_proj and dt_proj per head, the same counts.
MAMBA_MULTIHEAD = BlockSpec(
    name="mamba-multihead",
    kind=CellKind.MAMBA,
    module="ZambaMambaMixer",
    source=(
        "transformers models/zamba/modeling_zamba.py ZambaMambaMixer (n_mamba_heads scans); "
        "Gu & Dao 2023, Algorithm 2"
    ),
    dims=("d_model", "d_inner", "d_state", "d_conv", "dt_rank", "n_heads"),
    derived=(("head_dim", "d_inner // n_heads"),),
    members=(
        *_MAMBA_IO,
        Member("x_proj_weight", R.X_PROJ, _STATE, ("n_heads", "dt_rank + 2*d_state", "head_dim")),
        Member("dt_proj_weight", R.DT_PROJ, _STATE, ("n_heads", "head_dim", "dt_rank")),
        Member("dt_proj_bias", R.DT_PROJ, _STATE, ("n_heads", "head_dim")),
        Member("A_log", R.A_LOG, _STATE, ("n_heads", "head_dim", "d_state")),
        Member("D", R.D_SKIP, _STATE, ("n_heads", "head_dim")),
        *_OUT_PROJ,
    ),
    read_off=(
        ReadOff("d_model", "out_proj.weight[0]"),
        ReadOff("d_inner", "conv1d.weight[0]"),
        ReadOff("n_heads", "A_log[0]"),
        ReadOff("d_state", "A_log[2]"),
        ReadOff("d_conv", "conv1d.weight[2]"),
        ReadOff("dt_rank", "dt_proj_weight[2]"),
    ),
    state=(
        Stream("conv", ("d_inner", "d_conv")),
        Stream("ssm", ("n_heads", "head_dim", "d_state"), "float32"),
    ),
    scan_macs="3*d_inner*d_state + d_inner",
    units="d_inner",
)

MAMBA2 = BlockSpec(
    name="mamba2",
    kind=CellKind.MAMBA2,
    module="Mamba2Mixer",
    source=(
        "transformers models/mamba2/modeling_mamba2.py Mamba2Mixer (Zamba2MambaMixer, "
        "BambaMixer, FalconH1Mixer, GraniteMoeHybridMambaLayer, NemotronHMamba2Mixer alike); "
        "Dao & Gu 2024, Transformers are SSMs, section 7 (the SSD layer)"
    ),
    dims=("d_model", "d_inner", "d_state", "d_conv", "n_groups", "n_heads", "head_dim"),
    derived=(("conv_dim", "d_inner + 2*n_groups*d_state"),),
    members=(
        # in_proj makes z (d_inner), x, B, C (conv_dim) and dt (one per head).
        Member(
            "in_proj.weight",
            R.IN_PROJ,
            _IN,
            ("d_inner + conv_dim + n_heads", "d_model"),
            None,
            S("ssm_in.weight"),
        ),
        Member("in_proj.bias", R.IN_PROJ, _IN, ("d_inner + conv_dim + n_heads",), "in_bias"),
        Member(
            "conv1d.weight",
            R.CONV1D,
            _CONV,
            ("conv_dim", "1", "d_conv"),
            None,
            S("ssm_conv1d.weight", ("conv_dim", "d_conv")),
        ),
        Member("conv1d.bias", R.CONV1D, _CONV, ("conv_dim",), "conv_bias", S("ssm_conv1d.bias")),
        Member("dt_bias", R.DT_BIAS, _STATE, ("n_heads",), None, S("ssm_dt.bias")),
        # llama.cpp keeps A and D as (n_heads, 1) columns, A as -exp(A_log)
        Member("A_log", R.A_LOG, _STATE, ("n_heads",), None, S("ssm_a", ("n_heads", "1"), NEG_EXP)),
        Member("D", R.D_SKIP, _STATE, ("n_heads",), None, S("ssm_d", ("n_heads", "1"))),
        # The gated RMSNorm before out_proj (FalconH1 without it unless mamba_rms_norm); llama.cpp
        # stores it per group.
        Member(
            "norm.weight",
            R.NORM,
            _NORM,
            ("d_inner",),
            "gated_norm",
            S("ssm_norm.weight", ("n_groups", "d_inner // n_groups")),
        ),
        *_OUT_PROJ,
    ),
    read_off=(
        ReadOff("d_model", "out_proj.weight[0]"),
        ReadOff("d_inner", "out_proj.weight[1]"),
        ReadOff("n_heads", "A_log[0]"),
        ReadOff("d_conv", "conv1d.weight[2]"),
        ReadOff("head_dim", "d_inner // n_heads"),
        ReadOff("n_groups", "(conv1d.weight[0] - d_inner) // (2*d_state)"),
        ReadOff(
            "n_groups",
            "1",
            "conv1d holds d_inner + 2·n_groups·d_state channels, which the tensors do not "
            "separate: n_groups = 1 is assumed (config.json beside the weights gives it)",
        ),
        ReadOff("d_state", "(conv1d.weight[0] - d_inner) // (2*n_groups)"),
    ),
    state=(
        Stream("conv", ("conv_dim", "d_conv"), None, ("conv_dim", "d_conv - 1")),
        Stream("ssm", ("n_heads", "head_dim", "d_state"), "float32"),
    ),
    scan_macs="3*n_heads*head_dim*d_state + n_heads*head_dim",
    units="d_inner",
)

RWKV_TIME_MIX = BlockSpec(
    name="rwkv-time-mix",
    kind=CellKind.RWKV_TIME_MIX,
    module="RwkvSelfAttention",
    source=(
        "transformers models/rwkv/modeling_rwkv.py RwkvSelfAttention and "
        "rwkv_linear_attention_cpu; Peng et al. 2023, RWKV, eq. (11)-(17)"
    ),
    dims=("d_model", "d_att"),
    members=(
        Member("time_decay", R.TIME_DECAY, _STATE, ("d_att",)),
        Member("time_first", R.TIME_FIRST, _STATE, ("d_att",)),
        Member("time_mix_key", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        Member("time_mix_value", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        Member("time_mix_receptance", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        Member("key.weight", R.KEY, _IN, ("d_att", "d_model")),
        Member("value.weight", R.VALUE, _IN, ("d_att", "d_model")),
        Member("receptance.weight", R.RECEPTANCE, _GATES, ("d_att", "d_model")),
        Member("output.weight", R.OUT_PROJ, _OUT, ("d_model", "d_att")),
    ),
    read_off=(ReadOff("d_model", "output.weight[0]"), ReadOff("d_att", "time_decay[0]")),
    # RwkvModel.forward: state[1] the previous token (model dtype), state[2..4] the WKV
    # numerator, denominator and running maximum, always float32.
    state=(
        Stream("shift", ("d_model",)),
        Stream("wkv", ("3", "d_att"), "float32"),
    ),
    # numerator and denominator, each for the output and the new state: e1·a + e2·v, e1·b + e2
    scan_macs="4*d_att",
    units="d_att",
)

RWKV_CHANNEL_MIX = BlockSpec(
    name="rwkv-channel-mix",
    kind=CellKind.RWKV_CHANNEL_MIX,
    module="RwkvFeedForward",
    source=(
        "transformers models/rwkv/modeling_rwkv.py RwkvFeedForward; "
        "Peng et al. 2023, RWKV, eq. (18)-(20)"
    ),
    dims=("d_model", "d_ffn"),
    members=(
        Member("time_mix_key", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        Member("time_mix_receptance", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        Member("key.weight", R.KEY, _IN, ("d_ffn", "d_model")),
        Member("receptance.weight", R.RECEPTANCE, _GATES, ("d_model", "d_model")),
        Member("value.weight", R.VALUE, _OUT, ("d_model", "d_ffn")),
    ),
    read_off=(ReadOff("d_model", "receptance.weight[0]"), ReadOff("d_ffn", "key.weight[0]")),
    state=(Stream("shift", ("d_model",)),),  # state[0]: the previous token
    scan_macs="0",
    units="d_model",
)


def _llama(
    name: str, role: TensorRole, part: Part, shape: tuple[str, ...], flag: str | None = None
) -> Member:
    """A tensor of a block only llama.cpp has: its GGUF name is the table's."""
    return Member(name, role, part, shape, flag, S(name))


_RWKV6_SOURCE = (
    "llama.cpp src/llama-model.cpp LLM_ARCH_RWKV6 (tensors) and src/models/rwkv6-base.cpp; "
    "Peng et al. 2024, Eagle and Finch (RWKV-6), section 4"
)
# Finch's data-dependent token shift: a low-rank (mix_dim) interpolation for w, k, v, r and g,
# stored fused (lerp_fused) by newer converters, one tensor per target by older ones.
_RWKV6_LERPS = tuple(
    _llama(f"time_mix_lerp_{x}.weight", R.TIME_MIX, _SHIFT, ("1", "1", "d_model"), "split_lerp")
    for x in "wkvrg"
)
RWKV6_TIME_MIX = BlockSpec(
    name="rwkv6-time-mix",
    kind=CellKind.RWKV_TIME_MIX,
    module="RWKV-6 time mix",
    source=_RWKV6_SOURCE,
    dims=("d_model", "d_att", "head_size", "mix_dim", "decay_dim"),
    derived=(("n_heads", "d_att // head_size"),),
    members=(
        _llama("time_mix_lerp_x.weight", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        _llama("time_mix_w1.weight", R.TIME_MIX, _SHIFT, ("5*mix_dim", "d_model")),
        _llama("time_mix_w2.weight", R.TIME_MIX, _SHIFT, ("5", "d_model", "mix_dim")),
        _llama(
            "time_mix_lerp_fused.weight",
            R.TIME_MIX,
            _SHIFT,
            ("5", "1", "1", "d_model"),
            "fused_lerp",
        ),
        *_RWKV6_LERPS,
        _llama("time_mix_decay.weight", R.TIME_DECAY, _STATE, ("d_att",)),
        _llama("time_mix_decay_w1.weight", R.TIME_DECAY, _STATE, ("decay_dim", "d_model")),
        _llama("time_mix_decay_w2.weight", R.TIME_DECAY, _STATE, ("d_att", "decay_dim")),
        _llama("time_mix_first.weight", R.TIME_FIRST, _STATE, ("n_heads", "head_size")),
        _llama("time_mix_key.weight", R.KEY, _IN, ("d_att", "d_model")),
        _llama("time_mix_value.weight", R.VALUE, _IN, ("d_att", "d_model")),
        _llama("time_mix_receptance.weight", R.RECEPTANCE, _GATES, ("d_att", "d_model")),
        _llama("time_mix_gate.weight", R.GATE, _GATES, ("d_att", "d_model")),
        _llama("time_mix_ln.weight", R.NORM, _NORM, ("d_att",)),
        _llama("time_mix_ln.bias", R.NORM, _NORM, ("d_att",)),
        _llama("time_mix_output.weight", R.OUT_PROJ, _OUT, ("d_model", "d_att")),
    ),
    read_off=(
        ReadOff("d_model", "time_mix_output.weight[0]"),
        ReadOff("d_att", "time_mix_decay.weight[0]"),
        ReadOff("head_size", "time_mix_first.weight[1]"),
        ReadOff("mix_dim", "time_mix_w2.weight[2]"),
        ReadOff("decay_dim", "time_mix_decay_w1.weight[0]"),
    ),
    # llama.cpp's recurrent memory (llama-memory-recurrent.cpp): the token shift and the WKV
    # state, n_embd·head_size per layer, both F32.
    state=(
        Stream("shift", ("d_model",), "float32"),
        Stream("wkv", ("n_heads", "head_size", "head_size"), "float32"),
    ),
    # S = diag(w)·S + kᵀv and o = r·(S + u·kᵀv): four products per state element
    scan_macs="4*d_att*head_size",
    units="d_att",
    in_transformers=False,
)

RWKV6_CHANNEL_MIX = BlockSpec(
    name="rwkv6-channel-mix",
    kind=CellKind.RWKV_CHANNEL_MIX,
    module="RWKV-6 channel mix",
    source=_RWKV6_SOURCE,
    dims=("d_model", "d_ffn"),
    members=(
        _llama("channel_mix_lerp_k.weight", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        _llama("channel_mix_lerp_r.weight", R.TIME_MIX, _SHIFT, ("1", "1", "d_model")),
        _llama("channel_mix_key.weight", R.KEY, _IN, ("d_ffn", "d_model")),
        _llama("channel_mix_receptance.weight", R.RECEPTANCE, _GATES, ("d_model", "d_model")),
        _llama("channel_mix_value.weight", R.VALUE, _OUT, ("d_model", "d_ffn")),
    ),
    read_off=(
        ReadOff("d_model", "channel_mix_receptance.weight[0]"),
        ReadOff("d_ffn", "channel_mix_key.weight[0]"),
    ),
    state=(Stream("shift", ("d_model",), "float32"),),
    scan_macs="0",
    units="d_model",
    in_transformers=False,
)

RG_LRU = BlockSpec(
    name="rg-lru",
    kind=CellKind.RG_LRU,
    module="RecurrentGemmaRecurrentBlock",
    source=(
        "transformers models/recurrent_gemma/modeling_recurrent_gemma.py "
        "RecurrentGemmaRecurrentBlock and RecurrentGemmaRglru; De et al. 2024, Griffin, "
        "section 2.4 eq. (1)-(4)"
    ),
    dims=("d_model", "d_lru", "n_heads", "d_conv"),
    derived=(("block_width", "d_lru // n_heads"),),
    members=(
        Member("linear_x.weight", R.IN_PROJ, _IN, ("d_lru", "d_model")),
        Member("linear_x.bias", R.IN_PROJ, _IN, ("d_lru",)),
        Member("linear_y.weight", R.GATE, _GATES, ("d_lru", "d_model")),
        Member("linear_y.bias", R.GATE, _GATES, ("d_lru",)),
        Member("conv_1d.weight", R.CONV1D, _CONV, ("d_lru", "1", "d_conv")),
        Member("conv_1d.bias", R.CONV1D, _CONV, ("d_lru",)),
        Member("rg_lru.recurrent_param", R.RECURRENT_PARAM, _STATE, ("d_lru",)),
        # Block-diagonal gates: one block_width square per head.
        Member(
            "rg_lru.input_gate_weight",
            R.INPUT_GATE,
            _GATES,
            ("n_heads", "block_width", "block_width"),
        ),
        Member("rg_lru.input_gate_bias", R.INPUT_GATE, _GATES, ("n_heads", "block_width")),
        Member(
            "rg_lru.recurrent_gate_weight",
            R.RECURRENCE_GATE,
            _GATES,
            ("n_heads", "block_width", "block_width"),
        ),
        Member("rg_lru.recurrent_gate_bias", R.RECURRENCE_GATE, _GATES, ("n_heads", "block_width")),
        Member("linear_out.weight", R.OUT_PROJ, _OUT, ("d_model", "d_lru")),
        Member("linear_out.bias", R.OUT_PROJ, _OUT, ("d_model",)),
    ),
    read_off=(
        ReadOff("d_model", "linear_out.weight[0]"),
        ReadOff("d_lru", "rg_lru.recurrent_param[0]"),
        ReadOff("n_heads", "rg_lru.input_gate_weight[0]"),
        ReadOff("d_conv", "conv_1d.weight[2]"),
    ),
    # conv1d_state keeps the d_conv - 1 previous inputs (model dtype); the RG-LRU state is
    # float32 ("recurrent_states always computed in full precision").
    state=(
        Stream("conv", ("d_lru", "d_conv - 1")),
        Stream("rg_lru", ("d_lru",), "float32"),
    ),
    # h = a·h + sqrt(1 - a²)·(i·x): three products per channel
    scan_macs="3*d_lru",
    units="d_lru",
)

_MLSTM_TAIL = (
    Member("multihead_norm.weight", R.NORM, _NORM, ("v_dim",)),
    Member("multihead_norm.bias", R.NORM, _NORM, ("v_dim",), "use_bias"),
    Member("out_proj.weight", R.OUT_PROJ, _OUT, ("d_model", "v_dim")),
    Member("out_proj.bias", R.OUT_PROJ, _OUT, ("d_model",), "use_bias"),
)
_MLSTM_STATE = (
    # xLSTMCache.rnn_state: the matrix memory C, the normaliser n and the stabiliser m per head,
    # in the model's dtype (the cache is made with it).
    Stream("C", ("n_heads", "qk_head_dim", "v_head_dim")),
    Stream("n", ("n_heads", "qk_head_dim")),
    Stream("m", ("n_heads", "1")),
)
# C = f·C + i·v·kᵀ (2 per element), n = f·n + i·k (2), h = C·q (1) and n·q (1) per head
_MLSTM_SCAN = "n_heads*(3*qk_head_dim*v_head_dim + 3*qk_head_dim)"
_MLSTM_DERIVED = (("qk_head_dim", "qk_dim // n_heads"), ("v_head_dim", "v_dim // n_heads"))

MLSTM = BlockSpec(
    name="mlstm",
    kind=CellKind.MLSTM,
    module="xLSTMLayer",
    source=(
        "transformers models/xlstm/modeling_xlstm.py xLSTMLayer (weight_mode 'single') and "
        "xLSTMCache; Beck et al. 2024, xLSTM, section 2.3 eq. (19)-(27)"
    ),
    dims=("d_model", "qk_dim", "v_dim", "n_heads"),
    derived=_MLSTM_DERIVED,
    members=(
        Member("q.weight", R.QUERY, _IN, ("qk_dim", "d_model")),
        Member("q.bias", R.QUERY, _IN, ("qk_dim",), "use_bias"),
        Member("k.weight", R.KEY, _IN, ("qk_dim", "d_model")),
        Member("k.bias", R.KEY, _IN, ("qk_dim",), "use_bias"),
        Member("v.weight", R.VALUE, _IN, ("v_dim", "d_model")),
        Member("v.bias", R.VALUE, _IN, ("v_dim",), "use_bias"),
        Member("ogate_preact.weight", R.GATE, _GATES, ("v_dim", "d_model")),
        Member("ogate_preact.bias", R.GATE, _GATES, ("v_dim",), "use_bias"),
        Member("igate_preact.weight", R.INPUT_GATE, _GATES, ("n_heads", "d_model")),
        Member("igate_preact.bias", R.INPUT_GATE, _GATES, ("n_heads",)),
        Member("fgate_preact.weight", R.FORGET_GATE, _GATES, ("n_heads", "d_model")),
        Member("fgate_preact.bias", R.FORGET_GATE, _GATES, ("n_heads",)),
        *_MLSTM_TAIL,
    ),
    read_off=(
        ReadOff("d_model", "q.weight[1]"),
        ReadOff("qk_dim", "q.weight[0]"),
        ReadOff("v_dim", "v.weight[0]"),
        ReadOff("n_heads", "igate_preact.weight[0]"),
    ),
    state=_MLSTM_STATE,
    scan_macs=_MLSTM_SCAN,
    units="v_dim",
)

MLSTM_FUSED = BlockSpec(
    name="mlstm-fused",
    kind=CellKind.MLSTM,
    module="xLSTMLayer",
    source=(
        "transformers models/xlstm/modeling_xlstm.py xLSTMLayer (weight_mode 'fused'); "
        "Beck et al. 2024, xLSTM, section 2.3 eq. (19)-(27)"
    ),
    dims=("d_model", "qk_dim", "v_dim", "n_heads"),
    derived=_MLSTM_DERIVED,
    members=(
        Member("qkv_opreact.weight", R.IN_PROJ, _IN, ("2*qk_dim + 2*v_dim", "d_model")),
        Member("qkv_opreact.bias", R.IN_PROJ, _IN, ("2*qk_dim + 2*v_dim",), "use_bias"),
        Member("ifgate_preact.weight", R.INPUT_GATE, _GATES, ("2*n_heads", "d_model")),
        Member("ifgate_preact.bias", R.INPUT_GATE, _GATES, ("2*n_heads",)),
        *_MLSTM_TAIL,
    ),
    read_off=(
        ReadOff("d_model", "out_proj.weight[0]"),
        ReadOff("v_dim", "out_proj.weight[1]"),
        ReadOff("qk_dim", "(qkv_opreact.weight[0] - 2*v_dim) // 2"),
        ReadOff("n_heads", "ifgate_preact.weight[0] // 2"),
    ),
    state=_MLSTM_STATE,
    scan_macs=_MLSTM_SCAN,
    units="v_dim",
)

SHORT_CONV = BlockSpec(
    name="short-conv",
    kind=CellKind.SHORT_CONV,
    module="Lfm2ShortConv",
    source=(
        "transformers models/lfm2/modeling_lfm2.py Lfm2ShortConv (a gated short convolution: "
        "y = C·conv(B·x)); Liquid AI, LFM2 technical report"
    ),
    dims=("d_model", "d_conv"),
    members=(
        Member("in_proj.weight", R.IN_PROJ, _IN, ("3*d_model", "d_model")),
        Member("in_proj.bias", R.IN_PROJ, _IN, ("3*d_model",), "conv_bias"),
        Member("conv.weight", R.CONV1D, _CONV, ("d_model", "1", "d_conv")),
        Member("conv.bias", R.CONV1D, _CONV, ("d_model",), "conv_bias"),
        Member("out_proj.weight", R.OUT_PROJ, _OUT, ("d_model", "d_model")),
        Member("out_proj.bias", R.OUT_PROJ, _OUT, ("d_model",), "conv_bias"),
    ),
    read_off=(ReadOff("d_model", "out_proj.weight[0]"), ReadOff("d_conv", "conv.weight[2]")),
    state=(Stream("conv", ("d_model", "d_conv")),),
    scan_macs="2*d_model",  # the B and C gates
    units="d_model",
)

_GDN_TAIL = (
    Member("conv1d.weight", R.CONV1D, _CONV, ("conv_dim", "1", "d_conv")),
    Member("dt_bias", R.DT_BIAS, _STATE, ("n_v_heads",)),
    Member("A_log", R.A_LOG, _STATE, ("n_v_heads",)),
    Member("norm.weight", R.NORM, _NORM, ("d_v_head",)),
    Member("out_proj.weight", R.OUT_PROJ, _OUT, ("d_model", "value_dim")),
)
_GDN_DIMS = ("d_model", "n_k_heads", "n_v_heads", "d_k_head", "d_v_head", "d_conv")
_GDN_DERIVED = (
    ("key_dim", "n_k_heads*d_k_head"),
    ("value_dim", "n_v_heads*d_v_head"),
    ("conv_dim", "2*key_dim + value_dim"),
)
_ASSUMED_D_K_HEAD = ReadOff(
    "d_k_head",
    "d_v_head",
    "the tensors give the key width n_k_heads·d_k_head, not its factors: d_k_head = "
    "d_v_head is assumed (config.json beside the weights gives it)",
)
_GDN_READ_OFF = (
    ReadOff("d_model", "out_proj.weight[0]"),
    ReadOff("n_v_heads", "A_log[0]"),
    ReadOff("d_v_head", "norm.weight[0]"),
    ReadOff("d_conv", "conv1d.weight[2]"),
    _ASSUMED_D_K_HEAD,
    ReadOff("n_k_heads", "(conv1d.weight[0] - n_v_heads*d_v_head) // (2*d_k_head)"),
)
_GDN_STATE = (
    Stream("conv", ("conv_dim", "d_conv")),
    Stream("recurrent", ("n_v_heads", "d_k_head", "d_v_head"), "float32"),
)
# S = g·S + β·k·(v - Sᵀk)ᵀ and o = Sᵀq: four products per state element
_GDN_SCAN = "4*n_v_heads*d_k_head*d_v_head"
_GDN_SOURCE = "; Yang, Kautz & Hatamizadeh 2025, Gated Delta Networks, eq. (10)"

GATED_DELTANET = BlockSpec(
    name="gated-deltanet",
    kind=CellKind.GATED_DELTANET,
    module="Qwen3NextGatedDeltaNet",
    source="transformers models/qwen3_next/modeling_qwen3_next.py Qwen3NextGatedDeltaNet"
    + _GDN_SOURCE,
    dims=_GDN_DIMS,
    derived=_GDN_DERIVED,
    members=(
        Member("in_proj_qkvz.weight", R.IN_PROJ, _IN, ("2*key_dim + 2*value_dim", "d_model")),
        Member("in_proj_ba.weight", R.BETA, _STATE, ("2*n_v_heads", "d_model")),
        *_GDN_TAIL,
    ),
    read_off=_GDN_READ_OFF,
    state=_GDN_STATE,
    scan_macs=_GDN_SCAN,
    units="value_dim",
)

GATED_DELTANET_SPLIT = BlockSpec(
    name="gated-deltanet-split",
    kind=CellKind.GATED_DELTANET,
    module="Qwen3_5GatedDeltaNet",
    source="transformers models/qwen3_5/modeling_qwen3_5.py Qwen3_5GatedDeltaNet "
    "(LaraMiniGatedDeltaNet, Qwen4ExpTextGatedDeltaNet alike)" + _GDN_SOURCE,
    dims=_GDN_DIMS,
    derived=_GDN_DERIVED,
    members=(
        Member("in_proj_qkv.weight", R.IN_PROJ, _IN, ("2*key_dim + value_dim", "d_model")),
        Member("in_proj_z.weight", R.GATE, _GATES, ("value_dim", "d_model")),
        Member("in_proj_b.weight", R.BETA, _STATE, ("n_v_heads", "d_model")),
        Member("in_proj_a.weight", R.DECAY, _STATE, ("n_v_heads", "d_model")),
        *_GDN_TAIL,
    ),
    read_off=_GDN_READ_OFF,
    state=_GDN_STATE,
    scan_macs=_GDN_SCAN,
    units="value_dim",
)


def _split_conv(pieces: tuple[tuple[str, str], ...], fused: str) -> tuple[Member, ...]:
    """A short convolution over concatenated channels as the original checkpoints store it,
    one depthwise kernel per piece (`q_conv1d.weight`: its channels, 1, d_conv; flag
    `split_conv`), or fused as the modeling class holds it (`conv1d.weight` over `fused`
    channels; flag `fused_conv`: a `torch.save(model.state_dict())` or safetensors'
    `save_model`). transformers' conversion mapping concatenates the pieces on loading and
    chunks them equally on saving: `resaved` is that split (equal to the original where the
    pieces are)."""
    chunk = f"({fused} + {len(pieces) - 1})//{len(pieces)}"
    last = f"{fused} - {len(pieces) - 1}*{chunk}"
    return (
        *(
            Member(
                f"{name}_conv1d.weight",
                R.CONV1D,
                _CONV,
                (channels, "1", "d_conv"),
                "split_conv",
                resaved=(last if index == len(pieces) - 1 else chunk, "1", "d_conv"),
            )
            for index, (name, channels) in enumerate(pieces)
        ),
        Member("conv1d.weight", R.CONV1D, _CONV, (fused, "1", "d_conv"), "fused_conv"),
    )


GATED_DELTANET_OLMO = BlockSpec(
    name="gated-deltanet-olmo",
    kind=CellKind.GATED_DELTANET,
    module="OlmoHybridGatedDeltaNet",
    source="transformers models/olmo_hybrid/modeling_olmo_hybrid.py OlmoHybridGatedDeltaNet "
    "(q/k/v/a/b/g projections apart, o_norm; its conversion mapping for q/k/v_conv1d)"
    + _GDN_SOURCE,
    dims=_GDN_DIMS,
    derived=_GDN_DERIVED,
    members=(
        Member("q_proj.weight", R.QUERY, _IN, ("key_dim", "d_model")),
        Member("k_proj.weight", R.KEY, _IN, ("key_dim", "d_model")),
        Member("v_proj.weight", R.VALUE, _IN, ("value_dim", "d_model")),
        *_split_conv((("q", "key_dim"), ("k", "key_dim"), ("v", "value_dim")), "conv_dim"),
        Member("a_proj.weight", R.DECAY, _STATE, ("n_v_heads", "d_model")),
        Member("b_proj.weight", R.BETA, _STATE, ("n_v_heads", "d_model")),
        Member("dt_bias", R.DT_BIAS, _STATE, ("n_v_heads",)),
        Member("A_log", R.A_LOG, _STATE, ("n_v_heads",)),
        Member("g_proj.weight", R.GATE, _GATES, ("value_dim", "d_model")),
        Member("o_norm.weight", R.NORM, _NORM, ("d_v_head",)),
        Member("o_proj.weight", R.OUT_PROJ, _OUT, ("d_model", "value_dim")),
    ),
    read_off=(
        ReadOff("d_model", "o_proj.weight[0]"),
        ReadOff("n_v_heads", "A_log[0]"),
        ReadOff("d_v_head", "o_norm.weight[0]"),
        ReadOff("d_conv", "q_conv1d.weight[2]"),
        ReadOff("d_conv", "conv1d.weight[2]"),
        _ASSUMED_D_K_HEAD,
        ReadOff("n_k_heads", "q_proj.weight[0] // d_k_head"),
    ),
    state=_GDN_STATE,
    scan_macs=_GDN_SCAN,
    units="value_dim",
)

# Kimi Delta Attention: a gated delta rule whose decay is per channel (a low-rank f_a/f_b
# projection plus dt_bias), not per head; q, k and v of one width (n_heads·head_dim).
_KDA_GATE = (
    ("f_a_proj.weight", R.DECAY, ("head_dim", "d_model")),
    ("f_b_proj.weight", R.DECAY, ("qkv_dim", "head_dim")),
    ("dt_bias", R.DT_BIAS, ("qkv_dim",)),
    ("A_log", R.A_LOG, ("1", "1", "n_heads", "1")),
)
KIMI_DELTA_ATTENTION = BlockSpec(
    name="kimi-delta-attention",
    kind=CellKind.KIMI_DELTA_ATTENTION,
    module="KimiLinearDeltaAttention",
    source="transformers models/kimi_linear/modeling_kimi_linear.py KimiLinearDeltaAttention "
    "and KimiLinearForgetGate (its conversion mapping: the forget gate's tensors stored at the "
    "attention's level, q/k/v_conv1d apart); Kimi Team 2025, Kimi Linear, section 3 (KDA)",
    dims=("d_model", "n_heads", "head_dim", "d_conv"),
    derived=(("qkv_dim", "n_heads*head_dim"), ("conv_dim", "3*qkv_dim")),
    members=(
        Member("q_proj.weight", R.QUERY, _IN, ("qkv_dim", "d_model")),
        Member("k_proj.weight", R.KEY, _IN, ("qkv_dim", "d_model")),
        Member("v_proj.weight", R.VALUE, _IN, ("qkv_dim", "d_model")),
        *_split_conv((("q", "qkv_dim"), ("k", "qkv_dim"), ("v", "qkv_dim")), "conv_dim"),
        # Stored as the original checkpoints do (flag flat_gate) or inside the forget_gate
        # module as the modeling class holds them (nested_gate).
        *(Member(name, role, _STATE, shape, "flat_gate") for name, role, shape in _KDA_GATE),
        *(
            Member(f"forget_gate.{name}", role, _STATE, shape, "nested_gate")
            for name, role, shape in _KDA_GATE
        ),
        Member("b_proj.weight", R.BETA, _STATE, ("n_heads", "d_model")),
        Member("g_a_proj.weight", R.GATE, _GATES, ("head_dim", "d_model")),
        Member("g_b_proj.weight", R.GATE, _GATES, ("qkv_dim", "head_dim")),
        Member("o_norm.weight", R.NORM, _NORM, ("head_dim",)),
        Member("o_proj.weight", R.OUT_PROJ, _OUT, ("d_model", "qkv_dim")),
    ),
    read_off=(
        ReadOff("d_model", "o_proj.weight[0]"),
        ReadOff("n_heads", "b_proj.weight[0]"),
        ReadOff("head_dim", "o_norm.weight[0]"),
        ReadOff("d_conv", "q_conv1d.weight[2]"),
        ReadOff("d_conv", "conv1d.weight[2]"),
    ),
    # LinearAttentionLayer: the conv state over q, k and v (model dtype) and the delta rule's
    # matrix per head, kept in float32 (the modeling file casts it: .to(torch.float32)).
    state=(
        Stream("conv", ("conv_dim", "d_conv")),
        Stream("recurrent", ("n_heads", "head_dim", "head_dim"), "float32"),
    ),
    # S = diag(α)·S + β·k·(v - Sᵀk)ᵀ and o = Sᵀq: four products per state element
    scan_macs="4*n_heads*head_dim*head_dim",
    units="qkv_dim",
)

# GLM-5.3's KDA (glm5_next): Kimi's tensors, but A_log is one axis of n_heads.
KIMI_DELTA_ATTENTION_GLM = replace(
    KIMI_DELTA_ATTENTION,
    name="kimi-delta-attention-glm",
    module="Glm5NextTextLinearAttention",
    source="transformers models/glm5_next/modeling_glm5_next.py Glm5NextTextLinearAttention "
    "and Glm5NextTextForgetGate (A_log of shape (n_heads,); conversion_mapping.py "
    '"glm5_next": the forget gate at the attention\'s level, q/k/v_conv1d apart, as Kimi '
    "Linear's); Kimi Team 2025, Kimi Linear, section 3 (KDA)",
    members=tuple(
        replace(m, shape=("n_heads",)) if m.role is R.A_LOG else m
        for m in KIMI_DELTA_ATTENTION.members
    ),
)

# Bailing-Hybrid's KDA (Ling/Ring 2.5): Kimi's delta rule with a full-rank decay (f_proj) and
# output gate (g_proj), A_log per head. Its conversion mapping writes the original checkpoints'
# names back on save_pretrained (dense, f_proj/dt_bias/A_log at the attention's level, q/k/v_conv1d
# apart); the module itself holds o_proj, forget_gate.* and a fused conv1d.
_BAILING_GATE = (
    ("f_proj.weight", R.DECAY, ("qkv_dim", "d_model")),
    ("dt_bias", R.DT_BIAS, ("qkv_dim",)),
    ("A_log", R.A_LOG, ("n_heads",)),
)
KIMI_DELTA_ATTENTION_BAILING = BlockSpec(
    name="kimi-delta-attention-bailing",
    kind=CellKind.KIMI_DELTA_ATTENTION,
    module="BailingHybridDeltaAttention",
    source="transformers models/bailing_hybrid/modeling_bailing_hybrid.py "
    "BailingHybridDeltaAttention and BailingHybridForgetGate (conversion_mapping.py "
    '"bailing_hybrid": dense, f_proj, dt_bias, A_log and q/k/v_conv1d as stored); '
    "Kimi Team 2025, Kimi Linear, section 3 (KDA)",
    dims=KIMI_DELTA_ATTENTION.dims,
    derived=KIMI_DELTA_ATTENTION.derived,
    members=(
        Member("q_proj.weight", R.QUERY, _IN, ("qkv_dim", "d_model")),
        Member("k_proj.weight", R.KEY, _IN, ("qkv_dim", "d_model")),
        Member("v_proj.weight", R.VALUE, _IN, ("qkv_dim", "d_model")),
        *_split_conv((("q", "qkv_dim"), ("k", "qkv_dim"), ("v", "qkv_dim")), "conv_dim"),
        *(Member(name, role, _STATE, shape, "flat_gate") for name, role, shape in _BAILING_GATE),
        *(
            Member(f"forget_gate.{name}", role, _STATE, shape, "nested_gate")
            for name, role, shape in _BAILING_GATE
        ),
        Member("b_proj.weight", R.BETA, _STATE, ("n_heads", "d_model")),
        Member("g_proj.weight", R.GATE, _GATES, ("qkv_dim", "d_model")),
        Member("o_norm.weight", R.NORM, _NORM, ("head_dim",)),
        Member("dense.weight", R.OUT_PROJ, _OUT, ("d_model", "qkv_dim"), "dense_out"),
        Member("o_proj.weight", R.OUT_PROJ, _OUT, ("d_model", "qkv_dim"), "o_proj_out"),
    ),
    read_off=(
        ReadOff("d_model", "dense.weight[0]"),
        ReadOff("d_model", "o_proj.weight[0]"),
        ReadOff("n_heads", "b_proj.weight[0]"),
        ReadOff("head_dim", "o_norm.weight[0]"),
        ReadOff("d_conv", "q_conv1d.weight[2]"),
        ReadOff("d_conv", "conv1d.weight[2]"),
    ),
    state=KIMI_DELTA_ATTENTION.state,
    scan_macs=KIMI_DELTA_ATTENTION.scan_macs,
    units="qkv_dim",
)

# In the order recognition tries them: where two fit the same module equally, the first wins.
BLOCKS: tuple[BlockSpec, ...] = (
    MAMBA,
    MAMBA_MULTIHEAD,
    MAMBA2,
    RWKV_TIME_MIX,
    RWKV_CHANNEL_MIX,
    RWKV6_TIME_MIX,
    RWKV6_CHANNEL_MIX,
    RG_LRU,
    MLSTM,
    MLSTM_FUSED,
    SHORT_CONV,
    GATED_DELTANET,
    GATED_DELTANET_SPLIT,
    GATED_DELTANET_OLMO,
    KIMI_DELTA_ATTENTION,
    KIMI_DELTA_ATTENTION_BAILING,
    KIMI_DELTA_ATTENTION_GLM,
)
# The roles whose weights multiply the activations once per token (one MAC per element); the
# others (A_log, D, dt_bias, time_decay, the RG-LRU's Λ, norms) enter the recurrence itself,
# counted by `BlockSpec.scan_macs`.
PRODUCT_ROLES: frozenset[TensorRole] = frozenset(
    {
        R.IN_PROJ,
        R.CONV1D,
        R.X_PROJ,
        R.DT_PROJ,
        R.OUT_PROJ,
        R.QUERY,
        R.KEY,
        R.VALUE,
        R.RECEPTANCE,
        R.GATE,
        R.INPUT_GATE,
        R.FORGET_GATE,
        R.RECURRENCE_GATE,
        R.BETA,
        R.DECAY,
    }
)
BLOCK_BY_NAME: Mapping[str, BlockSpec] = MappingProxyType({spec.name: spec for spec in BLOCKS})
BLOCK_KINDS: frozenset[CellKind] = frozenset(spec.kind for spec in BLOCKS)


def is_block(kind: CellKind) -> bool:
    """A recurrent block of this table rather than a gated cell of `inspector.cells`."""
    return kind in BLOCK_KINDS


def resolved(spec: BlockSpec, dims: Mapping[str, int]) -> dict[str, int]:
    """`dims` with the spec's derived dimensions added (those whose inputs are known)."""
    out = dict(dims)
    for name, expression in spec.derived:
        if name not in out:
            value = integer(expression, out)
            if value is not None:
                out[name] = value
    return out
