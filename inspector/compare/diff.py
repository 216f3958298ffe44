"""How far two arrays of the same shape are apart, under numpy.isclose's tolerance:
|export - source| <= atol + rtol·|source|.

Arrays are compared in slabs along their first axis, in float64 so that neither side's dtype
hides a difference: the temporaries stay a few megabytes whatever the tensor's size.
"""

from __future__ import annotations

import numpy as np

from inspector.compare.result import Delta, Tolerance

SLAB_ELEMENTS = 1 << 18


def delta(source: np.ndarray, export: np.ndarray, tolerance: Tolerance) -> Delta:
    s_all, e_all = np.asarray(source), np.asarray(export)
    if s_all.size == 0:
        return Delta(0, 0, True, 0.0, 0.0, (), 0.0, 0.0)
    if s_all.ndim == 0:
        s_all, e_all = s_all.reshape(1), e_all.reshape(1)
    per_row = max(1, s_all.size // s_all.shape[0])
    step = max(1, SLAB_ELEMENTS // per_row)
    mismatched, exact = 0, True
    max_abs, max_rel, at, values = -1.0, 0.0, 0, (0.0, 0.0)
    for start in range(0, s_all.shape[0], step):
        s = s_all[start : start + step].astype(np.float64).reshape(-1)
        e = e_all[start : start + step].astype(np.float64).reshape(-1)
        both_nan = np.isnan(s) & np.isnan(e)
        diff = np.abs(e - s)
        diff[both_nan] = 0.0
        diff[np.isnan(diff)] = np.inf
        close = np.isclose(e, s, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
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
