"""One self-contained HTML page per run: each file's signature, layer table with a bar chart of
the parameter share per layer, recurrent tensors, formula checks, compute and state per time
step, gates, warnings and the cell diagrams (inline SVG, `render/svg.py`).

Self-contained: no script, no external stylesheet, font or image, and a Content-Security-Policy
that forbids loading anything, so the page opens offline and cannot call out. Every string
from a file is escaped (`svg.printable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from inspector.cells import convention_of
from inspector.compute import Compute
from inspector.model import Check, Dim, TensorSpec
from inspector.render.measure import FONT, fit, text_width
from inspector.render.svg import printable, svg_document
from inspector.render.text import count, exact_bytes, share, split_held
from inspector.render.text import printable as shown
from inspector.render.text import shape as text_shape
from inspector.report.analysis import Report
from inspector.report.batch import Outcome
from inspector.report.diagram import CellDiagram, diagram
from inspector.report.explain import explain_layer
from inspector.report.verdicts import Unit

_CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px;overflow-wrap:break-word}
td.name{overflow-wrap:anywhere;min-width:6em}
h1{font-size:20px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ccc}
h3{font-size:14px;margin-top:20px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;
font-size:13px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37}.mismatch{color:#cf222e;font-weight:bold}.unverified{color:#9a6700}
code{font-size:12px}.note{color:#555;font-size:12px}
details{border-top:1px solid #ccc;padding:4px 0}summary{cursor:pointer;font-size:15px;padding:4px 0}
details[open]>summary{border-bottom:1px solid #eee;margin-bottom:8px}
svg.cells,svg.share-chart{max-width:100%;height:auto}.index td{vertical-align:top}
.files{display:grid;grid-template-columns:minmax(0,1fr)}.files-index{order:-1}.files-index>h2{margin-top:0}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_BAR_W = 360
_NAME_W = 320.0  # the widest layer name the bar chart shows whole
_CHART_FONT = 12.0


def _cell(value: object, numeric: bool = False) -> str:
    body = printable(str(value)) if value is not None else "-"
    return f'<td class="n">{body}</td>' if numeric else f"<td>{body}</td>"


def _name(value: str) -> str:
    """A cell holding a name from the file: it may break anywhere, so a long one wraps inside
    the table instead of pushing it off the page."""
    return f'<td class="name">{printable(value)}</td>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """`rows` hold ready `<td>` cells."""
    head = "".join(f"<th>{printable(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _dims(shape: tuple[Dim, ...] | None) -> str:
    """As the terminal writes a shape (`(20,)`, `(None, 8)`); `?` where the rank is unknown."""
    return "?" if shape is None else text_shape(shape)


def _join(names: Sequence[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _signature(specs: Sequence[TensorSpec], title: str) -> str:
    if not specs:
        return ""
    rows = [[_name(s.name), _cell(_dims(s.shape)), _cell(s.dtype)] for s in specs]
    return f"<h3>{title}</h3>" + _table(("name", "shape", "dtype"), rows)


def _share_chart(report: Report) -> str:
    """A horizontal bar per layer with parameters, its length the layer's share of the total.
    The names' column is as wide as the widest name (up to `_NAME_W`; a longer name is
    shortened around an ellipsis and kept whole in a tooltip), so none is clipped."""
    layers = [layer for layer in report.model.layers if layer.params]
    total = report.totals.total
    if not layers or not total:
        return ""
    row_h = 22
    names = [fit(shown(layer.name), _NAME_W, _CHART_FONT) for layer in layers]
    label_w = max(text_width(name, _CHART_FONT) for name in names) + 12
    height = row_h * len(layers) + 8
    right = 0.0
    bars = []
    for position, (layer, name) in enumerate(zip(layers, names, strict=True)):
        y = 4 + row_h * position
        width = max(1.0, _BAR_W * layer.params / total)
        figure = f"{count(layer.params)} ({share(layer.params, total)})"
        tip = f"<title>{printable(layer.name)}</title>" if name != shown(layer.name) else ""
        bars.append(
            f'<text x="{label_w - 6:.1f}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{tip}{escape(name)}</text>"
            f'<rect class="share" x="{label_w:.1f}" y="{y + 3}" width="{width:.1f}" height="15" '
            f'fill="#4c78a8" data-params="{layer.params}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 15}" font-size="12">{figure}</text>'
        )
        right = max(right, label_w + width + 6 + text_width(figure, _CHART_FONT))
    return (
        f'<svg class="share-chart" xmlns="http://www.w3.org/2000/svg" width="{right + 8:.0f}" '
        f'height="{height}" viewBox="0 0 {right + 8:.0f} {height}" role="img" '
        f'style="font-family:{FONT}">'
        "<title>parameter share per layer</title>" + "".join(bars) + "</svg>"
    )


def _layers(report: Report) -> str:
    total = report.totals.total
    rows = [
        [
            _name(layer.name),
            _cell(layer.type),
            _cell(count(layer.params), True),
            _cell(share(layer.params, total), True),
            _cell(_dims(layer.output_shape) if layer.output_shape is not None else None),
        ]
        for layer in report.model.layers
    ]
    return _table(("layer", "type", "params", "share", "output shape"), rows)


def _tensors(report: Report) -> str:
    rows = [
        [
            _name(check.layer.name),
            _cell(item.direction.value if item.direction else None),
            _cell(item.role.value),
            _name(item.tensor.name),
            _cell(_dims(item.tensor.shape)),
            _cell(item.tensor.dtype),
            _cell(count(item.tensor.params), True),
        ]
        for check in report.checks
        for item in check.layer.tensors
    ]
    headers = ("layer", "direction", "role", "tensor", "shape", "dtype", "params")
    return _table(headers, rows)


def _checks(report: Report) -> str:
    items = []
    for check in report.checks:
        status = check.status.value
        expected = "n/a" if check.expected is None else count(check.expected)
        reason = f" ({printable(check.reason)})" if check.reason else ""
        items.append(
            f"<li><b>{printable(check.layer.name)}</b> ({printable(check.layer.type)}): "
            f"<code>{printable(check.expression) or '-'}</code> = {expected}; "
            f"{split_held(check.layer, report.model)} → "
            f'<span class="{status}">{status}</span>{reason}</li>'
        )
    return "<ul>" + "".join(items) + "</ul>"


def _compute(figures: Compute) -> str:
    rows = [
        [
            _name(item.layer),
            _cell(count(item.macs_per_step), True),
            _cell(count(item.elementwise_per_step), True),
            _cell(
                " + ".join(
                    f"{s.name}{'/' + s.direction.value if s.direction else ''} {s.floats}"
                    for s in item.state
                )
            ),
            _cell(
                None
                if item.state_bytes is None
                else f"{exact_bytes(item.state_bytes)} ({item.state_dtype})"
            ),
        ]
        for item in figures.recurrent
    ]
    rows += [
        [
            _name(f"{item.layer} ({item.type}, {item.kind})"),
            _cell(count(item.macs), True),
            _cell(None),
            _cell(None),
            _cell(None),
        ]
        for item in figures.layers
    ]
    table = _table(
        ("layer", "MACs per step", "element-wise per step", "state (floats)", "state bytes"),
        rows,
    )
    sequence = (
        f"; a sequence of {figures.seq_len:,} steps: {count(figures.macs_per_sequence)} MACs"
        if figures.seq_len
        else ""
    )
    missing = figures.missing
    partial = f" (not counted: {printable(_join(missing))})" if missing else ""
    return (
        table + f'<p class="note">model: {count(figures.macs_per_step)} MACs per time step'
        f"{partial}{sequence}; "
        f"state {exact_bytes(figures.state_bytes)}. Compute scales with the sequence length, "
        "the parameters do not: the same weights are applied at every step.</p>"
    )


def _gates(report: Report) -> str:
    if not report.gates:
        return ""

    def value(number: int, unit: Unit) -> str:
        return exact_bytes(number) if unit is Unit.BYTES else f"{count(number)} {unit.value}"

    rows = [
        [
            _cell(gate.limit),
            _cell(value(gate.allowed, gate.unit), True),
            _cell(value(gate.measured, gate.unit), True),
            _cell("pass" if gate.passed else "FAIL"),
        ]
        for gate in report.gates
    ]
    return "<h3>Gates</h3>" + _table(("gate", "limit", "measured", "result"), rows)


def _diagrams_of(report: Report) -> list[CellDiagram]:
    convention = convention_of(report.model.format)
    return [diagram(explain_layer(layer, convention)) for layer in report.model.recurrent_layers]


def _section(report: Report, diagrams: Sequence[CellDiagram], ids: str) -> str:
    model = report.model
    parts = [
        f'<p class="note">format {printable(model.format.value)}, producer '
        f"{printable(model.producer or 'unknown')}; {count(report.totals.total)} parameters, "
        f"{exact_bytes(report.totals.weights_bytes)} of weights</p>",
        _signature(model.inputs, "Inputs"),
        _signature(model.outputs, "Outputs"),
        "<h3>Layers</h3>",
        _layers(report),
        "<h3>Parameter share per layer</h3>",
        _share_chart(report),
    ]
    if report.checks:
        parts += [
            "<h3>Recurrent layers</h3>",
            _tensors(report),
            "<h3>Formula checks</h3>",
            _checks(report),
        ]
    parts += ["<h3>Compute and state per time step</h3>", _compute(report.compute)]
    parts.append(_gates(report))
    if model.warnings:
        warnings = "".join(f"<li>{printable(w)}</li>" for w in model.warnings)
        parts.append(f"<h3>Warnings</h3><ul>{warnings}</ul>")
    if diagrams:
        parts += ["<h3>Cell diagrams</h3>", svg_document(diagrams, model.path, ids)]
    return "".join(parts)


def _checks_cell(outcome: Outcome) -> str:
    """`2 ok, 1 mismatch`, each coloured as the check lists colour it."""
    tally = outcome.checks
    if not tally:
        return "<td>-</td>"
    words = ", ".join(
        f'<span class="{status.value}">{tally[status]} {status.value}</span>'
        for status in Check
        if tally[status]
    )
    return f"<td>{words}</td>"


def _gates_cell(report: Report) -> str:
    if not report.gates:
        return "<td>-</td>"
    failed = [gate.limit for gate in report.gates if not gate.passed]
    if not failed:
        return '<td class="ok">pass</td>'
    return f'<td class="mismatch">FAIL ({printable(", ".join(failed))})</td>'


def _index_row(number: int, outcome: Outcome) -> str:
    """A file's row of the index: a link to its section, or why it could not be read."""
    report = outcome.report
    if report is None:
        message = (outcome.error or "no model file").removeprefix(f"{outcome.path}: ")
        return (
            f"<tr><td>{number}</td>{_name(outcome.path)}"
            f'<td class="mismatch">unreadable</td><td colspan="3">{printable(message)}</td>'
            "</tr>"
        )
    return (
        f'<tr><td>{number}</td><td class="name"><a href="#file-{number}">'
        f"{printable(outcome.path)}</a></td>{_cell(report.model.format.value)}"
        f"{_cell(count(report.totals.total), True)}{_checks_cell(outcome)}"
        f"{_gates_cell(report)}</tr>"
    )


def _index(rows: Sequence[str], unreadable: int) -> str:
    """One row per file, in order. Written after the sections (a page of many files is written
    a section at a time, and the index needs every file) and shown above them (`order:-1` in
    the page's grid)."""
    read = len(rows) - unreadable
    head = "".join(f"<th>{h}</th>" for h in ("#", "file", "format", "params", "checks", "gates"))
    summary = f"{read:,} read" + (f", {unreadable:,} unreadable" if unreadable else "")
    return (
        f'<section class="files-index"><h2>Files</h2><p class="note">{len(rows):,} files: '
        f"{summary}. Each section below opens on a click.</p>"
        f'<table class="index"><tr>{head}</tr>{"".join(rows)}</table></section>'
    )


HTML_HEAD = (
    "<!DOCTYPE html>\n"
    '<html lang="en"><head><meta charset="utf-8">'
    f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>rnninspect report</title>"
    f"<style>{_CSS}</style></head><body><h1>rnninspect report</h1>"
)
HTML_END = "</body></html>"


class HtmlPage:
    """The page of one or many files, built a file at a time in input order (render/assembly.py
    writes each part as its file's outcome arrives): `add` returns a file's section (the page's
    head before the first), `end` the rest. Of each file it keeps its index row only.

    `listed` (several files, or a directory) adds an index with one row per file (format,
    parameters, checks, gates) linking to its section, and collapses the sections
    (`<details>`), so that a page of hundreds of files stays navigable, with no script.
    `diagrams` replaces each report's own (`explain --layer/--gate`)."""

    def __init__(self, listed: bool, diagrams: Sequence[CellDiagram] | None = None) -> None:
        self.listed = listed
        self.diagrams = diagrams
        self.rows: list[str] = []
        self.unreadable = 0
        self.opened = False  # the head is written

    def add(self, outcome: Outcome) -> str | None:
        """The text for this file now (None: nothing: an unreadable file has a row only)."""
        number = len(self.rows) + 1
        self.rows.append(_index_row(number, outcome))
        report = outcome.report
        if report is None:
            self.unreadable += 1
            return None
        own = _diagrams_of(report) if self.diagrams is None else self.diagrams
        body = _section(report, own, f"f{number}-")
        title = printable(report.model.path)
        if self.listed:
            section = (
                f'<details id="file-{number}"><summary><b>{title}</b> '
                f'<span class="note">{printable(report.model.format.value)}, '
                f"{count(report.totals.total)} parameters</span></summary>{body}</details>"
            )
        else:
            section = f'<h2 id="file-{number}">{title}</h2>{body}'
        head = "" if self.opened else HTML_HEAD + (_FILES_OPEN if self.listed else "")
        self.opened = True
        return head + section

    def end(self, *, always: bool = False) -> str | None:
        """The rest of the page; None when no section was written and not `always` (a page
        of nothing: stderr said why)."""
        if not self.opened:
            if not always:
                return None
            return (
                HTML_HEAD
                + (
                    _FILES_OPEN + _index(self.rows, self.unreadable) + "</div>"
                    if self.listed
                    else ""
                )
                + HTML_END
            )
        if self.listed:
            return _index(self.rows, self.unreadable) + "</div>" + HTML_END
        return HTML_END


# The sections and the index in a one-column grid: the index, written last, shown first.
_FILES_OPEN = '<div class="files">'


def render_html(
    items: Sequence[Report | Outcome],
    diagrams: Sequence[CellDiagram] | None = None,
    *,
    index: bool | None = None,
) -> str:
    """The page for every file, in order. An `Outcome` without a report is an unreadable file,
    listed with its error. `diagrams` replaces each report's own (`explain --layer/--gate`).
    `index` (by default: more than one file): see `HtmlPage`."""
    outcomes = [
        item if isinstance(item, Outcome) else Outcome(item.model.path, report=item)
        for item in items
    ]
    page = HtmlPage(len(outcomes) > 1 if index is None else index, diagrams)
    parts = [page.add(outcome) for outcome in outcomes]
    return "".join(part for part in parts if part) + (page.end(always=True) or "")
