"""`rnninspect explain` for a recurrent block of a language model (Mamba, RWKV, ...): its tensors
by part (input projection, convolution, state transition, gates, norm, output projection), each
with the shape its dimensions give, and the sum (`inspector.blocks`)."""

from __future__ import annotations

from inspector.blocks import BLOCK_BY_NAME, Part
from inspector.dims import shown
from inspector.render.blocks import Block, Heading, Lines, Table
from inspector.render.reconcile import reconcile_lines
from inspector.render.text import count, shape
from inspector.report.explain import Explanation

_ORDER = {part: index for index, part in enumerate(Part)}


def block_blocks(path: str, explanation: Explanation) -> list[Block]:
    """The block's parts as a table, then the sum per part and the source it follows."""
    layer = explanation.layer
    spec = BLOCK_BY_NAME[layer.cell.block or ""]
    dims = " ".join(f"{name}={value:,}" for name, value in layer.cell.dims if name in spec.dims)
    rows, sums = [], dict.fromkeys(sorted(Part, key=_ORDER.__getitem__), 0)
    items = sorted(
        (item for item in layer.tensors if item.member),
        key=lambda item: _ORDER[spec.member(item.member or "").part],
    )
    for item in items:
        member = spec.member(item.member or "")
        sums[member.part] += item.tensor.params
        rows.append(
            (
                member.part.value,
                member.name,
                shape(item.tensor.shape),
                "("
                + ", ".join(shown(axis) for axis in member.shape)
                + ("," if len(member.shape) == 1 else "")
                + ")",
                count(item.tensor.params),
            )
        )
    parts = " + ".join(f"{part.value} {count(n)}" for part, n in sums.items() if n)
    lines = [
        f"sum: {parts} = {count(layer.params)} parameters",
        f"follows {spec.source}",
        *layer.notes,
        *(reconcile_lines(explanation.reconciliation) if explanation.reconciliation else ()),
        f"The count does not depend on the context length: the same {count(layer.params)} "
        "weights are applied at every token, and the state it carries stays the same size.",
    ]
    return [
        Heading(f"{path}: {layer.name} ({layer.type}: {layer.cell.kind.value}, {dims})"),
        Table(
            ("part", "tensor", "shape", "shape from the dimensions", "params"),
            tuple(rows),
            ("left", "left", "left", "left", "right"),
            keys=(0, 1),
        ),
        Lines(tuple(lines), indent=False),
    ]
