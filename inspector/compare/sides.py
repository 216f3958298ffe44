"""One side of a comparison: its total, the params its pairs cover, and everything else by name,
so that `total = paired + Σ outside` (report/reconcile.py says how each row and split relate).

Outside the pairs are: rows no pair names (an Embedding, the rows of unpaired layers), a paired
recurrent layer's row tensors outside its split (a loop body's constants), and the difference
between a split and the stored tensors it is computed from or shares with another row.
"""

from __future__ import annotations

from collections.abc import Iterable

from inspector.cells import convention_of
from inspector.compare.result import FileSide, PairResult
from inspector.model import Model
from inspector.report.analysis import attribute_once, totals
from inspector.report.reconcile import Reconciliation, reconcile


def file_side(model: Model, pairs: Iterable[PairResult], *, source: bool) -> FileSide:
    model = attribute_once(model)
    total = totals(model).total
    named: dict[str, int] = {}
    for pair in pairs:
        name = pair.source if source else pair.export
        params = pair.source_params if source else pair.export_params
        if name is not None and params is not None:
            named[name] = params
    items = reconcile(model)
    by_row: dict[str, list[Reconciliation]] = {}
    for item in items:
        if item.row is not None:
            by_row.setdefault(item.row.name, []).append(item)
    outside: list[tuple[str, int]] = []
    for row in model.layers:
        members = by_row.get(row.name, [])
        paired = [item for item in members if item.layer.name in named]
        if not paired:
            if row.name in named:
                if row.params != named[row.name]:
                    outside.append((f"{row.name} beyond its pair", row.params - named[row.name]))
            elif row.params:
                outside.append((row.name, row.params))
            continue
        if row.name in named and all(item.layer.name != row.name for item in paired):
            # a plain pair took the row's tensors outside its blocks (GGUF blk.N's norms)
            others = sum(t.params for t in paired[0].others)
            if others != named[row.name]:
                outside.append((f"{row.name} beyond its pair", others - named[row.name]))
        else:
            outside += [(t.name, t.params) for t in paired[0].others]
        for item in members:
            if item not in paired:
                if item.recurrent_params:
                    outside.append((item.layer.name, item.recurrent_params))
                continue
            # Stored tensors a split is computed from need not add up to the split.
            if item.recurrent_params != item.in_row:
                outside.append(
                    (
                        f"more in the stored tensors {item.layer.name}'s split is computed from",
                        item.recurrent_params - item.in_row,
                    )
                )
            for piece in item.outside:  # counted in the pair, held by another row or nowhere
                outside.append(
                    (
                        f"{piece.item.tensor.name} (in {item.layer.name}'s split, "
                        + (f"held by {piece.held_by})" if piece.held_by else "not stored)"),
                        -piece.item.tensor.params,
                    )
                )
    paired_total = sum(named.values())
    residual = total - paired_total - sum(params for _, params in outside)
    if residual:
        outside.append(("not attributed", residual))
    return FileSide(
        model.path,
        model.format,
        convention_of(model.format),
        total,
        paired=paired_total,
        outside=tuple(item for item in outside if item[1]),
    )
