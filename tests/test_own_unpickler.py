"""The parent rebuilds a worker's result with supervise.OwnUnpickler, which refuses anything
but rnninspect's own data. Python releases pickle the same data differently: early 3.11
releases (3.11.2, Debian 12's python3) write an enum member as `getattr(EnumClass, "NAME")`,
so a result pickled that way must rebuild, and no other use of getattr may."""

from __future__ import annotations

import enum
import io
import pickle
from typing import Any

import pytest

from conftest import FIXTURES
from inspector.cells import Convention
from inspector.cli.inspection import _read_one
from inspector.cli.supervise import Limits, OwnUnpickler
from inspector.model import CellKind, Tensor


class _EarlyPython311(pickle.Pickler):
    """Pickles enum members as Lib/enum.py of Python 3.11.2 does; anything else as usual."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, enum.Enum):
            return getattr, (type(obj), obj.name)
        return NotImplemented


class _Forged(pickle.Pickler):
    """Writes `getattr(owner, name)` in place of the marker objects it is given."""

    def __init__(self, file: io.BytesIO, forged: dict[int, tuple[object, str]]) -> None:
        super().__init__(file)
        self.forged = forged

    def reducer_override(self, obj: Any) -> Any:
        if id(obj) in self.forged:
            return getattr, self.forged[id(obj)]
        return NotImplemented


def _rebuild(pickler: type[pickle.Pickler], value: object, *extra: Any) -> object:
    buffer = io.BytesIO()
    pickler(buffer, *extra).dump(value)
    return OwnUnpickler(io.BytesIO(buffer.getvalue())).load()


@pytest.mark.parametrize(
    "fixture",
    [
        "keras2/bidir_lstm_concat.h5",
        "keras2/bidir_lstm_concat.keras",
        "cases/torch_lstm_h8_d4.safetensors",
    ],
)
def test_a_report_pickled_as_early_python_3_11_does_rebuilds(fixture: str) -> None:
    outcome = _read_one(FIXTURES / fixture, None, Limits(cpu_seconds=0))
    assert outcome.report is not None
    assert _rebuild(_EarlyPython311, outcome) == outcome


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (Convention, "__class__"),  # an attribute, not a member
        (CellKind, "mro"),
        (Tensor, "__init__"),  # one of our classes, not an enum
        (Convention, 3),
    ],
)
def test_getattr_other_than_an_enum_member_is_refused(owner: object, name: object) -> None:
    marker = object()
    with pytest.raises(pickle.UnpicklingError):
        _rebuild(_Forged, [marker], {id(marker): (owner, name)})


def test_getattr_on_a_class_from_elsewhere_is_refused() -> None:
    marker = object()
    with pytest.raises(pickle.UnpicklingError):
        _rebuild(_Forged, [marker], {id(marker): (pickle.Pickler, "dump")})
