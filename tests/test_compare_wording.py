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


# Each format `compare` reads values of (inspector/formats _VALUE_MODULES), by the words its
# help uses for it: a format added to compare must be added to the help (and here).
HELP_WORDS = {
    "keras-h5": ".h5",
    "keras-h5-weights": "weights file",
    "keras-v3": ".keras",
    "keras-v3-weights": "weights file",
    "onnx": "ONNX",
    "safetensors": ".safetensors",
    "pytorch": "torch.save",
    "tflite": "TFLite",
    "tf-savedmodel": "SavedModel",
    "gguf": "GGUF",
    "hf-checkpoint": "Hugging Face checkpoint directory",
}


def test_help_lists_every_format_compare_reads() -> None:
    from inspector.formats import _VALUE_MODULES

    assert set(HELP_WORDS) == {fmt.value for fmt in _VALUE_MODULES}
    help_text = " ".join(runner.invoke(app, ["compare", "--help"]).stdout.split())
    start = help_text.index("SOURCE The trained model")
    source = help_text[start : help_text.index("EXPORT Its export", start)]
    for fmt, word in HELP_WORDS.items():
        assert word in source, fmt


def test_records_say_which_side_is_source_and_which_export() -> None:
    """On a terminal too narrow for the pairs' table, each record names its side."""
    from conftest import run_main

    args = ["compare", str(FIXTURES / "onnx/keras_lstm_h16_d8.h5")]
    args.append(str(FIXTURES / "onnx/tf2onnx_lstm_h16_d8.onnx"))
    narrow = run_main(args, stdout_tty=True, env={"COLUMNS": "40", "NO_COLOR": "1"}).stdout
    assert "source type: LSTM" in narrow and "export type: LSTM" in narrow
    assert "\n    type:" not in narrow
