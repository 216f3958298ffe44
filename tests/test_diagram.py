"""Cell diagrams (`explain --svg`) and the HTML page (`--format html`), read as data.

The SVG must parse; its count labels must sum to the layer's parameter count as the framework
that wrote the fixture counted it (the manifests); per kind of connection, the edges of every
gate's panel times the weights each carries, over the gates, must be the framework's own tensor
sizes; every unit must have its own loop from hⱼ to pⱼ; every step of the unrolled picture must
carry the same labelled weights; names from hostile files must come out escaped; a directory's
page must open with its index; and the page must load in a real browser without console errors.
How the pictures lay out in a browser (nothing overlaps, nothing leaves its picture) is
tests/test_picture_layout.py."""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector import inspect_file
from inspector.cli.app import app
from inspector.model import (
    CellConfig,
    CellKind,
    FileFormat,
    Layer,
    Model,
    RecurrentLayer,
    RecurrentTensor,
    Tensor,
    TensorRole,
    WidthSource,
)
from inspector.render.html import render_html
from inspector.render.measure import text_width
from inspector.render.svg import svg_document
from inspector.report.analysis import analyse
from inspector.report.diagram import MAX_NODES, diagram, visible
from inspector.report.explain import explain_model
from tests.conftest import (
    FIXTURES,
    REALWORLD,
    ROOT,
    framework_total,
    manifest_entries,
    realworld_entries,
)
from tests.picture_models import LONG, WIDE_INPUT, WIDE_UNITS, long_names_model

SVG = "{http://www.w3.org/2000/svg}"
REGENERATE = os.environ.get("RNNINSPECT_REGENERATE") == "1"
DOCS = ROOT / "docs" / "diagrams"
# The seed article's worked examples: SimpleRNN(1) on 1 feature, (2) on 1, (1) on 3.
SEED_EXAMPLES = ("simplernn_u1_f1", "simplernn_u2_f1", "simplernn_u1_f3")
# The README also shows gates and two directions, and a wide layer's ellipsis rows.
README_PICTURES = (*SEED_EXAMPLES, "bidir_gru_concat", "lstm_u16_d8")

ENTRIES = [
    e
    for e in manifest_entries("keras-h5", "keras-v3", "onnx", "safetensors")
    if e.get("recurrent_layers") and all("params" in r for r in e["recurrent_layers"])
]


def _svg_of(path: Path, out: Path) -> ET.Element:
    result = CliRunner().invoke(app, ["explain", str(path), "--svg", str(out)])
    assert result.exit_code == 0, result.output
    return ET.parse(out).getroot()


def _cells(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"]


def _counts(cell: ET.Element, cls: str) -> list[ET.Element]:
    return [t for t in cell.iter(f"{SVG}text") if cls in (t.get("class") or "").split()]


def _panels(cell: ET.Element) -> list[ET.Element]:
    """A cell's gate panels: the groups holding their edges, nodes and loops."""
    return [g for g in cell.iter(f"{SVG}g") if g.get("data-panel") and g.get("class") == "shapes"]


def _panel_labels(cell: ET.Element) -> dict[str, list[ET.Element]]:
    """Each panel's count labels, by the panel's `direction/gate`."""
    return {
        g.get("data-panel") or "": _counts(g, "edge-group")
        for g in cell.iter(f"{SVG}g")
        if g.get("data-panel") and g.get("class") == "labels"
    }


# The formula's gate count per cell (the brief: 1 SimpleRNN, 4 LSTM, 3 GRU), by the class name
# the framework recorded; ConvLSTM is an LSTM.
_GATES = (("GRU", 3), ("LSTM", 4), ("SimpleRNN", 1))


def _class(entry_layer: dict) -> str:
    return str(entry_layer.get("cell_class") or entry_layer["class"])


def _gates_of(entry_layer: dict) -> int:
    return next(gates for word, gates in _GATES if word in _class(entry_layer))


def _role(weight: str) -> str:
    """A stored weight's kind of connection, by the name Keras gave it (`.../recurrent_kernel:0`,
    Keras 1's `lstm_1_U_f`)."""
    last = weight.rsplit("/", 1)[-1].removesuffix(":0")
    if last.endswith("recurrent_kernel") or re.search(r"_U(_[a-z])?$", last):
        return "recurrent"
    if last.endswith("kernel") or re.search(r"_W(_[a-z])?$", last):
        return "input"
    if last.endswith("bias") or re.search(r"_b(_[a-z])?$", last):
        return "bias"
    raise AssertionError(f"no role for {weight}")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_pictures_count_what_the_framework_counted(entry: dict, tmp_path: Path) -> None:
    """Labels sum to each layer's count; per kind of connection (input, recurrent, bias), edges
    × weights per edge over every gate's panel = the framework's tensor elements of that kind;
    a layer has g panels per direction, each wired u·d, u·u and u per bias vector with the
    framework's own units and input width; a panel small enough to draw whole draws every edge."""
    root = _svg_of(FIXTURES / entry["file"], tmp_path / "cells.svg")
    cells = {cell.get("data-layer"): cell for cell in _cells(root)}
    truth = {layer["name"]: layer for layer in entry["recurrent_layers"]}
    drawn = 0
    per_kind: dict[str, int] = {}
    for name, cell in cells.items():
        labels = sum(int(t.get("data-count") or -1) for t in _counts(cell, "edge-group"))
        assert labels == int(cell.get("data-params") or -1)
        drawn += labels
        for panel_labels in _panel_labels(cell).values():
            for label in panel_labels:
                kind = label.get("data-kind") or ""
                edges = int(label.get("data-edges") or -1)
                assert edges > 0, (name, kind)  # every group of a fixture is wired
                weights = edges * int(label.get("data-per-edge") or -1)
                assert weights == int(label.get("data-count") or -1)
                per_kind[kind] = per_kind.get(kind, 0) + weights
        layer = truth.get(name)  # a stacked-cells RNN is drawn cell by cell, named by its path
        if layer is None:
            continue
        assert labels == layer["params"], name
        panels = _panel_labels(cell)
        backward = {"class": layer.get("backward_cell_class") or _class(layer)}
        gates = {"forward": _gates_of(layer), "backward": _gates_of(backward), "": _gates_of(layer)}
        assert len(panels) == sum(gates[d] for d in {key.split("/")[0] for key in panels})
        width = layer["input_dim"]
        shapes = {group.get("data-panel"): group for group in _panels(cell)}
        for key, panel_labels in panels.items():
            backwards = key.startswith("backward/") and "backward_units" in layer
            units = layer["backward_units"] if backwards else layer["units"]
            edges: dict[str, int] = {}
            for label in panel_labels:
                kind = label.get("data-kind") or ""
                edges[kind] = edges.get(kind, 0) + int(label.get("data-edges") or -1)
            vectors = sum(1 for label in panel_labels if label.get("data-kind") == "bias")
            assert edges["input"] == units * width, key
            assert edges["recurrent"] == units * units, key
            assert edges.get("bias", 0) == units * vectors and vectors <= 2, key
            lines = [e for e in shapes[key].iter(f"{SVG}line") if e.get("class") == "edge"]
            kinds = {kind: sum(1 for e in lines if e.get("data-kind") == kind) for kind in edges}
            shown_units, shown_width = len(visible(units)), len(visible(width))
            assert kinds["input"] == shown_units * shown_width
            assert kinds["recurrent"] == shown_units * shown_units
            if units <= MAX_NODES and width <= MAX_NODES:  # every connection drawn
                assert kinds == edges
    assert drawn == sum(layer["params"] for layer in truth.values())
    stored: dict[str, int] = {}
    for layer in entry["recurrent_layers"]:
        for weight in layer["weights"]:
            kind = _role(weight["name"])
            stored[kind] = stored.get(kind, 0) + math.prod(weight["shape"])
    assert per_kind == stored


@pytest.mark.parametrize("stem", SEED_EXAMPLES)
def test_unrolled_steps_reuse_the_same_weights(stem: str, tmp_path: Path) -> None:
    root = _svg_of(FIXTURES / "keras2" / f"{stem}.h5", tmp_path / "cell.svg")
    (cell,) = _cells(root)
    shared = _counts(cell, "shared-weight")
    by_step: dict[str, list[tuple[str, str]]] = {}
    for text in shared:
        label = "".join(text.itertext()).split(" ")[0]
        by_step.setdefault(text.get("data-step") or "", []).append(
            (label, text.get("data-count") or "")
        )
    steps = sorted(by_step)
    assert len(steps) == 3
    for step in steps:  # the same W, b at every step (U between steps)
        assert {x for x in by_step[step] if x[0] != "U"} == {
            x for x in by_step[steps[0]] if x[0] != "U"
        }
    edges = {t.get("data-kind"): int(t.get("data-count") or 0) for t in _counts(cell, "edge-group")}
    weights = {label: int(count) for label, count in by_step[steps[0]]}
    assert weights["W"] == edges["input"] and weights["U"] == edges["recurrent"]


def test_wide_layers_elide_nodes_visibly_and_keep_exact_counts(tmp_path: Path) -> None:
    """LSTM(16) on 8 features: each panel draws x₁, x₂, x₈, p₁, p₂, p₁₆ and h₁, h₂, h₁₆ around
    ellipsis rows that say how many they leave out (5, 13, 13), a loop for each unit drawn, and
    labels with the exact counts (16·8 = 128, 9 drawn)."""
    root = _svg_of(FIXTURES / "keras2" / "lstm_u16_d8.h5", tmp_path / "wide.svg")
    (cell,) = _cells(root)
    panels = _panels(cell)
    assert len(panels) == 4
    for panel in panels:
        lines = [e for e in panel.iter(f"{SVG}line") if e.get("class") == "edge"]
        assert len(lines) == 3 * 3 + 3 * 3 + 3  # x, p and the "1" into h₁, h₂, h₁₆
        nodes = {c.get("data-node") for c in panel.iter(f"{SVG}circle")}
        assert {"x1", "x2", "x8", "p1", "p2", "p16", "h1", "h2", "h16", "one1"} == nodes
        loops = [(p.get("data-from"), p.get("data-to")) for p in panel.iter(f"{SVG}path")]
        assert sorted(loops) == [("h1", "p1"), ("h16", "p16"), ("h2", "p2")]
    hidden = sorted(
        int(t.get("data-hidden") or 0) for t in cell.iter(f"{SVG}text") if t.get("data-hidden")
    )
    assert hidden == [5] * 4 + [13] * 8
    texts = ["".join(t.itertext()) for t in _counts(cell, "edge-group")]
    assert texts.count("W: 16·8 = 128 (9 drawn)") == 4
    assert texts.count("U: 16·16 = 256 (9 drawn)") == 4
    drawn = sum(int(t.get("data-count") or 0) for t in _counts(cell, "edge-group"))
    assert drawn == framework_total("keras2/lstm_u16_d8.h5")


def _entry(file: str) -> dict:
    (entry,) = [e for e in ENTRIES if e["file"] == file]
    return entry


@pytest.mark.parametrize("stem", SEED_EXAMPLES)
def test_seed_examples_connection_by_connection(stem: str, tmp_path: Path) -> None:
    """The article's three pictures, edge by edge: every feature xᵢ, every previous output pᵢ
    and the "1" wired to every unit hⱼ (2·1 + 2·2 + 2 = 8 for SimpleRNN(2) on 1 feature), each
    unit's own loop hⱼ → pⱼ, and the panel stating the sum the framework's count is."""
    (layer,) = _entry(f"keras2/{stem}.h5")["recurrent_layers"]
    units, width = layer["units"], layer["input_dim"]
    root = _svg_of(FIXTURES / "keras2" / f"{stem}.h5", tmp_path / "seed.svg")
    (cell,) = _cells(root)
    (panel,) = _panels(cell)
    drawn = {
        (e.get("data-kind"), e.get("data-from"), e.get("data-to"))
        for e in panel.iter(f"{SVG}line")
        if e.get("class") == "edge"
    }
    hs = [f"h{j}" for j in range(1, units + 1)]
    expected = {("input", f"x{i}", h) for i in range(1, width + 1) for h in hs}
    expected |= {("recurrent", f"p{i}", h) for i in range(1, units + 1) for h in hs}
    expected |= {("bias", "one1", h) for h in hs}
    assert drawn == expected
    assert len(drawn) == layer["params"]  # one weight per edge
    loops = sorted((p.get("data-from"), p.get("data-to")) for p in panel.iter(f"{SVG}path"))
    assert loops == [(f"h{j}", f"p{j}") for j in range(1, units + 1)]
    words = " ".join("".join(t.itertext()) for t in cell.iter(f"{SVG}text"))
    total = f"W {units * width} + U {units * units} + b {units} = {layer['params']}"
    assert total in words and f"{total} parameters" in words


def _circle(panel: ET.Element, name: str) -> tuple[float, float]:
    (circle,) = [c for c in panel.iter(f"{SVG}circle") if c.get("data-node") == name]
    return float(circle.get("cx") or "nan"), float(circle.get("cy") or "nan")


@pytest.mark.parametrize(
    "file",
    ["keras2/simplernn_u2_f1.h5", "keras2/simplernn_nobias_u4_d3.h5", "keras2/bidir_gru_concat.h5"],
)
def test_each_loop_runs_from_its_unit_to_its_own_previous_output(file: str, tmp_path: Path) -> None:
    """Read from the path data: each loop leaves hⱼ's circle and ends at pⱼ's, in a colour of
    its own, the loops nested so that none crosses another."""
    root = _svg_of(FIXTURES / file, tmp_path / "loops.svg")
    for cell in _cells(root):
        units = int(cell.get("data-units") or 0)
        for panel in _panels(cell):
            loops = [p for p in panel.iter(f"{SVG}path") if p.get("class") == "loop"]
            assert len(loops) == len(visible(units))
            colours = {p.get("stroke") for p in loops}
            assert len(colours) == len(loops)
            boxes = []
            for loop in loops:
                moves = re.findall(r"[MHV][-0-9.,]+", loop.get("d") or "")
                start = [float(v) for v in moves[0][1:].split(",")]
                ends = [float(moves[-1][1:]), float(moves[-2][1:])]  # H x after V y
                hx, hy = _circle(panel, loop.get("data-from") or "")
                px, py = _circle(panel, loop.get("data-to") or "")
                assert abs(start[0] - (hx + 13)) < 0.5 and abs(start[1] - hy) < 0.5
                assert abs(ends[0] - (px - 14)) < 0.5 and abs(ends[1] - py) < 0.5
                right, low, left = (float(m[1:]) for m in moves[1:4])
                boxes.append((left, right, low))
            boxes.sort()
            for outer, inner in itertools.pairwise(boxes):  # each lane inside the one before
                assert outer[0] < inner[0] and outer[1] > inner[1] and outer[2] > inner[2]


def test_features_and_time_steps_have_their_own_notation(tmp_path: Path) -> None:
    """Features are x₁…x_d (nodes of one step), time steps x(t=1)… (the unrolled inputs), and
    the picture says which is which."""
    root = _svg_of(FIXTURES / "keras2" / "simplernn_u1_f3.h5", tmp_path / "f3.svg")
    (cell,) = _cells(root)
    (panel,) = _panels(cell)
    nodes = [c.get("data-node") for c in panel.iter(f"{SVG}circle")]
    assert nodes[:3] == ["x1", "x2", "x3"]
    words = ["".join(t.itertext()) for t in cell.iter(f"{SVG}text")]
    assert {"x₁", "x₂", "x₃"} <= set(words)
    assert {"x(t=1)", "x(t=2)", "x(t=3)"} <= set(words)
    legend = " ".join(words)
    assert "x₁…x₃: the 3 input features of one time step" in legend
    assert "x(t=1), x(t=2), …: the whole input at successive time steps" in legend


def test_gate_view_draws_one_gate(tmp_path: Path) -> None:
    """`explain --gate f` on an LSTM: the f panel alone, labels summing to a quarter of the
    framework's count; PyTorch's g is found by Keras's c; a gate the layer lacks exits 2."""
    out = tmp_path / "f.svg"
    result = CliRunner().invoke(
        app,
        [
            "explain",
            str(FIXTURES / "keras2" / "lstm_nobias_u4_d3.h5"),
            "--gate",
            "f",
            "--svg",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gate f: 28 of the layer's 112 parameters: 4 gates × 28 = 112" in result.stdout
    (cell,) = _cells(ET.parse(out).getroot())
    assert list(_panel_labels(cell)) == ["/f"]
    shown = sum(int(t.get("data-count") or 0) for t in _counts(cell, "edge-group"))
    assert 4 * shown == framework_total("keras2/lstm_nobias_u4_d3.h5")
    assert cell.get("data-shown-params") == str(shown)
    torch = CliRunner().invoke(
        app, ["explain", str(FIXTURES / "torch" / "lstm_proj.bin"), "--gate", "c", "-f", "json"]
    )
    assert torch.exit_code == 0, torch.output
    assert '"selected_gate": "g"' in torch.stdout
    wrong = CliRunner().invoke(
        app, ["explain", str(FIXTURES / "keras2" / "gru_u8_d4_reset_after.h5"), "--gate", "f"]
    )
    assert wrong.exit_code == 2
    assert "gates in keras order: z, r, h" in wrong.output and len(wrong.output.splitlines()) == 1


def test_bidirectional_unrolls_two_chains_each_with_its_own_weights(tmp_path: Path) -> None:
    root = _svg_of(FIXTURES / "keras2" / "bidir_gru_concat.h5", tmp_path / "bi.svg")
    (cell,) = _cells(root)
    shared = _counts(cell, "shared-weight")
    for direction in ("forward", "backward"):
        mine = [t for t in shared if t.get("data-direction") == direction]
        kinds = {t.get("data-kind") for t in mine}
        assert kinds == {"input", "recurrent", "bias"}
        assert sum(1 for t in mine if t.get("data-kind") == "recurrent") == 2  # 3 steps
        assert {
            int(t.get("data-count") or 0) for t in mine if t.get("data-kind") == "recurrent"
        } == {75}
    assert {key.split("/")[0] for key in _panel_labels(cell)} == {"forward", "backward"}


def test_convlstm_edges_are_kernels(tmp_path: Path) -> None:
    """ConvLSTM2D(2 filters, 3×3) on 1 channel: each edge a 3×3 kernel, 2·1 edges × 9 = 18
    input weights per gate, as the framework's kernel (3, 3, 1, 8) holds over 4 gates."""
    (layer,) = _entry("keras2/convlstm2d.h5")["recurrent_layers"]
    kernel = next(w["shape"] for w in layer["weights"] if _role(w["name"]) == "input")
    root = _svg_of(FIXTURES / "keras2" / "convlstm2d.h5", tmp_path / "conv.svg")
    (cell,) = _cells(root)
    inputs = [t for t in _counts(cell, "edge-group") if t.get("data-kind") == "input"]
    assert len(inputs) == 4
    for label in inputs:
        assert "".join(label.itertext()) == "W: 2·1 edges × 3×3 = 18"
        assert label.get("data-per-edge") == "9"
    assert math.prod(kernel) == 4 * 18


@pytest.mark.parametrize("stem", README_PICTURES)
def test_readme_diagrams_are_rnninspects_own(
    stem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/diagrams/*.svg are what `rnninspect explain --svg` writes for the seed's examples
    and the README's other pictures (RNNINSPECT_REGENERATE=1 rewrites them)."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / f"{stem}.svg"
    result = CliRunner().invoke(app, ["explain", f"fixtures/keras2/{stem}.h5", "--svg", str(out)])
    assert result.exit_code == 0, result.output
    committed = DOCS / f"{stem}.svg"
    if REGENERATE:
        committed.write_text(out.read_text(encoding="utf-8"), encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8")
    assert f"docs/diagrams/{stem}.svg" in (ROOT / "README.md").read_text(encoding="utf-8")


HOSTILE = 'lstm</text><script>alert(1)</script>&"\x07\x1b[31m\u202e'


def _hostile_model() -> Model:
    def tensor(name: str, shape: tuple[int, ...]) -> Tensor:
        return Tensor(name, name, shape, "float32", 4)

    tensors = (
        RecurrentTensor(tensor(HOSTILE + "/kernel", (3, 8)), TensorRole.KERNEL, None),
        RecurrentTensor(tensor(HOSTILE + "/rk", (2, 8)), TensorRole.RECURRENT_KERNEL, None),
        RecurrentTensor(tensor(HOSTILE + "/bias", (8,)), TensorRole.BIAS, None),
    )
    layer = RecurrentLayer(
        HOSTILE,
        HOSTILE,
        CellConfig(CellKind.LSTM, 2),
        1,
        tensors,
        input_dim=3,
        input_dim_source=WidthSource.TENSOR,
    )
    return Model(
        HOSTILE,
        FileFormat.KERAS_H5,
        HOSTILE,
        (Layer(HOSTILE, HOSTILE, tuple(t.tensor for t in tensors)),),
        (layer,),
        warnings=(HOSTILE,),
    )


def test_names_from_hostile_files_are_escaped() -> None:
    model = _hostile_model()
    diagrams = [diagram(e) for e in explain_model(model)]
    svg = svg_document(diagrams, model.path)
    page = render_html([analyse(model)])
    for text in (svg, page):
        assert "<script" not in text and "\x07" not in text and "\x1b" not in text
        assert "\u202e" not in text
    root = ET.fromstring(svg)
    (cell,) = _cells(root)
    assert cell.get("data-layer", "").startswith("lstm</text><script>")  # the name, as text
    assert sum(int(t.get("data-count") or 0) for t in _counts(cell, "edge-group")) == 48
    ET.fromstring(svg_document(diagrams, model.path))


def _visible(text: ET.Element) -> str:
    """A `<text>`'s words as shown: without its `<title>` tooltip."""
    parts = [text.text or ""]
    for child in text:
        if child.tag != f"{SVG}title":
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return "".join(parts)


def test_long_names_are_shortened_with_the_whole_name_in_a_tooltip() -> None:
    """A name hundreds of characters long never runs across the picture: it is cut around an
    ellipsis to fit (the tail, `kernel:0`, kept) and the whole name is in a `<title>`; a layer
    of 409,600,000 input weights still prints its exact counts."""
    model = long_names_model()
    svg = svg_document([diagram(e) for e in explain_model(model)], model.path)
    root = ET.fromstring(svg)
    width = float(root.get("width") or 0)
    assert width <= 1000
    titles = {"".join(t.itertext()) for t in root.iter(f"{SVG}title")}
    assert any(LONG in title for title in titles)
    for text in root.iter(f"{SVG}text"):
        shown_text = _visible(text)
        classes = (text.get("class") or "").split()
        size = 14 if "title" in classes else 11 if "small" in classes else 12
        bold = "title" in classes or "head" in classes
        assert text_width(shown_text, size, bold) < width, shown_text[:60]
    words = [_visible(text) for text in root.iter(f"{SVG}text")]
    quarter = WIDE_UNITS * WIDE_INPUT
    assert f"W: {WIDE_UNITS:,}·{WIDE_INPUT:,} = {quarter:,} (9 drawn)" in words
    stored = [line for line in words if line.startswith("stored as: W = encoder/")]
    assert stored and all("…" in line and line.endswith("/lstm_cell/kernel:0") for line in stored)
    page = render_html([analyse(model)])
    chart = page[page.index('<svg class="share-chart"') :]
    assert "<title>" + "classifier_head_" * 12 + "</title>" in chart.split("</svg>")[0]


def test_a_block_the_cell_table_does_not_know_gets_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A layer kind without a picture (a Mamba or RWKV block, as recurrent-LLM readers will
    add) is said so in one line, and the rest of the page is drawn."""
    import inspector.report.diagram as diagram_module
    import inspector.report.explain as explain_module

    known = {k: v for k, v in explain_module.CELLS.items() if k is not CellKind.LSTM}
    monkeypatch.setattr(explain_module, "CELLS", known)
    monkeypatch.setattr(diagram_module, "CELLS", known)
    model = _hostile_model()
    (picture,) = [diagram(e) for e in explain_model(model)]
    assert not picture.drawable
    (cell,) = _cells(ET.fromstring(svg_document([picture], "x")))
    assert cell.get("data-drawn") == "false"
    lines = ["".join(t.itertext()) for t in cell.iter(f"{SVG}text")]
    assert len(lines) == 2 and "no picture for a LSTM layer" in lines[1]
    assert "Cell diagrams" in render_html([analyse(model)])


def test_directory_page_opens_with_an_index(tmp_path: Path) -> None:
    """`rnninspect DIR -f html`: one row per file in order (format, params, checks), each
    linking to its section, collapsed; an unreadable file listed with its error."""
    folder = tmp_path / "models"
    folder.mkdir()
    for stem in ("simplernn_u1_f1", "simplernn_u2_f1"):
        shutil.copy(FIXTURES / "keras2" / f"{stem}.h5", folder / f"{stem}.h5")
    (folder / "broken.h5").write_bytes(b"not hdf5 at all")
    result = CliRunner().invoke(app, [str(folder), "-f", "html"])
    assert result.exit_code == 2  # one unreadable file
    page = result.stdout
    index = page[
        page.index('<table class="index">') : page.index(
            "</table>", page.index('<table class="index">')
        )
    ]
    rows = index.split("<tr>")[2:]
    assert len(rows) == 3
    assert "broken.h5" in rows[0] and "unreadable" in rows[0] and "not a model file" in rows[0]
    for number, (row, params) in enumerate(zip(rows[1:], (3, 8), strict=True), 2):
        assert f'href="#file-{number}"' in row and f">{params}</td>" in row and "1 ok" in row
        assert f'<details id="file-{number}">' in page
    assert "<details open" not in page and 'id="file-1"' not in page
    assert page.count('<marker id="f2-arrow"') == 1 and page.count('<marker id="f3-arrow"') == 1


def test_html_page_is_self_contained() -> None:
    result = CliRunner().invoke(
        app, [str(FIXTURES / "keras2" / "embedding_lstm_dense.h5"), "-f", "html"]
    )
    assert result.exit_code == 0, result.output
    page = result.stdout
    lowered = page.lower()
    for banned in ("<script", "<link", "<iframe", "@import", "url(http", "src="):
        assert banned not in lowered
    links = lowered.count("http://") + lowered.count("https://")
    assert links == lowered.count('xmlns="http://www.w3.org/2000/svg"')
    assert "default-src 'none'" in page
    for section in ("Parameter share per layer", "Formula checks", "Cell diagrams", "MACs"):
        assert section in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)"
)
def test_headless_chromium_renders_the_page_without_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "explain",
            str(FIXTURES / "keras2" / "embedding_lstm_dense.h5"),
            "-f",
            "html",
            "-o",
            str(page),
        ],
    )
    assert result.exit_code == 0, result.output
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,2000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,  # a hung browser fails the test instead of the suite
        check=False,
    )
    print(f"screenshot for review: {shot}")
    assert done.returncode == 0, done.stderr[-2000:]
    for marker in ("Uncaught", "ERROR:CONSOLE", "Refused to"):
        assert marker not in done.stderr, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


REAL = realworld_entries(
    "onnx", "keras_h5_full_model", "keras_h5_weights_only", "keras_v3_zip", "keras3_weights_h5"
)


@pytest.mark.parametrize("entry", REAL, ids=lambda e: e["file"])
def test_real_files_draw_and_count(entry: dict, tmp_path: Path) -> None:
    """Every real file: the SVG parses and each layer's labels sum to its count; the page is
    written; a fused ONNX node's MACs per step are its W and R elements (shapes as the onnx
    package read them for the manifest)."""
    path = REALWORLD / "files" / entry["file"]
    root = _svg_of(path, tmp_path / "real.svg")
    for cell in _cells(root):
        labels = sum(int(t.get("data-count") or -1) for t in _counts(cell, "edge-group"))
        assert labels == int(cell.get("data-params") or -1), cell.get("data-layer")
    page = CliRunner().invoke(app, ["explain", str(path), "-f", "html"])
    assert page.exit_code == 0 and "<script" not in page.stdout.lower()
    nodes = (entry.get("summary") or {}).get("recurrent_nodes") or []
    fused = [n for n in nodes if n.get("graph") == "main" and n.get("W") and n.get("R")]
    if entry["format"] == "onnx" and fused:
        figures = inspect_file(path).compute
        ours = sorted(item.macs_per_step for item in figures.recurrent if item.layer)
        truth = sorted(math.prod(n["W"]) + math.prod(n["R"]) for n in fused)
        assert all(value in ours for value in truth), (ours, truth)


def test_html_writes_shapes_as_the_terminal_does() -> None:
    """A rank-1 shape is `(20,)` (a Python tuple) on the page as in the terminal table."""
    file = str(FIXTURES / "keras2" / "embedding_lstm_dense.h5")
    page = CliRunner().invoke(app, [file, "-f", "html"]).stdout
    table = CliRunner().invoke(app, [file]).stdout
    assert "(20,)" in table
    assert "<td>(20,)</td>" in page and "<td>(20)</td>" not in page
    assert "<td>(None, 5)</td>" in page and "(None, 5)" in table  # Keras's output shape
