"""PyTorch `torch.save` files (`.pt`, `.pth`, `.bin`, `.ckpt`) read without torch and without
unpickling: the container (`container`) gives the pickled object as data (`pickle_data`), the
checkpoint conventions (`checkpoint`) say where the state dict is, and the state dict becomes
layers and recurrent layers by PyTorch's parameter names (`inspector.formats.state_dict`).

A tensor's shape is the `size` its rebuild call records, its dtype the storage class's, its count
the product of the size. Two state-dict entries that view the same bytes of one storage (tied
weights, `out.weight = emb.weight`) are one stored tensor: both rows show it, the totals count it
once (`Tensor.key` is the first entry's name). A pickle that names anything else — a whole
pickled `nn.Module`, `os.system` — is refused with the name (`RefusedModelError`), never run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from inspector.errors import CorruptModelError, NotAModelError, RefusedModelError
from inspector.formats import state_dict
from inspector.formats.torch.checkpoint import Checkpoint, Named, locate
from inspector.formats.torch.container import Loaded, load
from inspector.formats.torch.vocabulary import RefusedPickle, TensorData
from inspector.model import Detail, FileFormat, Model, OptimizerState, Tensor


def read(path: Path) -> Model:
    loaded = open_checkpoint(path)
    found = locate(loaded.root)
    for named in (*found.parameters, *found.optimizer, *found.outside):
        check_bounds(path, named)
    if not found.parameters:
        raise NotAModelError(
            f"{path}: a torch.save file holding no tensors outside optimizer state "
            f"({_keys(found.ignored) or 'an empty object'}): no parameters to count"
        )
    tensors, tied = _tensors(found.parameters)
    layers, recurrent = state_dict.group(tensors)
    warnings = [
        f"{name} is the same stored tensor as {first} (tied weights): counted once in the "
        "totals, shown in both rows"
        for name, first in tied
    ]
    if found.outside:
        names = _keys(n.name for n in found.outside)
        warnings.append(
            f"{len(found.outside)} tensor(s) outside the state dict '{found.state_key}' are not "
            f"parameters and not counted: {names}"
        )
    return Model(
        path=str(path),
        format=FileFormat.PYTORCH,
        producer=_producer(loaded),
        layers=layers,
        recurrent_layers=recurrent,
        trainable_known=False,
        optimizer=_optimizer(path, found),
        warnings=tuple(warnings),
        details=tuple(_details(loaded, found)),
    )


def open_checkpoint(path: Path) -> Loaded:
    """The file's object as data, or RefusedModelError naming what it would import or run."""
    try:
        return load(path)
    except RefusedPickle as refused:
        raise RefusedModelError(_refusal(path, refused)) from None
    except CorruptModelError as error:
        text = str(error)
        raise CorruptModelError(text if text.startswith(str(path)) else f"{path}: {text}") from None


def _refusal(path: Path, refused: RefusedPickle) -> str:
    what = refused.what
    if refused.kind == "global" and what.startswith(("torch.nn.", "__main__.")):
        return (
            f"{path}: a pickled object of class {what} (a whole nn.Module, not a state dict): "
            "loading it would import and run code, and rnninspect never unpickles; save "
            "model.state_dict() instead"
        )
    if refused.kind == "global":
        return (
            f"{path}: the pickle names {what}, which is not part of a state dict: loading the "
            "file would import or call it; refused, rnninspect never unpickles"
        )
    return (
        f"{path}: the pickle uses {refused.kind} {what}, which a state dict never needs; "
        "refused, rnninspect never unpickles"
    )


def check_bounds(path: Path, named: Named) -> None:
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


def _tensors(found: tuple[Named, ...]) -> tuple[list[Tensor], list[tuple[str, str]]]:
    first: dict[tuple[object, ...], str] = {}
    tensors: list[Tensor] = []
    tied: list[tuple[str, str]] = []
    for named in found:
        data = named.tensor
        key = first.setdefault(data.identity, named.name)
        if key != named.name:
            tied.append((named.name, key))
        tensors.append(Tensor(key, named.name, data.size, data.dtype.name, data.dtype.itemsize))
    return tensors, tied


def _optimizer(path: Path, found: Checkpoint) -> OptimizerState | None:
    if not found.optimizer_keys:
        return None
    distinct = {n.tensor.identity: n.tensor for n in found.optimizer}
    values = sum(t.numel for t in distinct.values())
    nbytes = sum(t.numel * t.dtype.itemsize for t in distinct.values())
    return OptimizerState(values, nbytes, path.stat().st_size)


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
