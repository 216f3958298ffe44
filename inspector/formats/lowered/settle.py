"""Deciding the cell a detector found: kind from the recurrent weight's shape (g·h × h values for
g gates), cross-checked against one step's activations; units, input width and bias convention
from the other tensors; a warning for whatever cannot be settled."""

from __future__ import annotations

from inspector.cells import KIND_BY_GATES, gate_count
from inspector.formats.lowered.cell import Cell, Lowered, matrix
from inspector.formats.opgraph import Node, Weight
from inspector.model import BiasConvention, CellKind, Direction, TensorRole


def settle(
    *,
    name: str,
    type_: str,
    location: str,
    cell: Cell,
    members: set[Node],
    state_inputs: set[tuple[Node, int]],
    how: str,
) -> Lowered:
    fillers = cell.fillers()
    cell.biases = [(weight, role) for weight, role in cell.biases if weight not in fillers]
    notes = [f"lowered recurrence: {how}"]
    warnings: list[str] = []
    by_activation = kind_from_activations(cell.activations)
    act_text = ", ".join(f"{n} {op}" for op, n in sorted(cell.activations.items())) or "none"
    kind: CellKind | None = None
    units: int | None = None
    input_dim: int | None = None
    recurrent_elems = sum(s.elements for s in cell.recurrent)
    projections: list[Weight] = []
    if cell.fused_width is not None and len(cell.recurrent) > 1:
        # Further state-dependent weights after the fused kernel project the output.
        main = max(cell.recurrent, key=lambda s: s.elements)
        projections = [s for s in cell.recurrent if s is not main]
        cell.recurrent = [main]
        recurrent_elems = main.elements
    if cell.fused_width is not None:
        # One kernel over concat(x, h): its rows are input and recurrent weights together.
        kind = by_activation
        if kind is not None:
            gates = gate_count(kind)
            out = recurrent_elems // (cell.fused_width + (cell.state_width or 0))
            units = out // gates if out % gates == 0 else None
            input_dim = cell.fused_width
        warnings.append(
            f"{type_} '{name}' in {location}: input and recurrent weights share one kernel "
            f"over concat(x, h); {kind.value if kind else 'cell kind'} inferred from the "
            f"activations ({act_text})"
        )
    else:
        largest = max(cell.recurrent, key=lambda s: s.elements)
        dims = matrix(largest.shape)
        h = min(dims) if len(dims) == 2 else None
        if h:
            ratio, rest = divmod(recurrent_elems, h * h)
            kind = KIND_BY_GATES.get(ratio) if rest == 0 else None
            units = h if kind is not None else None
        if kind is None:
            kind = by_activation
            warnings.append(
                f"{type_} '{name}' in {location}: recurrent weight of shape "
                f"{list(largest.shape)} does not hold 1, 3 or 4 gates of a square block; "
                f"cell kind {'inferred from the activations' if kind else 'unknown'}"
            )
        elif by_activation is not None and by_activation is not kind:
            warnings.append(
                f"{type_} '{name}' in {location}: the recurrent weight's shape suggests "
                f"{kind.value} but one step's activations ({act_text}) suggest "
                f"{by_activation.value}; reported as {kind.value}"
            )
    notes.append(f"one step's activations: {act_text}")
    gates = gate_count(kind) if kind is not None else 0
    consistent = kind is not None and units is not None
    bias = BiasConvention.NONE
    if consistent and units:
        gh = gates * units
        if cell.fused_width is None:
            kernel_elems = sum(s.elements for s in cell.kernel)
            if kernel_elems and kernel_elems % gh == 0:
                input_dim = kernel_elems // gh
            else:
                consistent = False
        bias_elems = sum(s.elements for s, _ in cell.biases)
        vectors, rest = divmod(bias_elems, gh)
        if rest == 0 and vectors in (0, 1, 2):
            bias = (BiasConvention.NONE, BiasConvention.SINGLE, BiasConvention.DOUBLE)[vectors]
        else:
            consistent = False
        if cell.peepholes and sum(s.elements for s in cell.peepholes) != 3 * units:
            consistent = False
        if cell.fused_width is not None and cell.state_width != units:
            consistent = False
            notes.append(
                f"the state is {cell.state_width} wide but the cell has {units} units "
                "(a projection layer): the closed-form formula does not apply"
            )
    if not consistent:
        warnings.append(
            f"{type_} '{name}' in {location}: found a lowered recurrence but its tensors do "
            "not fit one cell of a known kind; its formula check is unverified"
        )
    tensors: list[tuple[Weight, TensorRole, Direction | None]] = []
    tensors += [(s, TensorRole.KERNEL, None) for s in cell.kernel]
    tensors += [(s, TensorRole.RECURRENT_KERNEL, None) for s in cell.recurrent]
    roles = {role for _, role in cell.biases}
    for stored, role in cell.biases:
        if bias is BiasConvention.SINGLE or roles == {TensorRole.RECURRENT_BIAS}:
            role = TensorRole.BIAS
        tensors.append((stored, role, None))
    tensors += [(s, TensorRole.PEEPHOLE, None) for s in cell.peepholes]
    tensors += [(s, TensorRole.PROJECTION, None) for s in projections]
    # One orientation for all the products: the stored matrices' gate axis is then known even
    # where a square matrix's shape cannot say.
    gates_last = (not next(iter(cell.transposed))) if len(cell.transposed) == 1 else None
    return Lowered(
        name=name,
        type=type_,
        location=location,
        kind=kind,
        units=units,
        input_dim=input_dim if consistent else None,
        bias=bias,
        tensors=tensors,
        members=members,
        state_inputs=state_inputs,
        peepholes=bool(cell.peepholes),
        consistent=consistent,
        notes=notes,
        warnings=warnings,
        gates_last=gates_last,
        fillers=fillers,
    )


def kind_from_activations(counts: dict[str, int]) -> CellKind | None:
    sigmoid = counts.get("Sigmoid", 0)
    tanh = counts.get("Tanh", 0)
    relu = counts.get("Relu", 0)
    if sigmoid >= 3 and tanh >= 2:
        return CellKind.LSTM
    if sigmoid >= 2 and tanh >= 1:
        return CellKind.GRU
    if sigmoid == 0 and tanh + relu >= 1:
        return CellKind.SIMPLE_RNN
    return None
