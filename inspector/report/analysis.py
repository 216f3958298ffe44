"""Derive the report from a model: the formula check of every recurrent layer and the totals.
Nothing here formats for display."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from inspector.counts import MAX_WIDTH
from inspector.formula import BlockDerivation, Derivation, derive
from inspector.model import (
    BiasConvention,
    CellConfig,
    Check,
    Model,
    RecurrentLayer,
    SharedTensor,
    Tensor,
    TensorRole,
)

# Imported where used: a file is read and analysed in a worker that never computes MACs, writes
# JSON or words a mismatch unless asked, and every module is start-up time (issue 16).
if TYPE_CHECKING:
    from inspector.compute import Compute, Deployment
    from inspector.report.verdicts import GateResult


@dataclass(frozen=True)
class RecurrentCheck:
    layer: RecurrentLayer
    # One, or forward and backward when configured apart; a recurrent block's one derivation.
    derivations: tuple[Derivation | BlockDerivation, ...]
    status: Check
    reason: str | None = None  # why it is a mismatch or unverified

    @property
    def expected(self) -> int | None:
        if not self.derivations:
            return None
        return sum(d.total for d in self.derivations)

    @property
    def expression(self) -> str:
        return " + ".join(d.expression() for d in self.derivations)


@dataclass(frozen=True)
class Totals:
    total: int
    trainable: int | None
    non_trainable: int | None
    weights_bytes: int  # the weights at their stored dtype
    file_bytes: int | None = None  # the file on disk, optimizer state and all (None: not known)


@dataclass(frozen=True)
class Report:
    model: Model
    checks: tuple[RecurrentCheck, ...]
    totals: Totals
    gates: tuple[GateResult, ...] = ()  # the limits a run set, once evaluated (report.gates)
    seq_len: int | None = None  # time steps for the per-sequence compute total (--seq-len)
    context: int | None = None  # tokens the KV caches hold (--context; None: the default)
    state_dtype: str | None = None  # the dtype states are held in (--state-dtype; None: stored)

    @property
    def compute(self) -> Compute:
        """MACs, element-wise work and state per time step (inspector.compute)."""
        from inspector.compute import compute

        return compute(self.model, self.seq_len)

    @property
    def deployment(self) -> Deployment:
        """The state a sequence holds, KV caches at the context included (inspector.compute)."""
        from inspector.compute import deployment

        return deployment(self.model, self.compute, self.context, self.state_dtype)

    @property
    def gates_failed(self) -> bool:
        return any(not gate.passed for gate in self.gates)

    @property
    def failed(self) -> bool:
        return any(check.status is Check.MISMATCH for check in self.checks)

    def to_dict(self) -> dict[str, object]:
        """The JSON contract (see README)."""
        from inspector.report.contract import report_to_dict

        return report_to_dict(self)


def analyse(model: Model, file_bytes: int | None = None) -> Report:
    """`file_bytes`: the size of the file on disk, when the caller measured it."""
    model = attribute_once(model)
    checks = tuple(check_layer(layer) for layer in model.recurrent_layers)
    return Report(model=model, checks=checks, totals=totals(model, file_bytes))


def attribute_once(model: Model) -> Model:
    """Each stored tensor in one row: a tensor (by key) already held by an earlier row moves to
    the later row's `shared`, so the rows sum to the total whatever the reader did. Readers
    attribute first where they know better (ONNX holds a recurrence's tensors in its row and marks
    its recurrent tensors); then this changes nothing."""
    holder: dict[str, int] = {}  # tensor key -> index of the row holding it
    changed = False
    layers = []
    for position, layer in enumerate(model.layers):
        own: dict[Tensor, None] = {}  # in order, each once: a set's lookup keeps this linear
        shared = list(layer.shared)
        for tensor in layer.tensors:
            held = holder.setdefault(tensor.key, position)
            if held != position:
                shared.append(SharedTensor(tensor, model.layers[held].name))
            else:
                own.setdefault(tensor)
        changed |= len(own) != len(layer.tensors)
        layers.append(replace(layer, tensors=tuple(own), shared=tuple(shared)))
    if not changed:
        return model
    return replace(model, layers=tuple(layers))


def distinct_tensors(model: Model) -> list[Tensor]:
    """Each stored tensor once, however many layers reach it."""
    seen: dict[str, Tensor] = {}
    for layer in model.layers:
        for tensor in layer.tensors:
            seen.setdefault(tensor.key, tensor)
    for tensor in model.extra_tensors:
        seen.setdefault(tensor.key, tensor)
    return list(seen.values())


def totals(model: Model, file_bytes: int | None = None) -> Totals:
    tensors = distinct_tensors(model)
    total = sum(t.params for t in tensors)
    weights_bytes = sum(t.nbytes for t in tensors)
    if not model.trainable_known:
        return Totals(total, None, None, weights_bytes, file_bytes)
    trainable = sum(t.params for t in tensors if t.trainable is not False)
    return Totals(total, trainable, total - trainable, weights_bytes, file_bytes)


def _bias(cell: CellConfig) -> BiasConvention:
    if not cell.use_bias:
        return BiasConvention.NONE
    return cell.bias if cell.bias is not None else BiasConvention.SINGLE


def check_layer(layer: RecurrentLayer) -> RecurrentCheck:
    """The formula check; a layer whose file is invalid (`defects`) fails whatever the counts,
    with the defects first in its reason."""
    check = _formula_check(layer)
    if not layer.defects:
        return check
    reasons = list(layer.defects)
    if check.status is Check.MISMATCH and check.reason:
        reasons.append(check.reason)
    return replace(check, status=Check.MISMATCH, reason="; ".join(reasons))


def _formula_check(layer: RecurrentLayer) -> RecurrentCheck:
    if layer.cell.block is not None:  # a recurrent block: its tensors' shapes, not gates
        from inspector.report.block_check import check_block

        derivation, status, reason = check_block(layer)
        return RecurrentCheck(layer, (derivation,) if derivation else (), status, reason)
    cells = [layer.cell] if layer.backward_cell is None else [layer.cell, layer.backward_cell]
    if layer.input_dim is None:
        return RecurrentCheck(
            layer, (), Check.UNVERIFIED, _unknown("input width", "a kernel tensor")
        )
    projected = any(item.role is TensorRole.PROJECTION for item in layer.tensors)
    if projected and any(c.projection is None for c in cells):
        return RecurrentCheck(
            layer,
            (),
            Check.UNVERIFIED,
            "the hidden state is projected but the projection's width is unknown",
        )
    missing = [c for c in cells if c.units is None]
    if missing:
        return RecurrentCheck(layer, (), Check.UNVERIFIED, _unknown("units", "a recurrent kernel"))
    implausible = _implausible(layer, cells)
    if implausible is not None:
        return RecurrentCheck(layer, (), Check.UNVERIFIED, implausible)
    per_cell_directions = layer.directions if layer.backward_cell is None else 1
    derivations = tuple(
        derive(
            cell.kind,
            cell.units or 0,
            layer.input_dim,
            directions=per_cell_directions,
            bias=_bias(cell),
            peepholes=cell.peepholes,
            kernel_size=cell.kernel_size,
            projection=cell.projection or 0,
        )
        for cell in cells
    )
    expected = sum(d.total for d in derivations)
    if expected == layer.params:
        return RecurrentCheck(layer, derivations, Check.OK)
    from inspector.report.mismatch import explain_mismatch

    return RecurrentCheck(
        layer, derivations, Check.MISMATCH, explain_mismatch(layer, derivations, expected)
    )


def _implausible(layer: RecurrentLayer, cells: Sequence[CellConfig]) -> str | None:
    """Why a width the file gives cannot enter the formula: zero, negative, or absurdly
    large (a crafted 4000-digit `units`), so no count is derived from it."""
    widths = [("units", cell.units) for cell in cells] + [("input width", layer.input_dim)]
    widths += [("projection", cell.projection) for cell in cells]
    widths += [("kernel size", k) for cell in cells for k in cell.kernel_size]
    for what, value in widths:
        if value is None or 0 < value < MAX_WIDTH:
            continue
        shown = (
            f"{value:,}"
            if value.bit_length() < 128
            else f"of about {int(value.bit_length() * 0.30103):,} digits"
        )
        reason = "is not a positive number" if value <= 0 else f"is not below {MAX_WIDTH:,}"
        return f"{what} {shown} from the file {reason}: the formula does not apply"
    return None


def _unknown(what: str, tensor: str) -> str:
    """Why the formula cannot be applied (a reader's notes, shown beside it, may say more)."""
    return f"{what} unknown: neither the file's configuration nor {tensor} gives it"
