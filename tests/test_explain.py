"""`rnninspect explain`: per-gate slices, summing to the count Keras recorded for each layer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries
from inspector.cells import CELLS, Convention
from inspector.cli.app import app
from inspector.model import (
    BiasConvention,
    CellConfig,
    CellKind,
    Direction,
    RecurrentLayer,
    RecurrentTensor,
    Tensor,
    TensorRole,
)
from inspector.report.explain import explain_layer

runner = CliRunner()
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3, "ConvLSTM": 4}


def run(*args: str):
    return runner.invoke(app, ["explain", *args])


def manifest_layers() -> list[tuple[str, dict]]:
    cases = []
    for entry in manifest_entries("keras-h5", "keras-v3"):
        if not (FIXTURES / entry["file"]).exists():
            continue
        for layer in entry["recurrent_layers"]:
            if layer["cell_class"] == "StackedRNNCells":
                continue  # several cells in one layer: no single gate order
            cases.append((entry["file"], layer))
    return cases


LAYERS = manifest_layers()


@pytest.mark.parametrize(
    ("file", "layer"),
    LAYERS,
    ids=[f"{file}:{layer.get('path', layer['name'])}" for file, layer in LAYERS],
)
def test_gates_sum_to_the_count_keras_recorded(file: str, layer: dict) -> None:
    name = layer.get("path", layer["name"])
    result = run(str(FIXTURES / file), "--layer", name, "--format", "json")
    assert result.exit_code == 0, result.output
    (out,) = json.loads(result.stdout)
    assert out["params"] == layer["params"]
    gate_sum = sum(gate["params"] for gate in out["gates"])
    assert gate_sum + sum(u["params"] for u in out["unsplit"]) == layer["params"]
    assert out["unsplit"] == []  # every Keras recurrent tensor splits into its gates
    for gate in out["gates"]:
        assert gate["params"] == sum(piece["params"] for piece in gate["slices"])
    directions = {gate["direction"] for gate in out["gates"]}
    assert len(directions) == layer["directions"]
    if "backward_cell_class" not in layer:
        assert len(out["gates"]) == layer["directions"] * GATES[out["cell"]]
        assert [g["gate"] for g in out["gates"]][: GATES[out["cell"]]] == out["gate_order"]
        if layer.get("gate_order"):  # Keras 1 files name their gates
            assert out["gate_order"] == layer["gate_order"]
    assert out["depends_on_sequence_length"] is False


def parse_table(output: str) -> tuple[list[dict[str, str]], list[str]]:
    """The gate table (split on runs of two spaces) and the lines after it."""
    lines = output.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("direction"))
    headers = lines[header_at].split()
    rows, at = [], header_at + 2
    while at < len(lines) and lines[at].strip():
        cells = [c.strip() for c in lines[at].split("  ") if c.strip()]
        rows.append({"direction": cells[0], "gate": cells[1], "params": cells[-1]})
        at += 1
    assert headers[-1] == "params"
    return rows, lines[at + 1 :]


@pytest.mark.parametrize(
    "file", ["keras2/lstm_u16_d8.h5", "keras2/bidir_gru_concat.h5", "keras1/gru_u3_d2.h5"]
)
def test_table_rows_sum_to_the_layer_and_say_sequence_length_does_not_matter(file: str) -> None:
    (entry,) = [e for e in manifest_entries("keras-h5") if e["file"] == file]
    (layer,) = entry["recurrent_layers"]
    result = run(str(FIXTURES / file))
    assert result.exit_code == 0, result.output
    rows, after = parse_table(result.stdout)
    assert sum(int(row["params"].replace(",", "")) for row in rows) == layer["params"]
    assert after[0].endswith(f"= {layer['params']:,} = the layer's {layer['params']:,} parameters")
    assert any("does not depend on the sequence length" in line for line in after)


def test_gru_reset_after_bias_rows_are_input_then_recurrent() -> None:
    result = run(str(FIXTURES / "keras2/gru_u8_d4_reset_after.h5"), "--format", "json")
    (out,) = json.loads(result.stdout)
    z = out["gates"][0]
    assert z["gate"] == "z"
    biases = [p for p in z["slices"] if p["role"] in ("input_bias", "recurrent_bias")]
    assert [(b["role"], b["index"], b["shape"]) for b in biases] == [
        ("input_bias", "[0, 0:8]", [8]),
        ("recurrent_bias", "[1, 0:8]", [8]),
    ]
    kernel = next(p for p in z["slices"] if p["role"] == "kernel")
    assert (kernel["index"], kernel["shape"]) == ("[:, 0:8]", [4, 8])


def test_unknown_layer_lists_the_recurrent_ones() -> None:
    file = FIXTURES / "keras2/functional_two_branch.h5"
    result = run(str(file), "--layer", "nope")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    names = [
        layer["name"] for layer in _entry("keras2/functional_two_branch.h5")["recurrent_layers"]
    ]
    assert line.startswith("rnninspect: error: no layer named 'nope'")
    assert line.endswith("recurrent layers: " + ", ".join(names))


def test_a_non_recurrent_layer_is_explained_not_refused() -> None:
    file = "keras2/functional_two_branch.h5"
    truth = {layer["name"]: layer["params"] for layer in _entry(file)["layers"]}
    dense = run(str(FIXTURES / file), "--layer", "dense")
    assert dense.exit_code == 0, dense.stderr
    assert "dense (Dense): not recurrent" in dense.stdout
    (params,) = [line for line in dense.stdout.splitlines() if line.startswith("params = ")]
    assert params.endswith(f"= {truth['dense']:,}")
    assert "weights (inputs × outputs)" in params and "bias (one per output)" in params
    data = json.loads(run(str(FIXTURES / file), "--layer", "dense", "--format", "json").stdout)
    assert data[0]["recurrent"] is False and data[0]["params"] == truth["dense"]


def test_an_embedding_is_vocabulary_times_dimension() -> None:
    file = "keras2/embedding_lstm_dense.h5"
    truth = {layer["name"]: layer["params"] for layer in _entry(file)["layers"]}
    result = run(str(FIXTURES / file), "--layer", "embedding")
    assert result.exit_code == 0
    assert f"(vocabulary × embedding size) = {truth['embedding']:,}" in result.stdout


def test_terms_are_labelled_and_gate_letters_spelled_out_once() -> None:
    file = "keras2/gru_u8_d4_reset_after.h5"
    (layer,) = _entry(file)["recurrent_layers"]
    u, d = layer["units"], layer["input_dim"]
    result = run(str(FIXTURES / file))
    assert result.exit_code == 0
    assert result.stdout.count("z = update") == 1
    assert "gates: z = update, r = reset, h = candidate" in result.stdout
    # GRU with reset_after: two bias vectors per gate (Keras's count, recorded in the manifest)
    assert layer["params"] == 3 * (u * d + u * u + 2 * u)
    expected = f"each gate: {u}·{d} input + {u}·{u} recurrent + 2·{u} bias"
    assert expected in result.stdout


def test_convlstm_speaks_of_filters_and_channels() -> None:
    result = run(str(FIXTURES / "keras2/convlstm2d.h5"))
    assert result.exit_code == 0
    assert "filters=" in result.stdout and "input channels" in result.stdout
    assert "units=" not in result.stdout
    assert "kernel elements" in result.stdout


def test_onnx_tensors_are_named_by_their_operator_input_beside_the_stored_name() -> None:
    result = run(str(FIXTURES / "onnx/torch_legacy_lstm_h16_d8.onnx"), "--format", "json")
    stored = {
        piece["tensor"]
        for gate in json.loads(result.stdout)[0]["gates"]
        for piece in gate["slices"]
    }
    table = run(str(FIXTURES / "onnx/torch_legacy_lstm_h16_d8.onnx")).stdout
    rows = [line for line in table.splitlines() if line.startswith("forward ")]
    assert rows and all(" W=" in row and " R=" in row and " B=" in row for row in rows)
    assert all(any(name in table for name in stored) for _ in rows)


def test_unreadable_model_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_text("not a model")
    result = run(str(junk))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


def _entry(file: str) -> dict:
    (entry,) = [e for e in manifest_entries("keras-h5") if e["file"] == file]
    return entry


def onnx_exports() -> list[dict]:
    """PyTorch models exported to ONNX, with the recurrent parameter count PyTorch recorded.
    (Keras models converted by tf2onnx gain a zero recurrent bias, so Keras's count is not the
    file's.)"""
    cases = []
    for entry in manifest_entries("onnx"):
        source = entry.get("source") or {}
        modules = source.get("modules") or []
        recurrent = [m for m in modules if m.get("class") in ("LSTM", "GRU", "RNN")]
        if (
            not source.get("recurrent_params")
            or not recurrent
            or not entry["file"]
            or not (FIXTURES / entry["file"]).exists()
        ):
            continue
        if any(m.get("config", {}).get("proj_size") for m in recurrent):
            continue  # a projection is not a per-gate weight
        cases.append(entry)
    return cases


ONNX = onnx_exports()


@pytest.mark.parametrize("entry", ONNX, ids=[e["file"] for e in ONNX])
def test_onnx_gates_sum_to_the_count_pytorch_recorded(entry: dict) -> None:
    result = run(str(FIXTURES / entry["file"]), "--format", "json")
    assert result.exit_code == 0, result.output
    explained = json.loads(result.stdout)
    assert sum(out["params"] for out in explained) == entry["source"]["recurrent_params"]
    for out in explained:
        assert out["unsplit"] == []
        assert sum(gate["params"] for gate in out["gates"]) == out["params"]
        assert len(out["gates"]) == out["directions"] * GATES[out["cell"]]
        if out["gate_names_known"]:
            assert out["gate_order"] == list(
                CELLS[CellKind(out["cell"])].gate_order[Convention.ONNX]
            )


# ---------------------------------------------------------------------- ONNX layouts, by shape
# The ONNX operator spec: W [dirs, g·h, d], R [dirs, g·h, h], B [dirs, 2·g·h] (Wb then Rb).


def _tensor(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(key=name, name=name, shape=shape, dtype="float32", itemsize=4)


def _onnx_lstm(tensors: tuple[RecurrentTensor, ...], directions: int) -> RecurrentLayer:
    cell = CellConfig(CellKind.LSTM, units=16, bias=BiasConvention.DOUBLE)
    return RecurrentLayer("lstm", "LSTM", cell, directions, tensors, input_dim=8)


def test_onnx_unsplit_tensors_split_by_direction_half_and_gate() -> None:
    layer = _onnx_lstm(
        (
            RecurrentTensor(_tensor("W", (2, 64, 8)), TensorRole.KERNEL, None),
            RecurrentTensor(_tensor("R", (2, 64, 16)), TensorRole.RECURRENT_KERNEL, None),
            RecurrentTensor(_tensor("B", (2, 128)), TensorRole.BIAS, None),
        ),
        directions=2,
    )
    explanation = explain_layer(layer, Convention.ONNX)
    assert explanation.unsplit == ()
    assert explanation.params == layer.params == 2 * 4 * (16 * 8 + 16 * 16 + 2 * 16)
    order = CELLS[CellKind.LSTM].gate_order[Convention.ONNX]
    assert [(g.direction, g.gate) for g in explanation.gates] == [
        (direction, gate) for direction in (Direction.FORWARD, Direction.BACKWARD) for gate in order
    ]
    o_backward = explanation.gates[5]
    assert o_backward.gate == "o"
    assert [(s.tensor, s.role, s.index, s.shape) for s in o_backward.slices] == [
        ("W", TensorRole.KERNEL, (1, (16, 32), None), (16, 8)),
        ("R", TensorRole.RECURRENT_KERNEL, (1, (16, 32), None), (16, 16)),
        ("B", TensorRole.INPUT_BIAS, (1, (16, 32)), (16,)),
        ("B", TensorRole.RECURRENT_BIAS, (1, (80, 96)), (16,)),
    ]


def test_onnx_views_already_split_per_direction_and_half() -> None:
    tensors = []
    for direction in (Direction.FORWARD, Direction.BACKWARD):
        tag = direction.value
        tensors += [
            RecurrentTensor(_tensor(f"W.{tag}", (64, 8)), TensorRole.KERNEL, direction),
            RecurrentTensor(_tensor(f"R.{tag}", (64, 16)), TensorRole.RECURRENT_KERNEL, direction),
            RecurrentTensor(_tensor(f"Wb.{tag}", (64,)), TensorRole.INPUT_BIAS, direction),
            RecurrentTensor(_tensor(f"Rb.{tag}", (64,)), TensorRole.RECURRENT_BIAS, direction),
        ]
    layer = _onnx_lstm(tuple(tensors), directions=2)
    explanation = explain_layer(layer, Convention.ONNX)
    assert explanation.unsplit == ()
    assert explanation.params == layer.params
    assert len(explanation.gates) == 8
    first = explanation.gates[0]
    assert [(s.role, s.index, s.shape) for s in first.slices] == [
        (TensorRole.KERNEL, ((0, 16), None), (16, 8)),
        (TensorRole.RECURRENT_KERNEL, ((0, 16), None), (16, 16)),
        (TensorRole.INPUT_BIAS, ((0, 16),), (16,)),
        (TensorRole.RECURRENT_BIAS, ((0, 16),), (16,)),
    ]


def test_tensors_that_do_not_split_are_counted_whole() -> None:
    layer = _onnx_lstm(
        (
            RecurrentTensor(_tensor("W", (1, 64, 8)), TensorRole.KERNEL, None),
            RecurrentTensor(_tensor("R", (1, 64, 16)), TensorRole.RECURRENT_KERNEL, None),
            RecurrentTensor(_tensor("P", (1, 48)), TensorRole.PEEPHOLE, None),
            RecurrentTensor(_tensor("odd", (1, 30)), TensorRole.BIAS, None),
        ),
        directions=1,
    )
    explanation = explain_layer(layer, Convention.ONNX)
    assert [u.item.tensor.name for u in explanation.unsplit] == ["P", "odd"]
    assert explanation.params == layer.params
    assert len(explanation.gates) == 4


# ------------------------------------------------------------------ names and words (issue 25)

EXPLAINED = sorted(
    [
        *(FIXTURES / "onnx").glob("*.onnx"),
        *(FIXTURES / "tflite").glob("*.tflite"),
        *(FIXTURES / "keras2").glob("bidir*.h5"),
    ]
)


def test_every_tensor_label_identifies_its_tensor() -> None:
    """Within a direction, stored tensors with different names never share a label (tf2onnx
    names every loop weight `.../ReadVariableOp/resource:0`): each label is the shortest
    trailing part of its name that no other tensor's name ends with."""
    from inspector import inspect_file
    from inspector.errors import InspectorError
    from inspector.render.explain import _short_names
    from inspector.report.explain import Explanation, explain_model

    checked = 0
    for path in EXPLAINED:
        try:
            model = inspect_file(path).model
            explanations = explain_model(model, None)
        except InspectorError:
            continue
        for explanation in explanations:
            if not isinstance(explanation, Explanation):
                continue
            for direction in {share.direction for share in explanation.gates}:
                names = {
                    piece.tensor
                    for share in explanation.gates
                    if share.direction == direction
                    for piece in share.slices
                }
                labels = _short_names(names)
                assert len(set(labels.values())) == len(names), (path, labels)
                for name, label in labels.items():
                    assert re.sub(r":\d+$", "", name).endswith(label), (name, label)
                checked += 1
    assert checked > 50


def test_a_tf2onnx_loop_names_its_weights_apart() -> None:
    result = run(str(FIXTURES / "onnx/tf2onnx_gru_resetbefore_h16_d8.onnx"))
    assert result.exit_code == 0
    assert "MatMul/ReadVariableOp/resource[:, 0:16]" in result.stdout
    assert " resource[" not in result.stdout


def test_one_unit_is_one_unit() -> None:
    result = run(str(FIXTURES / "keras2/simplernn_u1_f1.h5"))
    assert "(u = 1 unit, d = 1 input width)" in result.stdout
    assert "(u = 2 units" in run(str(FIXTURES / "keras2/simplernn_u2_f1.h5")).stdout
