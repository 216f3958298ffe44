"""Cell diagrams as SVG: the picture the seed article draws by hand, one per recurrent layer.

A layer's header names it, its count and that count as a sum, the tensors as the file stores
them and the notation. Then one small panel per gate and direction (a SimpleRNN has one): the
features x₁…x_d, the previous outputs p₁…p_u (h at t−1) and a "1" per bias vector on the left,
the units h₁…h_u on the right, an edge from every source to every unit — one weight each (a
ConvLSTM edge: one kernel) — and a dashed loop from each hⱼ back to its own pⱼ. Wide columns keep
their first two nodes and the last around an ellipsis row that says how many it leaves out. Last,
the cell unrolled over three time steps x(t=1), x(t=2), x(t=3), the same labelled W, U and b at
every step (two chains, each with its own U, for a bidirectional layer).

Every label is placed from its measured width (`render/measure.py`), so none overlaps another or
leaves the picture; a name too long for its place is shortened around an ellipsis and kept whole in
a `<title>` tooltip. Structure is readable as data: every count label of the panels and header is
a `<text class="edge-group" data-count=N>` (they sum to the layer's parameters), every edge a
`<line class="edge" data-kind data-gate data-from data-to>`, every loop a `<path class="loop">`
from `h<j>` to `p<j>`. Every string from the file (layer and tensor names) is escaped: control
and other non-printable characters as `\\xNN` / `\\uNNNN` (`render.text.printable`), XML
metacharacters as entities.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from inspector.model import CellKind, Direction, TensorRole
from inspector.render.explain import GATE_NAMES, ONNX_INPUTS
from inspector.render.measure import FONT, fit, text_width
from inspector.render.text import count
from inspector.render.text import printable as shown
from inspector.report.diagram import (
    CellDiagram,
    EdgeGroup,
    EdgeKind,
    Panel,
    kernel_elements,
    visible,
)

_COLOURS = {
    EdgeKind.INPUT: "#1f77b4",
    EdgeKind.RECURRENT: "#d95f02",
    EdgeKind.BIAS: "#6f6f6f",
    EdgeKind.OTHER: "#7570b3",
}
_LETTERS = {EdgeKind.INPUT: "W", EdgeKind.RECURRENT: "U", EdgeKind.BIAS: "b"}
# Each drawn unit's loop (and its hⱼ and pⱼ rings) in its own colour, none of the edges' colours.
_UNIT_COLOURS = ("#7b3294", "#1b9e77", "#c51b7d", "#4d9221", "#8c510a", "#2166ac")
_STYLE = (
    f"text{{font-family:{FONT};font-size:12px;fill:#222}}"
    ".title{font-size:14px;font-weight:bold}.head{font-weight:bold}.small{font-size:11px;fill:#444}"
    ".node{fill:#fff;stroke:#333;stroke-width:1.2}.unit{fill:#e8f0fb}"
    ".box{fill:#f6f6f6;stroke:#333;stroke-width:1.2}.panel{fill:none;stroke:#ddd}"
    ".edge-group,.shared-weight,.elided{paint-order:stroke;stroke:#fff;stroke-width:3px}"
)
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_DIRECTION_NAMES = {Direction.FORWARD: "forward", Direction.BACKWARD: "backward"}

MAX_WIDTH = 960.0  # a layer's panels wrap to rows within this width
_SIZE, _SMALL, _TITLE = 12.0, 11.0, 14.0
_R = 13.0  # node radius
_PITCH = 30.0  # node rows
_BIAS_PITCH = 44.0  # a "1" row: the node and its label below it
_LINE = 17.0  # a line of text
_LANE = 8.0  # between two feedback loops
_LANE_OFF = 10.0  # from a node to the nearest loop
_PAD = 6.0
_COLUMNS = 150.0  # from the sources' centres to the units'
_GAP = 18.0  # between panels


def printable(text: str) -> str:
    """A name from a file, safe to place in SVG/HTML text: what a terminal would act on as
    escapes (`render.text.printable`, as every text output), then XML metacharacters as
    entities."""
    return escape(shown(text))


def _attr(text: str) -> str:
    return quoteattr(shown(text))


def sub(number: int) -> str:
    """`12` as subscript digits, `₁₂`."""
    return str(number).translate(_SUBSCRIPTS)


@dataclass
class Block:
    """Drawn parts in local coordinates and the box they fill, from (0, 0). Text goes in a layer
    of its own, over every line and shape."""

    parts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0

    def text(
        self,
        x: float,
        y: float,
        body: str,
        *,
        size: float = _SIZE,
        bold: bool = False,
        cls: str = "",
        anchor: str = "start",
        attrs: str = "",
        room: float | None = None,
        tip: str | None = None,
        backdrop: bool = False,
    ) -> None:
        """Place `body` (raw text, escaped here) with its baseline at `y`; shortened to `room`
        px if given, the whole text (or `tip`) then in a `<title>` tooltip. `backdrop`: a white
        box behind it, hiding the edges it sits on."""
        body = shown(body)
        short = body if room is None else fit(body, room, size, bold)
        width = text_width(short, size, bold)
        left = x - (width if anchor == "end" else width / 2 if anchor == "middle" else 0)
        if tip is None and short != body:
            tip = body
        tip = f"<title>{escape(shown(tip))}</title>" if tip else ""
        klass = f' class="{cls}"' if cls else ""
        align = f' text-anchor="{anchor}"' if anchor != "start" else ""
        if backdrop:
            self.labels.append(
                f'<rect x="{left - 2:.1f}" y="{y - size * 0.85:.1f}" width="{width + 4:.1f}" '
                f'height="{size * 1.1:.1f}" fill="#fff" fill-opacity="0.85"/>'
            )
        self.labels.append(
            f'<text x="{x:.1f}" y="{y:.1f}"{klass}{align}{attrs}>{tip}{escape(short)}</text>'
        )
        self.grow(left + width, y + size * 0.3)

    def grow(self, right: float, bottom: float) -> None:
        self.width = max(self.width, right)
        self.height = max(self.height, bottom)

    def place(self, other: Block, x: float, y: float, attrs: str = "") -> None:
        """Draw `other` with its origin at (x, y); `attrs` mark both its layers' groups."""
        move = f'transform="translate({x:.1f},{y:.1f})"{attrs}'
        self.parts += [f'<g class="shapes" {move}>', *other.parts, "</g>"]
        self.labels += [f'<g class="labels" {move}>', *other.labels, "</g>"]
        self.grow(x + other.width, y + other.height)

    def svg(self) -> str:
        return "".join(self.parts) + "".join(self.labels)


def _arrow(ids: str, small: bool = False) -> str:
    """The document's arrowhead; `small` for a panel's edges, many of which meet at a unit."""
    return f' marker-end="url(#{ids}{"tip" if small else "arrow"})"'


def _line(
    block: Block, x1: float, y1: float, x2: float, y2: float, colour: str, ids: str, edge: str = ""
) -> None:
    """An arrow; `edge` (its data attributes) makes it one of a panel's edges."""
    attrs = f' class="edge"{edge}' if edge else ""
    block.parts.append(
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
        f'stroke-width="1"{attrs}{_arrow(ids, bool(edge))}/>'
    )


def _node(
    block: Block, x: float, y: float, label: str, name: str, cls: str = "", ring: str = ""
) -> None:
    stroke = f' style="stroke:{ring};stroke-width:2"' if ring else ""
    block.parts.append(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_R:.0f}" class="node {cls}" data-node="{name}"'
        f"{stroke}/>"
    )
    block.text(x, y + 4, label, anchor="middle")


def _box(block: Block, x: float, y: float, w: float, h: float, cls: str = "box") -> None:
    block.parts.append(
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="4" class="{cls}"/>'
    )
    block.grow(x + w, y + h)


# ------------------------------------------------------------------------------ words


def _gate_title(diagram: CellDiagram, panel: Panel) -> str:
    if sum(1 for other in diagram.every_panel if other.direction == panel.direction) == 1:
        return "one step"
    if not diagram.gate_names_known:
        return f"block {panel.gate}"
    name = GATE_NAMES.get(panel.kind, {}).get(panel.gate)
    return f"gate {panel.gate} ({name})" if name else f"gate {panel.gate}"


def _bias_name(group: EdgeGroup) -> str:
    if group.role is TensorRole.INPUT_BIAS:
        return "b input"
    if group.role is TensorRole.RECURRENT_BIAS:
        return "b recurrent"
    return "b"


def _group_text(diagram: CellDiagram, group: EdgeGroup) -> str:
    """`W: 2·1 = 2`, `U: 16·16 = 256 (3·3 drawn)`, `W: 2·1 edges × 3×3 = 18`."""
    if group.kind is EdgeKind.BIAS:
        return f"{_bias_name(group)}: {count(group.count)}"
    letter = _LETTERS[group.kind]
    if group.sources is None or group.targets is None:
        return f"{letter}: {count(group.count)}"
    product = f"{count(group.targets)}·{count(group.sources)}"
    if group.per_edge > 1:
        kernel = "×".join(str(k) for k in diagram.kernel_size)
        product = f"{product} edges × {kernel}"
    drawn = len(visible(group.sources)) * len(visible(group.targets))
    elided = f" ({drawn} drawn)" if drawn != group.sources * group.targets else ""
    return f"{letter}: {product} = {count(group.count)}{elided}"


def _group_attrs(group: EdgeGroup) -> str:
    edges = "" if group.edges is None else f' data-edges="{group.edges}"'
    return (
        f' data-kind="{group.kind.value}" data-count="{group.count}"'
        f' data-per-edge="{group.per_edge}"'
        f"{edges} data-gate={_attr(group.gate or '')}"
        f' data-direction="{group.direction.value if group.direction else ""}"'
        f' style="fill:{_COLOURS[group.kind]}"'
    )


def _panel_sum(panel: Panel) -> str:
    """`W 15 + U 25 + b 10 = 50`: a bias of two vectors is one term."""
    merged: dict[str, int] = {}
    for group in panel.groups:
        letter = _LETTERS[group.kind]
        merged[letter] = merged.get(letter, 0) + group.count
    terms = [f"{letter} {count(value)}" for letter, value in merged.items()]
    return " + ".join(terms) + f" = {count(panel.count)}"


# ------------------------------------------------------------------------------ one gate


def _panel(diagram: CellDiagram, panel: Panel, ids: str) -> Block:
    block = Block()
    block.text(_PAD, 14, _gate_title(diagram, panel), bold=True, cls="head")
    block.text(_PAD, 14 + _LINE, _panel_sum(panel), bold=True, cls="head")
    if not panel.wired:
        return _unwired(diagram, panel, block)
    d, r = panel.sources(EdgeKind.INPUT), panel.sources(EdgeKind.RECURRENT)
    units = panel.units or 0
    shown_units = visible(units)
    looped = shown_units if r == units else ()
    lanes = max(len(looped), 1)
    sx = _PAD + _LANE_OFF + (lanes - 1) * _LANE + _R
    # The units' column sits right of the widest label the sources' column writes.
    widths = [text_width(_group_text(diagram, g), _SIZE) for g in panel.groups]
    widths += [
        text_width(f"{count(n - len(visible(n)))} more", _SMALL) + 10
        for n in (d, r)
        if len(visible(n)) < n
    ]
    tx = sx + max(_COLUMNS, max(widths) + 2 * _R + 10)
    y = 28.0 + _LINE
    sources: list[tuple[EdgeKind, str, float]] = []  # kind, node name, centre y

    def column(kind: EdgeKind, letter: str, nodes: int, ring: bool) -> None:
        nonlocal y
        for group in panel.of(kind):
            block.text(
                sx - _R,
                y + 12,
                _group_text(diagram, group),
                cls="edge-group",
                attrs=_group_attrs(group),
                backdrop=True,
            )
        y += _LINE + 2
        drawn = visible(nodes)
        for position, index in enumerate(drawn):
            if position == 2 and len(drawn) < nodes:
                _ellipsis(block, sx, y + _PITCH / 2, nodes - len(drawn), True)
                y += _PITCH
            cy = y + _PITCH / 2
            colour = _unit_colour(shown_units, index) if ring else ""
            _node(block, sx, cy, f"{letter}{sub(index)}", f"{letter}{index}", ring=colour)
            sources.append((kind, f"{letter}{index}", cy))
            y += _PITCH

    column(EdgeKind.INPUT, "x", d, False)
    column(EdgeKind.RECURRENT, "p", r, bool(looped))
    ones = 0
    for group in panel.of(EdgeKind.BIAS):
        for vector in range(group.sources or 0):
            ones += 1
            cy = y + _PITCH / 2
            _node(block, sx, cy, "1", f"one{ones}")
            sources.append((EdgeKind.BIAS, f"one{ones}", cy))
            if vector == 0:  # beside its "1"; a group of two vectors is labelled once
                block.text(
                    sx + 6,
                    cy + _R + 11,
                    _group_text(diagram, group),
                    cls="edge-group",
                    attrs=_group_attrs(group),
                    backdrop=True,
                )
            y += _BIAS_PITCH
    bottom = y
    # The units, spread over the sources' height.
    rows = len(shown_units) + (len(shown_units) < units)
    first, last = sources[0][2], sources[-1][2]
    pitch = max(_PITCH, (last - first) / rows)
    top = (first + last) / 2 - pitch * (rows - 1) / 2
    targets: list[tuple[str, float]] = []
    row = 0
    for position, index in enumerate(shown_units):
        if position == 2 and len(shown_units) < units:
            _ellipsis(block, tx, top + pitch * row, units - len(shown_units), False)
            row += 1
        cy = top + pitch * row
        targets.append((f"h{index}", cy))
        row += 1
    bottom = max(bottom, top + pitch * (rows - 1) + _R + 8)
    for kind, name, sy in sources:
        for target, ty in targets:
            # from circle to circle: the ends moved in along the line by the radius
            length = math.hypot(tx - sx, ty - sy)
            dx, dy = (tx - sx) / length, (ty - sy) / length
            attrs = (
                f' data-kind="{kind.value}" data-gate={_attr(panel.gate)}'
                f' data-from="{name}" data-to="{target}"'
            )
            start, end = _R, _R + 1  # the arrowhead's tip just outside the unit
            _line(
                block,
                sx + dx * start,
                sy + dy * start,
                tx - dx * end,
                ty - dy * end,
                _COLOURS[kind],
                ids,
                attrs,
            )
    for (target, cy), index in zip(targets, shown_units, strict=True):
        colour = _unit_colour(shown_units, index) if looped else ""
        _node(block, tx, cy, f"h{sub(index)}", target, "unit", colour)
    # Each unit's output comes back as its own previous output: nested loops, outermost first.
    lanes_bottom = bottom + _LANE_OFF
    for position, index in enumerate(looped):
        offset = (len(looped) - 1 - position) * _LANE
        hy = targets[position][1]
        py = next(cy for kind, name, cy in sources if name == f"p{index}")
        right, low, left = (
            tx + _R + _LANE_OFF + offset,
            lanes_bottom + offset,
            sx - _R - _LANE_OFF - offset,
        )
        block.parts.append(
            f'<path class="loop" data-from="h{index}" data-to="p{index}" '
            f'd="M{tx + _R:.1f},{hy:.1f} H{right:.1f} V{low:.1f} H{left:.1f} V{py:.1f} '
            f'H{sx - _R - 1:.1f}" fill="none" stroke="{_unit_colour(shown_units, index)}" '
            f'stroke-width="1.4" stroke-dasharray="5 3"{_arrow(ids)}/>'
        )
        block.grow(right + _PAD, low)
    caption_y = lanes_bottom + (len(looped) - 1) * _LANE + _LINE
    if looped:
        caption = ["dashed: each hⱼ at step t", "comes back as its own pⱼ at t+1"]
    elif r and any(g.role is TensorRole.PROJECTION for g in diagram.unsplit):
        caption = [f"p₁…p{sub(r)}: the previous output,", f"projected to {r}, not one per unit"]
    elif r:
        caption = [f"p₁…p{sub(r)}: the {r} values the recurrent", "weights read, not one per unit"]
    else:
        caption = []
    for line in _wrap(caption, max(block.width, tx + _R + _PAD, 200.0), _SMALL, " "):
        block.text(_PAD, caption_y, line, size=_SMALL, cls="small")
        caption_y += _LINE - 3
    block.grow(tx + _R + _PAD, bottom)
    block.height += _PAD
    return block


def _unit_colour(shown_units: Sequence[int], index: int) -> str:
    return _UNIT_COLOURS[list(shown_units).index(index) % len(_UNIT_COLOURS)]


def _ellipsis(block: Block, x: float, y: float, hidden: int, backdrop: bool) -> None:
    """The row standing for the nodes left out: `⋮` and how many, to its right (over the
    edges a sources' column sends, hidden behind a backdrop; over the loops' lanes of the units'
    column, on its halo alone so the lanes stay visible)."""
    block.text(
        x, y + 5, "⋮", size=16, anchor="middle", cls="elided", attrs=f' data-hidden="{hidden}"'
    )
    block.text(
        x + 10, y + 4, f"{count(hidden)} more", size=_SMALL, cls="small elided", backdrop=backdrop
    )


def _unwired(diagram: CellDiagram, panel: Panel, block: Block) -> Block:
    """Counts the shapes do not turn into nodes (no unit count): the labels alone."""
    y = 14 + 2 * _LINE + 4
    for group in panel.groups:
        block.text(
            _PAD, y, _group_text(diagram, group), cls="edge-group", attrs=_group_attrs(group)
        )
        y += _LINE
    block.text(
        _PAD,
        y,
        "not drawn as nodes: the shapes do not split into units and inputs",
        size=_SMALL,
        cls="small",
    )
    block.height += _PAD
    return block


# ------------------------------------------------------------------------------ unrolled


def _unrolled(diagram: CellDiagram, ids: str) -> Block:
    """Three steps, the same W, U and b at each: shared weights, counted once. A bidirectional
    layer has a second chain running back in time with its own weights."""
    block = Block()
    directions = diagram.directions_drawn
    if not directions:  # nothing split by gate: the header lists the tensors and their counts
        return block
    gates = len(diagram.gates)
    if diagram.selected_gate is not None:
        whose = f"gate {diagram.selected_gate}'s weights, the same at every step"
    else:
        whose = "the same weights at every step" + (f", all {gates} gates" if gates > 1 else "")
    block.text(
        _PAD,
        14,
        f"unrolled over {diagram.steps} time steps: {whose}",
        size=_SMALL,
        cls="small",
    )
    labels = {
        direction: {kind: diagram.total(kind, direction) for kind in _LETTERS}
        for direction in directions
    }
    widest = {
        kind: max(text_width(f"{_LETTERS[kind]} {count(v[kind])}", _SIZE) for v in labels.values())
        for kind in _LETTERS
    }
    box_w = max(92.0, widest[EdgeKind.BIAS] + 16)
    vector_w = text_width(f"x(t={diagram.steps})", _SIZE) + 14
    step = max(
        box_w + max(56.0, widest[EdgeKind.RECURRENT] + 20),
        widest[EdgeKind.INPUT] + 30,
        vector_w + 20,
        box_w + 20,
    )
    left = _PAD + 4
    forward_y = 66.0  # top of the forward boxes
    box_h = 44.0
    x_y = forward_y + box_h + 50  # centre of the input row
    backward_y = x_y + 50
    for t in range(diagram.steps):
        cx = left + box_w / 2 + step * t
        _box(block, cx - vector_w / 2, x_y - 12, vector_w, 24, "node")
        block.text(cx, x_y + 4, f"x(t={t + 1})", anchor="middle")
    for direction in directions:
        backward = direction is Direction.BACKWARD
        top = backward_y if backward else forward_y
        counts = labels[direction]
        tag = f' data-direction="{direction.value if direction else ""}"'
        for t in range(diagram.steps):
            x = left + step * t
            cx = x + box_w / 2
            _box(block, x, top, box_w, box_h)
            block.text(cx, top + 18, f"step t={t + 1}", anchor="middle")
            if counts[EdgeKind.BIAS]:
                block.text(
                    cx,
                    top + 35,
                    f"b {count(counts[EdgeKind.BIAS])}",
                    anchor="middle",
                    cls="shared-weight",
                    attrs=_shared(EdgeKind.BIAS, t, counts, tag),
                )
            # the input vector feeds the step; the output leaves it
            weights = counts[EdgeKind.INPUT] > 0
            if backward:
                _line(block, cx, x_y + 12, cx, top - 2, _COLOURS[EdgeKind.INPUT], ids)
                if weights:  # a lowered cell whose kernel is not told apart has none
                    block.text(
                        cx + 6,
                        x_y + 34,
                        f"W {count(counts[EdgeKind.INPUT])}",
                        cls="shared-weight",
                        attrs=_shared(EdgeKind.INPUT, t, counts, tag),
                    )
                _line(block, cx, top + box_h + 2, cx, top + box_h + 26, "#333", ids)
                block.text(
                    cx,
                    top + box_h + 42,
                    f"h(t={t + 1}) backward",
                    anchor="middle",
                    size=_SMALL,
                    cls="small",
                )
            else:
                _line(block, cx, x_y - 12, cx, top + box_h + 2, _COLOURS[EdgeKind.INPUT], ids)
                if weights:  # a lowered cell whose kernel is not told apart has none
                    block.text(
                        cx + 6,
                        x_y - 20,
                        f"W {count(counts[EdgeKind.INPUT])}",
                        cls="shared-weight",
                        attrs=_shared(EdgeKind.INPUT, t, counts, tag),
                    )
                _line(block, cx, top - 2, cx, top - 24, "#333", ids)
                out = "forward" if len(directions) > 1 else ""
                block.text(
                    cx,
                    top - 30,
                    f"h(t={t + 1}) {out}".strip(),
                    anchor="middle",
                    size=_SMALL,
                    cls="small",
                )
            # the state passes to the next step (backward: to the one before)
            if t + 1 < diagram.steps:
                a, b = x + box_w + 2, x + step - 2
                y = top + box_h / 2
                _line(
                    block,
                    b if backward else a,
                    y,
                    a if backward else b,
                    y,
                    _COLOURS[EdgeKind.RECURRENT],
                    ids,
                )
                block.text(
                    (a + b) / 2,
                    y - 6,
                    f"U {count(counts[EdgeKind.RECURRENT])}",
                    anchor="middle",
                    cls="shared-weight",
                    attrs=_shared(EdgeKind.RECURRENT, t, counts, tag),
                )
    bottom = block.height + _LINE + 4
    params = diagram.params
    block.text(
        _PAD,
        bottom,
        f"{count(params)} parameters, used at every step: "
        f"{diagram.steps} steps still {count(params)}, not {count(diagram.steps * params)}",
        size=_SMALL,
        cls="small",
    )
    block.width += _PAD
    block.height += _PAD
    return block


def _shared(kind: EdgeKind, t: int, counts: dict[EdgeKind, int], tag: str) -> str:
    return f' data-kind="{kind.value}" data-step="{t + 1}" data-count="{counts[kind]}"{tag}'


# ------------------------------------------------------------------------------ a layer


def _header(diagram: CellDiagram, width: float) -> Block:
    block = Block()
    room = width - 2 * _PAD
    kind = fit(shown(diagram.type), room / 2, _TITLE, True)
    name = shown(diagram.layer)
    short = fit(name, room - text_width(f" ({kind})", _TITLE, True), _TITLE, True)
    y = 18.0
    block.text(
        _PAD,
        y,
        f"{short} ({kind})",
        size=_TITLE,
        bold=True,
        cls="title",
        tip=f"{name} ({shown(diagram.type)})" if (short, kind) != (name, diagram.type) else None,
    )
    y += _LINE + 4
    for line in _wrap(_facts(diagram), width):
        block.text(_PAD, y, line)
        y += _LINE
    for line in _sums(diagram):
        block.text(_PAD, y, line, bold=True, cls="head", room=width - 2 * _PAD)
        y += _LINE
    for group in diagram.unsplit:  # outside the gates: counted here, once
        what = (
            "peepholes"
            if group.role is TensorRole.PEEPHOLE
            else ("projection" if group.role is TensorRole.PROJECTION else "not split by gate")
        )
        name = fit(shown(group.tensors[0] if group.tensors else "?"), width / 2, _SIZE)
        block.text(
            _PAD,
            y,
            f"+ {name}: {count(group.count)} ({what}, not per gate)",
            cls="edge-group",
            attrs=_group_attrs(group),
        )
        y += _LINE
    stored = _stored(diagram)
    together = " · ".join(stored)
    # One line if it fits, else a line per kind, each shortened to fit with its <title>.
    for line in [together] if text_width(together, _SMALL) <= width - 2 * _PAD else stored:
        block.text(_PAD, y, line, size=_SMALL, cls="small", room=width - 2 * _PAD)
        y += _LINE
    for line in _wrap(_notation(diagram), width, _SMALL):
        block.text(_PAD, y, line, size=_SMALL, cls="small")
        y += _LINE
    block.height = y - _LINE + 8
    return block


def _facts(diagram: CellDiagram) -> list[str]:
    def known(value: int | None) -> str:
        return "?" if value is None else f"{value:,}"

    out = [f"{count(diagram.params)} parameters"]
    if diagram.kind is CellKind.CONV_LSTM:
        kernel = "×".join(str(k) for k in diagram.kernel_size) or "?"
        out += [
            f"filters {known(diagram.units)}",
            f"input channels {known(diagram.input_dim)}",
            f"kernel {kernel}",
        ]
    else:
        out += [f"units {known(diagram.units)}", f"input width {known(diagram.input_dim)}"]
    if diagram.directions == 2:
        out.append("bidirectional")
    if diagram.backward is not None:
        kind, units, gates = diagram.backward
        out.append(
            f"backward: {kind.value}, units {known(units)}"
            + (f", gates {', '.join(gates)}" if len(gates) > 1 else "")
        )
    if len(diagram.gates) > 1:
        order = ", ".join(diagram.gates)
        out.append(
            f"gates {order} ({diagram.convention.value} order)"
            if diagram.gate_names_known
            else f"{len(diagram.gates)} gate blocks, unnamed"
        )
    return out


def _sums(diagram: CellDiagram) -> list[str]:
    """The count as the sum the panels show: `W 2 + U 4 + b 2 = 8 parameters`."""
    panels = diagram.panels
    extra = sum(group.count for group in diagram.unsplit)
    tail = f" + {count(extra)} not per gate" if extra else ""
    if diagram.selected_gate is not None:
        share = sum(panel.count for panel in panels)
        sizes = {panel.count for panel in diagram.every_panel}
        whole = ""
        if len(sizes) == 1:
            across = (
                f" × {diagram.directions} directions" if len(diagram.directions_drawn) > 1 else ""
            )
            whole = f": {len(diagram.gates)} gates{across} × {count(sizes.pop())}{tail}"
        return [
            f"shown: gate {diagram.selected_gate} only, {count(share)} of the layer's "
            f"{count(diagram.params)} parameters{whole} = {count(diagram.params)}"
        ]
    if not panels:
        return [f"{count(extra)} not split by gate = {count(diagram.params)} parameters"]
    if len(panels) == 1:
        return [
            f"{_panel_sum(panels[0]).rsplit(' = ', 1)[0]}{tail} = {count(diagram.params)} "
            "parameters"
        ]
    lines = []
    for direction in diagram.directions_drawn:
        mine = [panel for panel in panels if panel.direction == direction]
        terms = " + ".join(
            f"{panel.gate} {count(panel.count)}" if len(diagram.gates) > 1 else count(panel.count)
            for panel in mine
        )
        total = sum(panel.count for panel in mine)
        name = _DIRECTION_NAMES.get(direction, "") if direction is not None else ""
        lines.append(
            f"{name + ': ' if name and diagram.directions > 1 else ''}{terms} = {count(total)}"
        )
    if len(lines) > 1 or extra:
        totals = [line.rsplit(" = ", 1)[1] for line in lines]
        lines.append(" + ".join(totals) + f"{tail} = {count(diagram.params)} parameters")
    else:
        lines[-1] += " parameters"
    return lines


def _stored(diagram: CellDiagram) -> list[str]:
    """`W = kernel`, `U = weight_hh_l0`, `b = ONNX input B (B)`: the tensors as the file names
    them, one item per kind of weight."""
    roles = {
        EdgeKind.INPUT: TensorRole.KERNEL,
        EdgeKind.RECURRENT: TensorRole.RECURRENT_KERNEL,
        EdgeKind.BIAS: TensorRole.BIAS,
    }
    out = []
    for kind, letter in _LETTERS.items():
        names = list(dict.fromkeys(t for g in diagram.groups if g.kind is kind for t in g.tensors))
        if not names:
            continue
        listed = " + ".join(shown(n) for n in names[:2])
        if len(names) > 2:
            listed += f" + {len(names) - 2} more"
        if diagram.operator_inputs:  # the ONNX node's input, then the tensor that feeds it
            listed = f"ONNX input {ONNX_INPUTS[roles[kind]]} ({listed})"
        out.append(f"{letter} = {listed}")
    return ["stored as: " + out[0], *out[1:]] if out else []


def _notation(diagram: CellDiagram) -> list[str]:
    d = diagram.input_dim
    conv = diagram.kind is CellKind.CONV_LSTM
    what = "input channel" if conv else "input feature"
    if d is None:
        told = f"x₁, x₂, …: the {what}s of one time step (the file does not give their number)"
    else:
        features = f"x₁…x{sub(d)}" if d > 1 else "x₁"
        told = f"{features}: the {count(d)} {what}{'' if d == 1 else 's'} of one time step"
    out = [
        told,
        "pⱼ: unit j's previous output (hⱼ at t−1)",
        "x(t=1), x(t=2), …: the whole input at successive time steps",
    ]
    if conv:
        k = kernel_elements(diagram.kind, diagram.kernel_size)
        kernel = "×".join(str(n) for n in diagram.kernel_size)
        out.insert(
            0,
            f"hⱼ: filter j; each edge is a {kernel} kernel ({k} weights) slid over every position",
        )
    return out


def _wrap(items: Iterable[str], width: float, size: float = _SIZE, glue: str = " · ") -> list[str]:
    """Items joined by `glue` into lines no wider than `width` (an item too wide is shortened)."""
    lines: list[str] = []
    for item in items:
        item = fit(item, width - 2 * _PAD, size)
        if lines and text_width(lines[-1] + glue + item, size) <= width - 2 * _PAD:
            lines[-1] += glue + item
        else:
            lines.append(item)
    return lines


def _grid(blocks: list[tuple[Panel, Block]]) -> Block:
    """The panels in rows, a direction at a time, all of one size."""
    grid = Block()
    if not blocks:
        return grid
    cell_w = max(b.width for _, b in blocks)
    cell_h = max(b.height for _, b in blocks)
    per_direction = max(sum(1 for p, _ in blocks if p.direction == blocks[0][0].direction), 1)
    fits = max(int((MAX_WIDTH + _GAP) // (cell_w + _GAP)), 1)
    columns = min(per_direction, fits)
    columns = math.ceil(per_direction / math.ceil(per_direction / columns))
    y = 0.0
    directions = list(dict.fromkeys(p.direction for p, _ in blocks))
    for direction in directions:
        if len(directions) > 1 and direction is not None:
            grid.text(
                _PAD,
                y + 14,
                f"{_DIRECTION_NAMES[direction]} direction: its own W, U and b",
                bold=True,
                cls="head",
            )
            y += _LINE + 6
        mine = [(p, b) for p, b in blocks if p.direction == direction]
        for position, (panel, drawn) in enumerate(mine):
            column, row = position % columns, position // columns
            x, top = column * (cell_w + _GAP), y + row * (cell_h + _GAP)
            frame = Block()
            _box(frame, 0.5, 0.5, cell_w - 1, cell_h - 1, "panel")
            frame.parts += drawn.parts
            frame.labels += drawn.labels
            frame.width, frame.height = cell_w, cell_h
            grid.place(
                frame,
                x,
                top,
                " data-panel="
                + _attr(f"{panel.direction.value if panel.direction else ''}/{panel.gate}"),
            )
        y += math.ceil(len(mine) / columns) * (cell_h + _GAP)
    return grid


def diagram_svg(diagram: CellDiagram, top: float = 0.0, ids: str = "") -> tuple[str, float, float]:
    """One layer's drawing, as a `<g>`, with the height and width it takes."""
    layer = Block()
    if not diagram.drawable:
        layer.text(_PAD, 18, diagram.layer, size=_TITLE, bold=True, cls="title", room=MAX_WIDTH / 2)
        layer.text(
            _PAD,
            40,
            f"{diagram.type}: no picture for a {diagram.kind.value} layer; its "
            f"{count(diagram.params)} parameters are listed by `rnninspect explain`",
            room=MAX_WIDTH - 2 * _PAD,
        )
        layer.height += _PAD
    else:
        panels = [(panel, _panel(diagram, panel, ids)) for panel in diagram.panels]
        grid = _grid(panels)
        unrolled = _unrolled(diagram, ids)
        header = _header(diagram, MAX_WIDTH)
        layer.place(header, 0, 0)
        body = header.height + 6
        layer.place(grid, 0, body)
        # The unrolled cell beside the panels where it fits, else under them.
        if grid.width + _GAP + unrolled.width <= MAX_WIDTH and grid.height >= unrolled.height:
            layer.place(unrolled, grid.width + _GAP, body)
        elif unrolled.parts:
            layer.place(unrolled, 0, body + grid.height + (_GAP if grid.parts else 0))
    group = (
        f'<g class="cell" transform="translate(0,{top:.1f})" data-layer={_attr(diagram.layer)} '
        f'data-params="{diagram.params}" data-shown-params="{diagram.shown_params}" '
        f'data-kind="{diagram.kind.value}" data-drawn="{str(diagram.drawable).lower()}" '
        f'data-gates={_attr(",".join(diagram.gates))} data-directions="{diagram.directions}" '
        f'data-units="{diagram.units or ""}" data-input-dim="{diagram.input_dim or ""}">'
        + layer.svg()
        + "</g>"
    )
    return group, layer.height, layer.width


def svg_document(diagrams: Sequence[CellDiagram], title: str, ids: str = "") -> str:
    """A standalone SVG holding every diagram, one under another. `ids` prefixes the document's
    element ids, so that several documents inlined in one page keep their own."""
    groups, top, width = [], 10.0, 200.0
    for diagram in diagrams:
        group, height, drawn = diagram_svg(diagram, top, ids)
        groups.append(group)
        top += height + 24
        width = max(width, drawn + 4)
    if not diagrams:
        groups.append(f'<text x="{_PAD}" y="30">no recurrent layers found</text>')
        top = 50
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{top:.0f}" '
        f'viewBox="0 0 {width:.0f} {top:.0f}" role="img" class="cells">'
        f"<title>{printable(title)}</title>"
        f"<style>{_STYLE}</style>"
        f'<defs><marker id="{ids}arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        f'<marker id="{ids}tip" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" '
        'markerHeight="5" markerUnits="userSpaceOnUse" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
        '<rect width="100%" height="100%" fill="#fff"/>' + "".join(groups) + "</svg>"
    )
