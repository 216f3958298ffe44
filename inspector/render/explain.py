"""`rnninspect explain`: a recurrent layer broken into its gates."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence

from inspector.cells import Convention
from inspector.counts import quoted
from inspector.model import CellKind, TensorRole
from inspector.render.blocks import Block, Flavour, Heading, Lines, Table, write
from inspector.render.reconcile import reconcile_lines
from inspector.render.text import count, escaped, plural, printable, shape
from inspector.report.explain import (
    BIAS_ROLES,
    Explanation,
    GateShare,
    Index,
    PlainExplanation,
)
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


def render_explain(
    path: str, explanations: Sequence[Explanation | PlainExplanation], width: int | None = None
) -> str:
    path, explanations = printable(path), escaped(explanations)
    if not explanations:
        return f"{path}: no recurrent layers found."
    blocks: list[Block] = []
    for explanation in explanations:
        if isinstance(explanation, PlainExplanation):
            blocks += _plain_blocks(path, explanation)
        elif explanation.layer.cell.block is not None:  # split by part, not by gate
            from inspector.render.block_explain import block_blocks

            blocks += block_blocks(path, explanation)
        else:
            blocks += _blocks(path, explanation)
    return write(blocks, Flavour.TEXT, width)


def _blocks(path: str, explanation: Explanation) -> list[Block]:
    layer = explanation.layer
    order = ", ".join(explanation.gate_order)
    width = quoted(layer.input_dim, grouped=False) if layer.input_dim is not None else "unknown"
    units = quoted(layer.cell.units, grouped=False) if layer.cell.units is not None else None
    # ConvLSTM's units are filters and its input width is the input's channels (Keras's names).
    conv = layer.cell.kind is CellKind.CONV_LSTM
    title = (
        f"{path}: {layer.name} ({layer.type}, "
        + (f"filters={units}, input channels {width}" if conv else "")
        + (f"units={units}, input width {width}" if not conv else "")
        + f", gates {order} in {explanation.convention.value} order)"
    )
    legend = _legend(explanation)
    headers = ["direction", "gate"]
    align = ["left", "left"]
    for name, _roles in _COLUMNS:
        headers += [name, "shape"]
        align += ["left", "left"]
    headers.append("params")
    align.append("right")
    # Per direction: a row says its direction, so `kernel` names each direction's own.
    names = {
        direction: _short_names(
            piece.tensor
            for share in explanation.gates
            if share.direction == direction
            for piece in share.slices
        )
        for direction in {share.direction for share in explanation.gates}
    }
    rows = tuple(_row(share, explanation, names[share.direction]) for share in explanation.shown)
    lines = [_sum_line(explanation), *_terms_line(explanation)]
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
        *([Lines(tuple(legend))] if legend else []),
        Table(
            tuple(headers),
            rows,
            tuple(align),
            keys=(0, 1, len(headers) - 1),
            attached=tuple(i for i, header in enumerate(headers) if header == "shape"),
        ),
        Lines(tuple(lines), indent=False),
    ]


def _row(share: GateShare, explanation: Explanation, names: dict[str, str]) -> tuple[str, ...]:
    cells = [share.direction.value if share.direction else "-", share.gate]
    slots = _onnx_slots(explanation)
    for _name, roles in _COLUMNS:
        slices = share.of(roles)
        labels = [slots.get(s.role, "") + names[s.tensor] + index_text(s.index) for s in slices]
        cells.append(" + ".join(labels) or "-")
        cells.append(" + ".join(shape(s.shape) for s in slices) or "-")
    cells.append(count(share.params))
    return tuple(cells)


# What each gate letter stands for, per cell kind (Keras, ONNX and PyTorch letters alike; the
# candidate is c in Keras/ONNX LSTM, g in PyTorch's, h in Keras/ONNX GRU, n in PyTorch's).
GATE_NAMES: dict[CellKind, dict[str, str]] = {
    CellKind.SIMPLE_RNN: {"h": "the hidden state"},
    CellKind.LSTM: {
        "i": "input",
        "f": "forget",
        "c": "cell candidate",
        "g": "cell candidate",
        "o": "output",
    },
    CellKind.GRU: {"z": "update", "r": "reset", "h": "candidate", "n": "candidate (new)"},
}
GATE_NAMES[CellKind.CONV_LSTM] = GATE_NAMES[CellKind.LSTM]

# The ONNX operator's input each stored tensor is (RNN/LSTM/GRU: X, W, R, B, ..., P).
ONNX_INPUTS = {
    TensorRole.KERNEL: "W",
    TensorRole.RECURRENT_KERNEL: "R",
    TensorRole.BIAS: "B",
    TensorRole.INPUT_BIAS: "B",
    TensorRole.RECURRENT_BIAS: "B",
    TensorRole.PEEPHOLE: "P",
}


def _onnx_slots(explanation: Explanation) -> dict[TensorRole, str]:
    """`W=` before an ONNX tensor's stored name, where the file keeps a fused RNN/LSTM/GRU op."""
    if explanation.convention is not Convention.ONNX or explanation.layer.lowered:
        return {}
    return {role: f"{name}=" for role, name in ONNX_INPUTS.items()}


def _legend(explanation: Explanation) -> list[str]:
    """The gate letters spelled out, once."""
    if not explanation.gate_names_known:
        return []
    names = GATE_NAMES.get(explanation.layer.cell.kind, {})
    spelled = [f"{g} = {names[g]}" for g in explanation.gate_order if g in names]
    return ["gates: " + ", ".join(spelled)] if spelled else []


def _terms_line(explanation: Explanation) -> list[str]:
    """Each gate's count as its labelled terms, when every gate has the same terms."""
    terms = {_terms(share, explanation) for share in explanation.gates}
    if len(terms) != 1:
        return []
    (only,) = terms
    return ["each gate: " + " + ".join(only)] if only else []


def _terms(share: GateShare, explanation: Explanation) -> tuple[str, ...]:
    """`8·4 input + 8·8 recurrent + 2·8 bias`: u·d, u·u and the bias vectors of u, written
    symbolically where the slices hold exactly that many (ConvLSTM: k·c·f, k·f·f and f)."""
    cell = explanation.layer.cell
    u, d = cell.units or 0, explanation.layer.input_dim or 0
    conv = cell.kind is CellKind.CONV_LSTM
    k = math.prod(cell.kernel_size) if conv and cell.kernel_size else 1
    prefix = f"{k}·" if conv else ""
    out = []
    for label, roles, factors in (
        ("input", frozenset({TensorRole.KERNEL}), (d, u)),
        ("recurrent", frozenset({TensorRole.RECURRENT_KERNEL}), (u, u)),
        ("bias", BIAS_ROLES, None),
    ):
        n = sum(piece.params for piece in share.of(roles))
        if not n:
            continue
        expression = count(n)
        if factors is not None and factors[0] and factors[1]:
            rows, cols = (u, d) if not conv and label == "input" else factors
            if k * rows * cols == n:
                expression = f"{prefix}{rows}·{cols}"
        elif factors is None and u and n % u == 0:
            expression = f"{n // u}·{u}" if n != u else f"{u}"
        out.append(f"{expression} {label}")
    if conv and out:
        out[-1] += (
            f" (k = {plural(k, 'kernel element')}, c = {plural(d, 'input channel')}, "
            f"f = {plural(u, 'filter')})"
        )
    elif out and (u or d):
        widths = [f"u = {plural(u, 'unit')}"] * bool(u) + [f"d = {d:,} input width"] * bool(d)
        out[-1] += f" ({', '.join(widths)})"
    return tuple(out)


def _plain_blocks(path: str, explanation: PlainExplanation) -> list[Block]:
    layer = explanation.layer
    rows = tuple((t.name, shape(t.shape), count(t.params)) for t in layer.tensors)
    lines = [f"params = {_plain_formula(explanation)}"]
    blocks: list[Block] = [Heading(f"{path}: {layer.name} ({layer.type}): not recurrent")]
    if rows:
        blocks.append(
            Table(("tensor", "shape", "params"), rows, ("left", "left", "right"), keys=(0,))
        )
    blocks.append(Lines(tuple(lines), indent=False))
    return blocks


def _plain_formula(explanation: PlainExplanation) -> str:
    """The layer's count as the closed form of its type where the shapes show it (Dense,
    Embedding, convolutions), else the sum of its tensors."""
    layer = explanation.layer
    tensors = layer.tensors
    if not tensors:
        return "0 (the layer stores no weights)"
    matrices = [t for t in tensors if len(t.shape) >= 2]
    vectors = [t for t in tensors if len(t.shape) == 1]
    kind = layer.type.lower()
    total = count(layer.params)
    if len(matrices) == 1 and len(vectors) <= 1 and len(tensors) == len(matrices) + len(vectors):
        (weights,) = matrices
        bias = f" + {count(vectors[0].params)} bias (one per output)" if vectors else ""
        dims = weights.shape
        if len(dims) == 2 and ("embed" in kind or "gather" in kind) and not vectors:
            return f"{dims[0]}·{dims[1]} (vocabulary × embedding size) = {total}"
        if len(dims) == 2:
            # Keras stores (inputs, units); PyTorch and ONNX Gemm (units, inputs).
            inputs, outputs = (dims[1], dims[0]) if _torch_like(explanation) else dims
            return f"{inputs}·{outputs} weights (inputs × outputs){bias} = {total}"
        if len(dims) >= 3:
            if _torch_like(explanation):  # (filters, channels, *kernel)
                filters, channels, kernel = dims[0], dims[1], dims[2:]
            else:  # Keras: (*kernel, channels, filters)
                kernel, channels, filters = dims[:-2], dims[-2], dims[-1]
            size = "x".join(str(k) for k in kernel)
            return (
                f"{math.prod(kernel)}·{channels}·{filters} weights (kernel {size} × input "
                f"channels × filters){bias} = {total}"
            )
    parts = " + ".join(f"{count(t.params)} {t.name.rsplit('/', 1)[-1]}" for t in tensors)
    return f"{parts} = {total}" if len(tensors) > 1 else total


def _torch_like(explanation: PlainExplanation) -> bool:
    return explanation.convention in (Convention.PYTORCH, Convention.ONNX)


def _sum_line(explanation: Explanation) -> str:
    if explanation.selected_gate is not None:
        shown = sum(share.params for share in explanation.shown)
        sizes = {share.params for share in explanation.gates}
        other = sum(u.item.tensor.params for u in explanation.unsplit)
        whole = ""
        if len(sizes) == 1:  # every gate (and direction) the same size: say how they add up
            rest = f" + {count(other)} not split by gate" if other else ""
            directions = len({share.direction for share in explanation.gates})
            across = f" × {directions} directions" if directions > 1 else ""
            gates = len(explanation.gates) // directions
            whole = f": {gates} gates{across} × {count(sizes.pop())}{rest}"
        return (
            f"gate {explanation.selected_gate}: {count(shown)} of the layer's "
            f"{count(explanation.layer.params)} parameters{whole} = "
            f"{count(explanation.params)}"
        )
    parts = [count(share.params) for share in explanation.gates]
    parts += [count(u.item.tensor.params) for u in explanation.unsplit]
    layer_params = explanation.layer.params
    verdict = "=" if explanation.params == layer_params else "≠"
    summed = f"{' + '.join(parts)} = " if len(parts) > 1 else ""
    return (
        f"sum: {summed}{count(explanation.params)} {verdict} the layer's "
        f"{count(layer_params)} parameters"
    )


def _short_names(tensors: Iterable[str]) -> dict[str, str]:
    """Each tensor name as its shortest trailing path that no other of these names ends with:
    `lstm/lstm_cell/kernel:0` -> `kernel`, while tf2onnx's loop weights, every one of them
    `.../ReadVariableOp/resource:0`, keep what tells them apart
    (`MatMul/ReadVariableOp/resource`); `onnx::LSTM_201` stays as it is. Sorted by their
    reversed paths, a name shares its longest ending with a neighbour: one sort, whatever the
    names' lengths."""
    paths = {
        name: tuple(reversed(_OUTPUT_INDEX.sub("", name.rstrip("/")).split("/")))
        for name in set(tensors)
    }
    order = sorted(paths, key=paths.__getitem__)
    short: dict[str, str] = {}
    for at, name in enumerate(order):
        path = paths[name]
        shared = max(
            (_common(path, paths[order[i]]) for i in (at - 1, at + 1) if 0 <= i < len(order)),
            default=0,
        )
        short[name] = "/".join(reversed(path[: min(shared + 1, len(path))]))
    return short


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """How many leading parts two paths share."""
    shared = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        shared += 1
    return shared


def index_text(index: Index) -> str:
    if all(item is None for item in index):
        return ""
    parts = [
        ":" if item is None else str(item) if isinstance(item, int) else f"{item[0]}:{item[1]}"
        for item in index
    ]
    return "[" + ", ".join(parts) + "]"


def render_explain_json(path: str, explanations: Sequence[Explanation | PlainExplanation]) -> str:
    return json.dumps(
        [
            _plain_dict(path, e) if isinstance(e, PlainExplanation) else _as_dict(path, e)
            for e in explanations
        ],
        indent=2,
    )


def _plain_dict(path: str, explanation: PlainExplanation) -> dict[str, object]:
    layer = explanation.layer
    return {
        "file": path,
        "layer": layer.name,
        "type": layer.type,
        "recurrent": False,
        "params": layer.params,
        "tensors": [
            {"tensor": t.name, "shape": list(t.shape), "params": t.params} for t in layer.tensors
        ],
        "formula": _plain_formula(explanation),
        "depends_on_sequence_length": False,
    }


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
        "selected_gate": explanation.selected_gate,
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
            for share in explanation.shown
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
