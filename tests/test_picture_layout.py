"""The pictures as a browser lays them out: headless Chromium opens one page holding the cell
diagrams of the seed's three examples, an LSTM, a GRU, bidirectional layers, ConvLSTM, a wide
layer, PyTorch and ONNX files, a gate view and names hundreds of characters long, and a script
of the test's own (added to a copy of the page, whose Content-Security-Policy forbids scripts)
writes the laid-out geometry (`getBoundingClientRect`, path points through `getScreenCTM`) into
the DOM that `--dump-dom` prints. From it: no two labels of a picture overlap, none leaves its
picture, and every loop runs from its unit hⱼ's circle to its own pⱼ's (a SimpleRNN(u) panel has
one per unit drawn). One browser launch; `-m fuzz` lays out every fixture's pictures the same way.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from inspector import inspect_file
from inspector.errors import InspectorError
from inspector.render.html import render_html
from inspector.render.svg import svg_document
from inspector.report.analysis import analyse
from inspector.report.batch import Outcome
from inspector.report.diagram import diagram, visible
from inspector.report.explain import explain_model, select_gate
from tests.conftest import FIXTURES
from tests.picture_models import long_names_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)"
)

PICTURED = (
    "keras2/simplernn_u1_f1.h5",  # the seed's three examples: 3, 8 and 5 parameters
    "keras2/simplernn_u2_f1.h5",
    "keras2/simplernn_u1_f3.h5",
    "keras2/simplernn_nobias_u4_d3.h5",
    "keras2/lstm_nobias_u4_d3.h5",
    "keras2/gru_u8_d4_reset_after.h5",  # 8 units: elided columns
    "keras2/lstm_u16_d8.h5",
    "keras2/bidir_gru_concat.h5",
    "keras2/bidir_backward_gru.h5",  # an LSTM forward, a GRU backward
    "keras2/convlstm2d.h5",
    "keras2/convlstm3d.h5",
    "keras2/rnn_stacked_cells.h5",
    "keras1/lstm_u3_d2.h5",  # one tensor per gate
    "torch/lstm_proj.bin",  # PyTorch, a projection
    "torch/bigru_state.pth",
    "onnx/hand_lstm_peephole.onnx",  # ONNX inputs W, R, B and peepholes P
    "onnx/torch_dynamo_bigru_h16_d8.onnx",
    "invalid/torch_dynamo_bilstm2_proj_h8_p3_d6.onnx",  # shapes that do not make nodes
)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)

# Runs in the test's copy of the page only: opens every section, then writes what the browser
# laid out, per SVG, as JSON into <pre id="measured">.
MEASURE = """
for (const d of document.querySelectorAll('details')) d.open = true;
const words = t => [...t.childNodes].filter(n => n.nodeName !== 'title')
  .map(n => n.textContent).join('');
const box = e => { const r = e.getBoundingClientRect();
  return [r.left, r.top, r.right, r.bottom]; };
const point = (p, at) => { const q = p.getPointAtLength(at).matrixTransform(p.getScreenCTM());
  return [q.x, q.y]; };
const out = [...document.querySelectorAll('svg')].map(svg => ({
  cls: svg.getAttribute('class') || '',
  box: box(svg),
  texts: [...svg.querySelectorAll('text')].map(t => [...box(t), words(t)]),
  panels: [...svg.querySelectorAll('g.shapes[data-panel]')].map(g => ({
    kind: g.closest('g.cell').dataset.kind,
    units: +g.closest('g.cell').dataset.units,
    panel: g.dataset.panel,
    loops: [...g.querySelectorAll('path.loop')].map(p => ({
      from: p.dataset.from, to: p.dataset.to,
      start: point(p, 0), end: point(p, p.getTotalLength())})),
    nodes: Object.fromEntries([...g.querySelectorAll('circle[data-node]')].map(c => {
      const [l, t, r, b] = box(c); return [c.dataset.node, [(l + r) / 2, (t + b) / 2, (r - l) / 2]];
    })),
  })),
}));
const pre = document.createElement('pre');
pre.id = 'measured';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
"""


def _outcomes(files: list[Path]) -> list[Outcome]:
    out = []
    for path in files:
        try:
            out.append(Outcome(str(path), report=inspect_file(path)))
        except InspectorError as failed:
            out.append(Outcome(str(path), error=str(failed)))
    return out


def _harness(page: str, extra_svgs: list[str]) -> str:
    """The product's page with its CSP taken out, the extra pictures and the measuring script."""
    page, removed = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    assert removed == 1
    return page.replace("</body>", "".join(extra_svgs) + f"<script>{MEASURE}</script></body>")


def _lay_out(page: str, tmp_path: Path) -> list[dict]:
    target = tmp_path / "layout.html"
    target.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [
            str(CHROMIUM),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            target.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,  # a hung browser fails the test instead of the suite
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    measured: list[dict] = json.loads(html.unescape(found.group(1)))
    return measured


def _overlap(a: list, b: list) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return min(width, height)


def _check(measured: list[dict]) -> dict[str, int]:
    """Every assertion on the laid-out pictures; returns what it looked at."""
    seen = {"pictures": 0, "labels": 0, "loops": 0, "simple_rnn_panels": 0}
    for svg in measured:
        texts = [t for t in svg["texts"] if t[2] > t[0] and t[4].strip()]
        left, top, right, bottom = svg["box"]
        seen["pictures"] += 1
        seen["labels"] += len(texts)
        for text in texts:  # inside its picture
            assert text[0] >= left - 0.5 and text[2] <= right + 0.5, (svg["cls"], text)
            assert text[1] >= top - 0.5 and text[3] <= bottom + 0.5, (svg["cls"], text)
        ordered = sorted(texts, key=lambda t: t[1])
        for i, a in enumerate(ordered):  # no two overlap (sorted by top: stop below a)
            for b in ordered[i + 1 :]:
                if b[1] >= a[3]:
                    break
                assert _overlap(a, b) <= 0.5, (a, b)
        for panel in svg["panels"]:
            nodes = panel["nodes"]
            for loop in panel["loops"]:
                hx, hy, radius = nodes[loop["from"]]
                px, py, _ = nodes[loop["to"]]
                assert loop["from"][1:] == loop["to"][1:]  # hⱼ to its own pⱼ
                assert abs(math.dist(loop["start"], (hx, hy)) - radius) < 1.5, loop
                assert abs(math.dist(loop["end"], (px, py)) - radius) < 2.5, loop
                seen["loops"] += 1
            if panel["kind"] == "SimpleRNN":
                units = visible(panel["units"])
                pairs = sorted((loop["from"], loop["to"]) for loop in panel["loops"])
                assert pairs == sorted((f"h{j}", f"p{j}") for j in units), panel["panel"]
                seen["simple_rnn_panels"] += 1
    return seen


def test_pictures_lay_out_without_overlaps_in_a_browser(tmp_path: Path) -> None:
    outcomes = _outcomes([FIXTURES / file for file in PICTURED])
    assert all(outcome.report is not None for outcome in outcomes)
    model = long_names_model()
    outcomes.append(Outcome(model.path, report=analyse(model)))
    gate_view = select_gate(explain_model(inspect_file(FIXTURES / PICTURED[8]).model), "h")
    extra = [svg_document([diagram(e) for e in gate_view], "gate view", "gate-")]
    measured = _lay_out(_harness(render_html(outcomes, index=True), extra), tmp_path)
    seen = _check(measured)
    charts = sum(1 for svg in measured if svg["cls"] == "share-chart")
    assert charts == len(outcomes)  # each file's bar chart was checked too
    assert seen["simple_rnn_panels"] >= 4  # the three seed examples and the no-bias one
    assert seen["loops"] > 100 and seen["labels"] > 1000, seen


@pytest.mark.fuzz
def test_every_fixtures_pictures_lay_out_in_a_browser(tmp_path: Path) -> None:
    """The same checks on every fixture file rnninspect reads (a page of about 15 MB)."""
    files = [
        path
        for path in sorted(FIXTURES.rglob("*"))
        if path.is_file() and path.suffix not in (".json", ".py", ".txt", ".md")
    ]
    outcomes = _outcomes(files)
    page = _harness(render_html(outcomes, index=True), [])
    seen = _check(_lay_out(page, tmp_path))
    read = sum(1 for outcome in outcomes if outcome.report is not None)
    assert seen["pictures"] >= read and read > 200, seen
