"""Full tensor shapes through a Keras configuration, for the layers whose feature width is not
the last axis.

A ConvLSTM with `data_format="channels_first"` reads `(batch, time, channels, *spatial)`: its
input width is axis 2, not the last axis (keras/src/layers/rnn/conv_lstm.py, tf_keras
`layers/rnn/base_conv_lstm.py`). A `Bidirectional` wrapper keeps that `data_format` only in its
inner layer's config, and concatenates the two directions on the *last* axis whatever the
inner layer's data format (`concatenate([y, y_rev], axis=-1)` in tf_keras and Keras 3
`layers/rnn/bidirectional.py`): after a channels_first Bidirectional ConvLSTM the channels stay
the filters and the last spatial axis doubles. Shapes are tuples with None for unknown
dimensions (the batch, usually); a function returns None where the configuration alone does not
determine the shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from inspector.cells import KERAS_RECURRENT

JSON = Mapping[str, object]
Shape = tuple[int | None, ...]

# Layers whose output has exactly their (first) input's shape.
_SAME_SHAPE = frozenset(
    {
        "Activation",
        "ActivityRegularization",
        "AlphaDropout",
        "BatchNormalization",
        "Dropout",
        "ELU",
        "GaussianDropout",
        "GaussianNoise",
        "GroupNormalization",
        "LayerNormalization",
        "LeakyReLU",
        "Masking",
        "Normalization",
        "PReLU",
        "ReLU",
        "Softmax",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "ThresholdedReLU",
        "UnitNormalization",
    }
)


def as_shape(value: object) -> Shape | None:
    """A shape list such as `[null, 3, 4, 10, 10]` as a tuple, None if it is not one."""
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return None
    dims: list[int | None] = []
    for dim in value:
        if dim is None:
            dims.append(None)
        elif isinstance(dim, int) and not isinstance(dim, bool) and dim > 0:
            dims.append(dim)
        else:
            return None
    return tuple(dims)


def declared_shape(config: JSON) -> Shape | None:
    """The full input shape a layer declares, batch axis included."""
    for key in ("batch_input_shape", "batch_shape"):
        shape = as_shape(config.get(key))
        if shape is not None:
            return shape
    shape = as_shape(config.get("input_shape"))
    return (None, *shape) if shape is not None else None


def _inner(class_name: str, config: JSON) -> tuple[str, JSON]:
    """The layer a Bidirectional wraps, or the layer itself."""
    if class_name != "Bidirectional":
        return class_name, config
    inner = config.get("layer")
    inner = inner if isinstance(inner, Mapping) else {}
    name = inner.get("class_name")
    inner_config = inner.get("config")
    return (
        name if isinstance(name, str) else "?",
        inner_config if isinstance(inner_config, Mapping) else {},
    )


def _conv_rank(class_name: str) -> int:
    spec = KERAS_RECURRENT.get(class_name)
    return spec.conv_rank if spec is not None else 0


def is_channels_first(class_name: str, config: JSON) -> bool:
    """The layer, or the layer a Bidirectional wraps, keeps channels before its spatial axes."""
    _, inner = _inner(class_name, config)
    return inner.get("data_format") == "channels_first"


def channels_first_width(class_name: str, config: JSON, input_shape: Shape | None) -> int | None:
    """The input channels of a channels_first ConvLSTM (or a Bidirectional around one): axis 2
    of `(batch, time, channels, *spatial)`. None for any other layer or an unknown shape."""
    inner_class, _ = _inner(class_name, config)
    rank = _conv_rank(inner_class)
    if not rank or input_shape is None or len(input_shape) != rank + 3:
        return None
    return input_shape[2]


def output_shape(class_name: str, config: JSON, input_shape: Shape | None) -> Shape | None:
    """The (first) output shape of a layer, as Keras's `compute_output_shape` gives it, for
    InputLayer, shape-keeping layers, Dense, Embedding, Flatten, Reshape, convolutions,
    recurrent layers (Bidirectional and TimeDistributed around them too) and ConvLSTM; None
    otherwise."""
    if class_name == "InputLayer":
        return declared_shape(config) or input_shape
    if input_shape is None:
        return None
    if class_name in _SAME_SHAPE:
        return input_shape
    if class_name == "TimeDistributed":
        return _time_distributed(config, input_shape)
    inner_class, inner_config = _inner(class_name, config)
    rank = _conv_rank(inner_class)
    if not rank:
        return _plain_output(class_name, config, input_shape)
    single = _conv_lstm_output(rank, inner_config, input_shape)
    if single is None or class_name != "Bidirectional":
        return single
    merge_mode = config.get("merge_mode", "concat")
    if merge_mode != "concat":
        return single
    last = single[-1]
    return (*single[:-1], 2 * last if last is not None else None)


def _conv_lstm_output(rank: int, config: JSON, input_shape: Shape) -> Shape | None:
    if len(input_shape) != rank + 3:
        return None
    first = config.get("data_format") == "channels_first"
    spatial_in = input_shape[3:] if first else input_shape[2:-1]
    kernel = _per_axis(config.get("kernel_size"), rank)
    strides = _per_axis(config.get("strides", 1), rank)
    dilation = _per_axis(config.get("dilation_rate", 1), rank)
    filters = config.get("filters")
    if kernel is None or strides is None or dilation is None or not isinstance(filters, int):
        return None
    padding = config.get("padding", "valid")
    spatial = tuple(
        _conv_length(n, k, str(padding), s, d)
        for n, k, s, d in zip(spatial_in, kernel, strides, dilation, strict=True)
    )
    batch, time = input_shape[0], input_shape[1]
    body: Shape = (filters, *spatial) if first else (*spatial, filters)
    return (batch, time, *body) if config.get("return_sequences") else (batch, *body)


def _per_axis(value: object, rank: int) -> tuple[int, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * rank
    shape = as_shape(value)
    if shape is None or len(shape) != rank or any(d is None for d in shape):
        return None
    return tuple(d for d in shape if d is not None)


def _conv_length(
    n: int | None, kernel: int, padding: str, stride: int, dilation: int
) -> int | None:
    """keras/src/ops/operation_utils.py compute_conv_output_shape, one axis."""
    if n is None:
        return None
    if padding == "same":
        length = n
    elif padding == "valid":
        length = n - (kernel - 1) * dilation
    else:
        return None
    return (length + stride - 1) // stride if length > 0 else None


_CONVOLUTIONS = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3, "Convolution1D": 1, "Convolution2D": 2}


def _plain_output(class_name: str, config: JSON, input_shape: Shape) -> Shape | None:
    """Dense (keras/src/layers/core/dense.py), Embedding, Flatten, Reshape, Conv1D-3D
    channels_last (keras/src/ops/operation_utils.py), SimpleRNN/LSTM/GRU and a Bidirectional
    around one (keras/src/layers/rnn/rnn.py, bidirectional.py)."""
    units = _units(config)
    if class_name == "Dense" and isinstance(units, int):
        return (*input_shape[:-1], units)
    output_dim = config.get("output_dim")
    if class_name == "Embedding" and isinstance(output_dim, int):
        return (*input_shape, output_dim)
    if class_name == "Flatten":
        body = input_shape[1:]
        sizes = [d for d in body if d is not None]
        return (input_shape[0], math.prod(sizes) if len(sizes) == len(body) else None)
    if class_name == "Reshape":
        target = as_shape(config.get("target_shape"))
        return (input_shape[0], *target) if target is not None else None
    if (
        class_name in _CONVOLUTIONS
        and config.get("data_format", "channels_last") != "channels_first"
    ):
        return _conv_output(_CONVOLUTIONS[class_name], config, input_shape)
    inner_class, inner_config = _inner(class_name, config)
    spec = KERAS_RECURRENT.get(inner_class)
    if spec is None or spec.conv_rank or len(input_shape) != 3:
        return None
    units = _units(inner_config)
    if units is None:
        return None
    if class_name == "Bidirectional" and config.get("merge_mode", "concat") == "concat":
        units *= 2
    if inner_config.get("return_sequences"):
        return (input_shape[0], input_shape[1], units)
    return (input_shape[0], units)


def _units(config: JSON) -> int | None:
    """`units`, or Keras 1's `output_dim` (Dense, SimpleRNN, LSTM, GRU)."""
    for key in ("units", "output_dim"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _conv_output(rank: int, config: JSON, input_shape: Shape) -> Shape | None:
    if len(input_shape) != rank + 2:
        return None
    kernel = _per_axis(config.get("kernel_size"), rank)
    strides = _per_axis(config.get("strides", 1), rank)
    dilation = _per_axis(config.get("dilation_rate", 1), rank)
    filters = config.get("filters")
    if kernel is None or strides is None or dilation is None or not isinstance(filters, int):
        return None
    padding = str(config.get("padding", "valid"))
    if padding == "causal":  # left-padded to keep the length (Conv1D)
        padding = "same"
    spatial = tuple(
        _conv_length(n, k, padding, s, d)
        for n, k, s, d in zip(input_shape[1:-1], kernel, strides, dilation, strict=True)
    )
    return (input_shape[0], *spatial, filters)


def _time_distributed(config: JSON, input_shape: Shape) -> Shape | None:
    """The wrapped layer applied to `(batch, *rest)`, the time axis put back."""
    inner = config.get("layer")
    inner = inner if isinstance(inner, Mapping) else {}
    name, inner_config = inner.get("class_name"), inner.get("config")
    if not isinstance(name, str) or not isinstance(inner_config, Mapping) or len(input_shape) < 3:
        return None
    single = output_shape(name, inner_config, (input_shape[0], *input_shape[2:]))
    return None if single is None else (single[0], input_shape[1], *single[1:])
