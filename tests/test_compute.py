"""Compute and state per time step against the frameworks' own counts (fixtures/compute/
manifest.json, written by fixtures/generate_compute.py): PyTorch's FlopCounterMode and an aten
trace of one step of nn.LSTMCell/GRUCell/RNNCell/Linear, TensorFlow's profiler on one step of a
Keras cell; the state tensors the cells return."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, run_main, simple_tables
from inspector import inspect_file
from inspector.cli.app import app
from inspector.compute import Compute, compute
from inspector.errors import InspectorError
from inspector.render import render_reports
from inspector.render.blocks import Flavour
from inspector.render.text import Style
from inspector.render.text import shape as shape_text
from inspector.render.view import LayerView

MANIFEST = json.loads((FIXTURES / "compute" / "manifest.json").read_text())
ENTRIES = MANIFEST["fixtures"]
ITEMSIZE = {"float16": 2, "float32": 4, "float64": 8}


def _figures(entry: dict) -> Compute:
    return compute(inspect_file(FIXTURES / entry["file"]).model, seq_len=7)


def _recurrent_truth(entry: dict) -> list[dict]:
    return [layer for layer in entry["layers"].values() if layer["state"]]


def _dense_truth(entry: dict) -> list[dict]:
    return [layer for layer in entry["layers"].values() if not layer["state"]]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_matrix_macs_per_step_are_the_frameworks(entry: dict) -> None:
    figures = _figures(entry)
    ours = sorted(item.macs_per_step for item in figures.recurrent)
    assert ours == sorted(layer["macs_per_step"] for layer in _recurrent_truth(entry))
    dense = sorted(item.macs for item in figures.layers if item.kind == "matmul")
    assert dense == sorted(layer["macs_per_step"] for layer in _dense_truth(entry))
    total = sum(layer["macs_per_step"] for layer in entry["layers"].values())
    assert figures.macs_per_step == total
    assert figures.macs_per_sequence == 7 * total


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_state_is_what_the_cell_returns(entry: dict) -> None:
    figures = _figures(entry)
    truth = _recurrent_truth(entry)
    ours = sorted(
        (item.state_floats, item.state_bytes, item.state_dtype) for item in figures.recurrent
    )
    expected = sorted(
        (
            sum(math.prod(s["shape"][1:]) for s in layer["state"]),
            sum(math.prod(s["shape"][1:]) * ITEMSIZE[s["dtype"]] for s in layer["state"]),
            layer["state"][0]["dtype"],
        )
        for layer in truth
    )
    assert ours == expected
    streams = sorted(len(item.state) for item in figures.recurrent)
    assert streams == sorted(len(layer["state"]) for layer in truth)


NATIVE = [e for e in ENTRIES if "same_as" not in e]  # element-wise work in the file's own equations


@pytest.mark.parametrize("entry", NATIVE, ids=lambda e: e["file"])
def test_elementwise_work_matches_the_traced_step(entry: dict) -> None:
    """Every element-wise op the framework ran in one step, plus the bias elements PyTorch folds
    into addmm (TensorFlow adds them with BiasAdd, already traced)."""
    figures = _figures(entry)
    ours = sorted(item.elementwise_per_step for item in figures.recurrent)
    truth = sorted(
        sum(layer["elementwise"].values()) + layer.get("bias_elements", 0)
        for layer in _recurrent_truth(entry)
    )
    assert ours == truth


def test_manifest_covers_every_cell_kind_and_both_frameworks() -> None:
    modules = {layer["module"] for e in ENTRIES for layer in e["layers"].values()}
    assert {
        "torch.nn.LSTMCell",
        "torch.nn.GRUCell",
        "torch.nn.RNNCell",
        "torch.nn.Linear",
    } <= modules
    assert {"tf_keras.layers.SimpleRNN", "tf_keras.layers.LSTM", "tf_keras.layers.GRU"} <= modules
    assert {"tf_keras.layers.Bidirectional", "tf_keras.layers.Dense"} <= modules


def test_flops_are_twice_the_macs_in_the_manifest() -> None:
    for entry in ENTRIES:
        for layer in entry["layers"].values():
            assert layer["matmul_flops"] == 2 * layer["macs_per_step"]


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e["file"].startswith("keras2/")][:3], ids=lambda e: e["file"]
)
def test_max_macs_gate_holds_at_the_measured_value(entry: dict) -> None:
    total = sum(layer["macs_per_step"] for layer in entry["layers"].values())
    path = str(FIXTURES / entry["file"])
    runner = CliRunner()
    at_limit = runner.invoke(app, [path, "--max-macs", str(total), "-f", "json"])
    assert at_limit.exit_code == 0, at_limit.output
    gate = json.loads(at_limit.stdout)["gates"][0]
    assert (gate["limit"], gate["unit"], gate["measured"]) == ("--max-macs", "MACs", total)
    over = runner.invoke(app, [path, "--max-macs", str(total - 1)])
    assert over.exit_code == 1
    assert "--max-macs" in over.output


def test_seq_len_scales_compute_but_not_parameters() -> None:
    path = str(FIXTURES / "keras2" / "lstm_u16_d8.h5")
    runner = CliRunner()
    runs = [
        json.loads(runner.invoke(app, [path, "-f", "json", "--seq-len", str(t)]).stdout)
        for t in (1, 50)
    ]
    assert runs[0]["total_params"] == runs[1]["total_params"]
    assert runs[1]["compute"]["macs_per_sequence"] == 50 * runs[0]["compute"]["macs_per_sequence"]
    assert runs[1]["compute"]["seq_len"] == 50


ONNX_FILES = sorted(p for p in FIXTURES.glob("*/*.onnx") if p.stat().st_size < 2_000_000)


def _onnx_specs(infos: object, skip: set[str]) -> list[dict]:
    import onnx

    specs = []
    for info in infos:  # type: ignore[attr-defined]
        if info.name in skip:
            continue
        tensor = info.type.tensor_type
        shape = None
        if tensor.HasField("shape"):
            shape = [
                d.dim_value if d.HasField("dim_value") else d.dim_param or None
                for d in tensor.shape.dim
            ]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        specs.append({"name": info.name, "shape": shape, "dtype": dtype})
    return specs


@pytest.mark.parametrize("path", ONNX_FILES, ids=lambda p: p.name)
def test_onnx_signature_is_the_graphs(path) -> None:  # type: ignore[no-untyped-def]
    """Inputs and outputs as the onnx package reads them (initializers are not inputs)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    skip = {t.name for t in graph.initializer}
    signature = inspect_file(path).to_dict()["signature"]
    assert signature["inputs"] == _onnx_specs(graph.input, skip)
    assert signature["outputs"] == _onnx_specs(graph.output, set())


TORCH = [
    e
    for e in json.loads((FIXTURES / "torch" / "manifest.json").read_text())["fixtures"]
    if (e.get("model") or {}).get("modules") and not e.get("refuse")
]


@pytest.mark.parametrize("entry", TORCH, ids=lambda e: e["file"])
def test_state_dict_layers_are_never_guessed(entry: dict) -> None:
    """torch's own module list: a Linear costs in·out per application; an Embedding's matrix is
    never taken for a Linear (a state dict does not say which a bias-less matrix is)."""
    figures = inspect_file(FIXTURES / entry["file"]).compute
    ours = {item.layer.rsplit(".", 1)[-1]: item for item in figures.layers}
    for module in entry["model"]["modules"]:
        name = module["name"].rsplit(".", 1)[-1]
        if module["class"] == "Linear" and module["config"]["bias"]:
            config = module["config"]
            assert ours[name].macs == config["in_features"] * config["out_features"]
        if module["class"] == "Embedding":
            assert name not in ours or ours[name].kind == "lookup"
            assert not figures.complete or name in ours


SIGNATURES = MANIFEST["signatures"]


@pytest.mark.parametrize("entry", SIGNATURES, ids=lambda e: e["file"])
def test_keras_signature_and_output_shapes_are_tf_kerass(entry: dict) -> None:
    """model.inputs / model.outputs and layer.output_shape as tf_keras reports them: names and
    dtypes always, shapes wherever the configuration lets rnninspect determine them."""
    model = inspect_file(FIXTURES / entry["file"]).model
    for ours, truth in ((model.inputs, entry["inputs"]), (model.outputs, entry["outputs"])):
        assert [(s.name, s.dtype) for s in ours] == [(t["name"], t["dtype"]) for t in truth]
        for spec, expected in zip(ours, truth, strict=True):
            assert spec.shape is None or list(spec.shape) == expected["shape"]
    assert all(s.shape is not None for s in model.inputs)
    shapes = {layer.name: layer.output_shape for layer in model.layers}
    known = {name: shape for name, shape in shapes.items() if shape is not None}
    inputs = {t["name"]: t["shape"] for t in entry["inputs"]}  # InputLayer rows
    for name, shape in known.items():
        assert list(shape) == entry["output_shapes"].get(name, inputs.get(name)), name
    assert len(known) >= len(entry["output_shapes"]) - 2  # Concatenate and what follows it


@pytest.mark.parametrize("entry", SIGNATURES, ids=lambda e: e["file"])
def test_the_terminal_table_shows_tf_keras_s_output_shapes(entry: dict) -> None:
    """The layer table's `output shape` column, where rnninspect determines one, is
    tf_keras's layer.output_shape written as Keras's summary() writes it."""
    (layers, *_) = simple_tables(run_main([str(FIXTURES / entry["file"])]).stdout)
    inputs = {t["name"]: t["shape"] for t in entry["inputs"]}
    shown = 0
    for row in layers:
        truth = entry["output_shapes"].get(row["layer"], inputs.get(row["layer"]))
        if row["output shape"] != "-":
            assert row["output shape"] == shape_text(truth), row
            shown += 1
    assert shown >= len(entry["output_shapes"]) - 2


def test_not_counted_names_every_layer_it_means() -> None:
    """Over every fixture and real file: a layer the MACs leave out is named, and it is never
    a row whose tensors all belong to recurrent layers (a nested model's row: counted by
    them). keras2/nested_models.h5's LSTM and GRU live in the row `middle`."""
    nested = inspect_file(FIXTURES / "keras2/nested_models.h5")
    assert nested.compute.complete and nested.compute.missing == ()
    # Nested Keras models, state dicts (uncounted matrices) and convolutions (positions).
    files = [
        *sorted(FIXTURES.glob("keras*/*nested*")),
        *sorted(FIXTURES.glob("keras2/conv*.h5")),
        *sorted(FIXTURES.glob("torch/*.pt")),
        *sorted(FIXTURES.glob("onnx/*.safetensors")),
    ]
    named = 0
    for path in files:
        try:
            report = inspect_file(path)
        except InspectorError:
            continue
        figures = report.compute
        recurrent = {
            key
            for layer in report.model.recurrent_layers
            for item in layer.tensors
            for key in (item.tensor.key, *item.tensor.sources)
        }
        rows = {layer.name: layer for layer in report.model.layers}
        for name in figures.missing:
            row = rows.get(name)
            assert (
                row is None or not row.tensors or any(t.key not in recurrent for t in row.tensors)
            ), (path, name)
        text = render_reports([report], Flavour.TEXT, LayerView.ALL, Style())
        line = next((line for line in text.splitlines() if line.startswith("Per time")), "")
        if figures.missing and report.checks:
            assert f"(not counted: {', '.join(figures.missing[:6])}" in line, (path, line)
            named += 1
        assert "some layers" not in line
    assert named  # state-dict Embeddings, convolutions without output positions
