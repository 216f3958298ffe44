"""Compare two recurrent blocks (a Hugging Face checkpoint's Mamba mixer and its GGUF export's
`blk.N.ssm`, ...) tensor by tensor, through the block table (`inspector.blocks`): each side's
tensor is known by its member name whatever the file calls it, so the pair is matched by it;
the export's values are brought to the source's shape where its naming stores another
(`Spelling.shape`: llama.cpp's squeezed conv1d, its per-group norm, its A and D columns) and the
source's to what the export stores where that is a function of them (`Spelling.values`:
llama.cpp's A = -exp(A_log)). A quantized side brings its own per-element bound
(`formats.values.bound`: about one quantization step of its type).

The verdict names every tensor missing on one side, stored transposed, or whose values moved
beyond the tolerance (requantized, damaged)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from inspector.blocks import BLOCK_BY_NAME, BlockSpec, Member, Stored
from inspector.compare.diff import delta
from inspector.compare.result import (
    Delta,
    Difference,
    Field,
    Mismatch,
    PairKind,
    PairResult,
    Reconcile,
    Reconciled,
    Side,
    Spot,
    Status,
    Tolerance,
    Unmatched,
)
from inspector.errors import ValuesUnavailableError
from inspector.formats.values import ValueReader, bound
from inspector.model import RecurrentLayer, RecurrentTensor


def compare_block(
    source: RecurrentLayer,
    export: RecurrentLayer,
    source_values: ValueReader,
    export_values: ValueReader,
    tolerance: Tolerance,
) -> PairResult:
    skeleton = PairResult(
        kind=PairKind.RECURRENT,
        status=Status.IDENTICAL,
        source=source.name,
        export=export.name,
        source_type=source.type,
        export_type=export.type,
        source_params=source.params,
        export_params=export.params,
    )
    spec = BLOCK_BY_NAME.get(source.cell.block or "")
    if spec is None or source.cell.block != export.cell.block:
        mismatch = Mismatch(Field.BLOCK, source.cell.block, export.cell.block)
        return _with(skeleton, Status.CELL_DIFFERS, mismatches=(mismatch,))
    mismatches = _dimensions(spec, source, export)
    mine = {item.member: item for item in source.tensors if item.member}
    theirs = {item.member: item for item in export.tensors if item.member}
    unmatched = tuple(
        Unmatched(side, item.tensor.name, item.role.value, item.tensor.shape, item.tensor.params)
        for side, here, there in ((Side.SOURCE, mine, theirs), (Side.EXPORT, theirs, mine))
        for name, item in here.items()
        if name not in there
    )
    reconciled: list[Reconciled] = []
    if source.cell.layout != export.cell.layout:
        reconciled.append(
            Reconciled(
                Reconcile.RENAMED,
                tensor=f"{_naming(source.cell.layout)} names <-> {_naming(export.cell.layout)}",
            )
        )
    deltas: list[Delta] = []
    differences: list[Difference] = []
    unread: list[str] = []
    for name, item in mine.items():
        other = theirs.get(name)
        if other is None:
            continue
        member = spec.member(name)
        try:
            found = _pair(member, item, other, source, export, source_values, export_values)
        except ValuesUnavailableError as error:
            unread.append(str(error))
            continue
        if isinstance(found, Mismatch):
            mismatches += (found,)
            continue
        reconciled += found.steps
        found_delta = delta(found.source, found.export, tolerance, found.bound)
        deltas.append(found_delta)
        if not found_delta.close:
            differences.append(
                Difference(
                    role=name,
                    direction=None,
                    gate=None,
                    export_gate=None,
                    source=Spot(item.tensor.name, found_delta.at),
                    export=Spot(other.tensor.name, found_delta.at),
                    delta=found_delta,
                )
            )
    max_abs = max((d.max_abs for d in deltas), default=0.0)
    if not differences and any(not d.exact for d in deltas):
        reconciled.append(Reconciled(Reconcile.TOLERANCE, max_abs=max_abs))
    if mismatches or unmatched:
        status = Status.SHAPE_DIFFERS
    elif differences:
        status = Status.VALUES_DIFFER
    elif unread:
        status = Status.UNVERIFIED
    elif reconciled:
        status = Status.EQUIVALENT
    else:
        status = Status.IDENTICAL
    return _with(
        skeleton,
        status,
        mismatches=mismatches,
        unmatched=unmatched,
        reconciled=tuple(reconciled),
        differences=tuple(differences),
        compared=sum(d.elements for d in deltas),
        max_abs=max_abs if deltas else None,
        max_rel=max((d.max_rel for d in deltas), default=0.0) if deltas else None,
        unread=tuple(unread),
    )


def _with(skeleton: PairResult, status: Status, **fields: Any) -> PairResult:
    return replace(skeleton, status=status, **fields)


def _naming(layout: str | None) -> str:
    return layout or "transformers"


def _dimensions(
    spec: BlockSpec, source: RecurrentLayer, export: RecurrentLayer
) -> tuple[Mismatch, ...]:
    mine, theirs = dict(source.cell.dims), dict(export.cell.dims)
    return tuple(
        Mismatch(Field.DIMENSION, f"{name}={mine[name]:,}", f"{name}={theirs[name]:,}")
        for name in spec.dims
        if name in mine and name in theirs and mine[name] != theirs[name]
    )


@dataclass(frozen=True)
class _Paired:
    """A pair's values in the source's shape and in one domain, each element's allowed
    distance (a quantized side's bound), and the conventions reconciled to get there."""

    source: np.ndarray
    export: np.ndarray
    bound: np.ndarray | None
    steps: tuple[Reconciled, ...]


def _pair(
    member: Member,
    item: RecurrentTensor,
    other: RecurrentTensor,
    source: RecurrentLayer,
    export: RecurrentLayer,
    source_values: ValueReader,
    export_values: ValueReader,
) -> Mismatch | _Paired:
    """The two tensors' values in one shape and domain, and the conventions reconciled on the
    way; a Mismatch where the export's shape is none its naming gives (transposed, or other)."""
    s_shape = member.shape_in(source.cell.layout)
    e_shape = member.shape_in(export.cell.layout)
    stored_s, stored_e = item.tensor.shape, other.tensor.shape
    steps: list[Reconciled] = []
    if s_shape != e_shape or stored_s != stored_e:
        if stored_e == tuple(reversed(stored_s)) and stored_s != stored_e and s_shape == e_shape:
            return Mismatch(
                Field.TRANSPOSED,
                f"{item.tensor.name} {stored_s}",
                f"{other.tensor.name} {stored_e}",
            )
        if item.tensor.params != other.tensor.params:
            return Mismatch(
                Field.PARAMS, f"{item.tensor.name} {stored_s}", f"{other.tensor.name} {stored_e}"
            )
        steps.append(
            Reconciled(Reconcile.RESHAPED, tensor=f"{other.tensor.name} {stored_e} as {stored_s}")
        )
    source_data = np.asarray(source_values.read(item.tensor.key), dtype=np.float64)
    export_data = np.asarray(export_values.read(other.tensor.key), dtype=np.float64)
    e_bound = bound(export_values, other.tensor.key)
    s_bound = bound(source_values, item.tensor.key)
    stores = _stores(member, source, export)
    if stores is Stored.NEG_EXP:  # the export holds -exp(the source's values)
        source_data = -np.exp(source_data)
        steps.append(
            Reconciled(
                Reconcile.CONVERTED, tensor=f"{other.tensor.name} = -exp({item.tensor.name})"
            )
        )
    elif stores is not None:  # the source holds -exp(the export's): compare in its domain
        export_data = -np.exp(export_data)
        steps.append(
            Reconciled(
                Reconcile.CONVERTED, tensor=f"{item.tensor.name} = -exp({other.tensor.name})"
            )
        )
    export_data = export_data.reshape(stored_s)
    if e_bound is not None:
        e_bound = np.reshape(e_bound, stored_s)
    if s_bound is not None:
        e_bound = s_bound if e_bound is None else s_bound + e_bound
    return _Paired(source_data, export_data, e_bound, tuple(steps))


def _stores(member: Member, source: RecurrentLayer, export: RecurrentLayer) -> Stored | None:
    """None where both sides store the same values; NEG_EXP where the export's naming keeps
    -exp of the source's; AS_IS where it is the source's naming that keeps -exp (a GGUF
    source against a transformers export)."""
    spelled = member.llama_cpp.values if member.llama_cpp else Stored.AS_IS
    s_stores = spelled if source.cell.layout else Stored.AS_IS
    e_stores = spelled if export.cell.layout else Stored.AS_IS
    if s_stores is e_stores:
        return None
    return Stored.NEG_EXP if e_stores is Stored.NEG_EXP else Stored.AS_IS
