"""One file's report as blocks (terminal table, Markdown) and as the JSON contract."""

from __future__ import annotations

import json
from collections.abc import Sequence

from inspector.blocks import BLOCK_BY_NAME
from inspector.cells import convention_of
from inspector.compute import Compute, Deployment, RecurrentCompute
from inspector.counts import quoted
from inspector.model import Check, Direction, Layer, Tensor, WidthSource
from inspector.render.blocks import Block, Flavour, Heading, Lines, Table
from inspector.render.gates import gate_messages, gate_table
from inspector.render.reconcile import reconcile_lines
from inspector.render.text import (
    Style,
    bar,
    count,
    human_bytes,
    listed,
    paint,
    plural,
    shape,
    share,
    split_held,
)
from inspector.render.view import LayerView
from inspector.report.analysis import RecurrentCheck, Report
from inspector.report.contract import gate_order
from inspector.report.reconcile import reconcile

CHECK_COLOUR = {Check.OK: "green", Check.MISMATCH: "red", Check.UNVERIFIED: "yellow"}

_WIDTH_SOURCE = {
    WidthSource.CONFIG: "input width from the model config",
    WidthSource.TENSOR: "input width from the kernel shape",
    WidthSource.UNKNOWN: "input width unknown",
}


def render_json(reports: Sequence[Report], *, as_array: bool) -> str:
    if not as_array:
        return json.dumps(reports[0].to_dict(), indent=2)
    if not reports:
        return "[]"
    return "[\n" + ",\n".join(json_element(report) for report in reports) + "\n]"


def json_element(report: Report) -> str:
    """The report as an element of a JSON array, indented as `json.dumps(reports, indent=2)`
    writes it: an array of many files is written a file at a time."""
    text = json.dumps(report.to_dict(), indent=2)
    return "\n".join("  " + line for line in text.split("\n"))


def recurrent_rows(report: Report) -> set[str]:
    """The names of the rows that are, or (a nested model) contain, a recurrent layer: each
    recurrent layer's name and every `/`-separated beginning of it. A set built once per
    report, so asking of every row is linear (a scan of the checks per row was quadratic)."""
    rows: set[str] = set()
    for check in report.checks:
        name = check.layer.name
        rows.add(name)
        while "/" in name:
            name = name.rpartition("/")[0]
            rows.add(name)
    return rows


def shown_layers(report: Report, view: LayerView) -> list[Layer]:
    layers = report.model.layers
    if view is LayerView.WEIGHTED:
        return [layer for layer in layers if layer.params or layer.shared]
    if view is LayerView.RECURRENT:
        rows = recurrent_rows(report)
        return [layer for layer in layers if layer.name in rows]
    return list(layers)


def report_blocks(report: Report, view: LayerView, flavour: Flavour, style: Style) -> list[Block]:
    model = report.model
    producer = model.producer or "unknown"
    details = [f"{detail.key}: {detail.value}" for detail in model.details]
    if flavour is Flavour.MARKDOWN:
        blocks: list[Block] = [
            Heading(model.path, code=True),
            Lines((f"format: {model.format.value}, producer: {producer}", *details)),
        ]
    else:
        blocks = [Heading(f"{model.path}  [{model.format.value}]  producer: {producer}")]
        if details:
            blocks.append(Lines(tuple(details)))
    if view is LayerView.RECURRENT and not report.checks:
        # Nothing to list: say so instead of drawing an empty table.
        layers = plural(len(model.layers), "layer")
        blocks.append(
            Lines(
                (
                    f"No recurrent layers: --recurrent-only lists none of its {layers} "
                    "(the totals count every layer).",
                ),
                indent=False,
            )
        )
    else:
        blocks.append(_layer_table(report, view, flavour, style))
        shared = _shared_note(report)
        if shared:
            blocks.append(Lines(shared, indent=False))
        hidden = _hidden_note(report, view)
        if hidden:
            blocks.append(Lines((hidden,), indent=False))
    reconciled = reconcile(model)
    if report.checks:
        blocks += [
            Heading("Recurrent layers"),
            _tensor_table(report.checks),
            Heading("Formula check"),
            Lines(
                tuple(
                    line
                    for check, item in zip(report.checks, reconciled, strict=True)
                    for line in _check_lines(check, report, style)
                    + [f"    = {text}" for text in reconcile_lines(item)]
                )
            ),
            Heading("Compute per time step"),
            _compute_table(
                report.compute,
                frozenset(c.layer.name for c in report.checks if c.layer.cell.block),
            ),
            Lines((_compute_line(report.compute),), indent=False),
        ]
        if model.decoder is not None:  # a language model: what a sequence holds
            blocks += [Heading("State per sequence"), Lines(_state_lines(report.deployment))]
    elif view is not LayerView.RECURRENT:
        blocks.append(Lines(("No recurrent layers found.",), indent=False))
    if flavour is Flavour.MARKDOWN:
        blocks.append(Heading("Totals"))
    blocks.append(Lines(tuple(_totals(report)), indent=False))
    if report.gates:
        blocks += [Heading("Gates"), gate_table(report, style)]
        # The Markdown artifact says why a gate failed; on a terminal stderr already does.
        failures = gate_messages(report, with_file=False)
        if failures and flavour is Flavour.MARKDOWN:
            blocks.append(Lines(tuple(failures), bullets=True))
    if model.warnings:
        blocks += [Heading("Warnings"), Lines(model.warnings, bullets=True)]
    return blocks


_SHORT = {Direction.FORWARD: " fwd", Direction.BACKWARD: " bwd"}


def _compute_table(figures: Compute, blocks_named: frozenset[str] = frozenset()) -> Table:
    """Each recurrent layer's MACs, element-wise work and state per step (inspector.compute);
    a recurrent block's (`blocks_named`) element-wise work is its recurrence, in its MACs."""
    rows = tuple(
        (
            item.layer,
            count(item.macs_per_step),
            "in MACs" if item.layer in blocks_named else count(item.elementwise_per_step),
            " + ".join(
                f"{stream.name}{_SHORT[stream.direction] if stream.direction else ''} "
                f"{stream.floats:,}"
                for stream in item.state
            )
            or "-",
            "n/a"
            if item.state_bytes is None
            else f"{human_bytes(item.state_bytes)} {_dtypes(item)}",
        )
        for item in figures.recurrent
    )
    return Table(
        ("layer", "MACs", "element-wise", "state (floats)", "state"),
        rows,
        ("left", "right", "right", "left", "left"),
        wrap=(0, 3),
        short=("", "", "elem.", "floats", ""),
    )


def _dtypes(item: RecurrentCompute) -> str:
    """The dtype(s) a layer's state is kept in: a block keeps some streams in float32."""
    names = dict.fromkeys(stream.dtype or item.state_dtype for stream in item.state)
    return "/".join(names) or item.state_dtype


def _compute_line(figures: Compute) -> str:
    """The model's step: every recurrent layer plus every other layer once."""
    others = f" + {count(figures.layer_macs)} in other layers" if figures.layers else ""
    missing = figures.missing
    partial = f" (not counted: {_names(missing)})" if missing else ""
    line = (
        f"Per time step: {count(figures.macs_per_step)} MACs "
        f"({count(figures.recurrent_macs_per_step)} recurrent{others}){partial}; "
        f"state {human_bytes(figures.state_bytes)}"
    )
    if figures.seq_len is not None:
        line += (
            f"; {figures.seq_len:,} steps: {count(figures.macs_per_sequence)} MACs "
            "(the parameters stay the same)"
        )
    return line


def _names(names: Sequence[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _state_lines(figures: Deployment) -> tuple[str, ...]:
    """The recurrent state (constant in the context), a hybrid's KV caches at the context, and
    what a transformer of the same width and depth would keep (inspector.compute.deployment)."""
    tokens = f"{figures.context:,} tokens (--context)"
    held = f"as {figures.dtype}, --state-dtype" if figures.dtype else "each in its own dtype"
    lines = [
        f"Recurrent state: {count(figures.state_elements)} elements, "
        f"{human_bytes(figures.state_bytes)} ({held}), the same at any context length"
        + ("" if figures.state_complete else " (some layers' state unknown)")
    ]
    if figures.kv:
        layers = sum(item.count for item in figures.kv)
        windows = {item.window for item in figures.kv if item.window}
        window = f", a sliding window of {min(windows):,} tokens" if windows else ""
        lines.append(
            f"KV cache of {plural(layers, 'attention layer')} at {tokens}{window}: "
            f"{count(figures.kv_elements)} elements, {human_bytes(figures.kv_bytes)} "
            f"{figures.kv_dtype}; with the recurrent state {human_bytes(figures.total_bytes)}"
        )
    decoder, elements = figures.decoder, figures.transformer_kv_elements
    if decoder is not None and elements is not None:
        lines.append(
            f"A transformer of the same width ({decoder.width:,}) and depth "
            f"({plural(decoder.depth, 'layer')}) would keep a KV cache of 2·{decoder.width:,}·"
            f"{decoder.depth:,}·{figures.context:,} = {count(elements)} elements, "
            f"{human_bytes(figures.transformer_kv_bytes or 0)} {figures.kv_dtype} at {tokens} "
            "(assuming full multi-head attention in every layer: keys and values of d_model "
            "each per token)"
        )
    return tuple(lines)


def _layer_table(report: Report, view: LayerView, flavour: Flavour, style: Style) -> Table:
    """Each layer's count and share; its output shape where the file gives one (Keras's
    summary() column), and whether it trains where some parameters do not (the layers that
    make up "Non-trainable params")."""
    total = report.totals.total
    layers = shown_layers(report, view)
    with_shape = any(layer.output_shape is not None for layer in layers)
    with_trainable = bool(report.totals.non_trainable)
    with_bar = flavour is Flavour.TEXT
    headers = ["layer", "type"]
    align = ["left", "left"]
    if with_shape:
        headers.append("output shape")
        align.append("left")
    headers.append("params")
    align.append("right")
    if with_trainable:
        headers.append("trainable")
        align.append("left")
    headers.append("share")
    align.append("right")
    if with_bar:
        headers.append("share bar")
        align.append("left")
    rows = []
    for layer in layers:
        kind = layer.type
        if layer.shared_with:
            kind += f" (shared with {listed(layer.shared_with)})"
        row = [layer.name, kind]
        if with_shape:
            row.append(shape(layer.output_shape) if layer.output_shape is not None else "-")
        row.append(count(layer.params))
        if with_trainable:
            row.append(_trainable(layer))
        row.append(share(layer.params, total))
        if with_bar:
            row.append(bar(layer.params, total, style))
        rows.append(tuple(row))
    column = {header: index for index, header in enumerate(headers)}
    return Table(
        tuple(headers),
        tuple(rows),
        tuple(align),
        wrap=(0, 1),
        short=tuple("output" if header == "output shape" else "" for header in headers),
        decoration=(column["share bar"],) if with_bar else (),
        optional=tuple(column[h] for h in ("share", "output shape") if h in column),
    )


def _trainable(layer: Layer) -> str:
    """`yes`, `no`, or how many of the layer's parameters train (a BatchNormalization's moving
    statistics do not, whatever its `trainable` says); `-` for a layer without parameters."""
    if not layer.params:
        return "-"
    trainable = sum(t.params for t in layer.tensors if t.trainable is not False)
    if trainable == layer.params:
        return "yes"
    return "no" if not trainable else f"{count(trainable)} of {count(layer.params)}"


def _shared_note(report: Report) -> tuple[str, ...]:
    """Each stored tensor counts in one row: say where a later row's shared tensors are."""
    lines = []
    for layer in report.model.layers:
        by_owner: dict[str, list[Tensor]] = {}
        for item in layer.shared:
            by_owner.setdefault(item.owner, []).append(item.tensor)
        for owner, held in by_owner.items():
            lines.append(
                f"({layer.name} also reads {len(held)} tensor(s), "
                f"{count(sum(t.params for t in held))} params, held by {owner}: counted once, "
                "in that row)"
            )
    return tuple(lines)


def _hidden_note(report: Report, view: LayerView) -> str | None:
    hidden = len(report.model.layers) - len(shown_layers(report, view))
    if not hidden:
        return None
    if view is LayerView.RECURRENT:
        return f"({hidden} non-recurrent layer(s) not shown; the totals count every layer)"
    return f"({hidden} layer(s) without parameters not shown; drop --weighted-only to list them)"


def _tensor_table(checks: Sequence[RecurrentCheck]) -> Table:
    rows = []
    for check in checks:
        spec = BLOCK_BY_NAME.get(check.layer.cell.block or "")
        for item in check.layer.tensors:
            if spec is not None and item.member:  # a block's tensor: its name and its part
                tensor = f"{item.member} ({spec.member(item.member).part.value})"
            else:
                tensor = item.role.value
            rows.append(
                (
                    check.layer.name,
                    item.direction.value if item.direction else "-",
                    tensor
                    + (f" [{item.gate}]" if item.gate else "")
                    + (f" (shared with {item.shared_with})" if item.shared_with else ""),
                    shape(item.tensor.shape),
                    item.tensor.dtype,
                    count(item.tensor.params),
                )
            )
    return Table(
        ("layer", "direction", "tensor", "shape", "dtype", "params"),
        tuple(rows),
        ("left", "left", "left", "left", "left", "right"),
        keys=(0, 1, 2),
        wrap=(0, 2),
    )


def _check_lines(check: RecurrentCheck, report: Report, style: Style) -> list[str]:
    layer = check.layer
    if layer.cell.block is not None:
        return _block_check_lines(check, style)
    gates = ",".join(gate_order(layer, convention_of(report.model.format)))
    units = quoted(layer.cell.units, grouped=False) if layer.cell.units is not None else None
    head = f"{layer.name} ({layer.type}, units={units}, gates {gates or 'unknown'}"
    if layer.directions == 2:
        head += ", bidirectional"
    head += ")"
    status = paint(check.status.value, CHECK_COLOUR[check.status], style)
    if check.expected is None:
        return [f"{head}: {status} - {check.reason}", *(f"    - {note}" for note in layer.notes)]
    line = (
        f"{head}: {check.expression} = {count(check.expected)}; {split_held(layer, report.model)} "
        f"-> {status}  ({_WIDTH_SOURCE[layer.input_dim_source]}: {layer.input_dim})"
    )
    lines = [line, f"    {check.reason}"] if check.reason else [line]
    return lines + [f"    - {note}" for note in layer.notes]


_DIMS_SOURCE = {
    WidthSource.CONFIG: "dimensions from the configuration",
    WidthSource.TENSOR: "dimensions from the tensors",
    WidthSource.UNKNOWN: "dimensions unknown",
}


def _block_check_lines(check: RecurrentCheck, style: Style) -> list[str]:
    """`name (MambaMixer: Mamba, d_model=16 d_inner=32 ...): in_proj.weight 64·16 + ... = N;
    stored N -> ok`, the source it follows, and why it is not ok."""
    layer = check.layer
    spec = BLOCK_BY_NAME.get(layer.cell.block or "")
    shown = frozenset(spec.dims) if spec else frozenset()  # flags (a bias or not) left out
    dims = " ".join(f"{name}={value:,}" for name, value in layer.cell.dims if name in shown)
    head = f"{layer.name} ({layer.type}: {layer.cell.kind.value}{', ' + dims if dims else ''})"
    status = paint(check.status.value, CHECK_COLOUR[check.status], style)
    if check.expected is None:
        lines = [f"{head}: {status} - {check.reason}"]
    else:
        lines = [
            f"{head}: {check.expression} = {count(check.expected)}; stored "
            f"{count(layer.params)} -> {status}  ({_DIMS_SOURCE[layer.input_dim_source]})"
        ]
        if check.reason:
            lines.append(f"    {check.reason}")
    if spec is not None:
        lines.append(f"    - follows {spec.source}")
    return lines + [f"    - {note}" for note in layer.notes]


def _totals(report: Report) -> list[str]:
    totals = report.totals
    missing = report.model.unstored
    lines = [
        f"Total params: {count(totals.total)} ({human_bytes(totals.weights_bytes)})",
        f"Trainable params: {count(totals.trainable)}",
        f"Non-trainable params: {count(totals.non_trainable)}",
    ]
    if missing:
        names = ", ".join(f"{t.name} {t.shape}" for t in missing[:6])
        more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        lines[0] += " stored: the weights are not in this file"
        lines.append(
            f"Not in the file: {count(sum(t.params for t in missing))} params the graph "
            f"declares in {len(missing)} variable(s) nothing stores ({names}{more})"
        )
    for item in report.model.excluded:
        names = ", ".join(t.name for t in item.tensors[:6])
        more = f" and {len(item.tensors) - 6} more" if len(item.tensors) > 6 else ""
        lines.append(f"Not counted: {count(item.params)} in {item.reason} ({names}{more})")
    optimizer = report.model.optimizer
    if optimizer is not None:
        lines.append(
            f"Optimizer state (not counted above): {count(optimizer.values)} values, "
            f"{human_bytes(optimizer.nbytes)}, {100 * optimizer.share_of_file:.1f}% of the file"
        )
    return lines
