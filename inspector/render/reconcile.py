"""Sentences that reconcile a recurrent layer's split with its row (see report/reconcile.py):
whatever is in one and not the other is named, with its count."""

from __future__ import annotations

from collections.abc import Sequence

from inspector.model import Tensor
from inspector.render.text import count
from inspector.report.reconcile import Outside, Reconciliation

_LISTED = 6  # names shown before "and N more"


def reconcile_lines(item: Reconciliation) -> list[str]:
    """Nothing when the row is exactly the split; else one line for the row and one for the
    split's tensors the row does not hold."""
    if item.plain:
        return []
    lines = []
    row = item.row
    if row is None:
        lines.append(f"no layer row holds {item.layer.name}'s tensors")
    elif row.params != item.layer.params or item.others or len(item.members) > 1:
        parts = []
        for name, params in item.members:
            if params:
                label = "recurrent" if len(item.members) == 1 else name
                parts.append(f"{label} {count(params)}")
        if item.others:
            parts.append(f"{_tensors(item.others)}")
        named = "" if row.name == item.layer.name else f" {row.name}"
        lines.append(f"row{named} {count(row.params)} = " + " + ".join(parts or ["0"]))
    computed = item.in_row != item.recurrent_params and item.recurrent
    if computed:
        lines.append(
            f"the split's {count(item.in_row)} in-row params are computed in the graph from "
            f"the row's {count(item.recurrent_params)}"
        )
    if item.outside:
        parts = [f"{count(item.in_row)} held by this row"] if item.in_row else []
        for held_by, group in _by_holder(item.outside):
            where = f"held by {held_by} (shared)" if held_by else "not stored in the file"
            names = ", ".join(o.item.tensor.name for o in group[:_LISTED])
            more = f" and {len(group) - _LISTED} more" if len(group) > _LISTED else ""
            size = count(sum(o.item.tensor.params for o in group))
            parts.append(f"{size} {where}: {names}{more}")
        lines.append(f"split {count(item.layer.params)} = " + " + ".join(parts))
    return lines


def _tensors(tensors: Sequence[Tensor]) -> str:
    """'2 other tensors: a (1), b (1)'."""
    shown = ", ".join(f"{t.name} ({count(t.params)})" for t in tensors[:_LISTED])
    more = f" and {len(tensors) - _LISTED} more" if len(tensors) > _LISTED else ""
    plural = "tensor" if len(tensors) == 1 else "tensors"
    total = count(sum(t.params for t in tensors))
    return f"{total} in {len(tensors)} other {plural}: {shown}{more}"


def _by_holder(outside: Sequence[Outside]) -> list[tuple[str | None, list[Outside]]]:
    groups: dict[str | None, list[Outside]] = {}
    for item in outside:
        groups.setdefault(item.held_by, []).append(item)
    return list(groups.items())
