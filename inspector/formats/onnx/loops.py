"""The states a Loop or Scan body carries from one iteration to the next (ONNX Loop and Scan
operator specs), and which of them the body hands back unchanged: constants an exporter threads
through the loop (tf2onnx passes weights this way)."""

from __future__ import annotations

from inspector.formats.onnx.scope import LoopState, Scope, ValueId
from inspector.formats.onnx.structure import Structure


def states(structure: Structure, scope: Scope) -> list[LoopState]:
    """The states a Loop/Scan body carries from one iteration to the next."""
    owner = scope.owner
    if owner is None or owner.node.domain not in ("", "ai.onnx"):
        return []
    inputs = scope.graph.inputs
    outputs = scope.graph.outputs
    found = []
    for body_in, body_out, position in carried(structure, scope):
        body_vid = ValueId(scope.id, inputs[body_in].name)
        out_vid = ValueId(scope.id, outputs[body_out].name)
        producer = structure.producer(out_vid)
        unchanged = out_vid == body_vid or (
            producer is not None and producer.op == "Identity" and producer.input(0) == body_vid
        )
        found.append(LoopState(body_vid, owner.input(position), position, unchanged))
    return found


def passthrough(structure: Structure, scope: Scope) -> list[tuple[ValueId, ValueId]]:
    """(body input, outer initial value) of each state a Loop/Scan body returns unchanged."""
    return [
        (state.body, state.outer)
        for state in states(structure, scope)
        if state.unchanged and state.outer is not None
    ]


def carried(structure: Structure, scope: Scope) -> list[tuple[int, int, int]]:
    """(body input, body output, owner input) positions of a Loop/Scan body's states."""
    owner = scope.owner
    if owner is None:
        return []
    n_in, n_out = len(scope.graph.inputs), len(scope.graph.outputs)
    if owner.op == "Loop":
        # Loop: body(iter, cond, v...) -> (cond, v..., scan...); node(M, cond, v_initial...)
        count = min(n_in - 2, n_out - 1, len(owner.inputs) - 2)
        return [(2 + k, 1 + k, 2 + k) for k in range(max(0, count))]
    if owner.op == "Scan":
        attr = owner.node.attribute("num_scan_inputs")
        scans = attr.i if attr is not None and attr.i is not None else 0
        # Scan-8 takes an optional sequence_lens first; Scan-9+ does not.
        skip = 1 if structure.opset() < 9 else 0
        count = min(len(owner.inputs) - skip - scans, n_in - scans, n_out)
        return [(k, k, skip + k) for k in range(max(0, count))]
    return []
