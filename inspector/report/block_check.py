"""The formula check of a recurrent block (Mamba, RWKV, ...): every tensor its dimensions say it
stores, held against the stored shape; a mismatch names the tensor and the dimension that
disagrees (`inspector.formula.derive_block`, `inspector.blocks`)."""

from __future__ import annotations

from collections.abc import Mapping

from inspector.blocks import BLOCK_BY_NAME, BlockSpec
from inspector.dims import shown
from inspector.formula import BlockDerivation, MemberCount, derive_block
from inspector.model import Check, RecurrentLayer, WidthSource

MAX_REASONS = 3  # disagreements named in one reason; the count says how many more

_SOURCE = {
    WidthSource.CONFIG: "the configuration",
    WidthSource.TENSOR: "the tensors",
    WidthSource.UNKNOWN: "nothing",
}


def check_block(layer: RecurrentLayer) -> tuple[BlockDerivation | None, Check, str | None]:
    """The derivation, the status and, unless ok, why."""
    spec = BLOCK_BY_NAME.get(layer.cell.block or "")
    if spec is None:
        return None, Check.UNVERIFIED, f"no block table entry {layer.cell.block!r}"
    stored = {item.member: item.tensor.shape for item in layer.tensors if item.member}
    derivation = derive_block(spec, dict(layer.cell.dims), stored, layer.cell.layout)
    if not derivation.complete:
        unknown = ", ".join(derivation.unknown) or "a dimension"
        return (
            None,
            Check.UNVERIFIED,
            f"{unknown} unknown: neither a configuration nor the tensors give it",
        )
    reasons = _disagreements(spec, derivation, stored)
    if not reasons and derivation.total == layer.params:
        return derivation, Check.OK, None
    if not reasons:  # the shapes agree, yet the counts do not: a tensor is there twice
        reasons = [f"stored {layer.params:,} parameters, the formula gives {derivation.total:,}"]
    more = len(reasons) - MAX_REASONS
    text = "; ".join(reasons[:MAX_REASONS]) + (f"; and {more} more" if more > 0 else "")
    return derivation, Check.MISMATCH, f"{text} (dimensions from {_SOURCE[layer.input_dim_source]})"


def _disagreements(
    spec: BlockSpec, derivation: BlockDerivation, stored: Mapping[str, tuple[int, ...]]
) -> list[str]:
    expected = {member.name: member for member in derivation.members}
    reasons = []
    for member in derivation.members:
        shape = stored.get(member.name)
        if shape is None:
            flag = spec.member(member.name).flag
            why = f" ({flag} = 1)" if flag else ""
            reasons.append(f"{member.label or member.name} is missing{why}")
        elif shape != member.shape:
            reasons.append(_axis_disagrees(member, shape))
    for name in stored:
        if name not in expected:
            flag = spec.member(name).flag
            reasons.append(f"{name} is stored but the configuration has none ({flag} = 0)")
    return reasons


def _axis_disagrees(member: MemberCount, shape: tuple[int, ...]) -> str:
    """`x_proj.weight is (9, 32), expected (dt_rank + 2·d_state = 10, d_inner = 32): axis 0
    (dt_rank + 2·d_state) disagrees`."""
    terms = ", ".join(
        axis if axis.isdigit() else f"{shown(axis)} = {size}"
        for axis, size in zip(member.axes, member.shape, strict=True)
    )
    head = f"{member.label or member.name} is {_tuple(shape)}, expected ({terms})"
    if len(shape) != len(member.shape):
        return f"{head}: {len(shape)} axes instead of {len(member.shape)}"
    axes = [
        f"axis {i} ({shown(member.axes[i])})"
        for i, (got, want) in enumerate(zip(shape, member.shape, strict=True))
        if got != want
    ]
    return f"{head}: {', '.join(axes)} disagree{'s' if len(axes) == 1 else ''}"


def _tuple(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(f"{size:,}" for size in shape) + ("," if len(shape) == 1 else "") + ")"
