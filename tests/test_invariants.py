"""Invariants every report keeps, over every fixture and every real file: each stored tensor is
held by one layer row, so the rows sum to the total and their shares to 100%; a recurrent
layer's tensors sum to its count; whatever a row shares is held by a row that exists.

These hold whatever the counts are, so they need no truth of their own; the counts themselves are
checked against the frameworks' manifests in the per-format tests.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from conftest import FIXTURES, REALWORLD, manifest_entries
from inspector import inspect_file
from inspector.formats.detect import is_savedmodel_dir
from inspector.render.csv_rows import render_csv
from inspector.render.report import LayerView

SUFFIXES = (
    ".onnx",
    ".h5",
    ".keras",
    ".safetensors",
    ".pt",
    ".pth",
    ".bin",
    ".ckpt",
    ".gguf",
    ".tflite",
)


def _model(path: Path) -> bool:
    """A model file by suffix, or a SavedModel directory."""
    return path.suffix in SUFFIXES or is_savedmodel_dir(path)


# Crafted pickles that call a global outside the allow-list are refused: no rows to check.
REFUSED = {FIXTURES / e["file"] for e in manifest_entries("pickle-verdict") if e["calls_a_global"]}
FIXTURE_FILES = sorted(p for p in FIXTURES.rglob("*") if _model(p) and p not in REFUSED)
# Hugging Face checkpoint directories are one model each (fixtures/hf/).
FIXTURE_FILES += sorted(p.parent for p in FIXTURES.glob("hf/*/config.json"))
REAL_FILES = sorted(p for p in (REALWORLD / "files").glob("*") if _model(p))


def _name(path: Path) -> str:
    return path.name


def test_the_fixtures_are_there() -> None:
    assert len(FIXTURE_FILES) > 100  # the glob above must not silently find nothing


def _check(path: Path) -> None:
    report = inspect_file(path)
    model = report.model
    total = report.totals.total
    rows = {layer.name for layer in model.layers}
    held: dict[str, str] = {}
    for layer in model.layers:
        for tensor in layer.tensors:
            assert tensor.key not in held, (
                f"{tensor.name} is held by {held.get(tensor.key)} and by {layer.name}"
            )
            held[tensor.key] = layer.name
    assert sum(layer.params for layer in model.layers) == total
    for layer in model.layers:
        for item in layer.shared:
            assert held.get(item.tensor.key) == item.owner, (layer.name, item.tensor.name)
            assert item.owner != layer.name
    document = report.to_dict()
    assert sum(row["params"] for row in document["layers"]) == document["total_params"]
    for row in document["layers"]:
        assert set(row["shared_with"]) <= rows
    for layer in document["recurrent_layers"]:
        assert sum(t["params"] for t in layer["tensors"]) == layer["params"]
        for tensor in layer["tensors"]:
            assert tensor["shared_with"] is None or tensor["shared_with"] in rows
    if total:
        shares = [
            float(row["share"])
            for row in csv.DictReader(io.StringIO(render_csv([report], LayerView.ALL)))
        ]
        assert sum(shares) == pytest.approx(1.0, abs=1e-5 * max(1, len(shares)))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=_name)
def test_rows_sum_to_the_total_on_every_fixture(path: Path) -> None:
    _check(path)


@pytest.mark.skipif(not REAL_FILES, reason="../shared/realworld is not present")
@pytest.mark.parametrize("path", REAL_FILES, ids=_name)
def test_rows_sum_to_the_total_on_every_real_file(path: Path) -> None:
    _check(path)


def test_a_tensor_two_rows_list_counts_in_the_first_whatever_the_reader() -> None:
    """The analysis enforces the rule for readers that list a stored tensor in several rows
    (a Keras layer reached from two nested models, tied entries): the later row shares it."""
    from inspector.model import FileFormat, Layer, Model, Tensor
    from inspector.report.analysis import analyse

    tied = Tensor("embed/w", "w", (10, 6), "float32", 4)
    bias = Tensor("dec/b", "b", (10,), "float32", 4)
    model = Model(
        path="synthetic",
        format=FileFormat.SAFETENSORS,
        producer=None,
        layers=(Layer("embed", "Embedding", (tied,)), Layer("decoder", "Dense", (tied, bias))),
        recurrent_layers=(),
        trainable_known=False,
    )
    report = analyse(model)
    rows = {row["name"]: row for row in report.to_dict()["layers"]}
    assert report.totals.total == tied.params + bias.params
    assert rows["embed"]["params"] == tied.params and rows["embed"]["shared_with"] == []
    assert rows["decoder"]["params"] == bias.params
    assert rows["decoder"]["shared_with"] == ["embed"]


def test_attribution_stays_linear_in_a_layer_s_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crafted file can put tens of thousands of tensors in one row (a safetensors group); a
    row's tensors are kept once each by a hashed lookup, not by scanning the row for each one:
    bounded by the count of equality tests, never by time."""
    from inspector.model import FileFormat, Layer, Model, Tensor
    from inspector.report.analysis import attribute_once

    many = tuple(Tensor(f"w{i}", f"w{i}", (2,), "float32", 4) for i in range(5000))
    compared = [0]
    equal = Tensor.__eq__

    def counted(self: Tensor, other: object) -> bool:
        compared[0] += 1
        return equal(self, other)

    monkeypatch.setattr(Tensor, "__eq__", counted)
    model = Model(
        path="synthetic",
        format=FileFormat.SAFETENSORS,
        producer=None,
        layers=(Layer("group", "Linear", many + many[:10]),),  # ten listed twice
        recurrent_layers=(),
        trainable_known=False,
    )
    (layer,) = attribute_once(model).layers
    assert layer.tensors == many
    assert compared[0] < 5 * len(many)  # a scan of the row per tensor made ~12.5 M
