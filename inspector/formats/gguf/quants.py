"""ggml tensor data to float32, per type, with numpy; and how far a dequantized value may be
from the float it was quantized from.

Each decoder takes a tensor's blocks as a (blocks, bytes per block) uint8 array and returns
(blocks, elements per block) float32 values in ggml's element order, following ggml's reference
`dequantize_row_*` (ggml/src/ggml-quants.c) and the block layouts of ggml-common.h. The
float16/float32 fields of a block (scales, minimums) are read in the file's byte order: a
big-endian GGUF (gguf_convert_endian.py) swaps exactly those. Tests hold every decoder to the
gguf package's own `gguf.quants.dequantize`.

`step` gives, per element, the quantization step of its (sub-)block: the distance between two
neighbouring values the block can represent (d for Q8_0 and Q4_0, d·scale for K-quant
sub-blocks). `tolerance` turns it into the bound compare uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

Decoder = Callable[[np.ndarray, str], np.ndarray]  # (blocks uint8, byte order "<"/">")

# Relative error of a value scaled by a float16 scale: the scale itself was rounded to 11
# significant bits (half an ulp: 2^-11), doubled for a scale and a minimum both rounded.
HALF_SCALE_ROUNDING = 2.0**-10


def _half(blocks: np.ndarray, at: int, order: str) -> np.ndarray:
    """The float16 field at byte `at` of each block, as a (blocks, 1) float32 column."""
    return blocks[:, at : at + 2].copy().view(order + "f2").astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """ggml's 4-bit packing: byte j holds element j (low nibble) and element j + n (high)."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _q4_0(blocks: np.ndarray, order: str) -> np.ndarray:
    d = _half(blocks, 0, order)
    return d * (_nibbles(blocks[:, 2:]).astype(np.float32) - 8)


def _q4_1(blocks: np.ndarray, order: str) -> np.ndarray:
    d, m = _half(blocks, 0, order), _half(blocks, 2, order)
    return d * _nibbles(blocks[:, 4:]).astype(np.float32) + m


def _fifth_bits(qh: np.ndarray) -> np.ndarray:
    """Q5's high bits: a little-endian uint32 per block, bit j for element j."""
    bits = np.unpackbits(qh, axis=-1, bitorder="little")
    return bits.astype(np.uint8) << 4


def _q5_0(blocks: np.ndarray, order: str) -> np.ndarray:
    d = _half(blocks, 0, order)
    q = _nibbles(blocks[:, 6:]) | _fifth_bits(blocks[:, 2:6])
    return d * (q.astype(np.float32) - 16)


def _q5_1(blocks: np.ndarray, order: str) -> np.ndarray:
    d, m = _half(blocks, 0, order), _half(blocks, 2, order)
    q = _nibbles(blocks[:, 8:]) | _fifth_bits(blocks[:, 4:8])
    return d * q.astype(np.float32) + m


def _q8_0(blocks: np.ndarray, order: str) -> np.ndarray:
    return _half(blocks, 0, order) * blocks[:, 2:].view(np.int8).astype(np.float32)


def _q8_k(blocks: np.ndarray, order: str) -> np.ndarray:  # float d, 256 int8, 16 int16 sums
    d = blocks[:, :4].copy().view(order + "f4").astype(np.float32)
    return d * blocks[:, 4:260].view(np.int8).astype(np.float32)


def _per16(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Values grouped (blocks, groups, size) times one scale per group, flattened."""
    return (scale[..., None] * values).reshape(values.shape[0], -1)


def _q2_k_parts(blocks: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scales[16] (4-bit scale | 4-bit min), qs[64], d, dmin: 16 groups of 16 elements, group
    8h + 2j + g holding bits 2j of qs[32h + 16g : 32h + 16g + 16]."""
    scales, qs = blocks[:, :16], blocks[:, 16:80]
    d, dmin = _half(blocks, 80, order), _half(blocks, 82, order)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    q = (qs.reshape(-1, 2, 1, 32) >> shifts) & 3
    return q.reshape(-1, 16, 16).astype(np.float32), d * (scales & 0xF), dmin * (scales >> 4)


def _q2_k(blocks: np.ndarray, order: str) -> np.ndarray:
    q, scale, low = _q2_k_parts(blocks, order)
    return _per16(q, scale) - np.repeat(low, 16, axis=-1)


def _q3_k_scales(scales: np.ndarray) -> np.ndarray:
    """Sixteen 6-bit scales packed in 12 bytes (ggml's kmask1/kmask2 shuffle), minus 32."""
    low = np.concatenate([scales[:, :8] & 0x0F, scales[:, :8] >> 4], axis=-1)
    high = (scales[:, 8:12].reshape(-1, 1, 4) >> np.array([0, 2, 4, 6], np.uint8)[:, None]) & 3
    return (low | (high.reshape(-1, 16) << 4)).astype(np.float32) - 32


def _q3_k(blocks: np.ndarray, order: str) -> np.ndarray:
    hmask, qs = blocks[:, :32], blocks[:, 32:96]
    d = _half(blocks, 108, order)
    low = (qs.reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 3
    bits = np.arange(8, dtype=np.uint8).reshape(1, 2, 4, 1)
    high = (hmask.reshape(-1, 1, 1, 32) >> bits) & 1
    q = low.astype(np.float32) - 4 * (1 - high.astype(np.float32))
    return _per16(q.reshape(-1, 16, 16), d * _q3_k_scales(blocks[:, 96:108]))


def _k4_scales(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """get_scale_min_k4: eight 6-bit scales and eight 6-bit minimums in 12 bytes."""
    s = scales.astype(np.uint8)
    sc = np.concatenate([s[:, :4] & 63, (s[:, 8:] & 0xF) | ((s[:, :4] >> 6) << 4)], axis=-1)
    mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:] >> 4) | ((s[:, 4:8] >> 6) << 4)], axis=-1)
    return sc.astype(np.float32), mn.astype(np.float32)


def _k4_q(qs: np.ndarray) -> np.ndarray:
    """Q4_K/Q5_K low bits: 4 chunks of 32 bytes, each 32 low nibbles then 32 high nibbles."""
    chunks = qs.reshape(-1, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (chunks & 0xF).reshape(-1, 8, 32)


def _q4_k(blocks: np.ndarray, order: str) -> np.ndarray:
    d, dmin = _half(blocks, 0, order), _half(blocks, 2, order)
    sc, mn = _k4_scales(blocks[:, 4:16])
    q = _k4_q(blocks[:, 16:]).astype(np.float32)
    return _per16(q, d * sc) - np.repeat(dmin * mn, 32, axis=-1)


def _q5_k(blocks: np.ndarray, order: str) -> np.ndarray:
    d, dmin = _half(blocks, 0, order), _half(blocks, 2, order)
    sc, mn = _k4_scales(blocks[:, 4:16])
    high = (blocks[:, 16:48].reshape(-1, 1, 32) >> np.arange(8, dtype=np.uint8)[:, None]) & 1
    q = (_k4_q(blocks[:, 48:]) | (high << 4)).astype(np.float32)
    return _per16(q, d * sc) - np.repeat(dmin * mn, 32, axis=-1)


def _q6_k_parts(blocks: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    ql, qh = blocks[:, :128], blocks[:, 128:192]
    scales = blocks[:, 192:208].view(np.int8).astype(np.float32)
    d = _half(blocks, 208, order)
    low = (ql.reshape(-1, 2, 1, 64) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)) & 0xF
    high = (qh.reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 3
    q = (low.reshape(-1, 2, 4, 32) | (high << 4)).astype(np.float32) - 32
    return q.reshape(-1, 16, 16), d * scales


def _q6_k(blocks: np.ndarray, order: str) -> np.ndarray:
    q, scale = _q6_k_parts(blocks, order)
    return _per16(q, scale)


# kvalues_iq4nl and kvalues_mxfp4 (ggml-common.h): the 16 levels a 4-bit index selects.
_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113])
_MXFP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12])


def _iq4_nl(blocks: np.ndarray, order: str) -> np.ndarray:
    return _half(blocks, 0, order) * _IQ4NL[_nibbles(blocks[:, 2:])].astype(np.float32)


def _iq4_xs(blocks: np.ndarray, order: str) -> np.ndarray:
    d = _half(blocks, 0, order)
    scales_h = blocks[:, 2:4].copy().view(order + "u2").astype(np.uint32)
    ib = np.arange(8, dtype=np.uint32)
    low = (blocks[:, 4:8].repeat(2, axis=-1).astype(np.uint32) >> (4 * (ib % 2))) & 0xF
    scale = (low | (((scales_h >> (2 * ib)) & 3) << 4)).astype(np.float32) - 32
    q = _IQ4NL[_nibbles(blocks[:, 8:].reshape(-1, 8, 16))].astype(np.float32)
    return _per16(q.reshape(-1, 8, 32), d * scale)


def _mxfp4(blocks: np.ndarray, order: str) -> np.ndarray:
    e = blocks[:, :1].astype(np.uint32)  # ggml_e8m0_to_fp32_half
    bits = np.where(e < 2, np.uint32(0x00200000) << e, (e - 1) << np.uint32(23)).astype(np.uint32)
    return bits.view(np.float32) * _MXFP4[_nibbles(blocks[:, 1:])].astype(np.float32)


def _tq2_0(blocks: np.ndarray, order: str) -> np.ndarray:
    q = (blocks[:, :64].reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8)[:, None]) & 3
    return _half(blocks, 64, order) * (q.reshape(-1, 256).astype(np.float32) - 1)


_POW3 = np.array([1, 3, 9, 27, 81], np.uint8).reshape(1, 5, 1)


def _tq1_0(blocks: np.ndarray, order: str) -> np.ndarray:
    """Five ternary digits per byte, as a fixed-point fraction: digit n of byte b is
    (b·3^n mod 256)·3 >> 8 (ggml's dequantize_row_tq1_0)."""
    parts = [
        (blocks[:, :32].reshape(-1, 1, 32) * _POW3).reshape(-1, 160),
        (blocks[:, 32:48].reshape(-1, 1, 16) * _POW3).reshape(-1, 80),
        (blocks[:, 48:52].reshape(-1, 1, 4) * _POW3[:, :4]).reshape(-1, 16),
    ]
    digits = (np.concatenate(parts, axis=-1).astype(np.uint16) * 3) >> 8
    return _half(blocks, 52, order) * (digits.astype(np.float32) - 1)


DECODERS: Mapping[str, Decoder] = MappingProxyType(
    {
        "Q4_0": _q4_0,
        "Q4_1": _q4_1,
        "Q5_0": _q5_0,
        "Q5_1": _q5_1,
        "Q8_0": _q8_0,
        "Q2_K": _q2_k,
        "Q3_K": _q3_k,
        "Q4_K": _q4_k,
        "Q5_K": _q5_k,
        "Q6_K": _q6_k,
        "Q8_K": _q8_k,
        "IQ4_NL": _iq4_nl,
        "IQ4_XS": _iq4_xs,
        "MXFP4": _mxfp4,
        "TQ1_0": _tq1_0,
        "TQ2_0": _tq2_0,
    }
)

# Plain types: numpy's type of one element (the byte order is prefixed per file).
PLAIN: Mapping[str, str] = MappingProxyType(
    {"F32": "f4", "F16": "f2", "F64": "f8", "I8": "i1", "I16": "i2", "I32": "i4", "I64": "i8"}
)


def bfloat16(raw: bytes, order: str) -> np.ndarray:
    """bfloat16 is float32's upper half: widen by 16 zero bits."""
    return (np.frombuffer(raw, order + "u2").astype(np.uint32) << 16).view(np.float32)


# --- how far a dequantized value may be from its source -------------------------------------


def _block_step(at: int) -> Callable[[np.ndarray, str], np.ndarray]:
    return lambda blocks, order: np.abs(_half(blocks, at, order))


def _q2_k_step(blocks: np.ndarray, order: str) -> np.ndarray:
    _q, scale, _low = _q2_k_parts(blocks, order)
    return np.repeat(np.abs(scale), 16, axis=-1)


def _q3_k_step(blocks: np.ndarray, order: str) -> np.ndarray:
    scale = _half(blocks, 108, order) * _q3_k_scales(blocks[:, 96:108])
    return np.repeat(np.abs(scale), 16, axis=-1)


def _k4_step(blocks: np.ndarray, order: str) -> np.ndarray:
    sc, _mn = _k4_scales(blocks[:, 4:16])
    return np.repeat(np.abs(_half(blocks, 0, order) * sc), 32, axis=-1)


def _q6_k_step(blocks: np.ndarray, order: str) -> np.ndarray:
    _q, scale = _q6_k_parts(blocks, order)
    return np.repeat(np.abs(scale), 16, axis=-1)


def _q8_k_step(blocks: np.ndarray, order: str) -> np.ndarray:
    return np.abs(blocks[:, :4].copy().view(order + "f4").astype(np.float32))


STEPS: Mapping[str, Callable[[np.ndarray, str], np.ndarray]] = MappingProxyType(
    {
        "Q4_0": _block_step(0),
        "Q4_1": _block_step(0),
        "Q5_0": _block_step(0),
        "Q5_1": _block_step(0),
        "Q8_0": _block_step(0),
        "Q2_K": _q2_k_step,
        "Q3_K": _q3_k_step,
        "Q4_K": _k4_step,
        "Q5_K": _k4_step,
        "Q6_K": _q6_k_step,
        "Q8_K": _q8_k_step,
    }
)

# Relative precision of the float types, half an ulp: values rounded once to them.
FLOAT_PRECISION: Mapping[str, float] = MappingProxyType({"F16": 2.0**-11, "BF16": 2.0**-8})


def tolerance(step: np.ndarray | None, values: np.ndarray, type_name: str) -> np.ndarray | None:
    """Per element, how far a value dequantized from `type_name` may be from the float it was
    quantized from, or None where the type stores floats exactly (F32, F64, integers).

    Rounding to a block's grid costs at most half a step; ggml's quantizers can cost a whole
    one at the edge of a block's range (Q4_0 and Q5_0 map the value of largest magnitude to
    -8 and -16, so an opposite value of that magnitude is clipped to +7 and +15; the K-quants
    clamp after rounding their own 6-bit scales), so the bound is one step of the element's
    (sub-)block, plus the rounding of the block's float16 scale and minimum, relative to the
    value (`HALF_SCALE_ROUNDING`). A value within it is the same weight, quantized; one beyond
    it was changed or requantized from other weights. F16 and BF16 round each value once: half
    an ulp of the value.
    """
    if step is not None:
        return step + HALF_SCALE_ROUNDING * np.abs(values)
    precision = FLOAT_PRECISION.get(type_name)
    if precision is None:
        return None
    return precision * np.abs(values)
