"""`rnninspect formula`: the count of a layer described on the command line, and its derivation."""

from __future__ import annotations

import json

from inspector.layer_spec import LayerSpec
from inspector.model import CellKind
from inspector.render.blocks import Block, Flavour, Heading, Lines, write
from inspector.render.text import count

SEQUENCE_NOTE = (
    "The count does not depend on the sequence length: the same weights are applied at "
    "every time step."
)

# The general form, per direction, that `Derivation.expression()` substitutes into.
_GENERAL = {
    CellKind.CONV_LSTM: "g·(k·d·u + k·u·u) + b·g·u",
}
_GENERAL_DEFAULT = "g·(u·d + u·u) + b·g·u"
_GENERAL_PROJECTED = "g·(u·d + u·p) + b·g·u + p·u"  # PyTorch LSTM proj_size


def render_formula_json(spec: LayerSpec) -> str:
    derivation = spec.derivation()
    return json.dumps(
        {
            "cell": spec.kind.value,
            "convention": spec.convention.value,
            "units": spec.units,
            "input_dim": spec.input_dim,
            "directions": spec.directions,
            "use_bias": spec.use_bias,
            "reset_after": spec.reset_after,
            "bias_vectors": derivation.bias_vectors,
            "kernel_size": list(spec.kernel_size),
            "proj_size": spec.projection or None,
            "gates": derivation.gates,
            "gate_order": list(spec.gate_order),
            "formula": derivation.expression(),
            "params_per_direction": derivation.per_direction,
            "params": derivation.total,
        },
        indent=2,
    )


def render_formula(spec: LayerSpec, width: int | None = None) -> str:
    d = spec.derivation()
    title = f"{spec.kind.value}, units={spec.units}, input width {spec.input_dim}"
    if spec.kernel_size:
        title += f", kernel {'x'.join(str(k) for k in spec.kernel_size)}"
    if spec.projection:
        title += f", proj_size {spec.projection}"
    facts = [
        f"convention: {spec.convention.value}",
        f"gates: {d.gates} ({', '.join(spec.gate_order)})",
        f"bias vectors per direction: {d.bias_vectors}" + _bias_why(spec),
        f"directions: {spec.directions}",
    ]
    symbols = f"g={d.gates}, u={spec.units}, d={spec.input_dim}, b={d.bias_vectors}"
    if spec.kind is CellKind.CONV_LSTM:
        symbols += f", k={d.kernel_elems}"
    general = _GENERAL.get(spec.kind, _GENERAL_DEFAULT)
    if spec.projection:
        symbols += f", p={spec.projection}"
        general = _GENERAL_PROJECTED
    blocks: list[Block] = [
        Heading(title),
        Lines(tuple(facts)),
        Lines((f"params = {d.expression()} = {count(d.total)}",), indent=False),
        Lines(
            (
                f"per direction: {general} with {symbols}",
                SEQUENCE_NOTE,
            ),
            indent=False,
        ),
    ]
    return write(blocks, Flavour.TEXT, width)


def _bias_why(spec: LayerSpec) -> str:
    if not spec.use_bias:
        return " (no bias)"
    if spec.kind is CellKind.GRU and spec.reset_after is not None:
        return f" (reset_after={spec.reset_after})"
    return ""
