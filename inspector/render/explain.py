"""`rnninspect explain`: a recurrent layer broken into its gates."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from inspector.model import TensorRole
from inspector.render.blocks import Block, Flavour, Heading, Lines, Table, write
from inspector.render.reconcile import reconcile_lines
from inspector.render.text import count, shape
from inspector.report.explain import BIAS_ROLES, Explanation, GateShare, Index, Slice
from inspector.report.reconcile import Reconciliation

_OUTPUT_INDEX = re.compile(r":\d+$")  # TensorFlow's `:0` output suffix
_BIAS_HALVES = frozenset({TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS})
_COLUMNS = (
    ("input weights", frozenset({TensorRole.KERNEL})),
    ("recurrent weights", frozenset({TensorRole.RECURRENT_KERNEL})),
    ("bias", BIAS_ROLES),
)


def sequence_note(params: int) -> str:
    return (
        f"The count does not depend on the sequence length: the same {count(params)} weights "
        "are applied at every time step, so 5 steps or 5,000 use the same parameters."
    )


def render_explain(path: str, explanations: Sequence[Explanation], width: int | None = None) -> str:
    if not explanations:
        return f"{path}: no recurrent layers found."
    blocks: list[Block] = []
    for explanation in explanations:
        blocks += _blocks(path, explanation)
    return write(blocks, Flavour.TEXT, width)


def _blocks(path: str, explanation: Explanation) -> list[Block]:
    layer = explanation.layer
    order = ", ".join(explanation.gate_order)
    title = (
        f"{path}: {layer.name} ({layer.type}, units={layer.cell.units}, "
        f"input width {layer.input_dim if layer.input_dim is not None else 'unknown'}, "
        f"gates {order} in {explanation.convention.value} order)"
    )
    headers = ["direction", "gate"]
    align = ["left", "left"]
    for name, _roles in _COLUMNS:
        headers += [name, "shape"]
        align += ["left", "left"]
    headers.append("params")
    align.append("right")
    rows = tuple(_row(share) for share in explanation.gates)
    lines = [_sum_line(explanation)]
    lines += [
        f"not split by gate: {u.item.tensor.name} {shape(u.item.tensor.shape)}, "
        f"{count(u.item.tensor.params)} params ({u.reason})"
        for u in explanation.unsplit
    ]
    if not explanation.gate_names_known:
        lines.append(
            "the file does not name the gates (the exporter lowered the recurrence into plain "
            "ops): blocks are numbered in stored order"
        )
    if any(s.role in _BIAS_HALVES for share in explanation.gates for s in share.slices):
        lines.append("bias: each gate has an input bias (first) and a recurrent bias (second)")
    if explanation.reconciliation is not None:
        lines += reconcile_lines(explanation.reconciliation)
    lines.append(sequence_note(explanation.params))
    return [
        Heading(title),
        Table(
            tuple(headers),
            rows,
            tuple(align),
            keys=(0, 1, len(headers) - 1),
            attached=tuple(i for i, header in enumerate(headers) if header == "shape"),
        ),
        Lines(tuple(lines), indent=False),
    ]


def _row(share: GateShare) -> tuple[str, ...]:
    cells = [share.direction.value if share.direction else "-", share.gate]
    for _name, roles in _COLUMNS:
        slices = share.of(roles)
        cells.append(" + ".join(_label(s) for s in slices) or "-")
        cells.append(" + ".join(shape(s.shape) for s in slices) or "-")
    cells.append(count(share.params))
    return tuple(cells)


def _sum_line(explanation: Explanation) -> str:
    parts = [count(share.params) for share in explanation.gates]
    parts += [count(u.item.tensor.params) for u in explanation.unsplit]
    layer_params = explanation.layer.params
    verdict = "=" if explanation.params == layer_params else "≠"
    summed = f"{' + '.join(parts)} = " if len(parts) > 1 else ""
    return (
        f"sum: {summed}{count(explanation.params)} {verdict} the layer's "
        f"{count(layer_params)} parameters"
    )


def _short(tensor: str) -> str:
    """`lstm/lstm_cell/kernel:0` -> `kernel`; `onnx::LSTM_201[0]` stays as it is."""
    return _OUTPUT_INDEX.sub("", tensor.rstrip("/").rsplit("/", 1)[-1])


def index_text(index: Index) -> str:
    if all(item is None for item in index):
        return ""
    parts = [
        ":" if item is None else str(item) if isinstance(item, int) else f"{item[0]}:{item[1]}"
        for item in index
    ]
    return "[" + ", ".join(parts) + "]"


def _label(piece: Slice) -> str:
    return _short(piece.tensor) + index_text(piece.index)


def render_explain_json(path: str, explanations: Sequence[Explanation]) -> str:
    return json.dumps([_as_dict(path, e) for e in explanations], indent=2)


def _as_dict(path: str, explanation: Explanation) -> dict[str, object]:
    layer = explanation.layer
    return {
        "file": path,
        "layer": layer.name,
        "type": layer.type,
        "cell": layer.cell.kind.value,
        "units": layer.cell.units,
        "input_dim": layer.input_dim,
        "directions": layer.directions,
        "convention": explanation.convention.value,
        "gate_order": list(explanation.gate_order),
        "gate_names_known": explanation.gate_names_known,
        "params": layer.params,
        "gates": [
            {
                "direction": share.direction.value if share.direction else None,
                "gate": share.gate,
                "params": share.params,
                "slices": [
                    {
                        "tensor": piece.tensor,
                        "role": piece.role.value,
                        "index": index_text(piece.index) or "[...]",
                        "shape": list(piece.shape),
                        "params": piece.params,
                    }
                    for piece in share.slices
                ],
            }
            for share in explanation.gates
        ],
        "unsplit": [
            {
                "tensor": u.item.tensor.name,
                "role": u.item.role.value,
                "direction": u.item.direction.value if u.item.direction else None,
                "shape": list(u.item.tensor.shape),
                "params": u.item.tensor.params,
                "reason": u.reason,
            }
            for u in explanation.unsplit
        ],
        "depends_on_sequence_length": False,
        **_reconciled(explanation.reconciliation),
    }


def _reconciled(item: Reconciliation | None) -> dict[str, object]:
    """The same reconciliation keys `rnninspect --format json` gives each recurrent layer."""
    if item is None:
        return {}
    return {
        "row": item.row.name if item.row is not None else None,
        "row_params": item.row.params if item.row is not None else None,
        "row_recurrent_params": item.recurrent_params,
        "row_other_tensors": [{"name": t.name, "params": t.params} for t in item.others],
        "split_in_row": item.in_row,
        "split_outside_row": [
            {"name": o.item.tensor.name, "params": o.item.tensor.params, "held_by": o.held_by}
            for o in item.outside
        ],
    }
