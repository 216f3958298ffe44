"""`compare`'s help, README and behaviour agree (issue 13): a lowered export is faithful (exit 0,
`"faithful": true`), and `--map` is suggested only where it can work (recurrent layers)."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from conftest import FIXTURES, ROOT, manifest_entries
from inspector.cli.app import app
from inspector.compare.result import PairKind, PairResult, Status
from inspector.render.compare import _pair_lines

runner = CliRunner()
LOWERED = [
    e
    for e in manifest_entries("onnx")
    if (e.get("file") or "").startswith("onnx/")
    and (e.get("source") or {}).get("file")
    and e["onnx_truth"]["lowered"]
]


def test_help_readme_and_behaviour_agree_on_a_lowered_export() -> None:
    entry = LOWERED[0]  # the generator recorded that the exporter lowered this recurrence
    source, export = FIXTURES / entry["source"]["file"], FIXTURES / entry["file"]
    result = runner.invoke(app, ["compare", str(source), str(export), "--format", "json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["faithful"] is True
    assert "lowered in export" in report["summary"]
    help_text = " ".join(runner.invoke(app, ["compare", "--help"]).stdout.split())
    assert re.search(
        r"Exit 0 \(faithful\): every pair identical, equivalent, or lowered", help_text
    )
    readme = (ROOT / "README.md").read_text()
    assert "# every pair identical, equivalent or lowered in export" in readme
    assert "Exit **0** when every pair is identical, equivalent or lowered" in readme


def _missing(kind: PairKind) -> list[str]:
    pair = PairResult(kind, Status.MISSING, "dense", None, "Dense", None, 18, None)
    return _pair_lines(pair)


def test_map_is_suggested_only_for_a_recurrent_layer() -> None:
    assert any("--map" in line for line in _missing(PairKind.RECURRENT))
    (line,) = _missing(PairKind.LAYER)
    assert "--map" not in line and "no counterpart found in the export" in line
