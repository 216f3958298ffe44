"""Compare the layers that are not recurrent (Embedding, Dense/Linear, Conv...).

Exporters rename and regroup these freely (a Dense becomes a Gemm, or a MatMul and an Add), so
they pair tensor by tensor: each source tensor takes the first unclaimed export tensor of the
same shape, or of the shape an exporter's layout gives it (a transposed matrix, a Keras
convolution kernel (kh, kw, in, out) as ONNX's (out, in, kh, kw)). Where several fit, the one
whose values agree wins. Tensors of recurrent layers are left to the recurrent comparison.
An integer scalar without a counterpart (PyTorch BatchNorm's `num_batches_tracked`, a step
counter torch/nn/modules/batchnorm.py keeps for the momentum-free average) is no weight:
exporters drop it, so it is named but does not fail the pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from inspector.compare.diff import delta
from inspector.compare.result import (
    Delta,
    Difference,
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
from inspector.model import Layer, Model, Tensor

MAX_CANDIDATES = 8  # same-shaped export tensors tried by value before taking the first
COUNTER = "counter"  # the role of an integer scalar no export keeps


@dataclass(frozen=True)
class _Candidate:
    layer: str | None  # None: a tensor outside any layer row
    type: str | None
    tensor: Tensor


@dataclass
class _Outcome:
    matched: list[tuple[Tensor, _Candidate]] = field(default_factory=list)
    unmatched: list[Tensor] = field(default_factory=list)
    counters: list[Tensor] = field(default_factory=list)  # integer scalars no export keeps
    deltas: list[Delta] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    reconciled: list[Reconciled] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)


def compare_plain(
    source: Model,
    export: Model,
    source_values: ValueReader,
    export_values: ValueReader,
    tolerance: Tolerance,
) -> list[PairResult]:
    pool = _pool(export)
    claimed: set[str] = set()
    results = []
    for layer, tensors in _plain_layers(source):
        outcome = _Outcome()
        for tensor in tensors:
            _match(tensor, pool, claimed, outcome, source_values, export_values, tolerance)
        results.append(_result(layer, tensors, outcome))
    claimed_layers = {c.layer for c in pool if c.tensor.key in claimed}
    for layer, tensors in _plain_layers(export):
        if layer.name not in claimed_layers and sum(t.params for t in tensors) > 1:
            results.append(
                PairResult(
                    kind=PairKind.LAYER,
                    status=Status.EXTRA,
                    source=None,
                    export=layer.name,
                    source_type=None,
                    export_type=layer.type,
                    source_params=None,
                    export_params=sum(t.params for t in tensors),
                )
            )
    return results


def _plain_layers(model: Model) -> list[tuple[Layer, list[Tensor]]]:
    """Layers with weights that no recurrent layer owns."""
    names = {layer.name for layer in model.recurrent_layers}
    keys = {item.tensor.key for layer in model.recurrent_layers for item in layer.tensors}
    found = []
    for layer in model.layers:
        if layer.name in names:
            continue
        tensors = [t for t in layer.tensors if t.key not in keys]
        if tensors:
            found.append((layer, tensors))
    return found


def _pool(export: Model) -> list[_Candidate]:
    pool = [
        _Candidate(layer.name, layer.type, tensor)
        for layer, tensors in _plain_layers(export)
        for tensor in tensors
    ]
    pool += [_Candidate(None, None, tensor) for tensor in export.extra_tensors]
    # Weights the export's graph applies but does not store: a counterpart whose values
    # cannot be read, rather than none at all.
    pool += [_Candidate(None, "not stored", tensor) for tensor in export.unstored]
    return pool


def _permutations(source: tuple[int, ...], export: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Axis orders that turn the export tensor into the source's layout: as stored, transposed,
    a channels-last convolution kernel stored channels-first (ONNX Conv: (out, in, *k)) or
    output-first (TFLite CONV_2D: (out, *k, in))."""
    rank = len(source)
    if len(export) != rank:
        return []
    options = [tuple(range(rank))]
    if rank >= 2:
        options.append(tuple(reversed(range(rank))))
    if rank >= 3:
        # export (out, in, *k) -> source (*k, in, out)
        options.append((*range(2, rank), 1, 0))
        # export (out, *k, in) -> source (*k, in, out)
        options.append((*range(1, rank), 0))
    return [
        perm for perm in dict.fromkeys(options) if tuple(export[axis] for axis in perm) == source
    ]


@dataclass(frozen=True)
class _Layout:
    """How an export tensor is laid out as the source's: its 1-dimensions dropped where the two
    ranks differ (a Conv1D kernel (k, in, out) that TFLite stores as CONV_2D's (out, 1, k, in)),
    then its axes permuted."""

    perm: tuple[int, ...]
    squeeze: bool = False

    def view(self, array: np.ndarray, source: tuple[int, ...]) -> np.ndarray:
        if not self.squeeze:
            return np.transpose(array, self.perm)
        kept = tuple(d for d in array.shape if d != 1)
        return np.transpose(array.reshape(kept), self.perm).reshape(source)

    def export_index(
        self, at: tuple[int, ...], source: tuple[int, ...], export: tuple[int, ...]
    ) -> tuple[int, ...]:
        """Where an element of the source-shaped view sits in the stored export tensor."""
        inner = [i for i, d in zip(at, source, strict=True) if d != 1] if self.squeeze else at
        moved = [inner[self.perm.index(axis)] for axis in range(len(self.perm))]
        if not self.squeeze:
            return tuple(moved)
        return tuple(0 if d == 1 else moved.pop(0) for d in export)

    @property
    def reorders(self) -> bool:
        return self.squeeze or self.perm != tuple(range(len(self.perm)))


def _layouts(source: tuple[int, ...], export: tuple[int, ...]) -> list[_Layout]:
    found = [_Layout(perm) for perm in _permutations(source, export)]
    if not found and len(source) != len(export) and 0 not in source + export:
        squeezed = (tuple(d for d in source if d != 1), tuple(d for d in export if d != 1))
        found = [_Layout(perm, True) for perm in _permutations(*squeezed)]
    return found


def _match(
    tensor: Tensor,
    pool: Sequence[_Candidate],
    claimed: set[str],
    outcome: _Outcome,
    source_values: ValueReader,
    export_values: ValueReader,
    tolerance: Tolerance,
) -> None:
    chosen_layers = {c.layer for _, c in outcome.matched}
    candidates = [
        c for c in pool if c.tensor.key not in claimed and _layouts(tensor.shape, c.tensor.shape)
    ]
    candidates.sort(key=lambda c: c.layer not in chosen_layers)  # stable: file order otherwise
    if not candidates:
        counter = tensor.params <= 1 and tensor.dtype.startswith(("int", "uint"))
        (outcome.counters if counter else outcome.unmatched).append(tensor)
        return
    try:
        source = source_values.read(tensor.key)
    except ValuesUnavailableError as error:
        claimed.add(candidates[0].tensor.key)
        outcome.matched.append((tensor, candidates[0]))
        outcome.unread.append(str(error))
        return
    tried: list[tuple[_Candidate, _Layout, Delta]] = []
    for candidate in candidates[:MAX_CANDIDATES]:
        try:
            exported = export_values.read(candidate.tensor.key)
        except ValuesUnavailableError as error:
            outcome.unread.append(str(error))
            continue
        s_bound = bound(source_values, tensor.key)
        e_bound = bound(export_values, candidate.tensor.key)
        for layout in _layouts(tensor.shape, candidate.tensor.shape):
            found = delta(
                source,
                layout.view(exported, tensor.shape),
                tolerance,
                _sum(s_bound, e_bound, layout, tensor.shape),
            )
            tried.append((candidate, layout, found))
            if found.close:
                break
        if tried and tried[-1][2].close:
            break
    if not tried:
        claimed.add(candidates[0].tensor.key)
        outcome.matched.append((tensor, candidates[0]))
        return
    candidate, layout, found = next((t for t in tried if t[2].close), tried[0])
    claimed.add(candidate.tensor.key)
    outcome.matched.append((tensor, candidate))
    outcome.deltas.append(found)
    if layout.reorders:
        outcome.reconciled.append(Reconciled(Reconcile.TRANSPOSED, tensor=tensor.name))
    if not found.close:
        export_at = layout.export_index(found.at, tensor.shape, candidate.tensor.shape)
        outcome.differences.append(
            Difference(
                role="weight",
                direction=None,
                gate=None,
                export_gate=None,
                source=Spot(tensor.name, found.at),
                export=Spot(candidate.tensor.name, export_at),
                delta=found,
            )
        )


def _sum(
    source: np.ndarray | None,
    export: np.ndarray | None,
    layout: _Layout,
    shape: tuple[int, ...],
) -> np.ndarray | None:
    """How far the two sides' values may be from their unquantized floats (a quantized GGUF
    tensor: about a quantization step), the export's laid out like the source; None when
    neither side is quantized."""
    if export is not None:
        export = layout.view(export, shape)
    if source is None or export is None:
        return source if export is None else export
    return source + export


def _result(layer: Layer, tensors: Sequence[Tensor], outcome: _Outcome) -> PairResult:
    exports = list(dict.fromkeys(c.layer or c.tensor.name for _, c in outcome.matched))
    types = list(dict.fromkeys(c.type for _, c in outcome.matched if c.type))
    reconciled = list(outcome.reconciled)
    max_abs = max((d.max_abs for d in outcome.deltas), default=0.0)
    if not outcome.differences and any(not d.exact for d in outcome.deltas):
        reconciled.append(Reconciled(Reconcile.TOLERANCE, max_abs=max_abs))
    if not outcome.matched and not (outcome.counters and not outcome.unmatched):
        status = Status.MISSING
    elif outcome.unmatched:
        status = Status.SHAPE_DIFFERS
    elif outcome.differences:
        status = Status.VALUES_DIFFER
    elif outcome.unread:
        status = Status.UNVERIFIED
    elif any(r.what is Reconcile.TOLERANCE for r in reconciled):
        status = Status.EQUIVALENT
    else:
        status = Status.IDENTICAL
    return PairResult(
        kind=PairKind.LAYER,
        status=status,
        source=layer.name,
        export=" + ".join(exports) or None,
        source_type=layer.type,
        export_type=" + ".join(types) or None,
        source_params=sum(t.params for t in tensors),
        export_params=sum(c.tensor.params for _, c in outcome.matched) if outcome.matched else None,
        reconciled=tuple(reconciled),
        differences=tuple(outcome.differences),
        unmatched=tuple(
            Unmatched(Side.SOURCE, t.name, "weight", t.shape, t.params) for t in outcome.unmatched
        )
        + tuple(
            Unmatched(Side.SOURCE, t.name, COUNTER, t.shape, t.params, counted=False)
            for t in outcome.counters
        ),
        compared=sum(d.elements for d in outcome.deltas),
        max_abs=max_abs if outcome.deltas else None,
        max_rel=max((d.max_rel for d in outcome.deltas), default=0.0) if outcome.deltas else None,
        unread=tuple(outcome.unread),
    )
