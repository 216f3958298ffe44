"""The closed-form formula, checked against counts the frameworks reported for real fixtures
(the seed article's worked examples among them) and against the cell table."""

from __future__ import annotations

import pytest

from conftest import manifest_entries
from inspector.cells import CELLS, Convention, gate_order
from inspector.formula import derive
from inspector.model import BiasConvention, CellKind

KIND = {"SimpleRNN": CellKind.SIMPLE_RNN, "LSTM": CellKind.LSTM, "GRU": CellKind.GRU}


def _plain_keras_recurrent() -> list[tuple[str, dict]]:
    cases = []
    for entry in manifest_entries("keras-h5"):
        for layer in entry["recurrent_layers"]:
            if layer["class"] in KIND and layer["cell_class"] in KIND:
                cases.append((entry["file"], layer))
    return cases


@pytest.mark.parametrize(
    ("file", "layer"), _plain_keras_recurrent(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_formula_matches_keras_count_params(file: str, layer: dict) -> None:
    reset_after = layer["reset_after"]
    bias = BiasConvention.SINGLE
    if not layer["use_bias"]:
        bias = BiasConvention.NONE
    elif reset_after:
        bias = BiasConvention.DOUBLE
    derivation = derive(
        KIND[layer["class"]],
        layer["units"],
        layer["input_dim"],
        bias=bias,
        directions=layer["directions"],
    )
    assert derivation.total == layer["params"], file


@pytest.mark.parametrize(
    ("units", "features", "keras_file"),
    [
        (1, 1, "keras2/simplernn_u1_f1.h5"),
        (2, 1, "keras2/simplernn_u2_f1.h5"),
        (1, 3, "keras2/simplernn_u1_f3.h5"),
    ],
)
def test_seed_worked_examples(units: int, features: int, keras_file: str) -> None:
    truth = {e["file"]: e["total_params"] for e in manifest_entries("keras-h5")}
    derivation = derive(CellKind.SIMPLE_RNN, units, features)
    assert derivation.total == truth[keras_file]
    assert derivation.total == {(1, 1): 3, (2, 1): 8, (1, 3): 5}[(units, features)]


def test_expression_substitutes_numbers() -> None:
    assert derive(CellKind.SIMPLE_RNN, 2, 1).expression() == "2·1 + 2·2 + 2"
    assert derive(CellKind.LSTM, 16, 8).expression() == "4·(16·8 + 16·16 + 16)"
    gru = derive(CellKind.GRU, 8, 4, bias=BiasConvention.DOUBLE, directions=2)
    assert gru.expression() == "2 × (3·(8·4 + 8·8 + 2·8))"
    assert derive(CellKind.LSTM, 3, 4, bias=BiasConvention.NONE).expression() == "4·(3·4 + 3·3)"


def test_sequence_length_does_not_change_the_count() -> None:
    counts = {
        e["file"]: e["total_params"]
        for e in manifest_entries("keras-h5")
        if e["file"].startswith("keras2/simplernn_u2_f1")
    }
    assert len(counts) >= 2
    assert set(counts.values()) == {derive(CellKind.SIMPLE_RNN, 2, 1).total}


def test_cell_table_gate_orders() -> None:
    assert [CELLS[k].gates for k in (CellKind.SIMPLE_RNN, CellKind.LSTM, CellKind.GRU)] == [1, 4, 3]
    assert gate_order(CellKind.LSTM, Convention.KERAS) == ("i", "f", "c", "o")
    assert gate_order(CellKind.LSTM, Convention.ONNX) == ("i", "o", "f", "c")
    assert gate_order(CellKind.GRU, Convention.PYTORCH) == ("r", "z", "n")
