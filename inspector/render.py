"""The one renderer: every table, number format and JSON layout lives here."""

from __future__ import annotations

import json
from collections.abc import Sequence

from tabulate import tabulate

from inspector.analysis import RecurrentCheck, Report
from inspector.cells import Convention
from inspector.contract import convention_of, gate_order
from inspector.model import WidthSource


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TB"


def _n(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def render_json(reports: Sequence[Report], *, as_array: bool) -> str:
    payload: object = [r.to_dict() for r in reports] if as_array else reports[0].to_dict()
    return json.dumps(payload, indent=2)


def render_table(report: Report) -> str:
    model = report.model
    total = report.totals.total
    lines = [f"{model.path}  [{model.format.value}]  producer: {model.producer or 'unknown'}"]
    lines += [f"  {detail.key}: {detail.value}" for detail in model.details]
    lines.append("")

    layer_rows = [
        [layer.name, layer.type, _n(layer.params), _share(layer.params, total)]
        for layer in model.layers
    ]
    lines.append(
        tabulate(
            layer_rows,
            headers=["layer", "type", "params", "share"],
            colalign=("left", "left", "right", "right"),
        )
    )

    if report.checks:
        lines += ["", "Recurrent layers", _tensor_table(report.checks), "", "Formula check"]
        convention = convention_of(model.format)
        lines += [_check_line(check, convention) for check in report.checks]
    else:
        lines += ["", "No recurrent layers found."]

    lines += ["", *_totals_block(report)]
    if model.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in model.warnings]
    return "\n".join(lines)


def _tensor_table(checks: Sequence[RecurrentCheck]) -> str:
    rows = []
    for check in checks:
        for item in check.layer.tensors:
            rows.append(
                [
                    check.layer.name,
                    item.direction.value if item.direction else "-",
                    item.role.value + (f" [{item.gate}]" if item.gate else ""),
                    _shape(item.tensor.shape),
                    item.tensor.dtype,
                    _n(item.tensor.params),
                ]
            )
    return tabulate(
        rows,
        headers=["layer", "direction", "tensor", "shape", "dtype", "params"],
        colalign=("left", "left", "left", "left", "left", "right"),
    )


def _check_line(check: RecurrentCheck, convention: Convention) -> str:
    layer = check.layer
    gates = ",".join(gate_order(layer, convention))
    head = f"  {layer.name} ({layer.type}, units={layer.cell.units}, gates {gates}"
    if layer.directions == 2:
        head += ", bidirectional"
    head += ")"
    if check.expected is None:
        return f"{head}: {check.status.value} - {check.reason}"
    source = {
        WidthSource.CONFIG: "input width from the model config",
        WidthSource.TENSOR: "input width from the kernel shape",
        WidthSource.UNKNOWN: "input width unknown",
    }[layer.input_dim_source]
    line = (
        f"{head}: {check.expression} = {_n(check.expected)}; stored {_n(layer.params)} "
        f"-> {check.status.value}  ({source}: {layer.input_dim})"
    )
    if check.reason:
        line += f"\n      {check.reason}"
    return line


def _totals_block(report: Report) -> list[str]:
    totals = report.totals
    lines = [
        f"Total params: {_n(totals.total)} ({human_bytes(totals.weights_bytes)})",
        f"Trainable params: {_n(totals.trainable)}",
        f"Non-trainable params: {_n(totals.non_trainable)}",
    ]
    for item in report.model.excluded:
        names = ", ".join(t.name for t in item.tensors[:6])
        more = f" and {len(item.tensors) - 6} more" if len(item.tensors) > 6 else ""
        lines.append(f"Not counted: {_n(item.params)} in {item.reason} ({names}{more})")
    optimizer = report.model.optimizer
    if optimizer is not None:
        lines.append(
            f"Optimizer state (not counted above): {_n(optimizer.values)} values, "
            f"{human_bytes(optimizer.nbytes)}, {100 * optimizer.share_of_file:.1f}% of the file"
        )
    return lines
