"""Cell diagrams as SVG: the picture the seed article draws by hand, one per recurrent layer.

Left, one time step: the input nodes x, the previous outputs p (h at t-1) of every unit, the bias,
wired to every unit h; each group of edges carries its count per gate (input weights `u·d`,
recurrent `u·u`, bias `u`). Layers wider than `MAX_NODES` are drawn as blocks with the same
counts. Right, the cell unrolled over three time steps with the *same* labelled weights at every
step, so weight sharing is visible.

Every count label of the one-step picture is a `<text class="edge-group" data-count="N">`: they
sum to the layer's parameters (tests parse the SVG and check it). Every string from the file
(layer names, tensor names) is escaped: control and other non-printable characters as
`\\xNN` / `\\uNNNN` (`render.text.printable`), XML metacharacters as entities.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from inspector.model import Direction
from inspector.render.text import count
from inspector.render.text import printable as shown
from inspector.report.diagram import CellDiagram, EdgeGroup, EdgeKind

_DOT = "·"
_COLOURS = {
    EdgeKind.INPUT: "#1f77b4",
    EdgeKind.RECURRENT: "#d95f02",
    EdgeKind.BIAS: "#7f7f7f",
    EdgeKind.OTHER: "#7570b3",
}
_NAMES = {
    EdgeKind.INPUT: "W",
    EdgeKind.RECURRENT: "U",
    EdgeKind.BIAS: "b",
    EdgeKind.OTHER: "",
}
_STYLE = (
    "text{font-family:sans-serif;font-size:12px;fill:#222}"
    ".title{font-size:14px;font-weight:bold}.small{font-size:10px;fill:#555}"
    ".node{fill:#fff;stroke:#333;stroke-width:1.2}.unit{fill:#e8f0fb}"
    ".box{fill:#f6f6f6;stroke:#333;stroke-width:1.2}"
    ".edge-group,.shared-weight{paint-order:stroke;stroke:#fff;stroke-width:3px}"
)
_WIDTH = 900
_ROW = 16  # height of one label line
_STEP_W = 430  # width of the one-step panel


def printable(text: str) -> str:
    """A name from a file, safe to place in SVG/HTML text: what a terminal would act on as
    escapes (`render.text.printable`, as every text output), then XML metacharacters as
    entities."""
    return escape(shown(text))


def _attr(text: str) -> str:
    return quoteattr(shown(text))


def _text(x: float, y: float, body: str, cls: str = "", extra: str = "") -> str:
    """`body` must already be escaped."""
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{klass}{extra}>{body}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, width: float = 1.0) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
        f'stroke-width="{width}" marker-end="url(#arrow)"/>'
    )


def _node(x: float, y: float, label: str, cls: str = "node") -> str:
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="13" class="node {cls}"/>' + _text(
        x, y + 4, label, extra=' text-anchor="middle"'
    )


def _box(x: float, y: float, w: float, h: float, label: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" class="box"/>' + _text(
        x + w / 2, y + h / 2 + 4, label, extra=' text-anchor="middle"'
    )


def _direction(group: EdgeGroup) -> str:
    if group.direction is None:
        return ""
    return "fwd " if group.direction is Direction.FORWARD else "bwd "


def _factors(diagram: CellDiagram, group: EdgeGroup) -> str:
    """`5·6 = 30` where the count is the usual product, else the count alone."""
    u, d = diagram.units, diagram.input_dim
    if group.kind is EdgeKind.INPUT and u and d and u * d == group.count:
        return f"{u}{_DOT}{d} = {count(group.count)}"
    if group.kind is EdgeKind.RECURRENT and u and u * u == group.count:
        return f"{u}{_DOT}{u} = {count(group.count)}"
    if group.kind is EdgeKind.BIAS and u and group.count in (u, 2 * u) and group.count != u:
        return f"2{_DOT}{u} = {count(group.count)}"
    return count(group.count)


def _group_label(diagram: CellDiagram, group: EdgeGroup) -> str:
    if group.kind is EdgeKind.OTHER:
        what = printable(group.name or "other")
    else:
        gate = printable(group.gate or "") if len(diagram.gates) > 1 else ""
        gate_part = f'<tspan baseline-shift="sub" font-size="9">{gate}</tspan>' if gate else ""
        what = f"{_NAMES[group.kind]}{gate_part}"
    return f"{_direction(group)}{what}: {_factors(diagram, group)}"


def _labels(diagram: CellDiagram, kind: EdgeKind, x: float, y: float) -> list[str]:
    """The count labels of one kind of edge, one line per gate and direction."""
    out = []
    for row, group in enumerate(g for g in diagram.groups if g.kind is kind):
        out.append(
            _text(
                x,
                y + _ROW * row,
                _group_label(diagram, group),
                "edge-group",
                f' data-kind="{kind.value}" data-count="{group.count}"'
                f' fill="{_COLOURS[kind]}" style="fill:{_COLOURS[kind]}"',
            )
        )
    return out


def _rows(diagram: CellDiagram, kind: EdgeKind) -> int:
    return sum(1 for g in diagram.groups if g.kind is kind)


def _one_step_nodes(diagram: CellDiagram, top: float) -> tuple[list[str], float]:
    """Every connection drawn: x_i -> h_j, p_i -> h_j, 1 -> h_j."""
    d, u = diagram.input_dim or 0, diagram.units or 0
    top += _ROW * max(_rows(diagram, EdgeKind.INPUT) - 1, 0)  # room for the input labels
    gap = 36.0
    left, right = 40.0, 300.0
    xs = [top + 30 + gap * i for i in range(d)]
    ps = [xs[-1] + 50 + gap * i for i in range(u)] if xs else []
    bias_y = (ps[-1] if ps else top) + 50
    span = bias_y - (xs[0] if xs else top)
    hs = [(xs[0] if xs else top) + span * (j + 0.5) / u for j in range(u)]
    out: list[str] = []
    for source_ys, kind in ((xs, EdgeKind.INPUT), (ps, EdgeKind.RECURRENT), ([bias_y], None)):
        colour = _COLOURS[kind or EdgeKind.BIAS]
        if kind is None and not diagram.total(EdgeKind.BIAS):
            continue
        for sy in source_ys:
            for hy in hs:
                out.append(_line(left + 13, sy, right - 15, hy, colour, 0.9))
    for i, y in enumerate(xs):
        out.append(_node(left, y, f"x{i + 1}"))
    for i, y in enumerate(ps):
        out.append(_node(left, y, f"p{i + 1}"))
    if diagram.total(EdgeKind.BIAS):
        out.append(_node(left, bias_y, "1"))
    for j, y in enumerate(hs):
        out.append(_node(right, y, f"h{j + 1}", "unit"))
        out.append(_line(right + 13, y, right + 55, y, "#333"))
        out.append(_text(right + 60, y + 4, f"o{j + 1}"))
    label_x = 110.0
    input_rows = max(_rows(diagram, EdgeKind.INPUT) - 1, 0)
    out += _labels(
        diagram, EdgeKind.INPUT, label_x, (xs[0] if xs else top) - 10 - _ROW * input_rows
    )
    recurrent_y = max((ps[-1] if ps else bias_y) + 26, bias_y + 8)
    out += _labels(diagram, EdgeKind.RECURRENT, label_x, recurrent_y)
    # The recurrence: each unit's output comes back as p at the next step (dashed).
    loop_y = max(bias_y + 30, recurrent_y + _ROW * _rows(diagram, EdgeKind.RECURRENT))
    if hs and ps:
        out.append(
            f'<path d="M{right + 30:.1f},{hs[-1]:.1f} V{loop_y:.1f} H{left - 28:.1f} '
            f'V{ps[0]:.1f} H{left - 15:.1f}" fill="none" '
            f'stroke="{_COLOURS[EdgeKind.RECURRENT]}" stroke-dasharray="4 3" '
            'marker-end="url(#arrow)"/>'
        )
        out.append(_text(left + 150, loop_y + 14, "h at t comes back as p at t+1", "small"))
    bottom = loop_y + 34
    out += _labels(diagram, EdgeKind.BIAS, label_x, bottom)
    bottom += _ROW * max(_rows(diagram, EdgeKind.BIAS), 1)
    others = _labels(diagram, EdgeKind.OTHER, label_x, bottom + 4)
    out += others
    return out, bottom + _ROW * len(others) + 20


def _one_step_blocks(diagram: CellDiagram, top: float) -> tuple[list[str], float]:
    """A wide layer: the three sources and the units as blocks, one arrow per kind of edge."""
    d = "?" if diagram.input_dim is None else count(diagram.input_dim)
    u = "?" if diagram.units is None else count(diagram.units)
    directions = " ×2 directions" if diagram.directions == 2 else ""
    out: list[str] = []
    rows = {kind: max(_rows(diagram, kind), 1) for kind in EdgeKind}
    y = top + 10
    positions = {}
    for kind, label in (
        (EdgeKind.INPUT, f"x_t ({d} inputs)"),
        (EdgeKind.RECURRENT, f"h_t−1 ({u} units)"),
        (EdgeKind.BIAS, "bias"),
    ):
        if kind is EdgeKind.BIAS and not diagram.total(kind):
            continue
        out.append(_box(10, y, 150, 28, label))
        positions[kind] = y + 14
        out += _labels(diagram, kind, 20, y + 44)
        y += 28 + 22 + _ROW * rows[kind]
    unit_y = (top + y) / 2
    out.append(_box(280, unit_y - 20, 140, 40, f"h_t ({u} units){directions}"))
    for kind, mid in positions.items():
        out.append(_line(160, mid, 278, unit_y, _COLOURS[kind], 2.5))
    others = _labels(diagram, EdgeKind.OTHER, 20, y + 4)
    out += others
    return out, y + _ROW * len(others) + 20


def _unrolled(diagram: CellDiagram, left: float, top: float) -> list[str]:
    """Three steps, the same W, U and b on each: shared weights, counted once."""
    w = diagram.total(EdgeKind.INPUT)
    r = diagram.total(EdgeKind.RECURRENT)
    b = diagram.total(EdgeKind.BIAS)
    out = [_text(left, top + 14, "unrolled: the same weights at every step", "small")]
    box_w, step = 80.0, 150.0
    y = top + 90
    for t in range(diagram.steps):
        x = left + 30 + step * t
        out.append(_box(x, y, box_w, 44, f"cell t={t + 1}"))
        out.append(_node(x + box_w / 2, y + 110, f"x{t + 1}"))
        out.append(_line(x + box_w / 2, y + 96, x + box_w / 2, y + 46, _COLOURS[EdgeKind.INPUT]))
        out.append(
            _text(
                x + box_w / 2 + 4,
                y + 74,
                f"W ({count(w)})",
                "shared-weight",
                f' data-step="{t + 1}" data-count="{w}"',
            )
        )
        out.append(_line(x + box_w / 2, y - 2, x + box_w / 2, y - 40, "#333"))
        out.append(_text(x + box_w / 2 - 8, y - 46, f"h{t + 1}"))
        if b:
            out.append(
                _text(
                    x + 4,
                    y + 58,
                    f"b ({count(b)})",
                    "shared-weight small",
                    f' data-step="{t + 1}" data-count="{b}"',
                )
            )
        if t + 1 < diagram.steps:
            out.append(_line(x + box_w, y + 22, x + step - 2, y + 22, _COLOURS[EdgeKind.RECURRENT]))
            out.append(
                _text(
                    x + box_w + 8,
                    y + 16,
                    f"U ({count(r)})",
                    "shared-weight",
                    f' data-step="{t + 1}" data-count="{r}"',
                )
            )
    out.append(
        _text(
            left,
            y + 150,
            f"{count(diagram.params)} parameters, used at every step: 3 steps still "
            f"{count(diagram.params)}, not {count(3 * diagram.params)}",
            "small",
        )
    )
    return out


def diagram_svg(diagram: CellDiagram, top: float = 0.0) -> tuple[str, float]:
    """One layer's drawing, as a `<g>`, and the height it takes."""
    name = printable(diagram.layer)
    title = (
        f"{name} ({printable(diagram.type)}): {count(diagram.params)} parameters, "
        f"units {diagram.units if diagram.units is not None else '?'}, "
        f"input width {diagram.input_dim if diagram.input_dim is not None else '?'}"
        + (f", gates {printable(','.join(diagram.gates))}" if len(diagram.gates) > 1 else "")
    )
    parts = [_text(10, top + 18, title, "title")]
    drawn, bottom = (
        _one_step_nodes(diagram, top + 40)
        if diagram.as_nodes
        else _one_step_blocks(diagram, top + 40)
    )
    parts += drawn
    parts += _unrolled(diagram, _STEP_W + 20, top + 30)
    height = max(bottom, top + 330) - top
    group = (
        f'<g class="cell" data-layer={_attr(diagram.layer)} data-params="{diagram.params}">'
        + "".join(parts)
        + "</g>"
    )
    return group, height


def svg_document(diagrams: Sequence[CellDiagram], title: str) -> str:
    """A standalone SVG holding every diagram, one under another."""
    groups, top = [], 10.0
    for diagram in diagrams:
        group, height = diagram_svg(diagram, top)
        groups.append(group)
        top += height + 20
    if not diagrams:
        groups.append(_text(10, 30, "no recurrent layers found"))
        top = 50
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{top:.0f}" '
        f'viewBox="0 0 {_WIDTH} {top:.0f}" role="img">'
        f"<title>{printable(title)}</title>"
        f"<style>{_STYLE}</style>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>'
        '<rect width="100%" height="100%" fill="#fff"/>' + "".join(groups) + "</svg>"
    )
