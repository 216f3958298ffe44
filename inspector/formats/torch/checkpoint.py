"""Where the parameters are in what `torch.save` stored: a bare state dict, or a training
checkpoint that wraps one beside optimizer state and bookkeeping.

Conventions found in the wild: `{"model_state_dict", "optimizer_state_dict", "epoch", "loss"}`
(the PyTorch tutorial "Saving and loading a general checkpoint"), `{"state_dict",
"optimizer_states", "epoch", "global_step", ...}` (PyTorch Lightning), `{"model", "optimizer"}`,
`{"net", ...}`, `{"args": argparse.Namespace, "model": ...}` (fairseq and many research repos).
Optimizer state (Adam's moments, step counts) is never a parameter; numbers and strings are
bookkeeping.

A whole pickled module (`torch.save(model)`, a TorchScript archive, or `{"model": model}`) is
read as the state dict it would give (`modules.py`). Other objects of foreign classes (`Opaque`
placeholders: a Namespace, a config) are never a state dict: tensors found inside one are listed
apart (`held`), never counted. A file whose saved object, or whose only candidate for the state
dict, is such an object is refused by the object's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspector.errors import CorruptModelError
from inspector.formats.torch.modules import Module, is_module, state_dict
from inspector.formats.torch.vocabulary import Opaque, RefusedPickle, TensorData, label

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network")
OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict", "optimizer_states", "optimizer_state")
MAX_DEPTH = 64  # nested containers; a Lightning checkpoint needs about 6


@dataclass(frozen=True)
class Named:
    name: str  # the state-dict key (dotted path below the state dict)
    tensor: TensorData


@dataclass(frozen=True)
class Checkpoint:
    parameters: tuple[Named, ...]
    optimizer: tuple[Named, ...]
    outside: tuple[Named, ...]  # tensors neither in the state dict nor in optimizer state
    state_key: str | None  # the checkpoint key holding the state dict; None: the object itself
    optimizer_keys: tuple[str, ...]
    ignored: tuple[str, ...]  # checkpoint keys holding no tensors (epoch, loss, ...)
    held: tuple[Named, ...] = ()  # tensors inside objects of foreign classes, never counted
    modules: tuple[Module, ...] = ()  # a whole pickled module's tree (its classes, attributes)


@dataclass
class _Found:
    """One walk's result: tensors reached through plain containers, tensors inside foreign
    objects, and the foreign objects met (outermost first)."""

    plain: list[Named] = field(default_factory=list)
    held: list[Named] = field(default_factory=list)
    opaque: list[Opaque] = field(default_factory=list)


def locate(root: object) -> Checkpoint:
    """Split the stored object into parameters, optimizer state and the rest. Raises
    CorruptModelError for containers nested deeper than MAX_DEPTH, and RefusedPickle naming
    the foreign object (not a module) where the state dict would be."""
    seen: set[int] = set()
    if is_module(root):
        assert isinstance(root, Opaque)
        return _whole(root, None, (), ())
    if isinstance(root, Opaque):
        raise RefusedPickle(root.name, "global")
    if not isinstance(root, dict):
        found = _collect(root, "", seen)
        return Checkpoint(tuple(found.plain), (), (), None, (), (), tuple(found.held))
    state_key = next(
        (
            k
            for k in STATE_DICT_KEYS
            if k in root and not isinstance(root[k], Opaque) and tensors(root[k])
        ),
        None,
    )
    if state_key is None:
        module_key = next((k for k in STATE_DICT_KEYS if is_module(root.get(k))), None)
        if module_key is not None:
            return _beside_module(root, module_key, seen)
    optimizer_keys = tuple(k for k in OPTIMIZER_KEYS if k in root and k != state_key)
    # One `seen` set for the whole object: a container shared by several keys is walked once.
    state = _collect(root[state_key], "", seen) if state_key is not None else _Found()
    optimizer = _Found()
    for key in optimizer_keys:
        _walk(root[key], key, 0, optimizer, seen, False)
    rest = {
        _name(k): _collect(v, _name(k), seen)
        for k, v in root.items()
        if k != state_key and k not in optimizer_keys
    }
    ignored = tuple(k for k, f in rest.items() if not f.plain and not f.held)
    if state_key is None:
        # The saved dict is itself the state dict: everything outside optimizer state.
        for found in rest.values():
            state.plain.extend(found.plain)
            state.held.extend(found.held)
            state.opaque.extend(found.opaque)
        rest = {}
        if not state.plain:
            _refuse_foreign_model(root, state)
    others = [n for f in rest.values() for n in f.plain]
    held = [*state.held, *(n for f in rest.values() for n in f.held)]
    return Checkpoint(
        tuple(state.plain),
        (*optimizer.plain, *optimizer.held),
        tuple(others),
        state_key,
        optimizer_keys,
        ignored,
        tuple(held),
    )


def _refuse_foreign_model(root: dict[object, object], found: _Found) -> None:
    """No tensor outside foreign objects: if one stands where the model would be (a state-dict
    key) or holds tensors, the file is that object, refused by name."""
    at_key = [root[k] for k in STATE_DICT_KEYS if isinstance(root.get(k), Opaque)]
    holding = [o for o in found.opaque if tensors(o)]
    for candidate in (*at_key, *holding):
        assert isinstance(candidate, Opaque)
        raise RefusedPickle(candidate.name, "global")


def _whole(
    module: Opaque, key: str | None, optimizer: tuple[Named, ...], optimizer_keys: tuple[str, ...]
) -> Checkpoint:
    entries, modules = state_dict(module)
    named = tuple(Named(e.name, e.tensor) for e in entries)
    return Checkpoint(named, optimizer, (), key, optimizer_keys, (), (), tuple(modules))


def _beside_module(root: dict[object, object], key: str, seen: set[int]) -> Checkpoint:
    """`{"model": model, "optimizer": ..., "epoch": ...}` with a whole module as the model."""
    optimizer_keys = tuple(k for k in OPTIMIZER_KEYS if k in root)
    optimizer = _Found()
    for name in optimizer_keys:
        _walk(root[name], name, 0, optimizer, seen, False)
    module = root[key]
    assert isinstance(module, Opaque)
    found = _whole(module, key, (*optimizer.plain, *optimizer.held), optimizer_keys)
    rest = {
        _name(k): _collect(v, _name(k), seen)
        for k, v in root.items()
        if k != key and k not in optimizer_keys
    }
    ignored = tuple(k for k, f in rest.items() if not f.plain and not f.held)
    others = tuple(n for f in rest.values() for n in f.plain)
    held = tuple(n for f in rest.values() for n in f.held)
    return Checkpoint(
        found.parameters,
        found.optimizer,
        others,
        key,
        optimizer_keys,
        ignored,
        held,
        found.modules,
    )


def tensors(value: object, prefix: str = "", seen: set[int] | None = None) -> list[Named]:
    """Every tensor under `value` (inside foreign objects too), named by its dotted path of keys
    (list items by index). A container reached twice is walked once (across calls sharing
    `seen`), so shared sub-objects cannot multiply the work."""
    found = _Found()
    _walk(value, prefix, 0, found, set() if seen is None else seen, False)
    return [*found.plain, *found.held]


def _collect(value: object, prefix: str, seen: set[int]) -> _Found:
    found = _Found()
    _walk(value, prefix, 0, found, seen, False)
    return found


def _walk(
    value: object, name: str, depth: int, found: _Found, seen: set[int], inside: bool
) -> None:
    if isinstance(value, TensorData):
        (found.held if inside else found.plain).append(Named(name or "tensor", value))
        return
    if isinstance(value, dict):
        items = [(_name(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(value)]
    elif isinstance(value, Opaque):
        items = value.children()
    else:
        return
    if id(value) in seen:
        return
    seen.add(id(value))
    if depth >= MAX_DEPTH:
        raise CorruptModelError(f"containers nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Opaque):
        found.opaque.append(value)
        inside = True
    for key, item in items:
        _walk(item, f"{name}.{key}" if name else key, depth + 1, found, seen, inside)


def _name(key: object) -> str:
    return label(key)
