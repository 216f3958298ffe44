"""Budgets a report must meet before a model ships: the CI gates behind `--max-params`,
`--max-size`, `--max-file-size`, `--max-layer-params`, `--max-macs`, `--max-state` and
`--strict`.
Evaluation only; `render` words the result.

Every gate is one entry of `GATES`: the option that sets it, the unit it counts, what it
measures of a report. A new limit (say `--max-macs`) is one more entry here plus its option in
`cli.py`; the JSON contract, the tables and the stderr verdicts follow from the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from inspector.model import Check
from inspector.report.verdicts import GateResult, Over, Unit

if TYPE_CHECKING:  # annotations only: the CLI reads the gate table before any report exists
    from inspector.report.analysis import Report


@dataclass(frozen=True)
class Gate:
    """One limit. `measure` gives one `Over` per subject (`layer=None`: the file as a whole);
    each subject is held against the limit on its own, or, with `summed`, their sum is."""

    option: str
    unit: Unit
    label: str  # how a verdict names the measured value: "the weights take 1,512 bytes"
    measure: Callable[[Report], Sequence[Over]]
    summed: bool = False


def _total_params(report: Report) -> Sequence[Over]:
    return [Over(None, report.totals.total)]


def _weights_bytes(report: Report) -> Sequence[Over]:
    return [Over(None, report.totals.weights_bytes)]


def _file_bytes(report: Report) -> Sequence[Over]:
    size = report.totals.file_bytes
    return [] if size is None else [Over(None, size)]


def _macs_per_step(report: Report) -> Sequence[Over]:
    return [Over(None, report.compute.macs_per_step)]


def _state_bytes(report: Report) -> Sequence[Over]:
    """What one sequence holds: every recurrent state plus a hybrid's KV caches at --context."""
    return [Over(None, report.deployment.total_bytes)]


def _layer_params(report: Report) -> Sequence[Over]:
    return [Over(layer.name, layer.params) for layer in report.model.layers]


# Under --strict every status but ok fails; without it only a mismatch does (see Report.failed).
_STRICT_FAILS = frozenset({Check.MISMATCH, Check.UNVERIFIED})


def _checks_not_ok(report: Report) -> Sequence[Over]:
    return [
        Over(
            check.layer.name,
            1,
            check.status.value + (f" ({check.reason})" if check.reason else ""),
        )
        for check in report.checks
        if check.status in _STRICT_FAILS
    ]


GATES: tuple[Gate, ...] = (
    Gate("--max-params", Unit.PARAMS, "the model has", _total_params),
    Gate("--max-size", Unit.BYTES, "the weights take", _weights_bytes),
    Gate("--max-file-size", Unit.BYTES, "the file takes", _file_bytes),
    Gate("--max-layer-params", Unit.PARAMS, "the largest layer has", _layer_params),
    Gate("--max-macs", Unit.MACS, "a time step takes", _macs_per_step),
    Gate("--max-state", Unit.BYTES, "a sequence's state takes", _state_bytes),
    # `--strict` allows no recurrent layer whose check is not ok (the CLI sets the limit to 0).
    Gate("--strict", Unit.LAYERS, "checks not ok:", _checks_not_ok, summed=True),
)
GATE_BY_OPTION = {gate.option: gate for gate in GATES}


@dataclass(frozen=True)
class Budget:
    """The limits a run was given, by option (`{"--max-params": 250000}`); absent: no limit."""

    limits: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.limits) - set(GATE_BY_OPTION)
        if unknown:
            raise ValueError(f"no such gate: {', '.join(sorted(unknown))}")

    @property
    def active(self) -> bool:
        return bool(self.limits)


# Limits on the model's size, which a file that does not store its weights cannot meet.
_SIZE_UNITS = frozenset({Unit.PARAMS, Unit.BYTES, Unit.MACS})


def _unstored(report: Report, gate: Gate) -> Over | None:
    """A size gate on a model whose weights are not in the file (`Model.unstored`) fails: what
    the file holds says nothing of the model's size."""
    missing = report.model.unstored
    if not missing or gate.unit not in _SIZE_UNITS or gate.option == "--max-file-size":
        return None
    params = sum(t.params for t in missing)
    measured = {
        Unit.PARAMS: report.totals.total + params,
        Unit.BYTES: report.totals.weights_bytes + sum(t.nbytes for t in missing),
    }.get(gate.unit, 0)
    return Over(
        None,
        measured,
        f"the weights are not in this file ({params:,} parameters in {len(missing)} "
        "variable(s) the graph reads but the file does not store): the limit cannot be checked",
    )


def evaluate(report: Report, budget: Budget) -> tuple[GateResult, ...]:
    """One result per limit in the budget, in the order of `GATES`."""
    results = []
    for gate in GATES:
        allowed = budget.limits.get(gate.option)
        if allowed is None:
            continue
        refused = _unstored(report, gate)
        if refused is not None:
            results.append(
                GateResult(gate.option, gate.unit, allowed, refused.measured, None, (refused,))
            )
            continue
        subjects = gate.measure(report)
        if gate.summed:
            measured = sum(subject.measured for subject in subjects)
            layer = None
            over = tuple(subjects) if measured > allowed else ()
        else:
            worst = max(subjects, key=lambda subject: subject.measured, default=Over(None, 0))
            measured, layer = worst.measured, worst.layer
            over = tuple(subject for subject in subjects if subject.measured > allowed)
        results.append(GateResult(gate.option, gate.unit, allowed, measured, layer, over))
    return tuple(results)


def gated(report: Report, budget: Budget) -> Report:
    """The report with its gate results inside, for every output format to show."""
    return replace(report, gates=evaluate(report, budget))
