"""TensorFlow SavedModel directories (`saved_model.pb`, `variables/`, and for tf.keras 2.x
`model.save(dir)` also `keras_metadata.pb`), read without TensorFlow.

- Layers and their configuration come from `keras_metadata.pb` (`metadata.py`): the root node's
  JSON carries the same `model_config` an `.h5` of the model stores, so the report, totals and
  formula checks are built by the Keras modules (`keras/config.py`, `keras/layers.py`).
- Shapes and dtypes come from the tensor bundle index `variables/variables.index` (`bundle.py`);
  the data shards are never read, except the serialized object graph (`objects.py`) that ties
  checkpoint keys to layers, a bounded string tensor.
- Optimizer variables (`optimizer/...`, `.OPTIMIZER_SLOT/`) are reported apart as optimizer
  state; Keras metric variables (`keras_api/metrics/...`) are listed as excluded.
- A SavedModel without Keras metadata (`tf.saved_model.save`) lists each variable with its
  count: the files record no layers.

`saved_model.pb` itself (function graphs, often most of the directory) is not parsed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from inspector.errors import CorruptModelError, NotFoundError, UnsupportedModelError
from inspector.formats.bounded_json import load_json
from inspector.formats.keras import layers as keras_layers
from inspector.formats.keras.config import as_mapping, as_str, parse_model_config
from inspector.formats.protobuf import Buffer, WireError
from inspector.formats.savedmodel import metadata as keras_metadata
from inspector.formats.savedmodel import objects
from inspector.formats.savedmodel.bundle import (
    Bundle,
    BundleEntry,
    BundleError,
    read_bundle,
    shard_name,
)
from inspector.formats.source import Source
from inspector.model import (
    Excluded,
    FileFormat,
    Layer,
    Model,
    OptimizerState,
    RecurrentLayer,
    Tensor,
    TensorSpec,
)

SAVED_MODEL = "saved_model.pb"
INDEX = "variables/variables.index"
KERAS_METADATA = "keras_metadata.pb"
MAX_INDEX_BYTES = 1024 * 1024 * 1024
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_MAX_JSON_DEPTH = 200
_METRICS = "Keras metric state (keras_api/metrics), not parameters"


def savedmodel_root(path: Source) -> Source:
    """The SavedModel directory for a directory or its `saved_model.pb`."""
    return path.parent if path.is_file() else path


def read(path: Source) -> Model:
    root = savedmodel_root(path)
    if path.is_file() and not (root / INDEX).exists():
        raise NotFoundError(
            f"{path}: a TensorFlow SavedModel graph without its variables/ directory beside "
            "it; inspect the SavedModel directory it came from"
        )
    if not (root / SAVED_MODEL).is_file():
        raise NotFoundError(f"{root}: no {SAVED_MODEL}: not a TensorFlow SavedModel directory")
    if not (root / INDEX).exists():
        raise NotFoundError(
            f"{root}: no {INDEX}: the SavedModel's variables are missing (was saved_model.pb "
            "copied without its variables/ directory?)"
        )
    with _mapped(member(root, INDEX), MAX_INDEX_BYTES) as index:
        bundle = _bundle(root, index)
    warnings: list[str] = []
    graph = _object_graph(root, bundle, warnings)
    tensors = {entry.key: _tensor(entry) for entry in bundle.entries if entry.key != objects.KEY}
    metadata_path = root / KERAS_METADATA
    recurrent: list[RecurrentLayer]
    signature: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] = ((), ())
    if metadata_path.is_file():
        with _mapped(member(root, KERAS_METADATA), keras_metadata.MAX_FILE_BYTES) as buf:
            built, producer = _keras(root, buf, graph, tensors, warnings)
        layers, recurrent = list(built.layers), list(built.recurrent_layers)
        signature, trainable_known = (built.inputs, built.outputs), True
    else:
        warnings.append(
            f"no {KERAS_METADATA}: this SavedModel was not written by Keras's model.save (e.g. "
            "tf.saved_model.save), so it records variables but no layers; each variable is "
            "listed on its own"
        )
        layers = [
            Layer(_object_path(key), "variable", (tensor,))
            for key, tensor in tensors.items()
            if _is_model_variable(key)
        ]
        recurrent, producer, trainable_known = [], None, False
    claimed = {tensor.key for layer in layers for tensor in layer.tensors}
    rest = [tensor for key, tensor in tensors.items() if key not in claimed]
    optimizer = [t for t in rest if _is_optimizer(t.key)]
    metrics = [t for t in rest if t.key.startswith("keras_api/metrics/")]
    other = [t for t in rest if t not in optimizer and t not in metrics]
    if other and metadata_path.is_file():
        names = ", ".join(_object_path(t.key) for t in other[:6])
        warnings.append(f"checkpoint values owned by no layer of the config (counted): {names}")
    return Model(
        path=str(path),
        format=FileFormat.TF_SAVEDMODEL,
        producer=producer,
        layers=tuple(layers),
        recurrent_layers=tuple(recurrent),
        trainable_known=trainable_known,
        optimizer=_optimizer_state(optimizer, bundle),
        warnings=tuple(warnings),
        extra_tensors=tuple(other) if metadata_path.is_file() else (),
        excluded=(
            Excluded("Keras metric state (keras_api/metrics), not parameters", tuple(metrics)),
        )
        if metrics
        else (),
        inputs=signature[0],
        outputs=signature[1],
    )


def member(root: Source, relative: str) -> Source:
    """A file of the SavedModel directory; one that links out of the directory is refused."""
    path = root / relative
    if not path.inside():
        raise UnsupportedModelError(
            f"{path}: is a link out of the SavedModel directory; links are never followed"
        )
    return path


@contextmanager
def _mapped(path: Source, limit: int) -> Iterator[Buffer]:
    """The file's bytes over a read-only memory map (empty files as b"")."""
    if not path.exists():
        raise NotFoundError(f"{path}: missing from the SavedModel directory")
    size = path.size
    if size > limit:
        raise UnsupportedModelError(
            f"{path}: {size:,} bytes, over the {limit:,}-byte limit for this file"
        )
    with path.view() as buf:
        yield buf


def _bundle(root: Source, buf: Buffer) -> Bundle:
    try:
        return read_bundle(buf)
    except BundleError as error:
        raise CorruptModelError(
            f"{root / INDEX}: not a readable tensor bundle index ({error})"
        ) from None


def _tensor(entry: BundleEntry) -> Tensor:
    shape = entry.shape if entry.shape is not None else ()
    return Tensor(entry.key, _object_path(entry.key), shape, entry.dtype.name, entry.dtype.itemsize)


def _object_path(key: str) -> str:
    return key.removesuffix(_VALUE_SUFFIX)


def _is_model_variable(key: str) -> bool:
    return key.endswith(_VALUE_SUFFIX) and not (
        _is_optimizer(key) or key.startswith(("keras_api/", "save_counter/"))
    )


def _is_optimizer(key: str) -> bool:
    return key.startswith("optimizer/") or "/.OPTIMIZER_SLOT/" in key


def _object_graph(root: Source, bundle: Bundle, warnings: list[str]) -> objects.ObjectGraph | None:
    """The object graph, read from its shard at the offset the index gives (only that entry)."""
    entry = next((e for e in bundle.entries if e.key == objects.KEY), None)
    if entry is None:
        return None
    where = f"{root}: checkpoint object graph"
    if entry.size > objects.MAX_GRAPH_BYTES:
        warnings.append(f"{where} is {entry.size:,} bytes, over the limit; not read")
        return None
    shard = member(root, "variables/" + shard_name("variables", entry.shard_id, bundle.num_shards))
    try:
        with shard.open() as handle:
            handle.seek(entry.offset)
            data = handle.read(entry.size)
    except (OSError, NotFoundError) as error:
        reason = getattr(error, "strerror", None) or error
        warnings.append(f"{where}: shard {shard.name} cannot be read ({reason})")
        return None
    if len(data) != entry.size:
        raise CorruptModelError(f"{where}: shard {shard.name} is cut short (truncated)")
    try:
        start, end = objects.string_scalar(data)
        return objects.parse(data, start, end)
    except (WireError, ValueError) as error:
        raise CorruptModelError(f"{where} is damaged ({error})") from None


def _keras(
    root: Source,
    buf: Buffer,
    graph: objects.ObjectGraph | None,
    tensors: Mapping[str, Tensor],
    warnings: list[str],
) -> tuple[keras_layers.KerasBuild, str | None]:
    where = root / KERAS_METADATA
    try:
        nodes = keras_metadata.read_nodes(buf)
        root_node = next((n for n in nodes if n.node_path == "root"), None)
        if root_node is None:
            raise CorruptModelError(f"{where}: no 'root' node: not a Keras model's metadata")
        document = _json(where, keras_metadata.metadata_text(buf, root_node))
        groups: dict[str, list[Tensor]] = {}
        for node in keras_metadata.top_level(nodes):
            name = as_str(_json(where, keras_metadata.metadata_text(buf, node)).get("name"))
            if name is None:
                continue
            groups[name] = _layer_tensors(graph, node.node_path, tensors)
    except WireError as error:
        raise CorruptModelError(
            f"{where}: not a SavedMetadata message ({error} at byte {error.offset})"
        ) from None
    except keras_metadata.MetadataError as error:
        raise UnsupportedModelError(f"{where}: {error}") from None
    if graph is None:
        warnings.append(
            "the checkpoint has no readable object graph: layers are matched by checkpoint key "
            "(layer-N, layer_with_weights-N) only"
        )
    model_config = as_mapping(document.get("model_config")) or document
    try:
        config = parse_model_config(_untuple(model_config, 0))
    except CorruptModelError as error:
        raise CorruptModelError(f"{where}: {error}") from None
    built = keras_layers.build(config, groups)
    warnings.extend(built.warnings)
    version = as_str(document.get("keras_version"))
    backend = as_str(document.get("backend"))
    producer = None
    if version is not None:
        producer = f"keras {version}" + (f" ({backend})" if backend else "")
    return built, producer


def _json(where: Source, text: str) -> Mapping[str, object]:
    # Bounded like every other JSON from a file: a node's 60 MB of `{},` decodes into 20
    # million dicts (1.5 GB) unless the elements are counted first.
    return as_mapping(load_json(text, f"{where}: metadata"))


def _untuple(value: object, depth: int) -> object:
    """tf_keras's SavedModel metadata encodes tuples as `{"class_name": "__tuple__", "items":
    [...]}` (tf_keras/saving/legacy/saved_model/json_utils.py); the .h5 config has lists."""
    if depth > _MAX_JSON_DEPTH:
        return value
    if isinstance(value, Mapping):
        if value.get("class_name") in ("__tuple__", "TensorShape") and isinstance(
            value.get("items"), list
        ):
            return [_untuple(item, depth + 1) for item in value["items"]]
        return {key: _untuple(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_untuple(item, depth + 1) for item in value]
    return value


def _layer_tensors(
    graph: objects.ObjectGraph | None, node_path: str, tensors: Mapping[str, Tensor]
) -> list[Tensor]:
    """A layer's tensors in its `variables` order, named by their TF variable names
    (`lstm/lstm_cell/kernel`) as the `.h5` names them, so roles are found the same way."""
    if graph is not None:
        node = graph.resolve(node_path)
        if node is None:
            return []
        out = []
        for variable in graph.variables_under(node):
            tensor = tensors.get(variable.checkpoint_key)
            if tensor is not None:
                out.append(_renamed(tensor, variable.full_name))
        return out
    prefix = node_path.removeprefix("root.").replace(".", "/") + "/"
    return [
        t for key, t in tensors.items() if key.startswith(prefix) and key.endswith(_VALUE_SUFFIX)
    ]


def _renamed(tensor: Tensor, name: str) -> Tensor:
    return Tensor(tensor.key, name, tensor.shape, tensor.dtype, tensor.itemsize, tensor.trainable)


def _optimizer_state(tensors: Sequence[Tensor], bundle: Bundle) -> OptimizerState | None:
    """Optimizer slots and counters; their share is of the bundle's stored bytes."""
    if not tensors:
        return None
    stored = sum(entry.size for entry in bundle.entries)
    return OptimizerState(sum(t.params for t in tensors), sum(t.nbytes for t in tensors), stored)
