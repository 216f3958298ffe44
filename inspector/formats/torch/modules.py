"""Whole pickled modules, read as data: `torch.save(model)` and TorchScript's `torch.jit.save`.

- `torch.save(model)` pickles the module as an object of its class (NEWOBJ) whose state
  (BUILD) is its `__dict__`: `_parameters` and `_buffers` (name -> tensor or None),
  `_non_persistent_buffers_set`, `_modules` (name -> child module or None) and plain
  attributes (`hidden_size`, `num_layers`, `bidirectional`, `proj_size`, `batch_first`...).
  `Module.state_dict()` lists a module's parameters, then its persistent buffers, then each
  child's entries under `<child>.` (torch/nn/modules/module.py, `_save_to_state_dict`,
  `state_dict`): the same order here.
- A TorchScript archive's `data.pkl` pickles each module as an object of its scripted class
  (`__torch__.torch.nn.modules.rnn.LSTM`) whose state holds every attribute by name: its
  parameters and buffers as tensors, its submodules as objects, its constants as numbers
  (torch/csrc/jit/serialization/python_print.cpp writes the class, `import_source.cpp` reads
  it back). Tensors a module holds directly are its state-dict entries, in attribute order.

The classes are names only: nothing is imported and nothing a module defines is run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from inspector.errors import CorruptModelError
from inspector.formats.torch.vocabulary import Opaque, TensorData, label

MAX_MODULE_DEPTH = 100  # submodules inside submodules; a deep transformer nests about 10
MAX_MODULES = 100_000  # modules visited (one shared by two parents is visited twice)
TORCHSCRIPT = "__torch__."
_SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class Module:
    path: str  # dotted from the saved module ("" itself, "encoder.lstm")
    cls: str  # the class as the pickle names it (`torch.nn.modules.rnn.LSTM`)
    attributes: Mapping[str, bool | int | float | str]  # its plain public attributes


@dataclass(frozen=True)
class Entry:
    name: str  # the state-dict key
    tensor: TensorData


def is_module(value: object) -> bool:
    """An object of a module class: scripted, or with an nn.Module's `__dict__`."""
    if not isinstance(value, Opaque) or not value.called:
        return False
    if value.name.startswith(TORCHSCRIPT):
        return True
    state = _state(value)
    return "_parameters" in state and "_modules" in state


def _state(value: Opaque) -> Mapping[object, object]:
    """The attribute dict BUILD gave the object (the last one, as `__setstate__` would)."""
    for state in reversed(value.state):
        if isinstance(state, dict):
            return state
    return MappingProxyType({})


def state_dict(root: Opaque) -> tuple[list[Entry], list[Module]]:
    """Every state-dict entry of the module tree in `Module.state_dict()` order, and every
    module with its class and plain attributes. A module shared by two parents is listed under
    both paths, as torch lists it (its tensors are then tied entries). Raises
    CorruptModelError for a module inside itself, or beyond MAX_MODULE_DEPTH / MAX_MODULES."""
    entries: list[Entry] = []
    modules: list[Module] = []
    _walk(root, "", [], entries, modules)
    return entries, modules


def _walk(
    module: Opaque, path: str, ancestors: list[int], entries: list[Entry], modules: list[Module]
) -> None:
    if len(ancestors) > MAX_MODULE_DEPTH:
        raise CorruptModelError(f"modules nested deeper than {MAX_MODULE_DEPTH} levels")
    if id(module) in ancestors:
        raise CorruptModelError(f"module '{path}' contains itself")
    if len(modules) >= MAX_MODULES:
        raise CorruptModelError(f"more than {MAX_MODULES:,} modules")
    state = _state(module)
    attributes = {
        key: value
        for key, value in state.items()
        if isinstance(key, str) and not key.startswith("_") and isinstance(value, _SCALARS)
    }
    modules.append(Module(path, module.name, MappingProxyType(attributes)))
    prefix = f"{path}." if path else ""
    children: list[tuple[str, object]]
    if module.name.startswith(TORCHSCRIPT):
        children = []
        for key, value in state.items():
            if isinstance(value, TensorData):
                entries.append(Entry(f"{prefix}{label(key)}", value))
            elif is_module(value):
                children.append((label(key), value))
    else:
        skipped = state.get("_non_persistent_buffers_set")
        transient = (
            {k for k in skipped if isinstance(k, str)} if isinstance(skipped, list) else set()
        )
        for group in ("_parameters", "_buffers"):
            held = state.get(group)
            for key, value in held.items() if isinstance(held, dict) else ():
                if isinstance(value, TensorData) and key not in transient:
                    entries.append(Entry(f"{prefix}{label(key)}", value))
        held = state.get("_modules")
        children = list(held.items()) if isinstance(held, dict) else []
    ancestors.append(id(module))
    for key, child in children:
        if is_module(child):
            assert isinstance(child, Opaque)
            _walk(child, f"{prefix}{label(key)}", ancestors, entries, modules)
    ancestors.pop()
