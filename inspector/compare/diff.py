"""How far two arrays of the same shape are apart, under numpy.isclose's tolerance:
|export - source| <= atol + rtol·|source|, plus, where a side stores quantized values (GGUF,
TFLite integers with scales), a per-element `bound` of how far its value may be from the float
it was quantized from, and where one side stores float16 and the other a wider float, the
rounding to float16 (half a unit in the last place, IEEE 754 round-to-nearest: 2^-11·|v|, at
least half the smallest subnormal): a float32 model saved in half precision is the same model.

Arrays are compared in slabs along their first axis, so the temporaries stay a few megabytes
whatever the tensor's size. A slab whose two sides hold the same bits (same dtype) is settled by
one integer comparison of strided views, without copying; only slabs that differ are analysed in
float64, so that neither side's dtype hides a difference. Identical tensors, the common case of a
faithful export, thus cost one pass over memory each.
"""

from __future__ import annotations

import numpy as np

from inspector.compare.result import Delta, Tolerance

SLAB_ELEMENTS = 1 << 18
_BIT_KINDS = frozenset("fiub")  # numbers whose equal bits mean equal values
_HALF_ULP = 2.0**-11  # float16 keeps 11 significant bits: rounding moves a value by this, relative
_HALF_TINY = 2.0**-25  # half the smallest float16 subnormal


def delta(
    source: np.ndarray,
    export: np.ndarray,
    tolerance: Tolerance,
    bound: np.ndarray | None = None,
) -> Delta:
    s_all, e_all = np.asarray(source), np.asarray(export)
    if s_all.size == 0:
        return Delta(0, 0, True, 0.0, 0.0, (), 0.0, 0.0)
    if s_all.ndim == 0:
        s_all, e_all = s_all.reshape(1), e_all.reshape(1)
        bound = None if bound is None else np.asarray(bound).reshape(1)
    bits = _bits(s_all, e_all)
    half = _half_side(s_all, e_all)
    per_row = max(1, s_all.size // s_all.shape[0])
    step = max(1, SLAB_ELEMENTS // per_row)
    mismatched, exact = 0, True
    max_abs, max_rel, at, values = -1.0, 0.0, 0, (0.0, 0.0)
    for start in range(0, s_all.shape[0], step):
        rows = slice(start, start + step)
        if bits is not None and np.array_equal(bits[0][rows], bits[1][rows]):
            if max_abs < 0:  # equal values: a difference of 0 at the slab's first element
                max_abs, at = 0.0, start * per_row
                values = (float(s_all[rows].flat[0]), float(e_all[rows].flat[0]))
            continue
        s = s_all[rows].astype(np.float64, order="C").reshape(-1)
        e = e_all[rows].astype(np.float64, order="C").reshape(-1)
        both_nan = np.isnan(s) & np.isnan(e)
        with np.errstate(invalid="ignore"):  # inf - inf: set right on the next line
            diff = np.abs(e - s)
        diff[both_nan | (e == s)] = 0.0  # equal infinities differ by 0, not by inf - inf
        diff[np.isnan(diff)] = np.inf
        atol: float | np.ndarray = tolerance.atol
        if bound is not None:
            atol = tolerance.atol + np.asarray(bound)[rows].astype(np.float64).reshape(-1)
        if half is not None:
            rounded = s if half == 0 else e
            atol = atol + np.maximum(np.abs(rounded) * _HALF_ULP, _HALF_TINY)
        close = np.isclose(e, s, rtol=tolerance.rtol, atol=atol, equal_nan=True)
        mismatched += int(np.count_nonzero(~close))
        exact = exact and bool(np.array_equal(s, e, equal_nan=True))
        scale = np.abs(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(scale > 0, diff / scale, np.where(diff > 0, np.inf, 0.0))
        max_rel = max(max_rel, float(np.max(rel)))
        local = int(np.argmax(diff))
        if diff[local] > max_abs:
            max_abs, at = float(diff[local]), start * per_row + local
            values = (float(s[local]), float(e[local]))
    shape = np.shape(source)
    return Delta(
        elements=int(s_all.size),
        mismatched=mismatched,
        exact=exact,
        max_abs=max_abs,
        max_rel=max_rel,
        at=tuple(int(i) for i in np.unravel_index(at, shape)) if shape else (),
        source_value=values[0],
        export_value=values[1],
    )


def _half_side(source: np.ndarray, export: np.ndarray) -> int | None:
    """0 or 1: the side stored as float16 where the other holds a wider float; else None."""
    kinds = (source.dtype, export.dtype)
    if kinds[0] == kinds[1] or any(k.kind != "f" for k in kinds):
        return None
    narrow = [k == np.float16 for k in kinds]
    return narrow.index(True) if any(narrow) else None


def _bits(source: np.ndarray, export: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Both arrays' elements as unsigned integers of the same width (views, no copy), or None
    when the dtypes differ or their bits are not simply their value (complex, structured,
    16-byte floats)."""
    dtype = source.dtype
    if export.dtype != dtype or dtype.kind not in _BIT_KINDS or dtype.itemsize not in (1, 2, 4, 8):
        return None
    as_bits = f"u{dtype.itemsize}"
    return source.view(as_bits), export.view(as_bits)
