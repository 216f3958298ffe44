"""Gate verdicts as one line each: which limit, the measured value, and by how much."""

from __future__ import annotations

from inspector.render.text import count, exact_bytes, percent_over
from inspector.report.gates import Exceeded, FailedCheck, GateFailure, Limit


def gate_message(failure: GateFailure) -> str:
    if isinstance(failure, FailedCheck):
        reason = f" ({failure.reason})" if failure.reason else ""
        return (
            f"{failure.file}: {Limit.STRICT.value}: layer '{failure.layer}' check is "
            f"{failure.status.value}{reason}"
        )
    return f"{failure.file}: {_exceeded(failure)}"


def _exceeded(failure: Exceeded) -> str:
    over = percent_over(failure.excess, failure.allowed)
    if failure.limit is Limit.MAX_SIZE:
        return (
            f"{failure.limit.value} {exact_bytes(failure.allowed)}: the weights take "
            f"{exact_bytes(failure.measured)}, {failure.excess:,} bytes over the limit ({over})"
        )
    what = (
        f"layer '{failure.subject}' has {count(failure.measured)} params"
        if failure.limit is Limit.MAX_LAYER_PARAMS
        else f"the model has {count(failure.measured)} params"
    )
    return (
        f"{failure.limit.value} {count(failure.allowed)}: {what}, "
        f"{count(failure.excess)} over the limit ({over})"
    )
