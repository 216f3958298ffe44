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
from inspector.formats.keras import infer as keras_infer
from inspector.formats.keras import layers as keras_layers
from inspector.formats.keras.config import as_mapping, as_str, parse_model_config
from inspector.formats.protobuf import Buffer, WireError
from inspector.formats.savedmodel import inferred, objects, saved_objects
from inspector.formats.savedmodel import metadata as keras_metadata
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
FINGERPRINT = "fingerprint.pb"
MAX_INDEX_BYTES = 1024 * 1024 * 1024
MAX_ENTRIES = 100_000  # files and folders a SavedModel directory may list (assets included)
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_MAX_JSON_DEPTH = 200
MAX_SAVED_MODEL_BYTES = 1024 * 1024 * 1024  # read for its object graph; functions skipped
_METRICS = "Keras metric state (keras_api/metrics), not parameters"
SEED_REASON = "Keras 3 random-seed state (SeedGenerator, for dropout), not parameters"
COPIES_REASON = (
    "the same variables again, as Keras 3 model.export saves them for its serving functions "
    "(_all_variables): not counted twice"
)


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
    if not (root / SAVED_MODEL).exists() or (root / SAVED_MODEL).is_dir():
        raise NotFoundError(f"{root}: no {SAVED_MODEL}: not a TensorFlow SavedModel directory")
    if not (root / INDEX).exists():
        raise NotFoundError(
            f"{root}: no {INDEX}: the SavedModel's variables are missing (was saved_model.pb "
            "copied without its variables/ directory?)"
        )
    for name in (SAVED_MODEL, KERAS_METADATA, FINGERPRINT, INDEX):
        member(root, name)  # a FIFO or device in any member's place refuses the directory
    with _mapped(member(root, INDEX), MAX_INDEX_BYTES) as index:
        bundle = _bundle(root, index)
    for shard_id in range(min(bundle.num_shards, MAX_ENTRIES)):
        member(root, "variables/" + shard_name("variables", shard_id, bundle.num_shards))
    warnings: list[str] = []
    graph = _object_graph(root, bundle, warnings)
    tensors = {entry.key: _tensor(entry) for entry in bundle.entries if entry.key != objects.KEY}
    metadata_path = root / KERAS_METADATA
    excluded: list[Excluded] = []
    signature: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] = ((), ())
    saved = saved_objects.SavedObjectGraph((), None)
    built: keras_layers.KerasBuild | None = None
    producer: str | None = None
    if metadata_path.is_file():
        with _mapped(member(root, KERAS_METADATA), keras_metadata.MAX_FILE_BYTES) as buf:
            nodes = _metadata_nodes(metadata_path, buf)
            built, producer = _keras(metadata_path, buf, nodes, graph, tensors, warnings)
    else:
        with _mapped(member(root, SAVED_MODEL), MAX_SAVED_MODEL_BYTES) as buf:
            saved = _saved_objects(root / SAVED_MODEL, buf)
            found = saved.keras_nodes()
            if any(node.node_path == "root" for node in found):
                # TF < 2.5: Keras wrote its metadata into saved_model.pb's objects.
                built, producer = _keras(root / SAVED_MODEL, buf, found, graph, tensors, warnings)
                producer = _with_tf(producer or "keras", saved.tensorflow_version)
    if built is not None:
        layers, recurrent = list(built.layers), list(built.recurrent_layers)
        signature, trainable_known = (built.inputs, built.outputs), True
    else:
        layers, recurrent, seeds = _without_config(graph, saved, tensors, warnings)
        producer = _with_tf("keras" if saved.is_keras else None, saved.tensorflow_version)
        trainable_known = False
        if seeds:
            excluded.append(Excluded(SEED_REASON, tuple(seeds)))
    claimed = {tensor.key for layer in layers for tensor in layer.tensors}
    claimed.update(t.key for item in excluded for t in item.tensors)
    rest = [tensor for key, tensor in tensors.items() if key not in claimed]
    copies = [t for t in rest if t.key.startswith(inferred.SERVING_COPIES)]
    optimizer = [t for t in rest if _is_optimizer(t.key)]
    metrics = [t for t in rest if _is_metric(t.key)]
    if copies and built is None:
        excluded.append(Excluded(COPIES_REASON, tuple(copies)))
    else:
        copies = []
    if metrics:
        excluded.append(Excluded(_METRICS, tuple(metrics)))
    apart = {t.key for t in (*copies, *optimizer, *metrics)}
    extra = [t for t in rest if t.key not in apart and not t.key.startswith("save_counter/")]
    if extra:
        names = ", ".join(_object_path(t.key) for t in extra[:6])
        warnings.append(f"checkpoint values owned by no layer (counted): {names}")
    return Model(
        path=str(path),
        format=FileFormat.TF_SAVEDMODEL,
        producer=producer,
        layers=tuple(layers),
        recurrent_layers=tuple(recurrent),
        trainable_known=trainable_known,
        optimizer=_optimizer_state(optimizer, bundle),
        warnings=tuple(warnings),
        extra_tensors=tuple(extra),
        excluded=tuple(excluded),
        inputs=signature[0],
        outputs=signature[1],
        # --max-file-size: every file of the directory, its listing bounded.
        stored_bytes=root.tree_bytes(MAX_ENTRIES),
    )


def _with_tf(producer: str | None, version: str | None) -> str | None:
    if version is None:
        return producer
    return f"{producer}, TensorFlow {version}" if producer else f"TensorFlow {version}"


def _without_config(
    graph: objects.ObjectGraph | None,
    saved: saved_objects.SavedObjectGraph,
    tensors: Mapping[str, Tensor],
    warnings: list[str],
) -> tuple[list[Layer], list[RecurrentLayer], list[Tensor]]:
    """Layers of a SavedModel without a Keras config: a Keras model's grouped by variable name
    with recurrent cells inferred from their tensors' names and shapes (`inferred.py`), or
    each plain variable on its own; and Keras 3's random-seed state, apart."""
    groups = inferred.layer_variables(graph) if graph is not None else []
    if not groups:
        warnings.append(
            f"no {KERAS_METADATA} and no Keras objects in {SAVED_MODEL}: a SavedModel of plain "
            "TensorFlow variables (tf.saved_model.save of a tf.Module), so it records no "
            "layers; each variable is listed on its own"
        )
        layers = [
            Layer(_object_path(key), "variable", (tensor,))
            for key, tensor in tensors.items()
            if _is_model_variable(key)
        ]
        return layers, [], []
    named: dict[str, list[Tensor]] = {}
    seeds: list[Tensor] = []
    for name, variables in groups:
        for tensor in inferred.renamed(variables, tensors):
            if tensor.name.rsplit("/", 1)[-1] == inferred.SEED_STATE:
                seeds.append(tensor)
            else:
                named.setdefault(name, []).append(tensor)
    built = keras_infer.build_inferred(named)
    writer = "a Keras model" if saved.is_keras else "a model"
    warnings.append(
        f"no {KERAS_METADATA} and no Keras metadata in {SAVED_MODEL} ({writer} saved with "
        "tf.saved_model.save or Keras 3 model.export): layer classes and configs are not "
        "recorded, so layers are grouped by variable name and recurrent cells inferred from "
        "their tensors' names and shapes"
    )
    return list(built.layers), list(built.recurrent_layers), seeds


def member(root: Source, relative: str) -> Source:
    """A file of the SavedModel directory, checked before anything opens it: one that links
    out of the directory is refused, and so is anything but a regular file (a FIFO would
    block the read, a device never end it). A missing member is left to the caller."""
    path = root / relative
    if not path.inside():
        raise UnsupportedModelError(
            f"{path}: is a link out of the SavedModel directory; links are never followed"
        )
    if path.exists() and not path.is_dir():
        path.checked()
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


def _is_metric(key: str) -> bool:
    return key.startswith("keras_api/metrics/")


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


def _metadata_nodes(where: Source, buf: Buffer) -> tuple[keras_metadata.SavedNode, ...]:
    try:
        return keras_metadata.read_nodes(buf)
    except WireError as error:
        raise CorruptModelError(
            f"{where}: not a SavedMetadata message ({error} at byte {error.offset})"
        ) from None
    except keras_metadata.MetadataError as error:
        raise UnsupportedModelError(f"{where}: {error}") from None


def _saved_objects(where: Source, buf: Buffer) -> saved_objects.SavedObjectGraph:
    try:
        return saved_objects.read(buf)
    except WireError as error:
        raise CorruptModelError(
            f"{where}: not a readable SavedModel message ({error} at byte {error.offset})"
        ) from None
    except saved_objects.ObjectGraphError as error:
        raise UnsupportedModelError(f"{where}: {error}") from None


def _keras(
    where: Source,
    buf: Buffer,
    nodes: Sequence[keras_metadata.SavedNode],
    graph: objects.ObjectGraph | None,
    tensors: Mapping[str, Tensor],
    warnings: list[str],
) -> tuple[keras_layers.KerasBuild, str | None]:
    """The layers of the Keras config in the metadata JSON of `nodes` (from keras_metadata.pb,
    or from saved_model.pb before TF 2.5), with their checkpoint tensors."""
    try:
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
