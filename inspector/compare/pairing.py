"""Which recurrent layer of the export is which layer of the source.

Exporters rename everything (`lstm` becomes `LSTM__30`, `node_lstm__2` or `/lstm/LSTM`), so
layers pair by what survives an export: their order, their cell kind and their shapes (units,
input width, directions). `--map SRC=DST` settles what this cannot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inspector.errors import UsageError
from inspector.model import Model, RecurrentLayer


@dataclass(frozen=True)
class Pairs:
    matched: tuple[tuple[RecurrentLayer, RecurrentLayer], ...]
    missing: tuple[RecurrentLayer, ...]  # in the source only
    extra: tuple[RecurrentLayer, ...]  # in the export only


def parse_map(items: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        source, sep, export = item.partition("=")
        if not sep or not source or not export:
            raise UsageError(f"--map '{item}': expected SOURCE_LAYER=EXPORT_LAYER")
        mapping[source] = export
    return mapping


def pair_recurrent(source: Model, export: Model, mapping: Mapping[str, str]) -> Pairs:
    sources = list(source.recurrent_layers)
    exports = list(export.recurrent_layers)
    forced = _forced(sources, exports, mapping, source.path, export.path)
    taken = {id(e) for e in forced.values()}
    order = {id(e): index for index, e in enumerate(exports)}
    matched: list[tuple[RecurrentLayer, RecurrentLayer]] = []
    missing: list[RecurrentLayer] = []
    for position, layer in enumerate(sources):
        chosen = forced.get(id(layer))
        if chosen is None:
            free = [e for e in exports if id(e) not in taken]
            chosen = _best(layer, free, position, exports, order)
        if chosen is None:
            missing.append(layer)
            continue
        taken.add(id(chosen))
        matched.append((layer, chosen))
    extra = tuple(e for e in exports if id(e) not in taken)
    return Pairs(tuple(matched), tuple(missing), extra)


def _forced(
    sources: Sequence[RecurrentLayer],
    exports: Sequence[RecurrentLayer],
    mapping: Mapping[str, str],
    source_path: str,
    export_path: str,
) -> dict[int, RecurrentLayer]:
    forced: dict[int, RecurrentLayer] = {}
    for source_name, export_name in mapping.items():
        layer = next((s for s in sources if s.name == source_name), None)
        target = next((e for e in exports if e.name == export_name), None)
        if layer is None:
            names = ", ".join(s.name for s in sources) or "none"
            raise UsageError(
                f"--map: no recurrent layer '{source_name}' in {source_path} (has: {names})"
            )
        if target is None:
            names = ", ".join(e.name for e in exports) or "none"
            raise UsageError(
                f"--map: no recurrent layer '{export_name}' in {export_path} (has: {names})"
            )
        forced[id(layer)] = target
    return forced


def _best(
    layer: RecurrentLayer,
    free: Sequence[RecurrentLayer],
    position: int,
    exports: Sequence[RecurrentLayer],
    order: Mapping[int, int],
) -> RecurrentLayer | None:
    """The same cell kind with the most shapes in common, earliest first (`order`: each export
    layer's position, by id); failing that, the export layer at the same position (its kind
    then differs, which the comparison reports)."""
    same_kind = [e for e in free if e.cell.kind is layer.cell.kind]
    if same_kind:
        return max(same_kind, key=lambda e: (_agreement(layer, e), -order[id(e)]))
    if position < len(exports) and any(e is exports[position] for e in free):
        return exports[position]
    return None


def _agreement(source: RecurrentLayer, export: RecurrentLayer) -> int:
    return sum(
        (
            source.cell.units == export.cell.units,
            source.input_dim == export.input_dim,
            source.directions == export.directions,
        )
    )
