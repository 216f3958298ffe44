"""Cell diagrams (`explain --svg`) and the HTML page (`--format html`).

The SVG must parse, its edge-group labels must sum to the layer's parameter count as the
framework that wrote the fixture counted it (the manifests), every step of the unrolled picture
must carry the same labelled weights, names from hostile files must come out escaped, and the page
must load in a real browser without console errors."""

from __future__ import annotations

import math
import os
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
from inspector.render.svg import svg_document
from inspector.report.analysis import analyse
from inspector.report.diagram import diagram
from inspector.report.explain import explain_model
from tests.conftest import (
    FIXTURES,
    REALWORLD,
    ROOT,
    framework_total,
    manifest_entries,
    realworld_entries,
)

SVG = "{http://www.w3.org/2000/svg}"
REGENERATE = os.environ.get("RNNINSPECT_REGENERATE") == "1"
DOCS = ROOT / "docs" / "diagrams"
# The seed article's worked examples: SimpleRNN(1) on 1 feature, (2) on 1, (1) on 3.
SEED_EXAMPLES = ("simplernn_u1_f1", "simplernn_u2_f1", "simplernn_u1_f3")

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


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_edge_labels_sum_to_the_frameworks_count(entry: dict, tmp_path: Path) -> None:
    root = _svg_of(FIXTURES / entry["file"], tmp_path / "cells.svg")
    cells = {cell.get("data-layer"): cell for cell in _cells(root)}
    truth = {layer["name"]: layer["params"] for layer in entry["recurrent_layers"]}
    drawn = 0
    for name, cell in cells.items():
        labels = sum(int(t.get("data-count") or -1) for t in _counts(cell, "edge-group"))
        assert labels == int(cell.get("data-params") or -1)
        if name in truth:  # a stacked-cells RNN is drawn cell by cell, named by its path
            assert labels == truth[name], name
        drawn += labels
    assert drawn == sum(truth.values())


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


def test_wide_layers_are_drawn_as_blocks_not_edges(tmp_path: Path) -> None:
    root = _svg_of(FIXTURES / "keras2" / "lstm_u16_d8.h5", tmp_path / "wide.svg")
    (cell,) = _cells(root)
    assert len(list(cell.iter(f"{SVG}line"))) < 40  # 16·8 + 16·16 edges would be hundreds
    drawn = sum(int(t.get("data-count") or 0) for t in _counts(cell, "edge-group"))
    assert drawn == framework_total("keras2/lstm_u16_d8.h5")


@pytest.mark.parametrize("stem", SEED_EXAMPLES)
def test_readme_diagrams_are_rnninspects_own(
    stem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/diagrams/*.svg are what `rnninspect explain --svg` writes for the seed's examples
    (RNNINSPECT_REGENERATE=1 rewrites them)."""
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
