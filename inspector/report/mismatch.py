"""Why a formula check failed, said as the dimension that disagrees with both of its values.

The formula is a sum of parts per direction (see `formula.py`): the kernel `g·k·u·d`, the
recurrent kernel `g·k·u·u`, the biases `b·g·u` and LSTM peepholes `3·u`. Each part is compared
with the elements the stored tensors of that role hold, which does not depend on whose layout
the file follows; a part that differs is turned back into the dimension it measures (input
width, units, bias vectors) where the stored count divides evenly, else given as counts.
Nothing here ever prints a negative count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from inspector.formula import Derivation
from inspector.model import (
    BiasConvention,
    Direction,
    RecurrentLayer,
    RecurrentTensor,
    TensorRole,
    WidthSource,
)

_DOT = "·"
_BIAS_ROLES = frozenset({TensorRole.BIAS, TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS})
_KNOWN_ROLES = _BIAS_ROLES | {TensorRole.KERNEL, TensorRole.RECURRENT_KERNEL, TensorRole.PEEPHOLE}


_BIAS_WORDS = {
    BiasConvention.NONE: "use_bias is off",
    BiasConvention.SINGLE: "one bias per gate, as Keras keeps",
    BiasConvention.DOUBLE: "input and recurrent biases",
}


@dataclass(frozen=True)
class _Stored:
    """Elements the stored tensors hold per role, per direction of one derivation."""

    kernel: int
    recurrent: int
    bias: int
    peephole: int
    other: tuple[str, ...]  # names of tensors of a role the formula has no part for


def explain_mismatch(
    layer: RecurrentLayer, derivations: Sequence[Derivation], expected: int
) -> str:
    """One line: the totals, then each dimension that disagrees, with both values."""
    head = f"stored tensors hold {layer.params:,} parameters, the formula gives {expected:,}"
    parts: list[str] = []
    for index, derivation in enumerate(derivations):
        items = _items_of(layer, derivations, index)
        stored = _stored(items, derivation.directions)
        prefix = ""
        if len(derivations) > 1:
            prefix = "forward " if index == 0 else "backward "
        parts.extend(prefix + part for part in _differences(layer, derivation, stored))
    if not parts:
        parts.append(
            "the stored tensors do not split per direction as the formula expects "
            f"({layer.directions} direction(s))"
        )
    return f"{head}: " + "; ".join(dict.fromkeys(parts))


def _items_of(
    layer: RecurrentLayer, derivations: Sequence[Derivation], index: int
) -> list[RecurrentTensor]:
    if len(derivations) == 1:
        return list(layer.tensors)
    wanted = Direction.BACKWARD if index == 1 else Direction.FORWARD
    return [t for t in layer.tensors if (t.direction or Direction.FORWARD) is wanted]


def _stored(items: Sequence[RecurrentTensor], directions: int) -> _Stored | None:
    def per_direction(roles: frozenset[TensorRole]) -> int | None:
        total = sum(t.tensor.params for t in items if t.role in roles)
        return total // directions if total % directions == 0 else None

    kernel = per_direction(frozenset({TensorRole.KERNEL}))
    recurrent = per_direction(frozenset({TensorRole.RECURRENT_KERNEL}))
    bias = per_direction(_BIAS_ROLES)
    peephole = per_direction(frozenset({TensorRole.PEEPHOLE}))
    if kernel is None or recurrent is None or bias is None or peephole is None:
        return None
    other = tuple(t.tensor.name for t in items if t.role not in _KNOWN_ROLES)
    return _Stored(kernel, recurrent, bias, peephole, other)


def _differences(layer: RecurrentLayer, d: Derivation, stored: _Stored | None) -> list[str]:
    if stored is None:
        return []
    g, k, u = d.gates, d.kernel_elems, d.units
    out: list[str] = []
    # Units first: the recurrent kernel measures them alone (g·k·u·u), and the kernel's
    # input width is read with the units the recurrent kernel holds.
    stored_units = u
    if stored.recurrent != g * k * u * u:
        root = _square_root(stored.recurrent, g * k)
        gk = f"{g}{_DOT}{k}{_DOT}" if k > 1 else f"{g}{_DOT}"
        if not stored.recurrent:
            out.append(
                f"recurrent kernel: none stored, the formula wants {gk}{u}{_DOT}{u} = "
                f"{g * k * u * u:,} per direction"
            )
        elif root is not None:
            stored_units = root
            out.append(
                f"units: {u} from the config, {root} in the recurrent kernel "
                f"({stored.recurrent:,} = {gk}{root}{_DOT}{root} per direction)"
            )
        else:
            out.append(
                f"recurrent kernel: {stored.recurrent:,} per direction, the formula wants "
                f"{gk}{u}{_DOT}{u} = {g * k * u * u:,}"
            )
    expected_kernel = g * k * u * d.input_dim
    if stored.kernel != expected_kernel:
        source = (
            "from the config"
            if layer.input_dim_source is WidthSource.CONFIG
            else "read off the kernel"
        )
        per_width = g * k * stored_units
        gk = f"{g}{_DOT}{k}{_DOT}" if k > 1 else f"{g}{_DOT}"
        width = stored.kernel // per_width if per_width else None
        if width == d.input_dim and stored.kernel == per_width * width:
            pass  # the kernel differs only by the units, said above
        elif width is not None and stored.kernel == per_width * width:
            out.append(
                f"input width: {d.input_dim} {source}, {width} in the kernel "
                f"({stored.kernel:,} = {gk}{stored_units}{_DOT}{width} per direction)"
            )
        else:
            out.append(
                f"kernel: {stored.kernel:,} per direction, the formula wants "
                f"{gk}{u}{_DOT}{d.input_dim} = {expected_kernel:,} (input width {source})"
            )
    expected_bias = d.bias_vectors * g * u
    units_only = stored.bias == d.bias_vectors * g * stored_units  # said above
    if stored.bias != expected_bias and not units_only:
        vector = g * stored_units
        said = (
            f"{stored.bias // vector} vector(s) of {g}{_DOT}{stored_units}"
            if vector and stored.bias % vector == 0
            else f"{stored.bias:,} values, not whole vectors of {g}{_DOT}{stored_units}"
        )
        out.append(
            f"bias vectors: the formula expects {d.bias_vectors} of {g}{_DOT}{u} per "
            f"direction ({_BIAS_WORDS[d.bias]}), the stored biases hold {said}"
        )
    expected_peephole = 3 * u if d.peepholes else 0
    if stored.peephole != expected_peephole:
        out.append(
            f"peepholes: the formula expects {expected_peephole:,} per direction, "
            f"the stored peepholes hold {stored.peephole:,}"
        )
    if stored.other:
        out.append(f"tensors the formula has no part for: {', '.join(stored.other)}")
    return out


def _square_root(total: int, factor: int) -> int | None:
    if factor <= 0 or total % factor:
        return None
    root = math.isqrt(total // factor)
    return root if root * root == total // factor else None
