"""Parse a Keras model configuration (the JSON in `model_config` or `config.json`) into a flat,
ordered list of layer descriptions, with the input width of each layer propagated through the
model where the configuration allows it.

Handles the layouts of every Keras era: Keras 1/2.0 Sequential (`config` is a list of layers),
Keras 2 Sequential/Model/Functional (`inbound_nodes` as nested lists), Keras 3 (`inbound_nodes`
as `{"args": [...]}` with `__keras_tensor__` entries, `build_config`, `batch_shape`), and
models used as layers inside other models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from inspector.errors import CorruptModelError
from inspector.formats.keras.shapes import (
    Shape,
    as_shape,
    channels_first_width,
    declared_shape,
    is_channels_first,
    output_shape,
)

JSON = Mapping[str, object]

MODEL_CLASSES = frozenset({"Sequential", "Model", "Functional"})
_MAX_DEPTH = 64


@dataclass(frozen=True)
class KerasLayer:
    """One layer of the configuration. `path` joins the names of enclosing models with '/'."""

    name: str
    class_name: str
    config: JSON
    path: str
    trainable: bool
    input_width: int | None
    inner: tuple[KerasLayer, ...] = ()  # layers of a nested model
    output_shape: Shape | None = None  # where the configuration determines it

    @property
    def is_model(self) -> bool:
        return bool(self.inner) or self.class_name in MODEL_CLASSES


@dataclass(frozen=True)
class KerasModelConfig:
    class_name: str
    name: str
    layers: tuple[KerasLayer, ...]
    input_names: tuple[str, ...] = ()  # a functional model's `input_layers`, in order
    output_names: tuple[str, ...] = ()  # its `output_layers`

    def walk(self) -> Iterator[KerasLayer]:
        """Every layer, nested models' layers right after the model that holds them."""
        yield from walk_layers(self.layers)


def walk_layers(layers: Sequence[KerasLayer]) -> Iterator[KerasLayer]:
    """Each layer, followed by the layers of the model it is, if it is one."""
    for layer in layers:
        yield layer
        yield from walk_layers(layer.inner)


# ----------------------------------------------------------------------------- JSON accessors


def as_mapping(value: object) -> JSON:
    return value if isinstance(value, Mapping) else {}


def as_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def last_dim(shape: object) -> int | None:
    """The last dimension of a shape list such as `[null, 5, 3]`, if it is a positive int."""
    if isinstance(shape, Sequence) and not isinstance(shape, str) and shape:
        dim = as_int(shape[-1])
        return dim if dim is not None and dim > 0 else None
    return None


def units_of(config: JSON) -> int | None:
    """`units` (Keras 2/3), `output_dim` (Keras 1) or `filters` (ConvLSTM)."""
    for key in ("units", "output_dim", "filters"):
        value = as_int(config.get(key))
        if value is not None:
            return value
    return None


def _declared_input_width(config: JSON) -> int | None:
    """A width a layer declares for its own input (first layer of a Sequential model)."""
    for key in ("batch_input_shape", "batch_shape", "input_shape"):
        width = last_dim(config.get(key))
        if width is not None:
            return width
    return as_int(config.get("input_dim"))


# --------------------------------------------------------------------- output width per class

Rule = Callable[[JSON, Sequence[int | None]], int | None]


def _first(_: JSON, inputs: Sequence[int | None]) -> int | None:
    return inputs[0] if inputs else None


def _units(config: JSON, _: Sequence[int | None]) -> int | None:
    return units_of(config)


def _embedding(config: JSON, _: Sequence[int | None]) -> int | None:
    return as_int(config.get("output_dim"))


def _input_layer(config: JSON, _: Sequence[int | None]) -> int | None:
    return _declared_input_width(config)


def _concatenate(config: JSON, inputs: Sequence[int | None]) -> int | None:
    axis = as_int(config.get("axis"))
    if axis not in (None, -1):
        return _first(config, inputs)
    if not inputs or any(w is None for w in inputs):
        return None
    return sum(w for w in inputs if w is not None)


def _reshape(config: JSON, _: Sequence[int | None]) -> int | None:
    return last_dim(config.get("target_shape"))


def _wrapped(config: JSON) -> tuple[str, JSON]:
    inner = as_mapping(config.get("layer"))
    return as_str(inner.get("class_name")) or "", as_mapping(inner.get("config"))


def _time_distributed(config: JSON, inputs: Sequence[int | None]) -> int | None:
    class_name, inner = _wrapped(config)
    return output_width(class_name, inner, inputs)


def _bidirectional(config: JSON, inputs: Sequence[int | None]) -> int | None:
    _, forward = _wrapped(config)
    if forward.get("data_format") == "channels_first":
        return None  # the concatenated last axis is spatial: see shapes.output_shape
    backward = as_mapping(as_mapping(config.get("backward_layer")).get("config")) or forward
    fwd, bwd = _rnn_units(forward), _rnn_units(backward)
    if config.get("merge_mode", "concat") == "concat":
        return fwd + bwd if fwd is not None and bwd is not None else None
    return fwd


def _rnn_units(config: JSON) -> int | None:
    """Units of a recurrent layer, or of the last cell of a generic `RNN(cell)`."""
    units = units_of(config)
    if units is not None:
        return units
    cell = config.get("cell")
    if isinstance(cell, Sequence) and not isinstance(cell, str) and cell:
        cell = cell[-1]
    cell_config = as_mapping(as_mapping(cell).get("config"))
    cells = cell_config.get("cells")
    if isinstance(cells, Sequence) and not isinstance(cells, str) and cells:
        cell_config = as_mapping(as_mapping(cells[-1]).get("config"))
    return units_of(cell_config)


def _rnn(config: JSON, _: Sequence[int | None]) -> int | None:
    return _rnn_units(config)


_PASS_THROUGH = [
    "Activation",
    "ActivityRegularization",
    "Add",
    "AlphaDropout",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Dropout",
    "ELU",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Normalization",
    "PReLU",
    "ReLU",
    "RepeatVector",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "Subtract",
    "ThresholdedReLU",
    "UnitNormalization",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "GroupNormalization",
]

_UNITS = [
    "Dense",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "CuDNNLSTM",
    "CuDNNGRU",
    "LSTMV1",
    "GRUV1",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "SeparableConv1D",
    "SeparableConv2D",
    "Convolution1D",
    "Convolution2D",
    "LocallyConnected1D",
    "EinsumDense",
]

RULES: Mapping[str, Rule] = {
    **dict.fromkeys(_PASS_THROUGH, _first),
    **dict.fromkeys(_UNITS, _units),
    "InputLayer": _input_layer,
    "Embedding": _embedding,
    "Concatenate": _concatenate,
    "Merge": _concatenate,  # Keras 1 merge layer (mode "concat" is the common case)
    "Reshape": _reshape,
    "TimeDistributed": _time_distributed,
    "Bidirectional": _bidirectional,
    "RNN": _rnn,
}


def output_width(class_name: str, config: JSON, inputs: Sequence[int | None]) -> int | None:
    """The last dimension of a layer's (first) output, or None where the configuration
    alone does not determine it (Flatten, Lambda, custom layers, channels_first...)."""
    if config.get("data_format") == "channels_first":
        return None
    rule = RULES.get(class_name)
    return rule(config, inputs) if rule else None


def snake_case(class_name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def container_keys(class_names: Sequence[str]) -> list[str]:
    """The names Keras's v3 saving gives the children of one container: the class in snake
    case, numbered when repeated (keras/src/saving/saving_lib.py, _save_container_state)."""
    used: dict[str, int] = {}
    keys = []
    for class_name in class_names:
        key = snake_case(class_name)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        keys.append(key)
    return keys


# ---------------------------------------------------------------------------- model parsing


def parse_model_config(document: object) -> KerasModelConfig:
    """Parse the decoded `model_config` JSON. Raises CorruptModelError when it is not a model."""
    top = as_mapping(document)
    class_name = as_str(top.get("class_name"))
    if class_name is None:
        raise CorruptModelError("model_config has no 'class_name': not a Keras model config")
    name, layers = _parse_container(top, path="", trainable=True, outer_width=None, depth=0)
    body = as_mapping(top.get("config"))
    return KerasModelConfig(
        class_name=class_name,
        name=name,
        layers=layers,
        input_names=_endpoint_names(body.get("input_layers")),
        output_names=_endpoint_names(body.get("output_layers")),
    )


def _endpoint_names(value: object) -> tuple[str, ...]:
    """`[["in_a", 0, 0], ["in_b", 0, 0]]` or one `["dense", 0, 0]` -> the layer names."""
    if not isinstance(value, list) or not value:
        return ()
    if isinstance(value[0], str):
        return (value[0],)
    return tuple(
        item[0] for item in value if isinstance(item, list) and item and isinstance(item[0], str)
    )


def _layer_entries(container: JSON) -> list[JSON]:
    config = container.get("config")
    raw = config if isinstance(config, list) else as_mapping(config).get("layers")
    if not isinstance(raw, list):
        return []
    return [as_mapping(entry) for entry in raw]


def _parse_container(
    container: JSON, *, path: str, trainable: bool, outer_width: int | None, depth: int
) -> tuple[str, tuple[KerasLayer, ...]]:
    if depth > _MAX_DEPTH:
        raise CorruptModelError(f"model_config nests models more than {_MAX_DEPTH} levels deep")
    config = as_mapping(container.get("config"))
    name = as_str(config.get("name")) or as_str(container.get("name")) or ""
    entries = _layer_entries(container)
    sequential = container.get("class_name") == "Sequential"
    widths: dict[str, list[int | None]] = {}
    shapes: dict[str, Shape | None] = {}
    layers: list[KerasLayer] = []
    previous: int | None = outer_width
    previous_shape: Shape | None = None
    for index, entry in enumerate(entries):
        class_name = as_str(entry.get("class_name")) or "?"
        layer_config = as_mapping(entry.get("config"))
        layer_name = (
            as_str(layer_config.get("name")) or as_str(entry.get("name")) or f"layer_{index}"
        )
        if sequential:
            inputs: list[int | None] = [previous]
            input_shape = previous_shape
        else:
            refs = _inbound_refs(entry)
            inputs = [_resolve(ref, widths) for ref in refs]
            input_shape = (refs[0].shape or shapes.get(refs[0].layer)) if refs else None
            if not inputs and outer_width is not None and class_name == "InputLayer":
                inputs = [outer_width]
        # Keras honours a declared input shape only where a model starts: on an InputLayer,
        # on the first layer of a Sequential, and in Keras 3's recorded build_config.
        declared = _declared_input_width(layer_config)
        starts = class_name == "InputLayer" or (sequential and not layers)
        built_shape = as_shape(as_mapping(entry.get("build_config")).get("input_shape"))
        built = last_dim(built_shape)
        if built is not None:
            declared = built
        elif not starts:
            declared = None
        if built_shape is not None:
            input_shape = built_shape
        elif starts and declared_shape(layer_config) is not None:
            input_shape = declared_shape(layer_config)
        input_width = declared if declared is not None else (inputs[0] if inputs else None)
        if is_channels_first(class_name, layer_config):
            # The feature axis is not the last one: the channel axis where the shape is
            # known (ConvLSTM: axis 2 after batch and time), else trust the kernel.
            input_width = channels_first_width(class_name, layer_config, input_shape)
        layer_trainable = trainable and layer_config.get("trainable", True) is not False
        layer_path = f"{path}/{layer_name}" if path else layer_name
        inner: tuple[KerasLayer, ...] = ()
        if class_name in MODEL_CLASSES or _layer_entries(entry):
            _, inner = _parse_container(
                entry,
                path=layer_path,
                trainable=layer_trainable,
                outer_width=input_width,
                depth=depth + 1,
            )
            out = _model_output_width(inner)
        elif class_name == "InputLayer":
            out = declared if declared is not None else input_width
        else:
            out = output_width(class_name, layer_config, [input_width, *inputs[1:]])
        out_shape = None if inner else output_shape(class_name, layer_config, input_shape)
        if out is None and out_shape is not None:
            out = out_shape[-1]
        widths[layer_name] = [out]
        shapes[layer_name] = out_shape
        previous, previous_shape = out, out_shape
        layers.append(
            KerasLayer(
                name=layer_name,
                class_name=class_name,
                config=layer_config,
                path=layer_path,
                trainable=layer_trainable,
                input_width=input_width,
                inner=inner,
                output_shape=out_shape,
            )
        )
    return name, tuple(layers)


def _model_output_width(inner: Sequence[KerasLayer]) -> int | None:
    if not inner:
        return None
    last = inner[-1]
    return output_width(last.class_name, last.config, [last.input_width])


@dataclass(frozen=True)
class _Ref:
    layer: str
    shape_width: int | None  # Keras 3 records the tensor's shape beside its history
    shape: Shape | None = None


def _inbound_refs(entry: JSON) -> list[_Ref]:
    """References of a layer's first call: Keras 2 `[[name, node, tensor, kwargs], ...]`
    lists or Keras 3 `{"args": [...]}` with `__keras_tensor__` entries."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or not nodes:
        return []
    first = nodes[0]
    refs: list[_Ref] = []
    if isinstance(first, Mapping):
        _collect_keras3(first.get("args"), refs, depth=0)
    elif isinstance(first, list):
        for item in first:
            if isinstance(item, list) and item and isinstance(item[0], str):
                refs.append(_Ref(item[0], None))
    return refs


def _collect_keras3(value: object, refs: list[_Ref], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            config = as_mapping(value.get("config"))
            history = config.get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                shape = config.get("shape")
                refs.append(_Ref(history[0], last_dim(shape), as_shape(shape)))
            return
        for item in value.values():
            _collect_keras3(item, refs, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect_keras3(item, refs, depth + 1)


def _resolve(ref: _Ref, widths: Mapping[str, list[int | None]]) -> int | None:
    if ref.shape_width is not None:
        return ref.shape_width
    known = widths.get(ref.layer)
    return known[0] if known else None
