"""Rendering a report is linear in its size (issue 23): the command renders in its own process,
so a report whose rows make the renderer quadratic (a scan of every check per row, of every
shared tensor per owner, of every row per recurrent layer) would cost the command far more than
the worker that read the file.

Work is counted, never timed: the calls each function receives (`sys.setprofile`: Python
functions, generator resumptions, built-ins) and the characters written, for reports of n and
2n rows built by a generator, each shape of report a hostile file can give (many recurrent
layers in nested models, one row sharing with every other, every row sharing with one, names at
the length cap, every layer over a gate). Counting per function finds a quadratic loop however
small it is beside the rest. Fitting a table to a terminal is held to the same in
tests/test_fit.py.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType

import pytest

from inspector.counts import NAME_LIMIT
from inspector.model import (
    CellConfig,
    CellKind,
    Direction,
    FileFormat,
    Layer,
    Model,
    RecurrentLayer,
    RecurrentTensor,
    SharedTensor,
    Tensor,
    TensorRole,
    bounded,
)
from inspector.render import Flavour, LayerView, Style, render_csv, render_json, render_reports
from inspector.render.gates import check_messages, gate_messages
from inspector.render.html import render_html
from inspector.render.summary import render_summary
from inspector.report.analysis import Report, analyse
from inspector.report.batch import Outcome
from inspector.report.gates import Budget, gated

SMALL = 24  # rows of the smaller report; the larger has twice as many
SLACK = 2.3  # twice the rows may cost this many times the work (fixed costs keep it above 2)


def _tensor(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(name, name, shape, "float32", 4)


def _lstm(prefix: str, units: int = 4, width: int = 3) -> tuple[Layer, RecurrentLayer]:
    kernel = _tensor(f"{prefix}/kernel", (width, 4 * units))
    recurrent = _tensor(f"{prefix}/recurrent_kernel", (units, 4 * units))
    bias = _tensor(f"{prefix}/bias", (2 * units,))  # a bias of the wrong size: a mismatch
    layer = Layer(prefix, "LSTM", (kernel, recurrent, bias))
    split = RecurrentLayer(
        name=f"{prefix}/cell",
        type="LSTM",
        cell=CellConfig(CellKind.LSTM, units),
        directions=1,
        tensors=(
            RecurrentTensor(kernel, TensorRole.KERNEL, Direction.FORWARD),
            RecurrentTensor(recurrent, TensorRole.RECURRENT_KERNEL, Direction.FORWARD),
            RecurrentTensor(bias, TensorRole.BIAS, Direction.FORWARD),
        ),
        input_dim=width,
    )
    return layer, split


def nested_recurrent(rows: int) -> Model:
    """`rows` nested models, each holding an LSTM (`model/block7` holds `model/block7/cell`):
    whether a row holds a recurrent layer was a scan of every check per row."""
    layers, recurrent = [], []
    for index in range(rows):
        layer, split = _lstm(f"model/block{index:05d}")
        layers.append(layer)
        recurrent.append(split)
    return Model("nested.h5", FileFormat.KERAS_H5, "crafted", tuple(layers), tuple(recurrent))


def one_reads_all(rows: int) -> Model:
    """A last row that shares a tensor with every other row (tied weights, many owners)."""
    layers = [Layer(f"dense{i}", "Dense", (_tensor(f"dense{i}/w", (3, 3)),)) for i in range(rows)]
    tied = tuple(SharedTensor(layer.tensors[0], layer.name) for layer in layers)
    layers.append(Layer("tied", "Dense", (), shared=tied))
    return Model("tied.onnx", FileFormat.ONNX, "crafted", tuple(layers), ())


def all_read_one(rows: int) -> Model:
    """Every row shares the first row's tensor (one owner, many readers)."""
    first = Layer("embedding", "Embedding", (_tensor("embedding/w", (10, 4)),))
    readers = [
        Layer(
            f"head{i}",
            "Dense",
            (_tensor(f"head{i}/w", (4, 4)),),
            shared=(SharedTensor(first.tensors[0], first.name),),
        )
        for i in range(rows)
    ]
    return Model("tied.safetensors", FileFormat.SAFETENSORS, "crafted", (first, *readers), ())


def long_names(rows: int) -> Model:
    """Rows whose names and types are at the length cap, recurrent ones among them."""
    layers, recurrent = [], []
    for i in range(rows):
        layer, split = _lstm(f"{i:04d}" + "n" * (NAME_LIMIT * 4))
        layers.append(replace(layer, type="T" * (NAME_LIMIT * 4)))
        recurrent.append(split)
    return bounded(
        Model("long.pt", FileFormat.PYTORCH, "x" * 10_000, tuple(layers), tuple(recurrent))
    )


GENERATORS: dict[str, Callable[[int], Model]] = {
    "nested_recurrent": nested_recurrent,
    "one_reads_all": one_reads_all,
    "all_read_one": all_read_one,
    "long_names": long_names,
}
BUDGET = Budget({"--max-params": 1, "--max-layer-params": 1, "--max-macs": 1, "--strict": 0})


def _report(model: Model) -> Report:
    return replace(gated(analyse(model), BUDGET), seq_len=7)


def _outputs(report: Report) -> dict[str, Callable[[], str]]:
    """What the command renders of a report, each output and each view that filters rows in
    its own way once, and its stderr lines."""
    outcomes = [Outcome(report.model.path, report), Outcome("unreadable.h5", error="x")] * 3
    style = Style(colour=True)
    return {
        "table": lambda: render_reports([report], Flavour.TEXT, LayerView.ALL, style),
        "table recurrent": lambda: render_reports(
            [report], Flavour.TEXT, LayerView.RECURRENT, style
        ),
        "markdown weighted": lambda: render_reports(
            [report], Flavour.MARKDOWN, LayerView.WEIGHTED, style
        ),
        "csv": lambda: render_csv([report], LayerView.ALL),
        "csv recurrent": lambda: render_csv([report], LayerView.RECURRENT),
        "json": lambda: render_json([report], as_array=True),
        "html": lambda: render_html([report]),
        "stderr": lambda: "\n".join(check_messages(report) + gate_messages(report)),
        "summary": lambda: render_summary(outcomes, Flavour.MARKDOWN, Style(width=None)),
    }


@contextmanager
def _counted() -> Iterator[Counter[object]]:
    """Calls each function receives while the block runs: Python functions (a generator's
    resumption included) by their code object, built-ins by the function called."""
    calls: Counter[object] = Counter()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            calls[frame.f_code] += 1
        elif event == "c_call":
            calls[arg] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


def _costs(model: Model) -> dict[str, tuple[Counter[object], int]]:
    """(calls per function, characters written) of each output."""
    costs = {}
    for name, render in _outputs(_report(model)).items():
        with _counted() as calls:
            written = len(render())
        costs[name] = (calls, written)
    return costs


@pytest.mark.parametrize("shape", GENERATORS)
def test_rendering_a_report_is_linear_in_its_rows(shape: str) -> None:
    """Each output on its own, each function on its own: twice the rows may cost a function
    at most SLACK times the calls (one called a fixed number of times is left out)."""
    build = GENERATORS[shape]
    small, large = _costs(build(SMALL)), _costs(build(2 * SMALL))
    for output, (calls, written) in small.items():
        more_calls, more_written = large[output]
        assert more_written <= SLACK * written, (shape, output, written, more_written)
        grown = {
            function: (count, more_calls[function])
            for function, count in calls.items()
            if count >= SMALL and more_calls[function] > SLACK * count
        }
        assert not grown, (shape, output, grown)


def test_the_generators_give_what_they_say() -> None:
    """The shapes above are what makes a renderer quadratic: otherwise the test proves nothing."""
    nested = _report(nested_recurrent(3))
    names = [check.layer.name for check in nested.checks]
    assert names == [f"model/block{i:05d}/cell" for i in range(3)]
    assert all(
        check.layer.name.startswith(layer.name + "/")
        for check, layer in zip(nested.checks, nested.model.layers, strict=True)
    )
    assert all(check.status.value == "mismatch" for check in nested.checks)
    tied = one_reads_all(3)
    assert tied.layers[-1].shared_with == ("dense0", "dense1", "dense2")
    assert {layer.shared_with for layer in all_read_one(3).layers[1:]} == {("embedding",)}
    long = json.loads(render_json([_report(long_names(2))], as_array=True))
    assert max(len(layer["name"]) for layer in long[0]["layers"]) == NAME_LIMIT
    gates = {
        gate["limit"]: len(gate["over"]) for gate in _report(one_reads_all(5)).to_dict()["gates"]
    }
    assert gates["--max-layer-params"] == 5  # every row with parameters is over
