"""Where the parameters are in what `torch.save` stored: a bare state dict, or a training
checkpoint that wraps one beside optimizer state and bookkeeping.

Conventions found in the wild: `{"model_state_dict", "optimizer_state_dict", "epoch", "loss"}`
(the PyTorch tutorial "Saving and loading a general checkpoint"), `{"state_dict",
"optimizer_states", "epoch", "global_step", ...}` (PyTorch Lightning), `{"model", "optimizer"}`,
`{"net", ...}`. Optimizer state (Adam's moments, step counts) is never a parameter; numbers and
strings are bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.errors import CorruptModelError
from inspector.formats.torch.vocabulary import TensorData

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


def locate(root: object) -> Checkpoint:
    """Split the stored object into parameters, optimizer state and the rest. Raises
    CorruptModelError for containers nested deeper than MAX_DEPTH."""
    seen: set[int] = set()
    if not isinstance(root, dict):
        return Checkpoint(tuple(tensors(root, "", seen)), (), (), None, (), ())
    state_key = next((k for k in STATE_DICT_KEYS if k in root and tensors(root[k])), None)
    optimizer_keys = tuple(k for k in OPTIMIZER_KEYS if k in root and k != state_key)
    # One `seen` set for the whole object: a container shared by several keys is walked once.
    parameters = tensors(root[state_key], "", seen) if state_key is not None else []
    optimizer = [n for key in optimizer_keys for n in tensors(root[key], key, seen)]
    rest = {
        _name(k): tensors(v, _name(k), seen)
        for k, v in root.items()
        if k != state_key and k not in optimizer_keys
    }
    ignored = tuple(k for k, found in rest.items() if not found)
    others = [n for found in rest.values() for n in found]
    if state_key is None:
        return Checkpoint(tuple(others), tuple(optimizer), (), None, optimizer_keys, ignored)
    return Checkpoint(
        tuple(parameters), tuple(optimizer), tuple(others), state_key, optimizer_keys, ignored
    )


def tensors(value: object, prefix: str = "", seen: set[int] | None = None) -> list[Named]:
    """Every tensor under `value`, named by its dotted path of keys (list items by index).
    A container reached twice is walked once (across calls sharing `seen`), so shared
    sub-objects cannot multiply the work."""
    found: list[Named] = []
    _walk(value, prefix, 0, found, set() if seen is None else seen)
    return found


def _walk(value: object, name: str, depth: int, found: list[Named], seen: set[int]) -> None:
    if isinstance(value, TensorData):
        found.append(Named(name or "tensor", value))
        return
    if isinstance(value, dict):
        items = [(_name(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return
    if id(value) in seen:
        return
    seen.add(id(value))
    if depth >= MAX_DEPTH:
        raise CorruptModelError(f"containers nested deeper than {MAX_DEPTH} levels")
    for key, item in items:
        _walk(item, f"{name}.{key}" if name else key, depth + 1, found, seen)


def _name(key: object) -> str:
    return key if isinstance(key, str) else repr(key)
