"""PyTorch `torch.save` files (`.pt`, `.pth`, `.bin`, `.ckpt`) read without torch and without
unpickling: the container (`container`) gives the pickled object as data (`pickle_data`), the
checkpoint conventions (`checkpoint`) say where the state dict is, and the state dict becomes
layers and recurrent layers by PyTorch's parameter names (`inspector.formats.state_dict`).

A tensor's shape is the `size` its rebuild call records, its dtype the storage class's, its count
the product of the size. Two state-dict entries that view the same bytes of one storage (tied
weights, `out.weight = emb.weight`) are one stored tensor: both rows show it, the totals count it
once (`Tensor.key` is the first entry's name).

Globals outside a state dict's vocabulary are never imported or run. Where the state dict can
still be found beside them (`{"args": argparse.Namespace(...), "model": state_dict, "best":
numpy.float64(...)}`), the file is read and a warning names every such global, with one more
warning for any that would run code if unpickled. Where the saved object itself is foreign (a
whole pickled `nn.Module`, `os.system(...)`), or a state dict holds a code-running global, the
file is refused with the name (`RefusedModelError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from inspector.errors import CorruptModelError, NotAModelError, RefusedModelError
from inspector.formats import blocks
from inspector.formats.shown import shown
from inspector.formats.source import Source
from inspector.formats.torch.checkpoint import Checkpoint, Named, locate
from inspector.formats.torch.container import Loaded, load
from inspector.formats.torch.modules import Module
from inspector.formats.torch.vocabulary import RefusedPickle, TensorData, brief
from inspector.model import (
    Detail,
    Excluded,
    FileFormat,
    Layer,
    Model,
    OptimizerState,
    RecurrentLayer,
    Tensor,
)

VIEW_REASON = "views into elements other state-dict entries already hold (one storage)"
MAX_NAMED = 8  # foreign globals named in a warning; the count says how many more


def read(path: Source) -> Model:
    loaded = open_checkpoint(path)
    found = locate_checkpoint(path, loaded)
    for named in (*found.parameters, *found.optimizer, *found.outside):
        check_bounds(path, named)
    if not found.parameters:
        held = _keys(found.ignored) if found.ignored else f"a {type(loaded.root).__name__}"
        raise NotAModelError(
            f"{path}: a torch.save file holding no tensors outside optimizer state ({held}): "
            "no parameters to count"
        )
    tensors, views, warnings = _tensors(found.parameters)
    from inspector.formats.hf.config import config_beside

    grouped = blocks.group(tensors, config_beside(path))
    warnings.extend(grouped.warnings)
    layers, recurrent = grouped.layers, grouped.recurrent
    if found.modules:  # a whole module (savedtorch) names each submodule's class
        modules = tuple(
            replace(m, attributes={**loaded.script_constants.get(m.cls, {}), **m.attributes})
            for m in found.modules
        )
        layers, recurrent = _with_classes(layers, recurrent, modules, warnings)
    excluded = (Excluded(VIEW_REASON, tuple(views)),) if views else ()
    if found.outside:
        names = _keys(n.name for n in found.outside)
        warnings.append(
            f"{len(found.outside)} tensor(s) outside the state dict '{found.state_key}' are not "
            f"parameters and not counted: {names}"
        )
    warnings.extend(foreign_warnings(loaded, found))
    return Model(
        path=str(path),
        format=FileFormat.PYTORCH,
        producer=_producer(loaded),
        layers=layers,
        recurrent_layers=recurrent,
        trainable_known=False,
        optimizer=_optimizer(path, found),
        warnings=tuple(warnings),
        excluded=excluded,
        details=tuple(_details(loaded, found)),
        decoder=grouped.decoder,
    )


def open_checkpoint(path: Source) -> Loaded:
    """The file's object as data, or RefusedModelError naming what it would import or run."""
    try:
        return load(path)
    except RefusedPickle as refused:
        raise RefusedModelError(_refusal(path, refused)) from None
    except CorruptModelError as error:
        text = str(error)
        raise CorruptModelError(text if text.startswith(str(path)) else f"{path}: {text}") from None


def locate_checkpoint(path: Source, loaded: Loaded) -> Checkpoint:
    """Where the state dict is; RefusedModelError where a foreign object stands in its place."""
    try:
        return locate(loaded.root)
    except RefusedPickle as refused:
        raise RefusedModelError(_refusal(path, refused)) from None
    except CorruptModelError as error:
        raise CorruptModelError(f"{path}: {error}") from None


def _refusal(path: Source, refused: RefusedPickle) -> str:
    what = refused.what  # a global's name as `vocabulary.shown` gave it, or an opcode
    if refused.kind == "call":
        return (
            f"{path}: the pickle calls {what}, which is not on rnninspect's allow-list of data a "
            "checkpoint holds: torch.load would run code from this file; refused, rnninspect "
            "never unpickles"
        )
    if refused.kind == "global":
        return (
            f"{path}: {what} stands where the state dict would be, and is neither a state dict "
            "nor a module rnninspect can read as data: loading the file would import or call "
            "it; refused, rnninspect never unpickles"
        )
    return (
        f"{path}: the pickle uses {what}, which a state dict never needs; refused, rnninspect "
        "never unpickles"
    )


def foreign_warnings(loaded: Loaded, found: Checkpoint) -> list[str]:
    """What the pickle names beyond a state dict: every foreign global (deduplicated, capped,
    escaped), those among them outside the allow-list of data (which torch.load would import
    and run), and tensors found only inside such objects."""
    if not loaded.foreign:
        return []
    count = f"more than {len(loaded.foreign):,}" if loaded.foreign_capped else len(loaded.foreign)
    warnings = [
        f"the pickle names {count} global(s) outside a state dict, kept as placeholders and "
        "never imported or called (these objects are not loaded): " + _names(loaded.foreign)
    ]
    if loaded.unlisted:
        warnings.append(
            f"torch.load (weights_only=False) would import and run code from this file: "
            f"{_names(loaded.unlisted)} (outside the allow-list of data a checkpoint holds); "
            "rnninspect imported and called none of it: do not load this file with torch "
            "unless you trust it"
        )
    if found.held:
        warnings.append(
            f"{len(found.held)} tensor(s) inside objects of the classes above are not parameters "
            f"and not counted: {_keys(shown(n.name) for n in found.held)}"
        )
    return warnings


def _names(names: tuple[str, ...] | list[str]) -> str:
    """Globals' names, each already shortened and escaped by `vocabulary.shown`."""
    listed = ", ".join(names[:MAX_NAMED])
    return listed + (f", ... ({len(names)} in all)" if len(names) > MAX_NAMED else "")


def check_bounds(path: Source, named: Named) -> None:
    """The view `size`/`stride` from `offset` must lie inside its storage."""
    data: TensorData = named.tensor
    if data.numel == 0:
        return
    last = data.offset + sum((n - 1) * s for n, s in zip(data.size, data.stride, strict=True))
    if last >= data.storage.numel:
        raise CorruptModelError(
            f"{path}: tensor '{shown(named.name)}' of size {list(data.size)} reaches element "
            f"{last:,} "
            f"of storage '{data.storage.key}', which holds {data.storage.numel:,}; "
            "the file is damaged"
        )


def _tensors(found: tuple[Named, ...]) -> tuple[list[Tensor], list[Tensor], list[str]]:
    """One `Tensor` per state-dict entry, in order, split into those counted and views into
    another entry's elements (not counted again, listed as excluded). Tied entries (the same
    view twice) share the first one's key, so the totals count them once; a note for each."""
    keys = _shared_keys(found)
    counted: list[Tensor] = []
    views: list[Tensor] = []
    notes: list[str] = []
    for index, named in enumerate(found):
        data = named.tensor
        key = keys[index]
        tensor = Tensor(key, named.name, data.size, data.dtype.name, data.dtype.itemsize)
        if key == named.name:
            counted.append(tensor)
        elif next(n.tensor for n in found if n.name == key).identity == data.identity:
            counted.append(tensor)
            notes.append(
                f"{named.name} is the same stored tensor as {key} (tied weights): counted once "
                "in the totals"
            )
        else:
            views.append(replace(tensor, key=named.name))
    return counted, views, notes


def _shared_keys(found: tuple[Named, ...]) -> list[str]:
    """Each entry's key: its own name, or the name of an entry whose elements include all of
    its own — the same view (tied weights, `out.weight = emb.weight`) or a dense view around it
    (`row = base[1]` beside `base.t()`). Larger views are settled first, so the order of the
    state dict does not matter; views that overlap only partly are both counted."""
    keys = [named.name for named in found]
    by_storage: dict[str, list[int]] = {}
    for index, named in enumerate(found):
        by_storage.setdefault(named.tensor.storage.key, []).append(index)
    for indices in by_storage.values():
        if len(indices) < 2:
            continue
        holders: list[tuple[int, int, int]] = []  # (index, first, last) of dense views kept
        for index in sorted(indices, key=lambda i: -found[i].tensor.numel):
            data = found[index].tensor
            first, last = _span(data)
            same = next(
                (
                    h
                    for h, lo, hi in holders
                    if found[h].tensor.identity == data.identity or (lo <= first and last <= hi)
                ),
                None,
            )
            if same is not None and data.numel:
                keys[index] = keys[same]
            elif data.numel and data.numel == last - first + 1:
                holders.append((index, first, last))
    return keys


def _span(data: TensorData) -> tuple[int, int]:
    """The first and last storage element a view touches."""
    extent = sum((n - 1) * s for n, s in zip(data.size, data.stride, strict=True))
    return data.offset, data.offset + extent


_RECURRENT_CLASSES = {"RNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
_NUMBERED = re.compile(r"^(?:(.*)\.)?l\d+$")


def _with_classes(
    layers: tuple[Layer, ...],
    recurrent: tuple[RecurrentLayer, ...],
    modules: tuple[Module, ...],
    warnings: list[str],
) -> tuple[tuple[Layer, ...], tuple[RecurrentLayer, ...]]:
    """A whole module records each submodule's class and attributes: rows of a module's own
    tensors are typed by its class (`Linear`), and each recurrent layer is checked against
    the attributes its module records (hidden_size, bidirectional, proj_size, batch_first)."""
    by_path = {module.path: module for module in modules}
    typed = tuple(
        replace(layer, type=_class(by_path[layer.name]))
        if layer.name in by_path and layer.type.startswith("tensors")
        else layer
        for layer in layers
    )
    checked = []
    inconsistent: dict[str, str] = {}  # one warning per module, whatever its layer count
    for layer in recurrent:
        numbered = _NUMBERED.match(layer.name)  # `lstm.l0`, or `l0` for a bare nn.LSTM
        module = by_path.get(numbered[1] or "" if numbered else layer.name)
        recorded = module.attributes if module is not None else {}
        attributes = {key: recorded[key] for key in _SHOWN_ATTRIBUTES if key in recorded}
        if module is None or _class(module) not in _RECURRENT_CLASSES or not attributes:
            checked.append(layer)  # a traced module records no configuration
            continue
        expected = {
            "hidden_size": layer.cell.units,
            "bidirectional": layer.directions == 2,
            "proj_size": layer.cell.projection or 0,
        }
        differ = [
            f"{key}={brief(attributes[key])} (the tensors give {value!r})"
            for key, value in expected.items()
            if key in attributes and attributes[key] != value
        ]
        if differ:
            inconsistent[module.path] = (
                f"module '{shown(module.path)}' records {', '.join(differ)}: the file is "
                "inconsistent; counts follow the tensors"
            )
        said = f"nn.{_class(module)}({_attributes(attributes)}), as the module records it"
        checked.append(replace(layer, notes=(*layer.notes, said)))
    warnings.extend(inconsistent.values())
    return typed, tuple(checked)


def _class(module: Module) -> str:
    return module.cls.rsplit(".", 1)[-1]


_SHOWN_ATTRIBUTES = ("input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional", "proj_size", "nonlinearity")  # fmt: skip


def _attributes(attributes: Mapping[str, object]) -> str:
    return ", ".join(
        f"{key}={brief(attributes[key])}" for key in _SHOWN_ATTRIBUTES if key in attributes
    )


def _optimizer(path: Source, found: Checkpoint) -> OptimizerState | None:
    if not found.optimizer_keys:
        return None
    distinct = {n.tensor.identity: n.tensor for n in found.optimizer}
    values = sum(t.numel for t in distinct.values())
    nbytes = sum(t.numel * t.dtype.itemsize for t in distinct.values())
    return OptimizerState(values, nbytes, path.size)


def _producer(loaded: Loaded) -> str:
    if loaded.layout == "torchscript":
        version = f", version {shown(loaded.version, 40)}" if loaded.version else ""
        return f"pytorch (torch.jit.save TorchScript archive{version})"
    if loaded.layout == "zip":
        version = f", version {shown(loaded.version, 40)}" if loaded.version else ""
        return f"pytorch (torch.save zip{version})"
    return "pytorch (torch.save legacy format)"


def _details(loaded: Loaded, found: Checkpoint) -> list[Detail]:
    details = [Detail("serialization", f"{loaded.layout}, {loaded.byteorder}-endian")]
    where = f"'{found.state_key}'" if found.state_key else "the saved object itself"
    if found.modules:
        kind = "a TorchScript module" if loaded.layout == "torchscript" else "a whole module"
        where = f"{where}: {kind} of class {shown(found.modules[0].cls)}, read as data"
    details.append(Detail("state dict", where))
    if found.optimizer_keys:
        details.append(Detail("optimizer state", _keys(found.optimizer_keys)))
    if found.ignored:
        details.append(Detail("not counted", f"{_keys(found.ignored)} (no tensors)"))
    return details


def _keys(names: Iterable[object]) -> str:
    items = [str(n) for n in names]
    shown = ", ".join(items[:8])
    return shown + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
