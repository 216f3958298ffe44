"""The ONNX reader against truth recorded by the generator (fixtures/onnx/manifest.json, measured
with the onnx package and the source frameworks) and against the real-world corpus when present.

Total definition (see inspector/formats/onnx/reader.py): float initializers + float Constant
values - tensors used only as initial states - scales and zero points of quantization + integer
weights of quantized ops (DequantizeLinear, DynamicQuantizeLSTM, MatMulInteger, QLinear*...).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from conftest import FIXTURES, REALWORLD, entry_id, manifest_entries, realworld_entries
from inspector import inspect_file
from inspector.cli.app import app
from inspector.formats.onnx.graph import Index
from inspector.formats.onnx.reader import OUTSIDE_LAYERS, initializer_elements
from inspector.formats.onnx.wire import parse_model

# Entries measured by the ONNX generators (other manifests list ONNX files with their own truth).
ENTRIES = [
    e
    for e in manifest_entries("onnx")
    if e["file"] and e["file"].endswith(".onnx") and e.get("onnx_truth") is not None
]
REAL = [e for e in realworld_entries("onnx") if (REALWORLD / "files" / e["file"]).exists()]
DIRECTIONS = {
    "forward": ["forward"],
    "reverse": ["backward"],
    "bidirectional": ["forward", "backward"],
}
runner = CliRunner()


def _report(entry: dict) -> dict:
    return inspect_file(FIXTURES / entry["file"]).to_dict()


def _location(graph: str) -> str:
    """The manifest names a body 'main/node.attr'; the reader says 'main/node:attr'."""
    head, _, tail = graph.rpartition(".")
    return f"{head}:{tail}" if head and "/" in graph else graph


def _expected_total(truth: dict) -> int:
    dequantized = sum(
        item["elements"]
        for node in truth["recurrent_nodes"]
        for item in node["inputs"].values()
        if item.get("computed_by") == "DequantizeLinear"
    )
    return (
        truth["float_initializer_elements"]
        + truth["constant_node_float_elements"]
        - truth["state_tensor_elements"]
        + dequantized
    )


def _float_metadata(entry: dict) -> int:
    """Float tensors the fixture's construction marks as no parameter (a quantized weight's
    scale): quantization metadata, not counted."""
    tensors = ((entry.get("source") or {}).get("construction") or {}).get("tensors", [])
    return sum(
        t["elements"]
        for t in tensors
        if not t["parameter"]
        and t["dtype"].startswith("float")
        and "quantization" in t.get("role", "")
    )


def _lowered_truth(truth: dict) -> list[dict]:
    """Loops and Scans whose body holds a fused op are reported as that op, not lowered; the
    two loops computing the directions of one Keras Bidirectional (the generator matched each
    loop's kernel to the sublayer's) are one layer of two directions."""
    layers: list[dict] = []
    by_keras: dict[str, dict] = {}
    for item in truth["lowered"]:
        if item.get("fused_ops_inside"):
            continue
        keras = item.get("keras_layer")
        if keras in by_keras:
            merged = by_keras[keras]
            merged["weight_elements"] += item["weight_elements"]
            merged["directions"].add(item["keras_direction"])
            continue
        layer = {**item, "directions": {item.get("keras_direction", "forward")}}
        if keras is not None:
            by_keras[keras] = layer
        layers.append(layer)
    return layers


def _lowered_expected(entry: dict) -> list[dict]:
    """The generator's lowered recurrences, and a single-step cell (fixtures/cases: no Loop, no
    repetition, so not in `lowered`) with the elements of the weights it found for the cell."""
    expected = _lowered_truth(entry["onnx_truth"])
    if "cell" in entry:
        found = entry["cell"]["cell_class"]
        name = (found[0] if isinstance(found, list) else found).split()[0]
        hint = {"LSTMCell": "LSTM", "GRUCell": "GRU", "RNNCell": "RNN"}[name]
        elements = entry["cell"]["stored_cell_param_elements"]
        expected = [*expected, {"cell_hint": hint, "weight_elements": elements}]
    return expected


def _refused_for_shapes(entry: dict) -> bool:
    """onnxruntime refused to load or run the file over an operand's shape."""
    ort = entry.get("ort") or {}
    return not (ort.get("loads") and ort.get("runs")) and "shape" in str(ort.get("error")).lower()


needs_fixtures = pytest.mark.skipif(not ENTRIES, reason="fixtures/onnx/ not generated")


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_fused_nodes_match_the_generator(entry: dict) -> None:
    truth = entry["onnx_truth"]
    report = _report(entry)
    # ONNX's own RNN/LSTM/GRU (contrib ops such as DynamicQuantizeLSTM: tests/test_onnx_cases.py)
    fused = [
        layer
        for layer in report["recurrent_layers"]
        if not layer["lowered"] and layer["type"] in ("RNN", "LSTM", "GRU")
    ]
    assert len(fused) == len(truth["recurrent_nodes"])
    for node, layer in zip(truth["recurrent_nodes"], fused, strict=True):
        assert layer["type"] == node["op_type"]
        assert layer["params"] == node["params"]
        assert layer["units"] == (node["hidden_size"] or node["hidden_size_from_R"])
        directions = DIRECTIONS[node["direction"]]
        assert layer["directions"] == len(directions)
        assert sorted({t["direction"] for t in layer["tensors"]}) == sorted(directions)
        assert layer["location"] == _location(node["graph"])
        if _refused_for_shapes(entry):  # the file is invalid: no count makes it ok
            assert layer["check"] == "mismatch"
            assert "spec needs" in layer["reason"] or "would refuse" in layer["reason"]
        else:
            assert layer["check"] == "ok", layer["reason"]
        for label, role in (("W", "kernel"), ("R", "recurrent_kernel"), ("P", "peephole")):
            if label in node["inputs"]:
                views = [t for t in layer["tensors"] if t["role"] == role]
                assert [list(node["inputs"][label]["shape"][1:])] * len(directions) == [
                    t["shape"] for t in views
                ]
        if "B" in node["inputs"]:
            halves = [t for t in layer["tensors"] if t["role"] in ("input_bias", "recurrent_bias")]
            assert len(halves) == 2 * len(directions)
        assert ("linear_before_reset=" in " ".join(layer["notes"])) == (node["op_type"] == "GRU")


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_total_follows_the_definition(entry: dict) -> None:
    truth = entry["onnx_truth"]
    report = _report(entry)
    expected = _expected_total(truth) - _float_metadata(entry)
    expected_states = truth["state_tensor_elements"]
    if "quantization" in entry:
        # onnxruntime's quantizer output (fixtures/cases): the weights the generator found in
        # the quantized ops' weight inputs (any dtype; scales and zero points apart), plus the
        # float constants; the initial states are those of the float model it started from,
        # whose constants the quantizer keeps (the generator does not know contrib ops' states).
        float_model = next(e for e in ENTRIES if e["file"] == entry["float_model"]["file"])
        expected_states = float_model["onnx_truth"]["state_tensor_elements"]
        expected = (
            entry["quantization"]["initializer_elements_by_role"]["data"]["elements"]
            + truth["constant_node_float_elements"]
            - expected_states
        )
        assert expected == entry["source"]["total_params"]  # the manifest agrees with torch
    assert report["total_params"] == expected
    states = sum(e["params"] for e in report["excluded"] if e["reason"].startswith("initial"))
    assert states == expected_states
    assert report["trainable_params"] is None  # ONNX has no notion of trainable


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_rows_and_extras_add_up_to_the_total(entry: dict) -> None:
    """Each counted tensor sits in exactly one row, the single-value constants of weightless
    nodes in the row of tensors outside layers; a later recurrence reading the same weight
    lists it as shared with the row that holds it."""
    report = inspect_file(FIXTURES / entry["file"])
    model = report.model
    keys = [t.key for layer in model.layers for t in layer.tensors]
    assert len(keys) == len(set(keys))
    assert sum(layer.params for layer in model.layers) == report.totals.total
    outside = [layer for layer in model.layers if layer.name == OUTSIDE_LAYERS]
    assert {t.key for t in model.extra_tensors} == {t.key for row in outside for t in row.tensors}


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_lowered_recurrences_are_found(entry: dict) -> None:
    truth = entry["onnx_truth"]
    full = inspect_file(FIXTURES / entry["file"])
    report = full.to_dict()
    expected = _lowered_expected(entry)
    lowered = [layer for layer in report["recurrent_layers"] if layer["lowered"]]
    assert len(lowered) == len(expected)
    rows = {row.name: row for row in full.model.layers}
    for item, layer in zip(expected, lowered, strict=True):
        assert layer["cell"] == {"RNN": "SimpleRNN"}.get(item["cell_hint"], item["cell_hint"])
        assert layer["check"] == "ok", layer["reason"]
        assert layer["directions"] == len(item.get("directions", {"forward"}))
        if len(item.get("directions", ())) == 2:
            sides = {t["direction"] for t in layer["tensors"]}
            assert sides == {"forward", "backward"}
        # The layer's row holds every weight (2+ elements, or one of rank 1+: a one-unit cell's)
        # the generator saw the recurrence use; the split keeps the cell's own (a folded first
        # step is in the row only).
        weights = [t for t in rows[layer["name"]].tensors if t.params > 1 or t.shape]
        assert sum(t.params for t in weights) == item["weight_elements"]
        assert {t.name for t in weights} >= {t["name"] for t in layer["tensors"]}
    if truth["recurrent_nodes"] or expected:
        assert report["recurrent_layers"], "a recurrent model must never show none"


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_initializer_elements_and_facts(entry: dict) -> None:
    truth = entry["onnx_truth"]
    index = Index(parse_model((FIXTURES / entry["file"]).read_bytes()))
    main, sub = initializer_elements(index)
    assert main + sub == truth["initializer_elements_total"]
    assert main == truth["initializers_by_graph"].get("main", {}).get("elements", 0)
    details = _report(entry)["details"]
    assert details["ir_version"] == str(truth["ir_version"])
    for domain, version in truth["opset_import"].items():
        assert f"{domain} {version}" in details["opsets"]


def _by_file(name: str) -> dict:
    return next(e for e in ENTRIES if e["file"] == name)


@needs_fixtures
def test_weight_sources_are_named() -> None:
    notes = {
        name: " ".join(_report(_by_file(name))["recurrent_layers"][0]["notes"])
        for name in (
            "onnx/hand_lstm_weights_as_inputs.onnx",
            "onnx/hand_rnn_constant_w.onnx",
            "onnx/hand_lstm_dequantize_w.onnx",
            "onnx/hand_lstm_no_hidden_size.onnx",
            "onnx/hand_lstm_layout1.onnx",
        )
    }
    assert "graph input 'W'" in notes["onnx/hand_lstm_weights_as_inputs.onnx"]
    assert "Constant node" in notes["onnx/hand_rnn_constant_w.onnx"]
    assert "computed by DequantizeLinear" in notes["onnx/hand_lstm_dequantize_w.onnx"]
    assert "hidden_size is not set" in notes["onnx/hand_lstm_no_hidden_size.onnx"]
    assert "layout=1" in notes["onnx/hand_lstm_layout1.onnx"]


@needs_fixtures
def test_graph_input_weights_are_checked_but_not_counted() -> None:
    report = _report(_by_file("onnx/hand_lstm_weights_as_inputs.onnx"))
    assert report["total_params"] == 0
    assert report["recurrent_layers"][0]["check"] == "ok"
    assert any("not stored in the file" in w for w in report["warnings"])


@needs_fixtures
def test_external_data_is_listed_and_missing_data_warns() -> None:
    present = _report(_by_file("onnx/external/hand_lstm_external.onnx"))
    size = (FIXTURES / "onnx/external/x.data").stat().st_size
    assert present["details"]["external data"] == f"x.data ({size:,} bytes)"
    assert not present["warnings"]
    missing = _report(_by_file("onnx/external_missing/hand_lstm_external.onnx"))
    assert missing["total_params"] == present["total_params"]
    assert any("x.data" in w and "missing" in w for w in missing["warnings"])


@needs_fixtures
def test_reverse_direction_is_backward() -> None:
    layer = _report(_by_file("onnx/hand_lstm_reverse.onnx"))["recurrent_layers"][0]
    assert {t["direction"] for t in layer["tensors"]} == {"backward"}


@needs_fixtures
def test_weights_are_never_decoded_and_onnx_is_not_imported() -> None:
    """A file whose weights come straight from initializers needs neither onnx nor its data."""
    code = (
        "import sys; from inspector import inspect_file; "
        f"r = inspect_file({str(FIXTURES / 'onnx/torch_legacy_lstm_2layer_h16_d8.onnx')!r}); "
        "print(r.totals.total, 'onnx' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["3840", "False"]


@needs_fixtures
@pytest.mark.parametrize(
    ("name", "code"),
    [("onnx/torch_legacy_lstm_h16_d8.onnx", 0), ("onnx/hand_unrolled_simplernn.onnx", 0)],
)
def test_cli_json(name: str, code: int) -> None:
    result = runner.invoke(app, [str(FIXTURES / name), "--format", "json"])
    assert result.exit_code == code, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "onnx"
    assert all("lowered" in layer for layer in report["recurrent_layers"])


@needs_fixtures
def test_cli_table_names_every_lowered_layer() -> None:
    result = runner.invoke(app, [str(FIXTURES / "onnx/tf2onnx_simplernn_h16_d8.onnx")])
    assert result.exit_code == 0, result.output
    assert "No recurrent layers" not in result.stdout
    assert "lowered recurrence: Loop body" in result.stdout


# --- the real-world corpus ----------------------------------------------------------------


def _real(entry: dict) -> dict:
    return inspect_file(REALWORLD / "files" / entry["file"]).to_dict()


@pytest.mark.skipif(not REAL, reason="../shared/realworld is not present")
@pytest.mark.parametrize("entry", REAL, ids=entry_id)
def test_realworld_recurrent_nodes(entry: dict) -> None:
    truth = entry["ground_truth"]
    report = _real(entry)
    fused = [layer for layer in report["recurrent_layers"] if not layer["lowered"]]
    nodes = truth["recurrent_nodes"]
    if isinstance(nodes, dict):
        # Newer entries: {"<graph>:<node name>": params counted by the oracle}.
        found = {(layer["location"], layer["name"]): layer for layer in fused}
        assert len(fused) == len(nodes)
        for where, params in nodes.items():
            graph, _, name = where.rpartition(":")
            layer = found[("main/" + _location(graph), name)]
            assert layer["params"] == params
            assert layer["check"] == "ok"
        return
    assert len(fused) == len(nodes)
    for node, layer in zip(nodes, fused, strict=True):
        assert layer["type"] == node["op_type"]
        assert layer["units"] == node["hidden_size"]
        assert layer["params"] == node["W_R_B_P_elements"]
        assert layer["check"] == "ok"
        directions = DIRECTIONS[node["direction"]]
        for label, role in (("W", "kernel"), ("R", "recurrent_kernel")):
            shapes = [t["shape"] for t in layer["tensors"] if t["role"] == role]
            assert shapes == [node["inputs"][label]["shape"][1:]] * len(directions)
        assert layer["location"] == _location(node["graph"])
    if entry.get("is_control"):
        assert not report["recurrent_layers"]


@pytest.mark.skipif(not REAL, reason="../shared/realworld is not present")
@pytest.mark.parametrize("entry", REAL, ids=entry_id)
def test_realworld_recorded_totals(entry: dict) -> None:
    """Every total the entry records: initializer elements per graph level (measured with the
    onnx package) and, where an oracle counted them, the parameters."""
    truth = entry["ground_truth"]
    recorded = [k for k in ("initializer_elements_main_graph", "oracle_total") if k in truth]
    assert recorded, f"no recorded total in {sorted(truth)}"
    if "initializer_elements_main_graph" in truth:
        index = Index(parse_model((REALWORLD / "files" / entry["file"]).read_bytes()))
        main, sub = initializer_elements(index)
        assert (main, sub) == (
            truth["initializer_elements_main_graph"],
            truth["initializer_elements_subgraphs"],
        )
    if "oracle_total" in truth:
        assert _real(entry)["total_params"] == truth["oracle_total"]


@pytest.mark.skipif(not REAL, reason="../shared/realworld is not present")
def test_realworld_scan_lstm_is_reported_lowered() -> None:
    entry = next((e for e in REAL if "Scan" in e["ground_truth"]["main_graph_ops"]), None)
    if entry is None:
        pytest.skip("no Scan model in the corpus")
    report = _real(entry)
    lowered = [layer for layer in report["recurrent_layers"] if layer["lowered"]]
    assert [layer["cell"] for layer in lowered] == ["LSTM"]
    assert lowered[0]["type"] == "Scan"
    assert report["warnings"], "an uncertain lowered recurrence must say so"


@needs_fixtures
def test_locations_of_nested_ops() -> None:
    report = _report(_by_file("onnx/hand_if_lstm.onnx"))
    assert report["recurrent_layers"][0]["location"].startswith("main/")
    assert ":then_branch" in report["recurrent_layers"][0]["location"]


def test_unrolled_chain_with_a_weight_copy_per_step(tmp_path: Path) -> None:
    """Long dynamo exports store the recurrent weight once per step: the chain is still one
    recurrence, the formula uses one copy, the total counts every copy the file holds."""
    h, d, steps = 4, 3, 4
    inits = [
        numpy_helper.from_array(np.ones((d, h), np.float32), "Wx"),
        numpy_helper.from_array(np.ones((h,), np.float32), "b"),
    ]
    nodes, state = [], None
    for t in range(steps):
        nodes.append(helper.make_node("MatMul", [f"x{t}", "Wx"], [f"px{t}"]))
        pre = f"px{t}"
        if state is not None:
            inits.append(numpy_helper.from_array(np.ones((h, h), np.float32), f"Wh_copy{t}"))
            nodes.append(helper.make_node("MatMul", [state, f"Wh_copy{t}"], [f"ph{t}"]))
            nodes.append(helper.make_node("Add", [f"px{t}", f"ph{t}"], [f"s{t}"]))
            pre = f"s{t}"
        nodes.append(helper.make_node("Add", [pre, "b"], [f"a{t}"]))
        nodes.append(helper.make_node("Tanh", [f"a{t}"], [f"h{t}"]))
        state = f"h{t}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(f"x{t}", TensorProto.FLOAT, [1, d]) for t in range(steps)],
        [helper.make_tensor_value_info(state, TensorProto.FLOAT, [1, h])],
        inits,
    )
    path = tmp_path / "copies.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    report = inspect_file(path).to_dict()
    (layer,) = report["recurrent_layers"]
    assert layer["lowered"] and layer["cell"] == "SimpleRNN" and layer["check"] == "ok"
    assert layer["params"] == h * d + h * h + h
    assert report["total_params"] == h * d + h + (steps - 1) * h * h
    assert any("once per step" in w for w in report["warnings"])


# Fused nodes reading their W/R/B straight from main-graph initializers: the manifest names them.
DIRECT = [
    e
    for e in ENTRIES
    if e["onnx_truth"]["recurrent_nodes"]
    and all(
        node["graph"] == "main"
        and all(
            item["source"] == "initializer"
            for label, item in node["inputs"].items()
            if label in ("W", "R", "B", "P")
        )
        for node in e["onnx_truth"]["recurrent_nodes"]
    )
]


def test_shared_weights_are_among_the_direct_cases() -> None:
    assert any("shared" in e["file"] for e in DIRECT)


@pytest.mark.parametrize("entry", DIRECT, ids=entry_id)
def test_a_weight_two_nodes_read_counts_in_the_first_row(entry: dict) -> None:
    """The first node reading an initializer holds it; a later node's row leaves it out and
    says whose row it is in (the manifest records which initializer each input names)."""
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    rows = {row["name"]: row for row in report["layers"]}
    layers = {layer["name"]: layer for layer in report["recurrent_layers"]}
    first: dict[str, str] = {}
    for node in entry["onnx_truth"]["recurrent_nodes"]:
        inputs = [item for label, item in node["inputs"].items() if label in ("W", "R", "B", "P")]
        own = [i for i in inputs if first.setdefault(i["name"], node["name"]) == node["name"]]
        row = rows[node["name"]]
        assert row["params"] == sum(item["elements"] for item in own)
        holders = sorted({first[item["name"]] for item in inputs} - {node["name"]})
        assert row["shared_with"] == holders
        assert layers[node["name"]]["params"] == node["params"]
        assert layers[node["name"]]["shared_with"] == holders
    assert sum(row["params"] for row in rows.values()) == report["total_params"]


def test_an_unknown_recurrent_op_warning_says_what_was_counted(tmp_path: Path) -> None:
    """A recurrent-looking op of another domain is not split; its warning must agree with the
    totals: the float weight is counted, the integer index tensor is listed as not counted."""
    inits = [
        numpy_helper.from_array(np.ones((1, 8, 3), np.float32), "W"),
        numpy_helper.from_array(np.array([0, 1], np.int64), "idx"),
    ]
    node = helper.make_node("MyLSTM", ["X", "W", "idx"], ["Y"], domain="example.custom")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.custom", 1)]
    )
    path = tmp_path / "custom.onnx"
    path.write_bytes(model.SerializeToString())
    report = inspect_file(path).to_dict()
    assert report["total_params"] == 24
    (warning,) = [w for w in report["warnings"] if "MyLSTM" in w]
    assert "1 stored weight input(s) (24 values) are counted" in warning
    assert "idx" in warning and "Not counted" in warning
    assert any("idx" in item["tensors"] for item in report["excluded"])


def test_attn_lstm_splits_its_cell_and_keeps_the_attention_weights_in_its_row(
    tmp_path: Path,
) -> None:
    """com.microsoft AttnLSTM (ContribOperators.md): W [dirs, 4h, input + attention], R, B as
    ONNX LSTM; QW, MW, V, AW belong to the attention mechanism. Counts from the arrays below."""
    h, width = 4, 5  # the cell reads concat(x (3), attention (2))
    arrays = {
        "W": np.ones((1, 4 * h, width), np.float32),
        "R": np.ones((1, 4 * h, h), np.float32),
        "B": np.ones((1, 8 * h), np.float32),
        "QW": np.ones((1, h, 2), np.float32),
        "MW": np.ones((1, 3, 2), np.float32),
        "V": np.ones((1, 2), np.float32),
        "AW": np.ones((1, 3 + h, 2), np.float32),
    }
    inputs = ["X", "W", "R", "B", "", "", "", "", "QW", "MW", "V", "M", "", "AW"]
    node = helper.make_node(
        "AttnLSTM", inputs, ["Y"], domain="com.microsoft", hidden_size=h, name="attn"
    )
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 1, 3]),
            helper.make_tensor_value_info("M", TensorProto.FLOAT, [1, 6, 3]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in arrays.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    path = tmp_path / "attn.onnx"
    path.write_bytes(model.SerializeToString())
    report = inspect_file(path).to_dict()
    (layer,) = report["recurrent_layers"]
    cell = sum(arrays[name].size for name in ("W", "R", "B"))
    assert (layer["type"], layer["cell"], layer["units"]) == ("AttnLSTM", "LSTM", h)
    assert layer["params"] == cell and layer["check"] == "ok" and layer["input_dim"] == width
    (row,) = report["layers"]
    assert row["params"] == report["total_params"] == sum(a.size for a in arrays.values())
