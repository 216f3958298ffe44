"""The JSON contract scripts depend on. Keys may be added, never renamed or dropped.

    {"file", "format", "producer", "total_params", "trainable_params", "non_trainable_params",
     "weights_bytes", "layers": [...], "recurrent_layers": [...], "warnings": [...]}

Additions beyond the original contract: "optimizer" (null or values/bytes/share of file),
"excluded" (tensors left out of the totals, with the reason), "unstored" (weights the graph
applies but the file does not hold, e.g. TFLite resource variables: name, shape, params; the
total counts none of them and size gates fail) and "details" (facts about the file) at the top
level; "input_dim_source", "reset_after", "use_bias", "gate_order", "location" and
"reason" and "notes" (facts about the layer: where each tensor came from, GRU
linear_before_reset, how a lowered recurrence was recognised) and "proj_size" (PyTorch LSTM
projection width, null without one) per recurrent layer; "gate" per tensor; "file_bytes" (the
file's size on disk) and "gates" (each limit the run set: the measured value and whether it
passed; an empty list without limits) at the top level. "shared_with" on
every layer and recurrent layer (the rows holding stored tensors this one also reads; its
"params" in "layers" leave them out, so the rows sum to "total_params") and on every recurrent
tensor (the holding row, or null). Compute and signature (inspector.compute): "compute" at the
top level (MACs per time step, element-wise work, state, the per-sequence total for --seq-len,
each dense/convolution/embedding layer's MACs) and "signature" (the inputs and outputs: name,
shape with symbolic dims as strings, dtype); per layer "output_shape"; per recurrent layer
"macs_per_step", "macs_per_position", "elementwise_per_step", "activations_per_step", "state"
(streams h/c per direction in floats), "state_floats", "state_bytes", "state_dtype" and
"compute_reason".
Per recurrent layer, how its split and its row reconcile
(`report/reconcile.py`): "row" (the row holding it, or null), "row_params", "row_recurrent_params"
(the row's tensors this split is, or is computed from), "row_other_tensors" (the row's tensors
outside every split of the row: name, params; "row_params" = the row's members'
"row_recurrent_params" + these), "split_in_row" and "split_outside_row" (split tensors the row
does not hold: name, params, "held_by" row or null when not stored; "params" = "split_in_row" +
these).
Recurrent blocks of language models (inspector.blocks: Mamba, RWKV, ...): per recurrent layer
"block" (the block table's entry, null for a gated cell), "block_source" (the modeling file and
paper it follows) and "dims" (its dimensions, null for a gated cell); per tensor "member" (its
name in the block table) and "part" (input projection, convolution, state transition, gates,
norm, output projection; null for a gated cell's tensor); per state stream "dtype" and "bytes".
At the top level "state": what one sequence holds (inspector.compute.deployment): "context",
"dtype" (the --state-dtype override or null), "recurrent_elements"/"recurrent_bytes" (every
recurrent layer's state, constant in the context), "complete", "kv_cache" (each attention layer
of a hybrid: layer, width per token, tokens held, layers, window, elements), "kv_elements",
"kv_bytes", "kv_dtype", "total_bytes", "architecture", and "transformer_kv" (the KV cache of a
transformer of the same width and depth at the context: width, depth, elements, bytes,
assumption; null where the model is no language model's decoder).
"""

from __future__ import annotations

from typing import Protocol

from inspector.blocks import BLOCK_BY_NAME, resolved
from inspector.cells import Convention, cell_gate_order, convention_of
from inspector.compute import Compute, Deployment, RecurrentCompute
from inspector.model import Check, Dim, Model, RecurrentLayer, TensorSpec
from inspector.report.reconcile import Reconciliation, reconcile
from inspector.report.verdicts import GateResult


# What the contract reads of a report. inspector.report.analysis.Report satisfies these; they
# are typed by shape so that this module sits below the analysis and never imports it back.
class _Check(Protocol):
    @property
    def layer(self) -> RecurrentLayer: ...
    @property
    def expected(self) -> int | None: ...
    @property
    def expression(self) -> str: ...
    @property
    def status(self) -> Check: ...
    @property
    def reason(self) -> str | None: ...


class _Totals(Protocol):
    @property
    def total(self) -> int: ...
    @property
    def trainable(self) -> int | None: ...
    @property
    def non_trainable(self) -> int | None: ...
    @property
    def weights_bytes(self) -> int: ...
    @property
    def file_bytes(self) -> int | None: ...


class Report(Protocol):
    @property
    def model(self) -> Model: ...
    @property
    def totals(self) -> _Totals: ...
    @property
    def checks(self) -> tuple[_Check, ...]: ...
    @property
    def gates(self) -> tuple[GateResult, ...]: ...
    @property
    def compute(self) -> Compute: ...
    @property
    def deployment(self) -> Deployment: ...


def report_to_dict(report: Report) -> dict[str, object]:
    model = report.model
    optimizer = None
    if model.optimizer is not None:
        optimizer = {
            "values": model.optimizer.values,
            "bytes": model.optimizer.nbytes,
            "share_of_file": round(model.optimizer.share_of_file, 6),
        }
    convention = convention_of(model.format)
    figures = report.compute
    per_layer = {item.layer: item for item in figures.recurrent}
    return {
        "file": model.path,
        "format": model.format.value,
        "producer": model.producer,
        "total_params": report.totals.total,
        "trainable_params": report.totals.trainable,
        "non_trainable_params": report.totals.non_trainable,
        "weights_bytes": report.totals.weights_bytes,
        "layers": [
            {
                "name": layer.name,
                "type": layer.type,
                "params": layer.params,
                "trainable": layer.trainable,
                "shared_with": list(layer.shared_with),
                "output_shape": _shape(layer.output_shape),
            }
            for layer in model.layers
        ],
        "recurrent_layers": [
            {
                **_recurrent(check, convention, item),
                **_recurrent_compute(per_layer[check.layer.name]),
            }
            for check, item in zip(report.checks, reconcile(model), strict=True)
        ],
        "warnings": list(model.warnings),
        "optimizer": optimizer,
        "excluded": [
            {
                "reason": item.reason,
                "params": item.params,
                "tensors": [t.name for t in item.tensors],
            }
            for item in model.excluded
        ],
        "unstored": [
            {"name": t.name, "shape": list(t.shape), "params": t.params} for t in model.unstored
        ],
        "details": {detail.key: detail.value for detail in model.details},
        "file_bytes": report.totals.file_bytes,
        "gates": [_gate(gate) for gate in report.gates],
        "compute": _compute(figures),
        "state": _state(report.deployment),
        "signature": {
            "inputs": [_spec(spec) for spec in model.inputs],
            "outputs": [_spec(spec) for spec in model.outputs],
        },
    }


def _shape(shape: tuple[Dim, ...] | None) -> list[Dim] | None:
    return None if shape is None else list(shape)


def _spec(spec: TensorSpec) -> dict[str, object]:
    return {"name": spec.name, "shape": _shape(spec.shape), "dtype": spec.dtype}


def _compute(figures: Compute) -> dict[str, object]:
    return {
        "macs_per_step": figures.macs_per_step,
        "recurrent_macs_per_step": figures.recurrent_macs_per_step,
        "layer_macs": figures.layer_macs,
        "complete": figures.complete,
        "uncounted": list(figures.uncounted),
        "elementwise_per_step": figures.elementwise_per_step,
        "state_floats": figures.state_floats,
        "state_bytes": figures.state_bytes,
        "seq_len": figures.seq_len,
        "macs_per_sequence": figures.macs_per_sequence,
        "layers": [
            {
                "name": item.layer,
                "type": item.type,
                "kind": item.kind,
                "macs_per_position": item.macs_per_position,
                "positions": item.positions,
                "macs": item.macs,
            }
            for item in figures.layers
        ],
    }


TRANSFORMER_ASSUMPTION = (
    "a transformer of the same width and depth: full multi-head attention in every layer, "
    "keys and values of d_model elements each per token"
)


def _state(figures: Deployment) -> dict[str, object]:
    decoder = figures.decoder
    elements = figures.transformer_kv_elements
    return {
        "context": figures.context,
        "dtype": figures.dtype,
        "recurrent_elements": figures.state_elements,
        "recurrent_bytes": figures.state_bytes,
        "complete": figures.state_complete,
        "kv_cache": [
            {
                "layer": item.layer,
                "width": item.width,
                "tokens": item.tokens,
                "count": item.count,
                "window": item.window,
                "elements": item.elements,
            }
            for item in figures.kv
        ],
        "kv_elements": figures.kv_elements,
        "kv_bytes": figures.kv_bytes,
        "kv_dtype": figures.kv_dtype,
        "total_bytes": figures.total_bytes,
        "architecture": decoder.architecture if decoder else None,
        "transformer_kv": None
        if decoder is None or elements is None
        else {
            "width": decoder.width,
            "depth": decoder.depth,
            "elements": elements,
            "bytes": figures.transformer_kv_bytes,
            "assumption": TRANSFORMER_ASSUMPTION,
        },
    }


def _recurrent_compute(item: RecurrentCompute) -> dict[str, object]:
    return {
        "macs_per_step": item.macs_per_step,
        "macs_per_position": item.macs_per_position,
        "elementwise_per_step": item.elementwise_per_step,
        "activations_per_step": item.activations_per_step,
        "state": [
            {
                "name": stream.name,
                "direction": stream.direction.value if stream.direction else None,
                "floats": stream.floats,
                "dtype": stream.dtype or item.state_dtype,
                "bytes": stream.floats * (stream.itemsize or item.state_itemsize),
            }
            for stream in item.state
        ],
        "state_floats": item.state_floats,
        "state_bytes": item.state_bytes,
        "state_dtype": item.state_dtype,
        "compute_reason": item.reason,
    }


def _gate(gate: GateResult) -> dict[str, object]:
    return {
        "limit": gate.limit,
        "unit": gate.unit.value,
        "allowed": gate.allowed,
        "measured": gate.measured,
        "layer": gate.layer,
        "passed": gate.passed,
        "over": [
            {"layer": over.layer, "measured": over.measured, "note": over.note}
            for over in gate.over
        ],
    }


def gate_order(layer: RecurrentLayer, convention: Convention) -> list[str]:
    return list(cell_gate_order(layer.cell, convention))


def _recurrent(check: _Check, convention: Convention, item: Reconciliation) -> dict[str, object]:
    return {
        **_recurrent_fields(check, convention),
        "row": item.row.name if item.row is not None else None,
        "row_params": item.row.params if item.row is not None else None,
        "row_recurrent_params": item.recurrent_params,
        "row_other_tensors": [{"name": t.name, "params": t.params} for t in item.others],
        "split_in_row": item.in_row,
        "split_outside_row": [
            {"name": o.item.tensor.name, "params": o.item.tensor.params, "held_by": o.held_by}
            for o in item.outside
        ],
    }


def _recurrent_fields(check: _Check, convention: Convention) -> dict[str, object]:
    layer = check.layer
    spec = BLOCK_BY_NAME.get(layer.cell.block or "")
    parts = {m.name: m.part.value for m in spec.members} if spec else {}
    return {
        "name": layer.name,
        "type": layer.type,
        "cell": layer.cell.kind.value,
        "units": layer.cell.units,
        "input_dim": layer.input_dim,
        "directions": layer.directions,
        "lowered": layer.lowered,
        "params": layer.params,
        "expected_params": check.expected,
        "formula": check.expression,
        "check": check.status.value,
        "tensors": [
            {
                "name": item.tensor.name,
                "role": item.role.value,
                "direction": item.direction.value if item.direction else None,
                "shape": list(item.tensor.shape),
                "dtype": item.tensor.dtype,
                "params": item.tensor.params,
                "gate": item.gate,
                "shared_with": item.shared_with,
                "member": item.member,
                "part": parts.get(item.member or ""),
            }
            for item in layer.tensors
        ],
        "input_dim_source": layer.input_dim_source.value,
        "use_bias": layer.cell.use_bias,
        "reset_after": layer.cell.reset_after,
        "gate_order": gate_order(layer, convention),
        "location": layer.location,
        "reason": check.reason,
        "notes": list(layer.notes),
        "shared_with": list(layer.shared_with),
        "proj_size": layer.cell.projection,
        "block": layer.cell.block,
        "block_source": spec.source if spec else None,
        "dims": resolved(spec, dict(layer.cell.dims)) if spec else None,
    }
