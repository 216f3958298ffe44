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

from collections.abc import Iterable
from dataclasses import replace

from inspector.errors import CorruptModelError, NotAModelError, RefusedModelError
from inspector.formats import state_dict
from inspector.formats.source import Source
from inspector.formats.torch.checkpoint import Checkpoint, Named, locate
from inspector.formats.torch.container import Loaded, load
from inspector.formats.torch.vocabulary import RefusedPickle, TensorData, runs_code
from inspector.model import Detail, Excluded, FileFormat, Model, OptimizerState, Tensor

VIEW_REASON = "views into elements other state-dict entries already hold (one storage)"
MAX_NAMED = 8  # foreign globals named in a warning; the count says how many more
MAX_NAME_CHARS = 80  # characters of one file-chosen name shown


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
    layers, recurrent = state_dict.group(tensors)
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
    what = _shown(refused.what)
    if refused.kind == "global" and what.startswith(("torch.nn.", "__main__.")):
        return (
            f"{path}: a pickled object of class {what} (a whole nn.Module, not a state dict): "
            "loading it would import and run code, and rnninspect never unpickles; save "
            "model.state_dict() instead"
        )
    if refused.kind == "global" and what.startswith("__torch__."):
        return (
            f"{path}: a TorchScript module (torch.jit.save; class {what}, stored with its code): "
            "loading it would run that code, and rnninspect never unpickles; save "
            "model.state_dict() instead"
        )
    if refused.kind == "global" and runs_code(refused.what):
        return (
            f"{path}: the pickle calls or stores {what} where the state dict would be, which "
            "would run code if the file were loaded; refused, rnninspect never unpickles"
        )
    if refused.kind == "global":
        return (
            f"{path}: the pickle names {what}, which is not part of a state dict: loading the "
            "file would import or call it; refused, rnninspect never unpickles"
        )
    return (
        f"{path}: the pickle uses {what}, which a state dict never needs; refused, rnninspect "
        "never unpickles"
    )


def foreign_warnings(loaded: Loaded, found: Checkpoint) -> list[str]:
    """What the pickle names beyond a state dict: every foreign global (deduplicated, capped,
    escaped), those among them that run code, and tensors found only inside such objects."""
    if not loaded.foreign:
        return []
    count = f"more than {len(loaded.foreign):,}" if loaded.foreign_capped else len(loaded.foreign)
    warnings = [
        f"the pickle names {count} global(s) outside a state dict, kept as placeholders and "
        "never imported or called (these objects are not loaded): " + _names(loaded.foreign)
    ]
    code = [name for name in loaded.foreign if runs_code(name)]
    if code:
        warnings.append(
            f"the pickle names {_names(code)}, which would run code if the file were unpickled "
            "(torch.load with weights_only=False); rnninspect never called it: do not load this "
            "file with torch"
        )
    if found.held:
        warnings.append(
            f"{len(found.held)} tensor(s) inside objects of the classes above are not parameters "
            f"and not counted: {_keys(_shown(n.name) for n in found.held)}"
        )
    return warnings


def _names(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(_shown(n) for n in names[:MAX_NAMED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_NAMED else "")


def _shown(name: str) -> str:
    """A name chosen by the file, as one short printable line."""
    text = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in name
    )
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 3] + "..."


def check_bounds(path: Source, named: Named) -> None:
    """The view `size`/`stride` from `offset` must lie inside its storage."""
    data: TensorData = named.tensor
    if data.numel == 0:
        return
    last = data.offset + sum((n - 1) * s for n, s in zip(data.size, data.stride, strict=True))
    if last >= data.storage.numel:
        raise CorruptModelError(
            f"{path}: tensor '{named.name}' of size {list(data.size)} reaches element {last:,} "
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


def _optimizer(path: Source, found: Checkpoint) -> OptimizerState | None:
    if not found.optimizer_keys:
        return None
    distinct = {n.tensor.identity: n.tensor for n in found.optimizer}
    values = sum(t.numel for t in distinct.values())
    nbytes = sum(t.numel * t.dtype.itemsize for t in distinct.values())
    return OptimizerState(values, nbytes, path.size)


def _producer(loaded: Loaded) -> str:
    if loaded.layout == "zip":
        version = f", version {loaded.version}" if loaded.version else ""
        return f"pytorch (torch.save zip{version})"
    return "pytorch (torch.save legacy format)"


def _details(loaded: Loaded, found: Checkpoint) -> list[Detail]:
    details = [Detail("serialization", f"{loaded.layout}, {loaded.byteorder}-endian")]
    where = f"'{found.state_key}'" if found.state_key else "the saved object itself"
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
