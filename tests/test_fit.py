"""Fitting a table to a narrow terminal (render/fit.py): the steps that keep a table a table,
and a cost linear in the table's size (issue 23: a 14 KB file once cost 80 s and 1.6 GB of
fitting). Work is counted in characters handled, never in time."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from inspector.render import fit
from inspector.render.fit import Shape, fit_table
from inspector.render.table import display_width

ALIGN3 = ("left", "left", "right")


def _widest(text: str) -> int:
    return max(display_width(line) for line in text.splitlines())


def test_a_wrapped_name_stays_in_its_column_and_numbers_stay_whole() -> None:
    rows = (
        ("middle/inner/unidirectional_sequence_lstm_0", "LSTM", "1,600"),
        ("dense", "Dense", "18"),
    )
    text = fit_table(Shape(("layer", "type", "params"), rows, ALIGN3, wrap=(0,)), 30)
    assert _widest(text) <= 30
    lines = text.splitlines()
    assert lines[2].split()[-1] == "1,600"  # the row's cells on its first line
    column = len(lines[1].split()[0])  # the rule's first run of dashes
    assert "".join(line[:column].strip() for line in lines[2:-1]) == rows[0][0]
    assert all(line[column : column + 2] in ("  ", "") for line in lines[2:])  # never spills
    assert "unidirectional_" in text and "1,600" in text


def test_steps_in_order_uniform_then_optional_then_records() -> None:
    rows = tuple((f"layer_{i}", "float32", f"{i * 1000:,}", f"{i}.0%") for i in range(1, 4))
    table = Shape(
        ("layer", "dtype", "params", "share"),
        rows,
        ("left", "left", "right", "right"),
        optional=(3,),
    )
    roomy = fit_table(table, 30)
    assert "dtype" not in roomy.splitlines()[0] and "(dtype float32 in every row)" in roomy
    assert "share" in roomy.splitlines()[0]
    tight = fit_table(table, 18)
    assert "share" not in tight.splitlines()[0]
    assert "(share left out to fit 18 columns)" in " ".join(tight.split())
    last = fit_table(table, 14)
    assert last.splitlines()[0] == "layer layer_1"  # one record per row, the last resort


def test_records_name_each_side() -> None:
    table = Shape(
        ("source", "type", "export", "type"),
        (("lstm", "LSTM", "LSTM__30", "Loop"),),
        ("left",) * 4,
        keys=(0, 2),
        labels=("source", "source type", "export", "export type"),
    )
    text = fit_table(table, 24)
    assert "source type: LSTM" in text and "export type: Loop" in text


def test_a_gate_a_shape_and_a_slice_never_wrap_apart() -> None:
    assert fit._pieces("recurrent_kernel [i]") == ["recurrent_", "kernel [i]"]
    assert fit._pieces("(None, 8, 6)") == ["(None, 8, 6)"]
    assert fit._pieces("kernel[:, 0:8] + b") == ["kernel[:, 0:8] ", "+ ", "b"]
    assert fit._pieces("v1.5_x") == ["v1.5_", "x"]
    # A bracket a (hostile) name leaves open, or a group too long to be a slice, holds nothing.
    assert fit._pieces("a\\x1b[31m/b/c") == ["a\\x1b[31m/", "b/", "c"]
    assert len(fit._pieces("w[" + "a_" * 30 + "]")) > 1


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Characters each helper of render/fit.py is handed, summed over a fit."""
    handled = [0]

    def counted(function: Callable[..., Any], size: Callable[..., int]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            handled[0] += size(*args)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(fit, "display_width", counted(fit.display_width, len))
    monkeypatch.setattr(
        fit,
        "write_table",
        counted(fit.write_table, lambda h, rows, *a: sum(len(c) for r in rows for c in r)),
    )
    monkeypatch.setattr(fit, "wrap", counted(fit.wrap, lambda text, *a: len(text)))
    monkeypatch.setattr(fit, "_pieces", counted(fit._pieces, len))
    return handled


def _hostile(rows: int, rng: random.Random) -> Shape:
    """Long names full of break points, long notes, one value in a column: every step runs."""
    body = tuple(
        (
            "/".join(f"n{rng.randint(0, 9)}_{'x' * rng.randint(1, 30)}" for _ in range(10)),
            "float32",
            f"{rng.randint(0, 10**9):,}",
            "error: " + " ".join("word" for _ in range(rng.randint(10, 60))),
            f"{rng.random():.1%}",
        )
        for _ in range(rows)
    )
    return Shape(
        ("layer", "dtype", "params", "checks", "share"),
        body,
        ("left", "left", "right", "left", "right"),
        notes=(3,),
        wrap=(0,),
        optional=(4,),
    )


@pytest.mark.parametrize("width", [20, 80])
def test_fitting_is_linear_in_the_table_s_size(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    handled = _counting(monkeypatch)
    work = {}
    for rows in (40, 80, 160):
        table = _hostile(rows, random.Random(rows))
        size = sum(len(cell) for row in table.rows for cell in row)
        handled[0] = 0
        fit_table(table, width)
        work[rows] = handled[0] / size
    assert max(work.values()) < 40  # a fixed number of passes over every character
    assert work[160] < 1.2 * work[40]  # per character, the same whatever the size


def test_one_huge_cell_costs_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    handled = _counting(monkeypatch)
    for length in (5_000, 50_000):
        name = "a_b " * (length // 4)
        handled[0] = 0
        fit_table(Shape(("layer", "type", "params"), ((name, "LSTM", "1"),), ALIGN3, wrap=(0,)), 80)
        assert handled[0] < 40 * length


def test_seeded_random_tables_fit_or_become_records() -> None:
    """Whatever the cells (brackets left open, long words, wide characters, empty cells) and
    the width, fitting ends: a table within the width, or records."""
    rng = random.Random(25)
    alphabet = "ab_/.-[]() ,:1漢"
    for _ in range(300):
        columns = rng.randint(1, 6)
        rows = tuple(
            tuple(
                "".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 5, 12, 40))))
                for _ in range(columns)
            )
            for _ in range(rng.randint(0, 5))
        )
        table = Shape(
            tuple(f"h{i}" for i in range(columns)),
            rows,
            tuple(rng.choice(("left", "right")) for _ in range(columns)),
            notes=tuple(i for i in range(columns) if rng.random() < 0.2),
            keys=(0,),
            wrap=tuple(i for i in range(columns) if rng.random() < 0.5),
            optional=tuple(i for i in range(1, columns) if rng.random() < 0.3),
            short=tuple(rng.choice(("", "s")) for _ in range(columns)),
        )
        width = rng.randint(10, 60)
        text = fit_table(table, width)
        drawn_as_table = (
            bool(rows)
            and text.splitlines()[1:2]
            and set(text.splitlines()[1].replace(" ", "")) == {"-"}
        )
        if drawn_as_table:
            assert _widest(text.split("\n(")[0]) <= width, (table, width, text)
