"""Models built in memory for the picture tests: what no fixture file holds (names hundreds of
characters long, in several scripts; a layer of a billion weights), read by the same renderers."""

from __future__ import annotations

from inspector.model import (
    CellConfig,
    CellKind,
    FileFormat,
    Layer,
    Model,
    RecurrentLayer,
    RecurrentTensor,
    Tensor,
    TensorRole,
    WidthSource,
)

LONG = "encoder/" * 20 + "bidirectional_lstm_with_a_name_nobody_would_type_長い名前_" * 4
WIDE_UNITS, WIDE_INPUT = 4096, 100_000


def _lstm(name: str, units: int, width: int) -> tuple[Layer, RecurrentLayer]:
    def tensor(suffix: str, shape: tuple[int, ...]) -> Tensor:
        full = f"{name}/lstm_cell/{suffix}:0"
        return Tensor(full, full, shape, "float32", 4)

    tensors = (
        RecurrentTensor(tensor("kernel", (width, 4 * units)), TensorRole.KERNEL, None),
        RecurrentTensor(
            tensor("recurrent_kernel", (units, 4 * units)), TensorRole.RECURRENT_KERNEL, None
        ),
        RecurrentTensor(tensor("bias", (4 * units,)), TensorRole.BIAS, None),
    )
    layer = RecurrentLayer(
        name,
        "LSTM",
        CellConfig(CellKind.LSTM, units),
        1,
        tensors,
        input_dim=width,
        input_dim_source=WidthSource.TENSOR,
    )
    return Layer(name, "LSTM", tuple(t.tensor for t in tensors)), layer


def long_names_model() -> Model:
    """An LSTM(3) on 2 features and an LSTM(4096) on 100,000 features, both named hundreds of
    characters long, and a Dense layer with a long name, for the bar chart."""
    small, small_rnn = _lstm(LONG, 3, 2)
    wide, wide_rnn = _lstm(LONG[::-1], WIDE_UNITS, WIDE_INPUT)
    dense_name = "classifier_head_" * 12
    dense = Layer(
        dense_name,
        "Dense",
        (
            Tensor(dense_name + "/kernel:0", dense_name + "/kernel:0", (3, 5), "float32", 4),
            Tensor(dense_name + "/bias:0", dense_name + "/bias:0", (5,), "float32", 4),
        ),
    )
    return Model(
        "long_names.h5",
        FileFormat.KERAS_H5,
        "built in memory",
        (small, wide, dense),
        (small_rnn, wide_rnn),
    )
