"""`rnninspect compare`: the per-pair table with its explanations, and the JSON layout (a
contract, documented in README.md: keys may be added, never renamed or dropped)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

from inspector.cells import Convention
from inspector.compare.result import (
    BiasForm,
    CompareReport,
    Difference,
    Field,
    FileSide,
    Mismatch,
    PairKind,
    PairResult,
    Reconcile,
    Reconciled,
    Side,
    Status,
    Unmatched,
)
from inspector.counts import quoted
from inspector.render.blocks import Block, Flavour, Heading, Lines, Table, write
from inspector.render.text import PLAIN, Style, count, escaped, index, paint, real, shape

STATUS_COLOUR: Mapping[Status, str] = MappingProxyType(
    {
        Status.IDENTICAL: "green",
        Status.EQUIVALENT: "green",
        Status.LOWERED: "yellow",
        Status.UNVERIFIED: "yellow",
    }
)

# How each layout stores a recurrent layer's matrices (g gates of u units, input width d).
_LAYOUTS: Mapping[str, str] = MappingProxyType(
    {
        "keras": "keras kernel (d, g·u), recurrent_kernel (u, g·u)",
        "onnx": "onnx W [dirs, g·u, d], R [dirs, g·u, u]",
        "pytorch": "pytorch weight_ih (g·u, d), weight_hh (g·u, u)",
        "matmul": "MatMul weights (d, g·u), (u, g·u) of the lowered graph",
        "gemm": "Gemm (transB=1) weights (g·u, d), (g·u, u) of the lowered graph",
        "tflite": "tflite weights (u, d), (u, u) per gate or FULLY_CONNECTED (g·u, d), (g·u, u)",
    }
)
_BIAS_FORMS: Mapping[BiasForm, str] = MappingProxyType(
    {
        BiasForm.STACKED: "B [dirs, 2·g·u] = [Wb, Rb]",
        BiasForm.ONE_TENSOR: "one bias tensor holding the input then the recurrent bias",
        BiasForm.SEPARATE: "separate input and recurrent bias tensors",
    }
)
_LOWERED_FORMS: Mapping[str, str] = MappingProxyType(
    {
        "Loop": "a Loop whose body computes one step",
        "Scan": "a Scan whose body computes one step",
        "unrolled": "unrolled into a chain of MatMul steps",
        "single-step": "one step of a cell (Gemm/MatMul of the input and of a state input)",
    }
)
_SEPARATE_NAMES: Mapping[Convention, str] = MappingProxyType(
    {Convention.PYTORCH: "bias_ih / bias_hh", Convention.KERAS: "bias rows (input, recurrent)"}
)
_RESET_NAMES: Mapping[Convention, str] = MappingProxyType(
    {
        Convention.KERAS: "reset_after={value}",
        Convention.ONNX: "linear_before_reset={number}",
        Convention.PYTORCH: "nn.GRU (reset applied after the recurrent product)",
    }
)


# --- text ---------------------------------------------------------------------------------


_LISTED = 8  # outside-pair entries named on a side's line


def render_compare(report: CompareReport, style: Style = PLAIN) -> str:
    report = escaped(report)
    blocks: list[Block] = [
        Lines(
            (
                _side_line("source", report.source),
                _side_line("export", report.export),
                f"tolerance: atol {real(report.tolerance.atol)}, "
                f"rtol {real(report.tolerance.rtol)}",
            ),
            indent=False,
        )
    ]
    if report.pairs:
        blocks.append(_table(report, style))
    for pair in report.pairs:
        lines = _pair_lines(pair)
        if lines:
            blocks += [Heading(_title(pair, style)), Lines(tuple(lines), bullets=True)]
    blocks.append(Lines((_verdict(report, style),), indent=False))
    return write(blocks, Flavour.TEXT, style.width)


def _side_line(label: str, side: FileSide) -> str:
    line = (
        f"{label}: {side.path}  [{side.format.value}, {side.convention.value} conventions]  "
        f"{count(side.params)} params"
    )
    if side.paired is None or not side.outside:
        return line
    listed = side.outside[:_LISTED]
    terms = "".join(
        f" {'-' if params < 0 else '+'} {count(abs(params))} {name}" for name, params in listed
    )
    more = ""
    if len(side.outside) > _LISTED:
        rest = sum(params for _, params in side.outside[_LISTED:])
        more = (
            f" {'-' if rest < 0 else '+'} {count(abs(rest))} in {len(side.outside) - _LISTED} more"
        )
    return f"{line} = {count(side.paired)} in the pairs{terms}{more}"


def _table(report: CompareReport, style: Style) -> Table:
    rows = tuple(
        (
            pair.source or "-",
            pair.source_type or "-",
            pair.export or "-",
            pair.export_type or "-",
            count(pair.source_params) if pair.source_params is not None else "-",
            count(pair.export_params) if pair.export_params is not None else "-",
            _status(pair.status, style),
        )
        for pair in report.pairs
    )
    return Table(
        ("source", "type", "export", "type", "source params", "export params", "status"),
        rows,
        ("left", "left", "left", "left", "right", "right", "left"),
        keys=(0, 2, 6),
        wrap=(0, 2),
        short=("", "", "", "", "source", "export", ""),
        labels=("source", "source type", "export", "export type", "", "", ""),
    )


def _status(status: Status, style: Style) -> str:
    return paint(status.value, STATUS_COLOUR.get(status, "red"), style)


def _title(pair: PairResult, style: Style) -> str:
    return f"{pair.source or '(none)'} -> {pair.export or '(none)'}: {_status(pair.status, style)}"


def _pair_lines(pair: PairResult) -> list[str]:
    lines: list[str] = []
    if pair.status is Status.MISSING:
        lines.append(
            "no counterpart found in the export (--map SOURCE=EXPORT pairs by name)"
            if pair.kind is PairKind.RECURRENT
            # --map names recurrent layers only; other layers pair by their tensors.
            else "no counterpart found in the export: no tensor of its shape (as stored or "
            "transposed) whose values agree"
        )
    if pair.status is Status.EXTRA:
        lines.append("in the export only: the source has no such layer")
    if pair.lowering is not None:
        lines.append(_lowering(pair))
    lines += [_mismatch(m) for m in pair.mismatches]
    lines += [_unmatched(u, pair) for u in pair.unmatched]
    lines += [_reconciled(r) for r in pair.reconciled]
    lines += [_difference(d) for d in pair.differences]
    lines += [f"values not verified: {reason}" for reason in pair.unread]
    if pair.compared and not pair.differences:
        exact = pair.max_abs == 0
        lines.append(
            f"values: {count(pair.compared)} elements compared, "
            + ("all bit-identical" if exact else f"max |Δ| {real(pair.max_abs or 0.0)}")
        )
    return lines


def _mismatch(item: Mismatch) -> str:
    if item.field is Field.RESET_AFTER:
        return (
            f"GRU reset_after (ONNX: linear_before_reset) is {item.source} in the source, "
            f"{item.export} in the export: the candidate gate is computed differently"
        )
    if item.field is Field.PARAMS:
        return f"parameters: {count(_int(item.source))} -> {count(_int(item.export))}"
    source, export = (
        quoted(v, grouped=False) if type(v) is int else v for v in (item.source, item.export)
    )
    return f"{item.field.value}: {source} in the source, {export} in the export"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _unmatched(item: Unmatched, pair: PairResult) -> str:
    what = f"{item.name} {shape(item.shape)}, {count(item.params)} parameters"
    if not item.counted and item.side is Side.SOURCE:
        return (
            f"{item.name} {shape(item.shape)}: an integer scalar (a step counter such as "
            "BatchNorm's num_batches_tracked), not a weight; the export does not keep it"
        )
    if not item.counted:
        return (
            f"also in the export's {pair.export} row: {what} beside the cell weights "
            "(a constant the exporter folded; not compared)"
        )
    if item.role == "projection" and item.side is Side.SOURCE:
        return f"projection dropped: {what}, has no counterpart in the export"
    where = "export" if item.side is Side.SOURCE else "source"
    return f"{what} ({item.role}) has no counterpart in the {where}"


def _lowering(pair: PairResult) -> str:
    lowering = pair.lowering
    assert lowering is not None
    form = _LOWERED_FORMS.get(lowering.type, f"a {lowering.type}")
    line = f"lowered in export: the recurrence is {form}, not an RNN/LSTM/GRU node"
    if not pair.compared or pair.differences or pair.unread:
        return line
    line += "; its weights were located and their values match"
    if len(lowering.order) > 1:
        named = lowering.naming.value if lowering.naming else "stored"
        line += f" with the gate blocks in {named} order " + ",".join(lowering.order)
    return line


def _reconciled(item: Reconciled) -> str:
    s = item.source.value if item.source else "source"
    e = item.export.value if item.export else "export"
    what = item.what
    if what is Reconcile.LAYOUT:
        return (
            f"layout: {_LAYOUTS[item.source_order[0]]} <-> {_LAYOUTS[item.export_order[0]]} "
            "(matrices transposed)"
        )
    if what is Reconcile.DIRECTIONS:
        stacked = "onnx's leading [num_directions] axis"
        span = "forward [0], backward [1]" if item.directions == 2 else "one direction, [1, ...]"
        if item.export is Convention.ONNX:
            return f"directions: {s} per-direction tensors stacked along {stacked} ({span})"
        return f"directions: {stacked} split into {e} per-direction tensors ({span})"
    if what is Reconcile.GATE_ORDER:
        return f"gate order: {s} {','.join(item.source_order)} -> {e} {','.join(item.export_order)}"
    zeros = "all zero" if item.value else "NOT all zero (see below)"
    if what is Reconcile.BIAS_PADDED:
        return (
            f"bias zero-padded: +{count(item.params)} parameters, {zeros} (the single bias is "
            "the input bias; the export adds a recurrent bias that must be zero)"
        )
    if what is Reconcile.BIAS_ADDED:
        return f"zero bias added: +{count(item.params)} parameters, {zeros} (no bias in source)"
    if what is Reconcile.BIAS_DROPPED:
        return (
            f"zero bias dropped: -{count(item.params)} parameters, the source's biases are "
            f"{zeros} (a converter stores no bias whose values are all zero)"
        )
    if what is Reconcile.BIAS_SUMMED:
        return (
            f"bias summed: input and recurrent biases differ over {count(item.params)} "
            "parameters but their sums agree, and only the sum acts"
        )
    if what is Reconcile.BIAS_HALVES:
        return f"bias: {_bias_form(item, 0)} <-> {_bias_form(item, 1)}"
    if what is Reconcile.RESET_AFTER:
        return (
            f"reset_after: {_reset(item.source, item.value)} <-> {_reset(item.export, item.value)}"
        )
    if what is Reconcile.DEQUANTIZED:
        side, _, dtypes = (item.tensor or "export ?").partition(" ")
        return (
            f"dequantized: the {side}'s {dtypes} weights were compared as (q - zero_point) · scale "
            "with the file's own scales, each allowed the half quantization step its rounding "
            "cost (beyond --atol/--rtol)"
        )
    if what is Reconcile.TRANSPOSED:
        return f"{item.tensor} is stored with its axes reordered (transposed) in the export"
    if what is Reconcile.RENAMED:
        return f"names: {item.tensor} (the same tensors)"
    if what is Reconcile.RESHAPED:
        return f"reshaped: {item.tensor} (the same elements in the same order)"
    if what is Reconcile.CONVERTED:
        return f"converted: {item.tensor}"
    return f"values within tolerance, not bit-identical: max |Δ| {real(item.max_abs)}"


def _bias_form(item: Reconciled, side: int) -> str:
    convention = item.source if side == 0 else item.export
    form = BiasForm((item.source_order if side == 0 else item.export_order)[0])
    name = convention.value if convention else "?"
    if form is BiasForm.SEPARATE and convention is not None and convention in _SEPARATE_NAMES:
        return f"{name} {_SEPARATE_NAMES[convention]}"
    if form is BiasForm.ONE_TENSOR and convention is Convention.KERAS:
        return f"{name} {_SEPARATE_NAMES[Convention.KERAS]}"
    return f"{name} {_BIAS_FORMS[form]}"


def _reset(convention: Convention | None, value: bool | None) -> str:
    template = _RESET_NAMES.get(convention or Convention.KERAS, "reset_after={value}")
    return f"{convention.value if convention else ''} " + template.format(
        value=value, number=int(bool(value))
    )


def _difference(item: Difference) -> str:
    d = item.delta
    where = item.role
    if item.gate is not None:
        gate = item.gate + (f" (export: {item.export_gate})" if item.export_gate else "")
        where += f", gate {gate}"
    if item.direction is not None:
        where += f", {item.direction.value}"
    at = []
    if item.source is not None:
        at.append(f"source {item.source.tensor}{index(item.source.index)} = {real(d.source_value)}")
    else:
        at.append("source (none: an implicit zero)")
    if item.export is not None:
        at.append(f"export {item.export.tensor}{index(item.export.index)} = {real(d.export_value)}")
    return (
        f"values differ in {where}: max |Δ| {real(d.max_abs)} (rel {real(d.max_rel)}), "
        f"{count(d.mismatched)} of {count(d.elements)} elements beyond tolerance; largest at "
        + ", ".join(at)
    )


def _verdict(report: CompareReport, style: Style) -> str:
    counts = Counter(pair.status for pair in report.pairs)
    summary = ", ".join(f"{n} {status.value}" for status, n in counts.items()) or "nothing to pair"
    if report.passes:
        return f"Result: faithful ({summary})"
    return "Result: " + paint("NOT faithful", "red", style) + f" ({summary})"


# --- JSON ---------------------------------------------------------------------------------


def render_compare_json(report: CompareReport) -> str:
    return json.dumps(compare_to_dict(report), indent=2)


def compare_to_dict(report: CompareReport) -> dict[str, object]:
    return {
        "source": _side_dict(report.source),
        "export": _side_dict(report.export),
        "tolerance": {"atol": report.tolerance.atol, "rtol": report.tolerance.rtol},
        "faithful": report.passes,
        "summary": {
            status.value: n for status, n in Counter(p.status for p in report.pairs).items()
        },
        "pairs": [_pair_dict(pair) for pair in report.pairs],
    }


def _side_dict(side: FileSide) -> dict[str, object]:
    return {
        "file": side.path,
        "format": side.format.value,
        "convention": side.convention.value,
        "params": side.params,
        "paired_params": side.paired,
        "outside_pairs": [{"name": name, "params": params} for name, params in side.outside],
    }


def _pair_dict(pair: PairResult) -> dict[str, object]:
    return {
        "kind": pair.kind.value,
        "source": pair.source,
        "export": pair.export,
        "source_type": pair.source_type,
        "export_type": pair.export_type,
        "status": pair.status.value,
        "source_params": pair.source_params,
        "export_params": pair.export_params,
        "conventions": [
            {
                "what": r.what.value,
                "text": _reconciled(r),
                "params": r.params,
                "source": r.source.value if r.source else None,
                "export": r.export.value if r.export else None,
                "source_order": list(r.source_order) if r.what is Reconcile.GATE_ORDER else [],
                "export_order": list(r.export_order) if r.what is Reconcile.GATE_ORDER else [],
            }
            for r in pair.reconciled
        ],
        "values": {
            "compared": pair.compared,
            "max_abs": _finite(pair.max_abs),
            "max_rel": _finite(pair.max_rel),
        }
        if pair.compared
        else None,
        "differences": [_difference_dict(d) for d in pair.differences],
        "mismatches": [
            {"field": m.field.value, "source": m.source, "export": m.export}
            for m in pair.mismatches
        ],
        "unmatched": [
            {
                "side": u.side.value,
                "tensor": u.name,
                "role": u.role,
                "shape": list(u.shape),
                "params": u.params,
                "counted": u.counted,
            }
            for u in pair.unmatched
        ],
        "lowered": {
            "type": pair.lowering.type,
            "gate_order": list(pair.lowering.order),
            "gate_order_of": pair.lowering.naming.value if pair.lowering.naming else None,
        }
        if pair.lowering is not None
        else None,
        "not_verified": list(pair.unread),
    }


def _difference_dict(item: Difference) -> dict[str, object]:
    d = item.delta
    return {
        "tensor": item.role,
        "direction": item.direction.value if item.direction else None,
        "gate": item.gate,
        "export_gate": item.export_gate,
        "source_tensor": item.source.tensor if item.source else None,
        "source_index": list(item.source.index) if item.source else None,
        "export_tensor": item.export.tensor if item.export else None,
        "export_index": list(item.export.index) if item.export else None,
        "source_value": _finite(d.source_value),
        "export_value": _finite(d.export_value),
        "max_abs": _finite(d.max_abs),
        "max_rel": _finite(d.max_rel),
        "mismatched": d.mismatched,
        "elements": d.elements,
    }


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: null where a difference has no finite size (a relative difference
    against an exact zero, NaN against a number)."""
    return value if value is not None and math.isfinite(value) else None
