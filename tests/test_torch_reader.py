"""torch.save files (zip and legacy layouts, checkpoints, Lightning-style, a whole pickled
module) read without torch and without unpickling. Truth comes from the manifest written by
fixtures/generate_formats.py with torch 2.13 (`numel()` of every parameter, the distinct storage
elements behind the state dict, the optimizer's state tensors, the pickle's globals)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REALWORLD, entry_id, manifest_entries, realworld_entries
from inspector.cli.app import app
from inspector.cli.discover import model_files

runner = CliRunner()
ENTRIES = manifest_entries("torch-zip", "torch-legacy-pickle")
READABLE = [e for e in ENTRIES if not e.get("refuse")]
# Whole pickled modules and TorchScript archives, which torch.load(weights_only=True) refuses
# (the generators record "refuse"): read as data, their globals named.
WHOLE = [e for e in ENTRIES if e.get("refuse")]
CELLS = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}


def inspect(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [*args, "--format", "json"])
    payload = json.loads(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, payload, result.stderr


def test_manifest_has_both_layouts_and_whole_modules() -> None:
    assert {e["format"] for e in READABLE} == {"torch-zip", "torch-legacy-pickle"}
    assert len(WHOLE) >= 3


@pytest.mark.parametrize("entry", READABLE, ids=entry_id)
def test_counts_match_pytorch(entry: dict) -> None:
    code, report, errors = inspect(str(FIXTURES / entry["file"]))
    assert code == 0, errors
    assert report is not None
    truth = entry["model"]
    assert report["format"] == "pytorch"
    # Every stored element once: tied entries and views into one storage count once.
    assert report["total_params"] == truth["state_dict_unique_storage_elements"]
    recurrent = report["recurrent_layers"]
    for module in truth["recurrent_modules"]:
        config = module["config"]
        names = [_layer_name(entry, module["name"], k) for k in range(config["num_layers"])]
        mine = [r for r in recurrent if r["name"] in names]
        assert [r["name"] for r in mine] == names
        assert sum(layer["params"] for layer in mine) == module["params"]
        for layer in mine:
            assert layer["cell"] == CELLS[module["class"]]
            assert layer["units"] == config["hidden_size"]
            assert layer["directions"] == (2 if config["bidirectional"] else 1)
            assert layer["use_bias"] == config["bias"]
            assert layer["proj_size"] == (config["proj_size"] or None)
            assert layer["check"] == "ok", layer["reason"]
            assert layer["params"] == sum(t["params"] for t in layer["tensors"])
        assert mine[0]["input_dim"] == config["input_size"]
        stored = {t["name"]: t for layer in mine for t in layer["tensors"]}
        for parameter in module["parameters"]:
            tensor = stored[parameter["key"]]
            assert tensor["shape"] == parameter["shape"]
            assert tensor["dtype"] == parameter["dtype"]
            assert tensor["params"] == parameter["numel"]
    assert len(recurrent) == sum(m["config"]["num_layers"] for m in truth["recurrent_modules"])


def _layer_name(entry: dict, module: str, index: int) -> str:
    """The module path in the file (Lightning prefixes `model.`) and the layer index: `lstm.l0`,
    or `l0` for a state dict of a bare nn.LSTM."""
    path = str(entry.get("state_dict_key_prefix") or "") + module
    return f"{path}.l{index}" if path else f"l{index}"


@pytest.mark.parametrize("entry", [e for e in READABLE if e.get("optimizer")], ids=entry_id)
def test_optimizer_state_is_reported_apart(entry: dict) -> None:
    code, report, _ = inspect(str(FIXTURES / entry["file"]))
    assert code == 0 and report is not None
    assert report["optimizer"]["values"] == entry["optimizer"]["state_numel"]
    assert report["total_params"] == entry["model"]["state_dict_unique_storage_elements"]
    state_key = entry["state_dict_path"][0]
    assert report["details"]["state dict"] == f"'{state_key}'"


@pytest.mark.parametrize("entry", WHOLE, ids=entry_id)
def test_whole_module_is_read_as_data(entry: dict) -> None:
    """torch.save(model), {'model': model} and torch.jit.save: the state dict the module would
    give, counted as torch counts it; every global the pickle names is named, and the module
    classes (outside the allow-list of data) in the warning that torch.load would run code."""
    code, report, errors = inspect(str(FIXTURES / entry["file"]))
    assert code == 0, errors
    assert report is not None
    truth = entry["model"]
    assert report["total_params"] == truth["total_params"]
    recurrent = report["recurrent_layers"]
    for module in truth.get("recurrent_modules", []) or [
        m for m in truth.get("modules", []) if m["class"] in CELLS
    ]:
        names = [
            _layer_name(entry, module["name"], k) for k in range(module["config"]["num_layers"])
        ]
        mine = [r for r in recurrent if r["name"] in names]
        assert [r["name"] for r in mine] == names
        assert sum(layer["params"] for layer in mine) == module["params"]
        assert all(layer["check"] == "ok" for layer in mine)
    globals_ = (
        entry["unsafe_globals"] if "unsafe_globals" in entry else entry["pickle_globals"]["globals"]
    )
    (named,) = [w for w in report["warnings"] if "outside a state dict" in w]
    (code_warning,) = [w for w in report["warnings"] if "would import and run code" in w]
    for name in globals_:
        if name.startswith(("__main__.", "torch.nn.modules.", "__torch__.")):
            assert name in named and name in code_warning


@pytest.mark.parametrize("entry", [e for e in READABLE if "foreign_globals" in e], ids=entry_id)
def test_foreign_globals_are_named_and_not_loaded(entry: dict) -> None:
    """Every global the generator found outside a state dict (pickletools over data.pkl) is
    named once in one warning; files without one carry no such warning. Tensors inside those
    objects (torch's own count) are listed, never counted (the totals test above holds)."""
    code, report, errors = inspect(str(FIXTURES / entry["file"]))
    assert code == 0, errors
    assert report is not None
    named = [w for w in report["warnings"] if "outside a state dict" in w]
    foreign = entry["foreign_globals"]
    if not foreign:
        assert named == []
        return
    (warning,) = named
    assert f"names {len(foreign)} global(s)" in warning and "never imported or called" in warning
    assert all(warning.count(name) == 1 for name in foreign)
    assert not any("would run code" in w for w in report["warnings"])
    held = [w for w in report["warnings"] if "inside objects" in w]
    outside = entry["tensors_outside_state_dict"]
    assert len(held) == (1 if outside else 0)
    if outside:
        assert held[0].startswith(f"{len(outside)} tensor(s)")


def test_real_checkpoint_globals_are_covered() -> None:
    """The variants hold the kinds of objects real checkpoints carry beside a state dict."""
    foreign = {g for e in READABLE for g in e.get("foreign_globals", [])}
    for expected in ("argparse.Namespace", "numpy.dtype", "collections.defaultdict"):
        assert expected in foreign
    assert any(g.startswith("__main__.") for g in foreign)
    assert any(e.get("tensors_outside_state_dict") for e in READABLE)


def test_tied_weights_and_views_count_once() -> None:
    (entry,) = [e for e in READABLE if "tied" in e["file"]]
    code, report, _ = inspect(str(FIXTURES / entry["file"]))
    assert code == 0 and report is not None
    assert report["total_params"] < entry["model"]["state_dict_numel"]
    assert any("head_b.weight" in w and "head_a.weight" in w for w in report["warnings"])
    (excluded,) = report["excluded"]
    assert excluded["tensors"] == ["window_row"]


def test_dtypes_from_storage_classes() -> None:
    (entry,) = [e for e in READABLE if "tied" in e["file"]]
    _, report, _ = inspect(str(FIXTURES / entry["file"]))
    assert report is not None
    truth = {p["key"]: p["dtype"] for m in entry["model"]["modules"] for p in m["parameters"]}
    (gru,) = report["recurrent_layers"]
    assert {t["name"]: t["dtype"] for t in gru["tensors"]} == {
        k: v for k, v in truth.items() if k.startswith("gru.")
    }
    assert {"float16", "bfloat16", "float32"} <= set(truth.values())


@pytest.mark.parametrize("entry", READABLE, ids=entry_id)
def test_detected_by_signature_whatever_the_name(entry: dict, tmp_path: Path) -> None:
    copy = tmp_path / "weights.h5"
    shutil.copy(FIXTURES / entry["file"], copy)
    code, report, errors = inspect(str(copy))
    assert code == 0, errors
    assert report is not None and report["format"] == "pytorch"


def test_directory_scan_finds_checkpoints_by_signature(tmp_path: Path) -> None:
    for entry in ENTRIES:
        shutil.copy(FIXTURES / entry["file"], tmp_path / Path(entry["file"]).name)
    (tmp_path / "notes.bin").write_bytes(b"\x00\x01 not a model")
    (tmp_path / "plain.pkl").write_bytes(b"\x80\x04}\x94.")
    found = {p.name for p in model_files(tmp_path)}
    assert found == {Path(e["file"]).name for e in ENTRIES}


# The generator exported the same model with torch.onnx (legacy exporter) and safetensors.
COMPANIONS = ("torch/lstm_state.onnx", "torch/lstm_state.safetensors")


@pytest.mark.parametrize("export", COMPANIONS)
@pytest.mark.parametrize("source", ["torch/lstm_state.pt", "torch/lstm_state_legacy.pt"])
def test_compare_with_the_same_model_exported(source: str, export: str) -> None:
    result = runner.invoke(
        app, ["compare", str(FIXTURES / source), str(FIXTURES / export), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["faithful"] is True
    assert payload["source"]["format"] == "pytorch"
    assert payload["source"]["convention"] == "pytorch"
    (entry,) = [e for e in READABLE if e["file"] == source]
    assert payload["source"]["params"] == entry["model"]["total_params"]
    recurrent = [p for p in payload["pairs"] if p["kind"] == "recurrent"]
    assert len(recurrent) == entry["model"]["recurrent_modules"][0]["config"]["num_layers"]
    assert all(p["values"]["compared"] == p["source_params"] for p in recurrent)


def test_fixtures_are_read_only(tmp_path: Path) -> None:
    """Inspecting and comparing opens the files read-only and writes nothing beside them."""
    folder = FIXTURES / "torch"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    for entry in ENTRIES:
        runner.invoke(app, [str(FIXTURES / entry["file"])])
    runner.invoke(app, ["compare", str(folder / "lstm_state.pt"), str(folder / COMPANIONS[0])])
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert after == before


# fixtures/torch_modules: whole pickled modules and TorchScript archives written by torch 2.13
# (fixtures/generate_torch_modules.py), truth from numel() and state_dict().
MODULES = manifest_entries("torch-whole-module")


@pytest.mark.parametrize("entry", MODULES, ids=entry_id)
def test_whole_modules_and_torchscript_give_their_state_dict(entry: dict) -> None:
    code, report, errors = inspect(str(FIXTURES / entry["file"]))
    assert code == 0, errors
    assert report is not None
    truth = entry["model"]
    assert entry["torch_load_weights_only"].startswith("refused")
    assert report["total_params"] == truth["state_dict_unique_storage_elements"]
    # Rows in the state dict's order (item 7): each row where its module's first key is.
    modules: list[str] = []
    for item in truth["state_dict"]:
        key = item["key"]
        found = _MODULE_KEY.match(key)
        row = (found[1] or "") + f"l{found[2]}" if found else key.rpartition(".")[0] or key
        row = row.replace("..", ".")
        if row not in modules:
            modules.append(row)
    assert [r["name"] for r in report["layers"]] == modules
    recurrent = report["recurrent_layers"]
    for module in truth["recurrent_modules"]:
        config = module["config"]
        path = module["name"]
        names = [f"{path}.l{k}" if path else f"l{k}" for k in range(config["num_layers"])]
        mine = [r for r in recurrent if r["name"] in names]
        assert [r["name"] for r in mine] == names
        assert sum(layer["params"] for layer in mine) == module["params"]
        for layer in mine:
            assert layer["cell"] == CELLS[module["class"]]
            assert layer["units"] == config["hidden_size"]
            assert layer["directions"] == (2 if config["bidirectional"] else 1)
            assert layer["proj_size"] == (config["proj_size"] or None)
            assert layer["check"] == "ok"
    for module in truth["modules"]:
        if module["class"] not in CELLS:
            row = next(r for r in report["layers"] if r["name"] == module["name"])
            assert row["type"] == module["class"]
    (warning,) = [w for w in report["warnings"] if "would import and run code" in w]
    assert all(g in warning for g in entry["pickle_globals"] if g.startswith("__main__."))


# A recurrent parameter's key: its module (with the dot) and layer index (torch's names).
_MODULE_KEY = re.compile(r"^(.*\.)?(?:weight|bias)_(?:ih|hh|hr)_l(\d+)(?:_reverse)?$")


REAL = [e for e in realworld_entries("pytorch") if (REALWORLD / "files" / e["file"]).exists()]


@pytest.mark.parametrize("entry", REAL, ids=entry_id)
def test_real_pytorch_files(entry: dict) -> None:
    code, report, errors = inspect(str(REALWORLD / "files" / entry["file"]))
    assert code == 0, errors
    assert report is not None
    assert report["total_params"] == entry["truth"]["total"]
    assert [layer["params"] for layer in report["recurrent_layers"]] == list(
        entry["truth"]["recurrent"].values()
    )
    assert all(layer["check"] == "ok" for layer in report["recurrent_layers"])


@pytest.mark.parametrize(
    "entry", [e for e in MODULES if "same_weights_as" in e or "other_run_of" in e], ids=entry_id
)
def test_compare_across_whole_modules_and_torchscript(entry: dict) -> None:
    """A TorchScript archive against the whole module of the same weights is faithful (torch
    checked the weights equal); another training run is NOT faithful, naming a tensor."""
    other = entry.get("same_weights_as") or entry["other_run_of"]
    result = runner.invoke(app, ["compare", str(FIXTURES / other), str(FIXTURES / entry["file"])])
    if "same_weights_as" in entry:
        assert result.exit_code == 0, result.output
        assert "Result: faithful" in result.stdout
    else:
        assert result.exit_code == 1, result.output
        assert "NOT faithful" in result.stdout and "values differ in" in result.stdout
