"""TFLite files as the converters really write them (fixtures/generate_tflite.py): Keras 3 and
tf_keras under TF 2.21, Keras 2.15 under TF 2.15; WHILE loops with the bias added after the
products, unrolled steps (per gate too), Bidirectional as two loops or two chains, stacked
layers, dynamic-range and full-integer quantization, resource variables, buffers shared across
subgraphs, dead copies. The truth is the frameworks': Keras count_params() and its weights, each
constant matched by value to the Keras weight part it holds (TF's own schema reader), and what
the file stores of them (`expect`)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, entry_id, manifest_entries
from inspector import inspect_file
from inspector.cli.app import app

runner = CliRunner()
ENTRIES = [e for e in manifest_entries("tflite") if e["file"].startswith("tflite_converters/")]
ROLE_WORD = {"kernel": "kernel", "recurrent_kernel": "recurrent_kernel"}


@cache
def _report(file: str) -> dict:
    return inspect_file(FIXTURES / file).to_dict()


def _tensors(entry: dict) -> dict[str, dict]:
    """The constants the generator recorded, by our key `subgraph:tensor`."""
    return {
        f"{graph['index']}:{tensor['index']}": tensor
        for graph in entry["tflite_truth"]["subgraphs"]
        for tensor in graph["tensors"]
    }


def _weights(tensor: dict) -> set[str]:
    return {hit["weight"] for hit in tensor.get("source_match") or []}


def _layer_weights(keras: dict) -> set[str]:
    return {w["name"] for w in keras["weights"]}


def test_every_kind_is_there() -> None:
    """Both converter generations, and each layout the issue names, are in the manifest."""
    assert {e["env"] for e in ENTRIES} == {"dev", "tf215", "tf212"}
    ops = {op for e in ENTRIES for g in e["tflite_truth"]["subgraphs"] for op in g["operators"]}
    assert {"WHILE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "READ_VARIABLE", "REVERSE_V2"} <= ops
    unrolled = [e for e in ENTRIES if "unroll" in e["stem"]]
    assert len(unrolled) >= 6 and any("pergate" in e["stem"] for e in unrolled)
    quantized = [
        e
        for e in ENTRIES
        if any(t["scales"] for g in e["tflite_truth"]["subgraphs"] for t in g["tensors"])
    ]
    assert len(quantized) >= 4


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_total_is_what_the_file_stores_of_the_model(entry: dict) -> None:
    """Each buffer holding a Keras weight that an operator reads counts once; dead copies,
    initial states and first-step folds do not count; rows sum to the total."""
    report = _report(entry["file"])
    expect = entry["tflite_truth"]["expect"]
    assert report["total_params"] == expect["stored_params"]
    assert sum(row["params"] for row in report["layers"]) == report["total_params"]
    model = inspect_file(FIXTURES / entry["file"]).model
    tensors = _tensors(entry)
    counted = {tensors[t.key]["buffer"] for row in model.layers for t in row.tensors}
    assert counted == set(expect["weight_buffers"])
    if expect["dead_weight_tensors"]:
        reasons = {e["reason"]: e["tensors"] for e in report["excluded"]}
        dead = next(names for reason, names in reasons.items() if "no operator reads" in reason)
        assert {t["name"] for t in expect["dead_weight_tensors"]} <= set(dead)


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_recurrent_layers_are_the_keras_layers(entry: dict) -> None:
    """One recurrent layer per Keras layer (a Bidirectional is one of two directions), with
    Keras's cell, units, input width and count of the weights the file holds; the formula
    check is ok and the bias is there exactly when the file holds one."""
    report = _report(entry["file"])
    truth = entry["source"]["recurrent_layers"]
    found = report["recurrent_layers"]
    assert len(found) == len(truth), [layer["name"] for layer in found]
    expect = entry["tflite_truth"]["expect"]
    stored = {
        weight
        for tensor in _tensors(entry).values()
        if tensor["buffer"] in expect["weight_buffers"] + expect["copied_buffers"]
        for weight in _weights(tensor)
    }
    for layer, keras in zip(found, truth, strict=True):
        assert layer["check"] == "ok", layer
        assert (layer["cell"], layer["units"], layer["input_dim"]) == (
            keras["cell_class"],
            keras["units"],
            keras["input_dim"],
        )
        assert layer["directions"] == keras["directions"]
        held = [w for w in keras["weights"] if w["name"] in stored or expect["variable_reads"]]
        assert layer["params"] == sum(_numel(w["shape"]) for w in held)
        has_bias = any("bias" in w["name"] for w in held)
        assert layer["use_bias"] == has_bias
        if not has_bias:
            assert any("dropped the bias" in note for note in layer["notes"])
        if keras["cell_class"] == "GRU" and has_bias:
            assert layer["reset_after"] == keras["reset_after"]


def _numel(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_each_split_tensor_holds_its_role(entry: dict) -> None:
    """Every tensor of a split holds the Keras weight its role names (kernel, recurrent kernel,
    bias), of the direction it is shown in."""
    model = inspect_file(FIXTURES / entry["file"]).model
    tensors = _tensors(entry)
    for layer in model.recurrent_layers:
        for item in layer.tensors:
            if item.tensor.key.startswith("variable:"):
                continue  # not stored: nothing to match
            names = _weights(tensors[item.tensor.key])
            word = ROLE_WORD.get(item.role.value, "bias")
            assert any(name.split("/")[-1].split(":")[0] == word for name in names), (item, names)
            if layer.directions == 2:
                side = "forward" if item.direction.value == "forward" else "backward"
                assert any(side in name for name in names), (item, names)


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_no_split_leaves_a_stored_part_of_its_layer_out(entry: dict) -> None:
    """Every stored constant holding a weight of a recurrent layer is in that layer's split, or
    holds the same Keras weight as a tensor that is (a second quantization of the bias for a
    first step, a folded copy): a formula 'ok' never hides a missed tensor."""
    report = _report(entry["file"])
    tensors = _tensors(entry)
    expect = entry["tflite_truth"]["expect"]
    model = inspect_file(FIXTURES / entry["file"]).model
    for layer, keras in zip(
        model.recurrent_layers, entry["source"]["recurrent_layers"], strict=True
    ):
        mine = _layer_weights(keras)
        split = {t.tensor.key for t in layer.tensors}
        covered = {w for key in split if key in tensors for w in _weights(tensors[key])}
        for key, tensor in tensors.items():
            if tensor["buffer"] not in expect["weight_buffers"]:
                continue
            held = _weights(tensor) & mine
            if held and key not in split:
                assert held <= covered, (layer.name, tensor["name"])
    assert all(layer["check"] == "ok" for layer in report["recurrent_layers"])


def _tolerance(entry: dict) -> list[str]:
    errors = [
        hit["max_abs_err"]
        for tensor in _tensors(entry).values()
        for hit in tensor.get("source_match") or []
        if "max_abs_err" in hit
    ]
    return ["--atol", repr(max(errors) * 1.0001)] if errors else []


STORED = [e for e in ENTRIES if not e["tflite_truth"]["expect"]["variable_reads"]]


@pytest.mark.parametrize("entry", STORED, ids=entry_id)
def test_compare_with_the_keras_source(entry: dict) -> None:
    """The Keras model against its conversion, at the default tolerance: faithful, each
    recurrent pair compared value by value (dequantized with the file's own scales where
    quantized, each value allowed the half step its quantization cost)."""
    source = str(FIXTURES / entry["source"]["file"])
    result = runner.invoke(
        app, ["compare", source, str(FIXTURES / entry["file"]), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["faithful"] is True
    pairs = [p for p in report["pairs"] if p["kind"] == "recurrent"]
    assert len(pairs) == len(entry["source"]["recurrent_layers"])
    for pair in pairs:
        said = {item["what"] for item in pair["conventions"]}
        dropped = pair["source_params"] - pair["export_params"]
        assert dropped == 0 or "zero bias dropped" in said, said
        assert pair["values"]["compared"] == pair["source_params"] > 0


OTHER_RUNS = [e for e in ENTRIES if e.get("other_run")]


@pytest.mark.parametrize("entry", OTHER_RUNS, ids=entry_id)
def test_another_training_run_is_not_faithful(entry: dict) -> None:
    other = entry["other_run"]
    result = runner.invoke(
        app, ["compare", str(FIXTURES / other["file"]), str(FIXTURES / entry["file"])]
    )
    assert result.exit_code == 1, result.output
    assert "NOT faithful" in result.output
    assert "values differ" in result.output
    first = other["first_differing_weight"].split(":")[0].rsplit("/", 1)[-1]
    assert f"values differ in {first}" in result.output, result.output


UNSTORED = [e for e in ENTRIES if e["tflite_truth"]["expect"]["variable_reads"]]


@pytest.mark.parametrize("entry", UNSTORED, ids=entry_id)
def test_weights_in_resource_variables_are_said_to_be_missing(entry: dict) -> None:
    """Nothing stored: the report says so, declares what the graph implies (Keras's count), and
    no size gate passes; compare says the export's weights are not stored."""
    report = _report(entry["file"])
    assert report["total_params"] == 0
    implied = sum(t["params"] for t in report["unstored"])
    assert implied == entry["source"]["total_params"]
    path = str(FIXTURES / entry["file"])
    for gate in ("--max-params", "--max-size", "--max-layer-params", "--max-macs"):
        result = runner.invoke(app, [path, gate, "1000000000"])
        assert result.exit_code == 1, (gate, result.output)
        assert "not in this file" in result.stderr
    table = runner.invoke(app, [path]).stdout
    assert "the weights are not in this file" in table
    # The formula is checked against the graph's declared shapes, never called "stored".
    checks = [line for line in table.splitlines() if " = " in line and " -> " in line]
    assert checks and all("(not in the file) -> " in line for line in checks), checks
    assert not any("; stored " in line for line in checks), checks
    page = runner.invoke(app, [path, "-f", "html"]).stdout
    assert "(not in the file) →" in page and "; stored " not in page
    compare = runner.invoke(app, ["compare", str(FIXTURES / entry["source"]["file"]), path])
    assert "not stored" in compare.output and "shape differs" not in compare.output
    assert compare.exit_code != 0


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_the_interpreter_ran_the_file_or_says_why(entry: dict) -> None:
    """The generator ran each file with tf.lite.Interpreter against its Keras model: the float
    conversions agree to float rounding (the truth above is about a working model)."""
    verify = entry["verify"]
    if verify["invoke"] == "ok" and not _tolerance(entry):
        # float16 constants round each weight to 11 significant bits
        assert verify["max_abs_diff_vs_keras"] < (1e-3 if _float16(entry) else 1e-5)
    elif verify["invoke"] != "ok":
        assert "Flex" in verify["invoke"] or "READ_VARIABLE" in verify["invoke"], verify


def _float16(entry: dict) -> bool:
    return any(t["dtype"] == "float16" for t in _tensors(entry).values())


def test_sources_exist() -> None:
    for entry in ENTRIES:
        assert Path(FIXTURES / entry["source"]["file"]).is_file()
