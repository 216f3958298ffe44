"""Compare the values of two recurrent layers block by block, one stored tensor at a time.

For each direction and each role (kernel, recurrent kernel, biases) the stored tensors holding
that role are read from both files, cut into canonical gate blocks (`inspector.compare.layout`),
compared gate by gate and dropped before the next role is read: memory stays bounded by the
largest tensor. Biases are compared together per gate because conventions differ in how they
split one bias into two: a single Keras bias is an input bias plus a zero recurrent bias, and
wherever the recurrent bias is added outside the reset product only the sum of the two acts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from inspector.compare.diff import delta
from inspector.compare.layout import RESET_GATED, Block, CellLayout, Naming
from inspector.compare.result import Delta, Difference, Reconcile, Reconciled, Spot, Tolerance
from inspector.errors import ValuesUnavailableError
from inspector.formats.values import ValueReader, bound
from inspector.model import Direction, TensorRole

_MATRICES = (TensorRole.KERNEL, TensorRole.RECURRENT_KERNEL)
_DIRECTIONS = (Direction.FORWARD, Direction.BACKWARD)


@dataclass(frozen=True)
class CellValues:
    differences: tuple[Difference, ...]
    reconciled: tuple[Reconciled, ...]  # value-level conventions: padding, sums, tolerance
    compared: int
    max_abs: float
    max_rel: float
    naming: Naming | None  # the export naming the blocks matched under
    unread: tuple[str, ...]


@dataclass
class _Tally:
    differences: list[Difference] = field(default_factory=list)
    deltas: list[Delta] = field(default_factory=list)
    padded: int = 0
    added: int = 0
    dropped: int = 0  # source biases the export does not store (a converter drops zeros)
    summed: int = 0
    extra_zero: bool = True  # the padded / added biases hold zeros
    unread: list[str] = field(default_factory=list)

    def merge(self, other: _Tally) -> None:
        self.differences += other.differences
        self.deltas += other.deltas
        self.padded += other.padded
        self.added += other.added
        self.dropped += other.dropped
        self.summed += other.summed
        self.extra_zero &= other.extra_zero
        self.unread += other.unread

    @property
    def close(self) -> bool:
        return not self.differences


class _Pair:
    """The two layouts and how each names one direction's gates."""

    def __init__(self, source: CellLayout, export: CellLayout, direction: int, naming: Naming):
        self.source = source
        self.export = export
        self.index = direction
        self.export_naming = naming
        # A lowered source does not name its gates either: trust the positions.
        self.source_naming = source.namings[direction] or naming

    def source_gate(self, block: Block) -> str:
        return self.source_naming.gate(block.position)

    def export_gate(self, block: Block) -> str:
        return self.export_naming.gate(block.position)

    def names(self, source: Block | None, export: Block | None) -> tuple[str | None, str | None]:
        """The source's and (where it differs) the export's own name for a gate."""
        own = self.source_naming.order[source.position] if source is not None else None
        theirs = self.export_naming.order[export.position] if export is not None else None
        if own is None:
            return theirs, None
        return own, theirs if theirs != own else None

    @property
    def direction(self) -> Direction | None:
        return _DIRECTIONS[self.index] if self.source.layer.directions == 2 else None

    def summable(self, gate: str) -> bool:
        cell = self.source.cell(self.index)
        reset_after = cell.reset_after or self.export.cell(self.index).reset_after
        return not (reset_after and RESET_GATED.get(cell.kind) == gate)


def compare_cells(
    source: CellLayout,
    export: CellLayout,
    source_values: ValueReader,
    export_values: ValueReader,
    tolerance: Tolerance,
) -> CellValues:
    total = _Tally()
    chosen: dict[int, Naming] = {}
    for direction in range(source.layer.directions):
        candidates = export.candidates(direction, source.convention)
        for roles in (*((role,) for role in _MATRICES), _BIASES):
            s_blocks = _select(source.blocks, direction, roles)
            e_blocks = _select(export.blocks, direction, roles)
            if not s_blocks and not e_blocks:
                continue
            try:
                sides = _Sides(
                    s_blocks,
                    e_blocks,
                    _read(source_values, s_blocks),
                    _read(export_values, e_blocks),
                    _bounds(source_values, s_blocks),
                    _bounds(export_values, e_blocks),
                )
            except ValuesUnavailableError as error:
                total.unread.append(str(error))
                continue
            ranked = [chosen[direction]] if direction in chosen else []
            ranked += [n for n in candidates if n not in ranked]
            tally, naming = _best(ranked, source, export, direction, sides, tolerance)
            chosen.setdefault(direction, naming)
            total.merge(tally)
            del sides  # one role's tensors at a time
    return _summary(total, chosen.get(0))


_BIASES = (TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS)


def _select(blocks: Sequence[Block], direction: int, roles: Iterable[TensorRole]) -> list[Block]:
    wanted = set(roles)
    return [b for b in blocks if b.direction == direction and b.role in wanted]


def _read(values: ValueReader, blocks: Sequence[Block]) -> dict[str, np.ndarray]:
    return {key: values.read(key) for key in dict.fromkeys(b.key for b in blocks)}


def _bounds(values: ValueReader, blocks: Sequence[Block]) -> dict[str, np.ndarray]:
    """How far each stored value may be from the float it was quantized from, for the tensors
    a side stores quantized (`formats.values.bound`)."""
    found = {key: bound(values, key) for key in dict.fromkeys(b.key for b in blocks)}
    return {key: value for key, value in found.items() if value is not None}


@dataclass(frozen=True)
class _Sides:
    """One role's blocks of one direction on both sides, with the tensors they cut from and
    the quantization bounds of those stored quantized."""

    source: Sequence[Block]
    export: Sequence[Block]
    source_arrays: dict[str, np.ndarray]
    export_arrays: dict[str, np.ndarray]
    source_bounds: dict[str, np.ndarray] = field(default_factory=dict)
    export_bounds: dict[str, np.ndarray] = field(default_factory=dict)

    def bound(self, *blocks: tuple[Block | None, bool]) -> np.ndarray | None:
        """The sum of the bounds of the given (block, is_source) cuts; None when none has one."""
        total: np.ndarray | None = None
        for block, is_source in blocks:
            if block is None:
                continue
            stored = (self.source_bounds if is_source else self.export_bounds).get(block.key)
            if stored is not None:
                cut = block.cut(stored)
                total = cut if total is None else total + cut
        return total


def _best(
    ranked: Sequence[Naming],
    source: CellLayout,
    export: CellLayout,
    direction: int,
    sides: _Sides,
    tolerance: Tolerance,
) -> tuple[_Tally, Naming]:
    """The export's own gate naming; for a lowered export, the first gate order of the cell
    table under which the blocks match (the one another role matched is tried first)."""
    first: tuple[_Tally, Naming] | None = None
    for naming in ranked:
        pair = _Pair(source, export, direction, naming)
        tally = _compare(pair, sides, tolerance)
        if tally.close:
            return tally, naming
        first = first or (tally, naming)
    assert first is not None
    return first


def _compare(pair: _Pair, sides: _Sides, tolerance: Tolerance) -> _Tally:
    first = next(iter([*sides.source, *sides.export]), None)
    if first is not None and first.role in _MATRICES:
        return _matrices(pair, sides, tolerance)
    return _biases(pair, sides, tolerance)


def _matrices(pair: _Pair, sides: _Sides, tolerance: Tolerance) -> _Tally:
    tally = _Tally()
    exports = {pair.export_gate(b): b for b in sides.export}
    for block in sides.source:
        gate = pair.source_gate(block)
        counterpart = exports.get(gate)
        if counterpart is None:
            tally.unread.append(f"no export block for gate {gate} of {block.name}")
            continue
        s = block.cut(sides.source_arrays[block.key])
        e = counterpart.cut(sides.export_arrays[counterpart.key])
        if s.shape != e.shape:
            tally.unread.append(
                f"gate {gate}: {block.name} gives {list(s.shape)}, {counterpart.name} "
                f"gives {list(e.shape)}"
            )
            continue
        found = delta(s, e, tolerance, sides.bound((block, True), (counterpart, False)))
        tally.deltas.append(found)
        if not found.close:
            tally.differences.append(_difference(pair, block, counterpart, found))
    return tally


def _biases(pair: _Pair, sides: _Sides, tolerance: Tolerance) -> _Tally:
    tally = _Tally()
    s_in, s_rec = _by_gate(pair.source_gate, sides.source)
    e_in, e_rec = _by_gate(pair.export_gate, sides.export)
    for gate in dict.fromkeys([*s_in, *s_rec, *e_in, *e_rec]):
        blocks = (s_in.get(gate), s_rec.get(gate), e_in.get(gate), e_rec.get(gate))
        arrays = [
            b.cut((sides.source_arrays if side < 2 else sides.export_arrays)[b.key])
            if b is not None
            else None
            for side, b in enumerate(blocks)
        ]
        present = [a for a in arrays if a is not None]
        zero = np.zeros_like(present[0], dtype=np.float64)
        si, sr, ei, er = (a if a is not None else zero for a in arrays)
        if any(a.shape != zero.shape for a in (si, sr, ei, er)):
            tally.unread.append(f"gate {gate}: bias blocks of different sizes")
            continue
        s_in_b, s_rec_b, e_in_b, e_rec_b = blocks
        d_in = delta(si, ei, tolerance, sides.bound((s_in_b, True), (e_in_b, False)))
        d_rec = delta(sr, er, tolerance, sides.bound((s_rec_b, True), (e_rec_b, False)))
        stored = [
            d
            for d, pair_blocks in ((d_in, (blocks[0], blocks[2])), (d_rec, (blocks[1], blocks[3])))
            if pair_blocks != (None, None)
        ]
        # What the export stores beyond the source, whatever its values (counts reconcile).
        if blocks[0] is None and blocks[1] is None:
            tally.added += sum(a.size for a in arrays[2:] if a is not None)
            tally.extra_zero &= d_in.close and d_rec.close
        elif blocks[2] is None and blocks[3] is None:
            tally.dropped += sum(a.size for a in arrays[:2] if a is not None)
        elif blocks[1] is None and blocks[3] is not None:
            tally.padded += zero.size
            tally.extra_zero &= d_rec.close
        if d_in.close and d_rec.close:
            tally.deltas += stored
            continue
        if pair.summable(gate):
            d_sum = delta(
                si + sr,
                ei + er,
                tolerance,
                sides.bound((s_in_b, True), (s_rec_b, True), (e_in_b, False), (e_rec_b, False)),
            )
            if d_sum.close:
                tally.deltas.append(d_sum)
                tally.summed += zero.size
                continue
        tally.deltas += stored
        for d, s_block, e_block in ((d_in, blocks[0], blocks[2]), (d_rec, blocks[1], blocks[3])):
            if not d.close:
                tally.differences.append(_difference(pair, s_block, e_block, d))
    return tally


def _by_gate(
    gate_of: Callable[[Block], str], blocks: Sequence[Block]
) -> tuple[dict[str, Block], dict[str, Block]]:
    inputs: dict[str, Block] = {}
    recurrent: dict[str, Block] = {}
    for block in blocks:
        target = inputs if block.role is TensorRole.INPUT_BIAS else recurrent
        target[gate_of(block)] = block
    return inputs, recurrent


def _difference(
    pair: _Pair, source: Block | None, export: Block | None, found: Delta
) -> Difference:
    anchor = source or export
    assert anchor is not None
    gate, export_gate = pair.names(source, export)
    role = (source.stored_role if source is not None else anchor.role).value
    return Difference(
        role=role,
        direction=pair.direction,
        gate=gate,
        export_gate=export_gate,
        source=Spot(source.name, source.stored_index(found.at)) if source is not None else None,
        export=Spot(export.name, export.stored_index(found.at)) if export is not None else None,
        delta=found,
    )


def _summary(total: _Tally, naming: Naming | None) -> CellValues:
    reconciled: list[Reconciled] = []
    if total.padded:
        reconciled.append(
            Reconciled(Reconcile.BIAS_PADDED, params=total.padded, value=total.extra_zero)
        )
    if total.added:
        reconciled.append(
            Reconciled(Reconcile.BIAS_ADDED, params=total.added, value=total.extra_zero)
        )
    if total.dropped:
        dropped_zero = not any(d.role.endswith("bias") for d in total.differences)
        reconciled.append(
            Reconciled(Reconcile.BIAS_DROPPED, params=total.dropped, value=dropped_zero)
        )
    if total.summed:
        reconciled.append(Reconciled(Reconcile.BIAS_SUMMED, params=total.summed))
    max_abs = max((d.max_abs for d in total.deltas), default=0.0)
    if not total.differences and any(not d.exact for d in total.deltas):
        reconciled.append(Reconciled(Reconcile.TOLERANCE, max_abs=max_abs))
    return CellValues(
        differences=tuple(sorted(total.differences, key=lambda d: -d.delta.max_abs)),
        reconciled=tuple(reconciled),
        compared=sum(d.elements for d in total.deltas),
        max_abs=max_abs,
        max_rel=max((d.max_rel for d in total.deltas), default=0.0),
        naming=naming,
        unread=tuple(total.unread),
    )
