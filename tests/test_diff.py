"""The bit-identical shortcut of `inspector.compare.diff.delta` against its float64 analysis.

A slab whose two sides hold the same bits is settled without the float64 pass; the other slabs
are analysed in float64. Both paths must give the same `Delta` field for field, whatever the
values (NaN, infinities, signed zeros), the layout (transposed, sliced views) or where the
differences fall among the slabs. The float64 path is forced by giving one side another dtype
holding the same values.
"""

from __future__ import annotations

import numpy as np
import pytest

from inspector.compare import diff
from inspector.compare.result import Tolerance

TOLERANCE = Tolerance(atol=1e-6, rtol=1e-5)


def _arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(16)
    base = rng.standard_normal((48, 20)).astype(np.float32)
    special = base.copy()
    special[3, 4], special[7, 1], special[9, 9], special[11, 0] = np.nan, np.inf, -np.inf, -0.0
    changed = base.copy()
    changed[30, 7] += 1e-3  # outside the tolerance, in a later slab
    changed[40, 2] += 1e-9  # within it: equivalent, not identical
    zero_sign = base.copy()
    zero_sign[0, 0], base_zero = 0.0, base.copy()
    base_zero[0, 0] = -0.0  # equal values, different bits
    return {
        "identical": (base, base.copy()),
        "nan_and_infinities": (special, special.copy()),
        "transposed_views": (base.T, base.copy().T),
        "strided_slices": (base[::2, 3:17], base.copy()[::2, 3:17]),
        "one_difference_late": (base, changed),
        "signed_zero": (base_zero, zero_sign),
        "scalar": (np.float32(2.5).reshape(()), np.float32(2.5).reshape(())),
        "integers": (np.arange(40, dtype=np.int32), np.arange(40, dtype=np.int32)),
    }


CASES = _arrays()


@pytest.mark.parametrize("name", sorted(CASES))
def test_shortcut_and_float64_analysis_agree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff, "SLAB_ELEMENTS", 64)  # several slabs even for small arrays
    source, export = CASES[name]
    widened = export.astype(np.float64)  # another dtype: every slab takes the float64 path
    assert diff.delta(source, export, TOLERANCE) == diff.delta(source, widened, TOLERANCE)


def test_equal_infinities_differ_by_nothing() -> None:
    values = np.array([1.0, np.inf, -np.inf], dtype=np.float32)
    found = diff.delta(values, values.astype(np.float64), TOLERANCE)
    assert (found.exact, found.mismatched, found.max_abs, found.max_rel) == (True, 0, 0.0, 0.0)


def test_a_difference_is_still_found_where_it_is() -> None:
    source, export = CASES["one_difference_late"]
    found = diff.delta(source, export, TOLERANCE)
    assert (found.exact, found.mismatched, found.at) == (False, 1, (30, 7))


def test_float16_storage_is_its_rounding_not_a_difference() -> None:
    """A float32 tensor saved as float16 (a half-precision checkpoint, TFLite float16
    quantization) holds numpy's IEEE round-to-nearest of each value: within half a unit in the
    last place, subnormals included, it is the same tensor; three units away is not."""
    rng = np.random.default_rng(11)
    magnitudes = np.float32(10.0) ** rng.integers(-7, 4, 4000).astype(np.float32)
    source = (rng.standard_normal(4000).astype(np.float32) * magnitudes).reshape(80, 50)
    source[41, 7] = 1.7  # where the tolerance's own atol is far below a float16 step
    stored = source.astype(np.float16)
    for pair in ((source, stored), (stored, source)):
        found = diff.delta(*pair, TOLERANCE)
        assert found.close and not found.exact and found.mismatched == 0
    moved = stored.copy()
    for _ in range(3):
        moved[41, 7] = np.nextafter(moved[41, 7], np.float16(np.inf))
    found = diff.delta(source, moved, TOLERANCE)
    assert not found.close and found.mismatched == 1
    wider = source.astype(np.float64)
    wider[41, 7] = float(stored[41, 7])  # the same rounding between float32 and float64 is a change
    assert not diff.delta(source, wider, Tolerance(atol=0.0, rtol=0.0)).close
