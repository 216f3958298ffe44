"""`rnninspect compare SOURCE EXPORT`: prove an export faithful, layer by layer.

Both files are read as for a report (metadata only); recurrent layers are paired
(`inspector.compare.pairing`), their structure compared (cell kind, units, input width, directions,
projections), their counts reconciled across conventions, and their values compared in a
canonical layout (`inspector.compare.layout`, `inspector.compare.values`). Other layers are
paired by their tensors' shapes and compared the same way (`inspector.compare.plain`).

Value comparison is the one place rnninspect reads tensor data: one tensor at a time, from files
opened read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from inspector.compare.blocks import compare_block
from inspector.compare.layout import CellLayout, layout_of
from inspector.compare.pairing import pair_recurrent
from inspector.compare.plain import compare_plain
from inspector.compare.result import (
    CompareReport,
    Field,
    Lowering,
    Mismatch,
    PairKind,
    PairResult,
    Reconcile,
    Reconciled,
    Side,
    Status,
    Tolerance,
    Unmatched,
)
from inspector.compare.sides import file_side
from inspector.compare.values import CellValues, compare_cells
from inspector.formats import DEQUANTIZED_VALUES, open_source, open_values, read_model
from inspector.formats.source import Source
from inspector.formats.values import ValueReader
from inspector.location import Location
from inspector.model import CellConfig, CellKind, Model, RecurrentLayer, TensorRole
from inspector.report.explain import MATRIX_ROLES

_CELL_FIELDS = frozenset({Field.CELL, Field.RESET_AFTER})


def compare_files(
    source: Location,
    export: Location,
    tolerance: Tolerance | None = None,
    mapping: Mapping[str, str] | None = None,
    started: Callable[[str], None] = lambda label: None,
) -> CompareReport:
    """Compare two model files (paths or URLs). Raises InspectorError when either cannot be
    read."""
    tolerance = tolerance or Tolerance()
    # Opened once each: a URL's pages fetched for the report serve the values too.
    source_file, export_file = open_source(source), open_source(export)
    started(str(source_file))
    source_model = read_model(source_file, whole_keys=True)  # values are read by key
    started(str(export_file))
    export_model = read_model(export_file, whole_keys=True)
    started(f"{source_file} vs {export_file}")
    return compare_models(
        source_model, export_model, tolerance, mapping or {}, (source_file, export_file)
    )


def compare_models(
    source: Model,
    export: Model,
    tolerance: Tolerance,
    mapping: Mapping[str, str],
    files: tuple[Source, Source] | None = None,
) -> CompareReport:
    """`files`: where the two models were read (default: their paths)."""
    pairs = pair_recurrent(source, export, mapping)
    results: list[PairResult] = []
    where = files or (None, None)
    with (
        open_values(source, where[0]) as source_values,
        open_values(export, where[1]) as export_values,
    ):
        for s, e in pairs.matched:
            if s.cell.block is not None and e.cell.block is not None:  # Mamba, RWKV, ...
                results.append(compare_block(s, e, source_values, export_values, tolerance))
                continue
            results.append(
                compare_recurrent(source, export, s, e, source_values, export_values, tolerance)
            )
        results += [_alone(layer, Side.SOURCE) for layer in pairs.missing]
        results += [_alone(layer, Side.EXPORT) for layer in pairs.extra]
        results += compare_plain(source, export, source_values, export_values, tolerance)
    order = {layer.name: position for position, layer in enumerate(source.layers)}
    results.sort(key=lambda r: order.get(r.source or "", len(order)))
    return CompareReport(
        source=file_side(source, results, source=True),
        export=file_side(export, results, source=False),
        tolerance=tolerance,
        pairs=tuple(results),
    )


def _alone(layer: RecurrentLayer, side: Side) -> PairResult:
    here = side is Side.SOURCE
    return PairResult(
        kind=PairKind.RECURRENT,
        status=Status.MISSING if here else Status.EXTRA,
        source=layer.name if here else None,
        export=None if here else layer.name,
        source_type=layer.type if here else None,
        export_type=None if here else layer.type,
        source_params=layer.params if here else None,
        export_params=None if here else layer.params,
    )


# --- one recurrent pair -------------------------------------------------------------------


def compare_recurrent(
    source_model: Model,
    export_model: Model,
    source: RecurrentLayer,
    export: RecurrentLayer,
    source_values: ValueReader,
    export_values: ValueReader,
    tolerance: Tolerance,
) -> PairResult:
    s_layout = layout_of(source, source_model.format)
    e_layout = layout_of(export, export_model.format)
    mismatches = _mismatches(source, export)
    unmatched = _unmatched(s_layout, e_layout) + _beside(export_model, export)
    skeleton = PairResult(
        kind=PairKind.RECURRENT,
        status=Status.IDENTICAL,
        source=source.name,
        export=export.name,
        source_type=source.type,
        export_type=export.type,
        source_params=source.params,
        export_params=export.params,
        unmatched=unmatched,
        lowering=Lowering(export.type, None) if export.lowered else None,
    )
    if mismatches or any(u.counted for u in unmatched):
        if source.params != export.params:
            mismatches += (Mismatch(Field.PARAMS, source.params, export.params),)
        cell = any(m.field in _CELL_FIELDS for m in mismatches)
        status = Status.CELL_DIFFERS if cell else Status.SHAPE_DIFFERS
        return replace(skeleton, status=status, mismatches=mismatches)
    quantized = _quantized_against_float(
        source,
        export,
        source_model.format in DEQUANTIZED_VALUES,
        export_model.format in DEQUANTIZED_VALUES,
    )
    if quantized is not None:
        # Integer weights hold round(w / scale) + zero point: comparing them with the float
        # source as stored would report every element as different.
        return replace(skeleton, status=Status.UNVERIFIED, unread=(quantized,))
    values = compare_cells(s_layout, e_layout, source_values, export_values, tolerance)
    dropped = _bias_dropped(s_layout, e_layout)
    if source.params + _bias_added(s_layout, e_layout) - dropped != export.params:
        mismatches = (Mismatch(Field.PARAMS, source.params, export.params),)
    naming = values.naming
    return replace(
        skeleton,
        status=_status(values, mismatches, source, export),
        reconciled=_layout_conventions(s_layout, e_layout, values)
        + _dequantized(source, export, source_model, export_model)
        + values.reconciled,
        differences=values.differences,
        mismatches=mismatches,
        compared=values.compared,
        max_abs=values.max_abs,
        max_rel=values.max_rel,
        unread=values.unread,
        lowering=Lowering(
            export.type,
            naming.convention if naming else None,
            naming.order if naming else (),
        )
        if export.lowered
        else None,
    )


def _quantized_against_float(
    source: RecurrentLayer,
    export: RecurrentLayer,
    source_dequantized: bool,
    export_dequantized: bool,
) -> str | None:
    """Why the values cannot be compared when one side stores quantized (integer) matrices and
    the other floats, or None. A side whose value reader dequantizes counts as floats."""

    found_source = [] if source_dequantized else _integer_matrices(source)
    found_export = [] if export_dequantized else _integer_matrices(export)
    if bool(found_source) == bool(found_export):
        return None
    side, dtypes = ("export", found_export) if found_export else ("source", found_source)
    return (
        f"the {side} stores quantized {'/'.join(dtypes)} weights (with scales and zero points); "
        "values are not compared as stored and rnninspect does not dequantize them"
    )


def _integer_matrices(layer: RecurrentLayer) -> list[str]:
    """The integer dtypes of a layer's kernels: quantized weights."""
    return sorted(
        {
            t.tensor.dtype
            for t in layer.tensors
            if t.role in MATRIX_ROLES and t.tensor.dtype.startswith(("int", "uint"))
        }
    )


def _dequantized(
    source: RecurrentLayer, export: RecurrentLayer, source_model: Model, export_model: Model
) -> tuple[Reconciled, ...]:
    """Say so where a side's quantized weights were compared dequantized (TFLite)."""
    found = []
    for side, layer, model in (("source", source, source_model), ("export", export, export_model)):
        dtypes = _integer_matrices(layer)
        if dtypes and model.format in DEQUANTIZED_VALUES:
            found.append(Reconciled(Reconcile.DEQUANTIZED, tensor=f"{side} {'/'.join(dtypes)}"))
    return tuple(found)


def _bias_added(source: CellLayout, export: CellLayout) -> int:
    """Bias elements the export stores by convention where the source stores none: the zero
    recurrent bias padding a single bias, or zero biases for a layer without bias."""
    recurrent, inputs = TensorRole.RECURRENT_BIAS, TensorRole.INPUT_BIAS
    if not source.elements(inputs, recurrent):
        return export.elements(inputs, recurrent)
    if not source.elements(recurrent):
        return export.elements(recurrent)
    return 0


def _bias_dropped(source: CellLayout, export: CellLayout) -> int:
    """Source bias elements an export without any bias does not store: a converter folds an
    all-zero bias away (TFLite), so the counts differ by exactly those; their values, compared
    with zero, decide whether the pair is faithful."""
    biases = (TensorRole.INPUT_BIAS, TensorRole.RECURRENT_BIAS)
    if export.elements(*biases) or not export.layer.lowered:
        return 0
    return source.elements(*biases)


def _status(
    values: CellValues,
    mismatches: tuple[Mismatch, ...],
    source: RecurrentLayer,
    export: RecurrentLayer,
) -> Status:
    if mismatches:
        return Status.SHAPE_DIFFERS
    if values.differences:
        return Status.VALUES_DIFFER
    if values.unread:
        return Status.UNVERIFIED
    if export.lowered and not source.lowered:
        return Status.LOWERED
    return Status.EQUIVALENT if values.reconciled else Status.IDENTICAL


def _mismatches(source: RecurrentLayer, export: RecurrentLayer) -> tuple[Mismatch, ...]:
    found: list[Mismatch] = []
    if source.directions != export.directions:
        found.append(Mismatch(Field.DIRECTIONS, source.directions, export.directions))
    s_width, e_width = source.input_dim, export.input_dim
    if s_width is not None and e_width is not None and s_width != e_width:
        found.append(Mismatch(Field.INPUT_DIM, s_width, e_width))
    for s_cell, e_cell in dict.fromkeys(
        [(source.cell, export.cell), (_cell(source, 1), _cell(export, 1))]
    ):
        if s_cell.kind is not e_cell.kind:
            found.append(Mismatch(Field.CELL, s_cell.kind.value, e_cell.kind.value))
        if None not in (s_cell.units, e_cell.units) and s_cell.units != e_cell.units:
            found.append(Mismatch(Field.UNITS, s_cell.units, e_cell.units))
        s_reset, e_reset = s_cell.reset_after, e_cell.reset_after
        if s_cell.kind is CellKind.GRU and None not in (s_reset, e_reset) and s_reset != e_reset:
            found.append(Mismatch(Field.RESET_AFTER, s_reset, e_reset))
    return tuple(found)


def _cell(layer: RecurrentLayer, direction: int) -> CellConfig:
    if direction == 1 and layer.backward_cell is not None:
        return layer.backward_cell
    return layer.cell


_WHOLE_ROLES = (TensorRole.PROJECTION, TensorRole.PEEPHOLE)


def _unmatched(source: CellLayout, export: CellLayout) -> tuple[Unmatched, ...]:
    """Projection and peephole tensors present on one side only (a dropped projection)."""
    found: list[Unmatched] = []
    for side, mine, theirs in (
        (Side.SOURCE, source, export),
        (Side.EXPORT, export, source),
    ):
        other_roles = {item.role for item in theirs.layer.tensors}
        for item in mine.unsplit:
            if item.role in _WHOLE_ROLES and item.role not in other_roles:
                tensor = item.tensor
                found.append(
                    Unmatched(side, tensor.name, item.role.value, tensor.shape, tensor.params)
                )
    return tuple(found)


def _beside(model: Model, layer: RecurrentLayer) -> tuple[Unmatched, ...]:
    """Tensors a lowered recurrence's row holds beyond its cell weights (a first step's product
    folded into a constant): shown, not counted against the export."""
    if not layer.lowered:
        return ()
    keys = {item.tensor.key for item in layer.tensors}
    row = next((r for r in model.layers if r.name == layer.name), None)
    if row is None:
        return ()
    return tuple(
        Unmatched(Side.EXPORT, t.name, "constant", t.shape, t.params, counted=False)
        for t in row.tensors
        if t.key not in keys and t.params > 1
    )


def _layout_conventions(
    source: CellLayout, export: CellLayout, values: CellValues
) -> tuple[Reconciled, ...]:
    found: list[Reconciled] = []
    s_conv, e_conv = source.convention, export.convention
    if source.orientation != export.orientation:
        found.append(
            Reconciled(
                Reconcile.LAYOUT,
                s_conv,
                e_conv,
                source_order=(source.layout_name,),
                export_order=(export.layout_name,),
            )
        )
    if source.stacked != export.stacked:
        found.append(
            Reconciled(Reconcile.DIRECTIONS, s_conv, e_conv, directions=source.layer.directions)
        )
    own, naming = source.naming, values.naming
    if own is not None and naming is not None and own.order != naming.order:
        found.append(
            Reconciled(
                Reconcile.GATE_ORDER,
                s_conv,
                naming.convention,
                own.order,
                naming.order,
            )
        )
    s_form, e_form = source.bias_form, export.bias_form
    if s_form is not None and e_form is not None and s_form != e_form:
        found.append(
            Reconciled(Reconcile.BIAS_HALVES, s_conv, e_conv, (s_form.value,), (e_form.value,))
        )
    reset = source.layer.cell.reset_after
    if (
        source.layer.cell.kind is CellKind.GRU
        and reset is not None
        and export.layer.cell.reset_after == reset
        and s_conv is not e_conv
    ):
        found.append(Reconciled(Reconcile.RESET_AFTER, s_conv, e_conv, value=reset))
    return tuple(found)
