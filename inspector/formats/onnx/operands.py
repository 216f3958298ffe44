"""Whether the operands of a fused RNN / GRU / LSTM node have the shapes its spec requires.

ONNX operator spec (RNN, GRU, LSTM), with g gates and h = hidden_size:

    W [num_directions, g·h, input_size]     R [num_directions, g·h, h]
    B [num_directions, 2·g·h]               P [num_directions, 3·h]   (LSTM peepholes)
    initial_h, initial_c [num_directions, batch_size, h]  ([batch, dirs, h] with layout=1)

A file whose operands break this is invalid: onnxruntime refuses the node (at load through
shape inference, or when it runs), so its formula check must not say `ok` whatever the counts.
Each defect is one sentence naming the operand, its shape and what the spec needs.
"""

from __future__ import annotations

from collections.abc import Mapping

_Shape = tuple[int, ...]


def _dims(shape: _Shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def operand_defects(
    op: str,
    gates: int,
    hidden: int | None,
    directions: int,
    shapes: Mapping[str, _Shape | None],
    *,
    gates_last: bool = False,
) -> list[str]:
    """Defects of the operands given by label (W, R, B, P, initial_h, initial_c); an absent
    label or an unknown shape is not checked. `gates_last`: W [dirs, input, g·h] and R
    [dirs, h, g·h], as com.microsoft DynamicQuantizeLSTM stores them (ContribOperators.md)."""
    if hidden is None:
        return []
    gh = gates * hidden
    needs: dict[str, tuple[int | None, ...]] = {
        "W": (directions, None, gh) if gates_last else (directions, gh, None),
        "R": (directions, hidden, gh) if gates_last else (directions, gh, hidden),
        "B": (directions, 2 * gh),
        "P": (directions, 3 * hidden),
    }
    defects = []
    for label, need in needs.items():
        shape = shapes.get(label)
        if shape is None:
            continue
        if len(shape) != len(need) or any(
            want is not None and got != want for got, want in zip(shape, need, strict=False)
        ):
            wanted = ",".join("input_size" if want is None else str(want) for want in need)
            defects.append(
                f"{label} has shape {_dims(shape)}, the {op} spec needs [{wanted}] for "
                f"{directions} direction(s) and hidden_size {hidden}"
            )
    for label in ("initial_h", "initial_c"):
        shape = shapes.get(label)
        if shape is None:
            continue
        if len(shape) != 3 or shape[-1] != hidden:
            defects.append(
                f"{label} has shape {_dims(shape)}, the {op} spec needs its last axis to be "
                f"hidden_size {hidden} (onnxruntime refuses to run the node)"
            )
    return defects
