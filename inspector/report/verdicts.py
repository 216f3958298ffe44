"""What a gate found, as data inside the report: each limit, the measured value, pass or fail.

`inspector.report.gates` fills these in; the renderers and the JSON contract show them. Pure
data, below the analysis, so a `Report` can carry its verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Unit(Enum):
    """What a limit counts; the renderers format a value by its unit."""

    PARAMS = "params"
    BYTES = "bytes"
    LAYERS = "layers"  # recurrent layers whose check is not ok (--strict)
    MACS = "MACs"  # multiply-accumulates per time step (--max-macs)


@dataclass(frozen=True)
class Over:
    """One subject over a limit: the layer (None for the file as a whole), its value, and for a
    check the status and reason."""

    layer: str | None
    measured: int
    note: str | None = None


@dataclass(frozen=True)
class GateResult:
    """One limit applied to one file. `measured` is the file's value, or for a per-layer limit
    the largest layer's (named by `layer`); `over` lists every subject beyond the limit."""

    limit: str  # the option that sets it, e.g. "--max-params"
    unit: Unit
    allowed: int
    measured: int
    layer: str | None
    over: tuple[Over, ...]

    @property
    def passed(self) -> bool:
        return not self.over

    @property
    def excess(self) -> int:
        return self.measured - self.allowed
