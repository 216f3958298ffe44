"""`rnninspect compare` on the real fixture pairs, through the CLI.

Every count asserted here comes from fixtures/onnx/manifest.json (PyTorch `numel()`, Keras
`count_params()`, the ONNX node's W/R/B element counts), and every gate mapping from the blocks
the generator matched bit for bit, never from rnninspect's own formula.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries
from inspector.cli.app import app

runner = CliRunner()
# The fixtures/onnx manifest's pairs (its entries record per-module and per-node truth these
# tests read); the fixtures/cases pairs are compared in tests/test_onnx_cases.py.
PAIRS = [
    e
    for e in manifest_entries("onnx")
    if (e.get("file") or "").startswith("onnx/") and (e.get("source") or {}).get("file")
]
FAITHFUL = [
    e
    for e in PAIRS
    if not e["onnx_truth"]["lowered"] and (e.get("ort") or {}).get("matches_framework")
]
LOWERED = [e for e in PAIRS if e["onnx_truth"]["lowered"]]
PROJECTION = next(e for e in PAIRS if "proj" in e["file"])
RECURRENT_CLASSES = {"LSTM", "GRU", "RNN", "SimpleRNN", "Bidirectional", "RNNCell"}
# PyTorch names the candidate gate g (LSTM) and n (GRU); Keras and ONNX call it c and h.
SAME_GATE = {"g": "c", "n": "h"}


def pair_id(entry: dict) -> str:
    return entry["file"].split("/")[-1]


def compare(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["compare", *args])
    try:
        payload = json.loads(result.stdout) if "--format" in args else None
    except json.JSONDecodeError:
        payload = None
    return result.exit_code, payload, result.stdout + result.stderr


def files(entry: dict) -> tuple[str, str]:
    return str(FIXTURES / entry["source"]["file"]), str(FIXTURES / entry["file"])


def recurrent_modules(entry: dict) -> list[dict]:
    return [m for m in entry["source"]["modules"] if m["class"] in RECURRENT_CLASSES]


def plain_modules(entry: dict, buffers: bool = False) -> list[dict]:
    """The source's modules with parameters that are no recurrent layer (with buffers too, or
    only those without)."""
    return [
        m
        for m in entry["source"]["modules"]
        if m["class"] not in RECURRENT_CLASSES and m["params"] and bool(m.get("buffers")) == buffers
    ]


def test_the_faithful_set_covers_every_exporter() -> None:
    exporters = {e["exporter"] for e in FAITHFUL}
    assert {"torchscript", "dynamo", "tf2onnx"} <= exporters
    assert len(FAITHFUL) >= 20


@pytest.mark.parametrize("entry", FAITHFUL, ids=pair_id)
def test_faithful_pair_exits_0_with_counts_from_the_manifest(entry: dict) -> None:
    code, report, output = compare(*files(entry), "--format", "json")
    assert code == 0, output
    assert report is not None and report["faithful"] is True
    # a state dict holds the buffers too (BatchNorm's running statistics and step counter)
    stored = entry["source"].get("state_dict_elements", entry["source"]["total_params"])
    assert report["source"]["params"] == stored
    recurrent = [p for p in report["pairs"] if p["kind"] == "recurrent"]
    nodes = entry["onnx_truth"]["recurrent_nodes"]
    assert [p["export_params"] for p in recurrent] == [n["params"] for n in nodes]
    assert sum(p["source_params"] for p in recurrent) == sum(
        m["params"] for m in recurrent_modules(entry)
    )
    for pair in recurrent:
        assert pair["status"] in ("identical", "equivalent")
        assert pair["conventions"], pair  # the conventions reconciled are named
        assert pair["values"]["compared"] >= pair["source_params"]
        assert pair["differences"] == []


BUFFERED = [e for e in FAITHFUL if plain_modules(e, buffers=True)]


@pytest.mark.parametrize("entry", BUFFERED, ids=pair_id)
def test_a_step_counter_without_counterpart_does_not_fail_the_pair(entry: dict) -> None:
    """A BatchNorm's running statistics pair with the export's; its integer step counter
    (num_batches_tracked) has no ONNX counterpart and is named, not a failure."""
    _, report, _ = compare(*files(entry), "--format", "json")
    assert report is not None and report["faithful"] is True
    plain = {p["source"]: p for p in report["pairs"] if p["kind"] == "layer"}
    for module in plain_modules(entry, buffers=True):
        floats = [b for b in module["buffers"] if b["dtype"].startswith("float")]
        counters = [b for b in module["buffers"] if b not in floats]
        pair = plain[module["name"]]
        assert pair["status"] == "identical"
        stored = sum(b["numel"] for b in module["buffers"])
        assert pair["source_params"] == module["params"] + stored
        assert pair["export_params"] == module["params"] + sum(b["numel"] for b in floats)
        assert [(u["tensor"], u["counted"]) for u in pair["unmatched"]] == [
            (b["key"], False) for b in counters
        ]


def test_the_buffered_set_is_there() -> None:
    assert {e["exporter"] for e in BUFFERED} == {"torchscript", "dynamo"}


@pytest.mark.parametrize("entry", FAITHFUL, ids=pair_id)
def test_plain_layers_pair_with_their_counterparts(entry: dict) -> None:
    _, report, _ = compare(*files(entry), "--format", "json")
    assert report is not None
    plain = {p["source"]: p for p in report["pairs"] if p["kind"] == "layer"}
    for module in plain_modules(entry):
        assert plain[module["name"]]["status"] == "identical"
        assert plain[module["name"]]["source_params"] == module["params"]
        assert plain[module["name"]]["export_params"] == module["params"]


def _measured_blocks(entry: dict) -> list[list[int]]:
    """Per direction: source gate block feeding each ONNX gate block (the generator's
    bit-for-bit match)."""
    truth = entry["source_vs_onnx"]
    if "per_direction" in truth:  # Keras: blocks of the transposed kernel
        return [d["W_blocks_from_kernelT"] for d in truth["per_direction"]]
    return [d["W_blocks_from_source"] for node in truth["per_node"] for d in node["directions"]]


@pytest.mark.parametrize("entry", FAITHFUL, ids=pair_id)
def test_gate_order_matches_the_measured_mapping(entry: dict) -> None:
    _, report, _ = compare(*files(entry), "--format", "json")
    assert report is not None
    for blocks in _measured_blocks(entry):
        pair = next(p for p in report["pairs"] if p["kind"] == "recurrent")
        named = [c for c in pair["conventions"] if c["what"] == "gate order"]
        if blocks == list(range(len(blocks))):
            assert not named  # nothing reordered: nothing claimed
            continue
        (order,) = named
        source, export = order["source_order"], order["export_order"]
        for k, source_block in enumerate(blocks):
            same = SAME_GATE.get(source[source_block], source[source_block])
            assert SAME_GATE.get(export[k], export[k]) == same


@pytest.mark.parametrize("entry", FAITHFUL, ids=pair_id)
def test_bias_padding_is_named_with_its_size(entry: dict) -> None:
    _, report, _ = compare(*files(entry), "--format", "json")
    assert report is not None
    recurrent = [p for p in report["pairs"] if p["kind"] == "recurrent"]
    nodes = entry["onnx_truth"]["recurrent_nodes"]
    added = sum(n["params"] for n in nodes) - sum(m["params"] for m in recurrent_modules(entry))
    padded = [c for p in recurrent for c in p["conventions"] if c["what"] == "bias zero-padded"]
    assert sum(c["params"] for c in padded) == added
    if added:  # tf2onnx: the recurrent half of B is all zero (measured by the generator)
        assert all(d["Rb_all_zero"] for d in entry["source_vs_onnx"]["per_direction"])
        assert all(p["status"] == "equivalent" for p in recurrent)


def test_table_names_the_conventions_reconciled() -> None:
    entry = next(e for e in FAITHFUL if e["file"].endswith("tf2onnx_lstm_h16_d8.onnx"))
    code, _, output = compare(*files(entry))
    assert code == 0
    (module,) = recurrent_modules(entry)
    added = entry["onnx_truth"]["recurrent_nodes"][0]["params"] - module["params"]
    assert f"bias zero-padded: +{added} parameters, all zero" in output
    assert "gate order: keras i,f,c,o -> onnx i,o,f,c" in output
    assert "layout: keras kernel (d, g·u)" in output
    assert "Result: faithful" in output


def test_keras_gru_reset_after_is_linear_before_reset() -> None:
    entry = next(e for e in FAITHFUL if "tf2onnx_gru_resetafter" in e["file"])
    code, _, output = compare(*files(entry))
    assert code == 0
    assert "keras reset_after=True <-> onnx linear_before_reset=1" in output


@pytest.mark.parametrize("entry", LOWERED, ids=pair_id)
def test_lowered_export_is_reported_with_its_values_compared(entry: dict) -> None:
    code, report, output = compare(*files(entry), "--format", "json")
    assert code == 0, output  # a faithful export, computed by plain ops
    assert report is not None
    (pair,) = [p for p in report["pairs"] if p["kind"] == "recurrent"]
    # one loop, or the two loops of a Keras Bidirectional's directions
    loops = entry["onnx_truth"]["lowered"]
    assert len(loops) == 1 or {loop["keras_direction"] for loop in loops} == {"forward", "backward"}
    assert pair["status"] == "lowered in export"
    assert pair["lowered"]["type"] == loops[0]["kind"]
    (module,) = recurrent_modules(entry)
    assert pair["source_params"] == module["params"]
    beside = sum(u["params"] for u in pair["unmatched"] if not u["counted"])
    assert pair["export_params"] + beside == sum(loop["weight_elements"] for loop in loops)
    assert pair["differences"] == [] and pair["values"]["compared"] >= module["params"]


def test_tf2onnx_gru_reset_before_reports_lowered_in_export() -> None:
    entry = next(e for e in LOWERED if "tf2onnx_gru_resetbefore" in e["file"])
    code, _, output = compare(*files(entry))
    assert code == 0
    assert "lowered in export: the recurrence is a Loop" in output
    assert "gate blocks in keras order z,r,h" in output


def test_projection_dropped_is_shape_differs() -> None:
    entry = PROJECTION
    code, report, _ = compare(*files(entry), "--format", "json")
    assert code == 1
    assert report is not None
    (pair,) = report["pairs"]
    (module,) = recurrent_modules(entry)
    (node,) = entry["onnx_truth"]["recurrent_nodes"]
    assert pair["status"] == "shape differs"
    assert (pair["source_params"], pair["export_params"]) == (module["params"], node["params"])
    projection = next(p for p in module["parameters"] if p["name"] == "weight_hr_l0")
    (dropped,) = pair["unmatched"]
    assert dropped["tensor"] == projection["key"] and dropped["params"] == projection["numel"]
    _, _, table = compare(*files(entry))
    assert f"parameters: {module['params']} -> {node['params']}" in table
    assert "projection dropped: lstm.weight_hr_l0" in table


def test_onnx_against_onnx_reads_weights_computed_in_the_graph() -> None:
    """dynamo without optimisation builds W/R/B by Slice/Concat from the state dict's tensors:
    their values are evaluated along that chain and equal the optimised export's."""
    code, report, _ = compare(
        str(FIXTURES / "onnx/torch_dynamo_noopt_lstm_h16_d8.onnx"),
        str(FIXTURES / "onnx/torch_dynamo_lstm_h16_d8.onnx"),
        "--format",
        "json",
    )
    assert code == 0
    assert report is not None and report["pairs"][0]["status"] == "identical"


def test_external_data_inside_the_folder_is_read() -> None:
    model = str(FIXTURES / "onnx/external/hand_lstm_external.onnx")
    code, report, _ = compare(model, model, "--format", "json")
    assert code == 0
    assert report is not None and report["pairs"][0]["values"]["compared"] > 0


def test_missing_external_data_leaves_the_pair_unverified() -> None:
    code, report, _ = compare(
        str(FIXTURES / "onnx/external/hand_lstm_external.onnx"),
        str(FIXTURES / "onnx/external_missing/hand_lstm_external.onnx"),
        "--format",
        "json",
    )
    assert code == 1
    assert report is not None
    (pair,) = report["pairs"]
    assert pair["status"] == "not verified" and pair["not_verified"]


def test_missing_layers_fail() -> None:
    code, report, _ = compare(
        str(FIXTURES / "onnx/torch_emb_lstm_linear_h16_d8.safetensors"),
        str(FIXTURES / "onnx/torch_dynamo_lstm_h16_d8.onnx"),
        "--format",
        "json",
    )
    assert code == 1
    assert report is not None
    statuses = {p["source"]: p["status"] for p in report["pairs"]}
    assert statuses["emb"] == statuses["fc"] == "missing in export"
    # Another model's LSTM (its own seed): same shapes, other values.
    assert statuses["lstm.l0"] == "values differ"


def test_map_pairs_by_name_and_rejects_unknown_names() -> None:
    source = str(FIXTURES / "onnx/torch_lstm_2layer_h16_d8.safetensors")
    export = str(FIXTURES / "onnx/torch_legacy_lstm_2layer_h16_d8.onnx")
    code, report, _ = compare(source, export, "--map", "lstm.l0=/lstm/LSTM_1", "--format", "json")
    assert code == 1  # forced onto the wrong node: the input widths differ
    assert report is not None
    assert report["pairs"][0]["export"] == "/lstm/LSTM_1"
    assert report["pairs"][0]["status"] == "shape differs"
    code, _, output = compare(source, export, "--map", "nosuch=/lstm/LSTM")
    assert code == 2
    assert "no recurrent layer 'nosuch'" in output


def test_json_is_the_documented_structure() -> None:
    entry = next(e for e in FAITHFUL if e["file"].endswith("tf2onnx_bilstm_h8_d8.onnx"))
    _, report, _ = compare(*files(entry), "--format", "json")
    assert report is not None
    assert set(report) == {"source", "export", "tolerance", "faithful", "summary", "pairs"}
    assert set(report["source"]) == {
        "file",
        "format",
        "convention",
        "params",
        "paired_params",
        "outside_pairs",
    }
    (pair,) = report["pairs"]
    assert set(pair) == {
        "kind",
        "source",
        "export",
        "source_type",
        "export_type",
        "status",
        "source_params",
        "export_params",
        "conventions",
        "values",
        "differences",
        "mismatches",
        "unmatched",
        "lowered",
        "not_verified",
    }
    assert {c["what"] for c in pair["conventions"]} >= {"layout", "directions", "gate order"}


def test_compare_opens_files_read_only(tmp_path: Path) -> None:
    entry = next(e for e in FAITHFUL if e["file"].endswith("tf2onnx_lstm_h16_d8.onnx"))
    paths = [Path(p) for p in files(entry)]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert compare(*files(entry))[0] == 0
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == before
