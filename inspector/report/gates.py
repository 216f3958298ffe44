"""Budgets a report must meet before a model ships: the CI gates behind `--max-params`,
`--max-size`, `--max-layer-params` and `--strict`. Evaluation only; `render` words the result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from inspector.model import Check
from inspector.report.analysis import Report


class Limit(Enum):
    """Each gate, named by the option that sets it."""

    MAX_PARAMS = "--max-params"
    MAX_SIZE = "--max-size"
    MAX_LAYER_PARAMS = "--max-layer-params"
    STRICT = "--strict"


@dataclass(frozen=True)
class Budget:
    max_params: int | None = None
    max_size: int | None = None  # bytes of the weights at their stored dtype
    max_layer_params: int | None = None
    strict: bool = False  # `mismatch` and `unverified` checks fail the gate

    @property
    def active(self) -> bool:
        return self.strict or any(
            limit is not None for limit in (self.max_params, self.max_size, self.max_layer_params)
        )


@dataclass(frozen=True)
class Exceeded:
    """A measured value above its limit: `subject` is the file or the layer measured."""

    limit: Limit
    file: str
    subject: str | None  # the layer, for per-layer limits
    measured: int
    allowed: int

    @property
    def excess(self) -> int:
        return self.measured - self.allowed


@dataclass(frozen=True)
class FailedCheck:
    """A recurrent layer whose formula check is not `ok` under `--strict`."""

    file: str
    layer: str
    status: Check
    reason: str | None


GateFailure = Exceeded | FailedCheck

# Under --strict every status but ok fails; without it only a mismatch does (see Report.failed).
_STRICT_FAILS = frozenset({Check.MISMATCH, Check.UNVERIFIED})


def evaluate(report: Report, budget: Budget) -> tuple[GateFailure, ...]:
    path = report.model.path
    failures: list[GateFailure] = []
    measured_limits = (
        (Limit.MAX_PARAMS, budget.max_params, report.totals.total),
        (Limit.MAX_SIZE, budget.max_size, report.totals.weights_bytes),
    )
    for limit, allowed, measured in measured_limits:
        if allowed is not None and measured > allowed:
            failures.append(Exceeded(limit, path, None, measured, allowed))
    if budget.max_layer_params is not None:
        failures.extend(
            Exceeded(
                Limit.MAX_LAYER_PARAMS, path, layer.name, layer.params, budget.max_layer_params
            )
            for layer in report.model.layers
            if layer.params > budget.max_layer_params
        )
    if budget.strict:
        failures.extend(
            FailedCheck(path, check.layer.name, check.status, check.reason)
            for check in report.checks
            if check.status in _STRICT_FAILS
        )
    return tuple(failures)
