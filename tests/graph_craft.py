"""Op graphs built to make the lowered-recurrence search (inspector/formats/lowered/) and the
readers under it do more than linear work, one builder per kind, each in ONNX (onnx.helper) and
in TFLite (tests/tflite_craft.py), sized by the caller:

- `unrolled`: recurrent cells unrolled step by step, as the torch dynamo exporter and the TFLite
  converter write them: `chains` independent chains of `steps` steps, one product per step
  (a simple RNN) or one per gate (an LSTM as Keras `implementation=1` computes it), the weights
  shared by every step or (`copies`) stored once per step. Thousands of identical steps, or
  thousands of look-alike chains that no two pair up as one bidirectional layer.
- `constant_chain`: a weight reached through `length` constant ops, each link read by a product
  (so every link's stored roots are asked for); `grows` adds one more stored tensor at every
  link, whose roots then cost the square of the length however they are found.
- `fan_out`: products summed by one op that thousands of ops read.
- `single_steps`: one-step cells side by side, both inputs of each named like states.
- `tflite_directions`: layers reading one sequence and as many reading it time-reversed.
- `tflite_variables`: a WHILE loop passing thousands of variable handles to its body.

Used by tests/test_detector_work.py, which counts the work each takes at two sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tflite_craft as C
from onnx import TensorProto, helper, numpy_helper

H, D = 2, 3  # units, input width: the smallest cell with distinct shapes (W d×h, R h×h)


def _weights(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(-0.5, 0.5, shape).astype(np.float32)


def params(gates: int) -> int:
    """The cell's parameter count (Keras's, one bias vector): g·(u·d + u·u + u)."""
    return gates * (H * D + H * H + H)


# --- one step as a list of ops, in either format --------------------------------------------


class _Ops:
    """Ops and constants of either format, named as in ONNX; `build` writes the file."""

    def __init__(self) -> None:
        self.nodes: list[tuple[str, list[str], list[str]]] = []
        self.constants: dict[str, np.ndarray] = {}
        self.inputs: list[tuple[str, list[int]]] = []
        self.outputs: list[str] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.constants[name] = value
        return name

    def op(self, op: str, inputs: list[str], output: str) -> str:
        self.nodes.append((op, inputs, [output]))
        return output

    def product(self, data: str, weight: str, out: str) -> str:
        """x·W, W stored (in, out): MatMul in ONNX; in TFLite FULLY_CONNECTED with W stored
        (out, in), as the converter writes it (transposed here)."""
        return self.op("MatMul", [data, weight], out)

    def onnx(self, path: Path) -> None:
        nodes = [helper.make_node(op, ins, outs) for op, ins, outs in self.nodes]
        graph = helper.make_graph(
            nodes,
            "crafted",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in self.inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in self.outputs],
            [numpy_helper.from_array(v, n) for n, v in self.constants.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        path.write_bytes(model.SerializeToString())

    def tflite(self, path: Path) -> None:
        index: dict[str, int] = {}
        tensors: list[C.Table] = []
        buffers: list[bytes] = [b""]
        transposed = {w for op, ins, _ in self.nodes if op == "MatMul" for w in ins[1:]}

        def tensor(name: str) -> int:
            if name not in index:
                value = self.constants.get(name)
                if value is None:
                    tensors.append(C.tensor([1, 1], name=name))
                else:
                    if name in transposed:
                        value = value.T
                    # TFLite's shape operands are int32 (schema.fbs ReshapeOptions).
                    integer = value.dtype.kind == "i"
                    value = value.astype(np.int32 if integer else np.float32)
                    buffers.append(value.tobytes())
                    dtype = C.INT32 if integer else C.FLOAT32
                    tensors.append(
                        C.tensor(list(value.shape), len(buffers) - 1, dtype=dtype, name=name)
                    )
                index[name] = len(tensors) - 1
            return index[name]

        for name, shape in self.inputs:
            index[name] = len(tensors)
            tensors.append(C.tensor(shape, name=name))
        # TFLite's names where they are not ONNX's in capitals
        names = {"MatMul": "FULLY_CONNECTED", "Sigmoid": "LOGISTIC", "Sum": "ADD_N"}
        codes = sorted({names.get(op, op.upper()) for op, _, _ in self.nodes})
        ops = [
            C.operator(
                codes.index(names.get(op, op.upper())),
                [tensor(i) for i in ins] + ([-1] if op == "MatMul" else []),
                [tensor(o) for o in outs],
            )
            for op, ins, outs in self.nodes
        ]
        main = C.subgraph(
            tensors,
            ops,
            [index[n] for n, _ in self.inputs],
            [tensor(n) for n in self.outputs],
            "main",
        )
        path.write_bytes(C.model([main], buffers, [C.OPS[c] for c in codes]))


def _write(ops: _Ops, path: Path) -> None:
    if path.suffix == ".tflite":
        ops.tflite(path)
    else:
        ops.onnx(path)


# --- the builders ---------------------------------------------------------------------------


def unrolled(
    path: Path,
    *,
    steps: int,
    chains: int = 1,
    gates: int = 1,
    copies: bool = False,
) -> None:
    """`chains` unrolled cells of `steps` steps each, every chain reading its own inputs
    (x{chain}_{t}, h_init{chain}, c_init{chain}) with its own weights. gates=1:
    h' = tanh(x·W + h·R + b); gates=4: an LSTM computed gate by gate (i, f, g, o: one product
    of x and one of h per gate, each with its own bias). `copies`: every step stores its own
    copy of the weights, as long dynamo exports do."""
    rng = np.random.default_rng(0)
    ops = _Ops()
    for k in range(chains):
        ops.inputs.append((f"h_init{k}", [1, H]))
        if gates == 4:
            ops.inputs.append((f"c_init{k}", [1, H]))
        shared = {
            (g, role): _weights(rng, *shape)
            for g in range(gates)
            for role, shape in (("W", (D, H)), ("R", (H, H)), ("b", (H,)))
        }
        h, c = f"h_init{k}", f"c_init{k}"
        for t in range(steps):
            x = f"x{k}_{t}"
            ops.inputs.append((x, [1, D]))
            stored = f"{k}_{t}" if copies else f"{k}"
            pre = []
            for g in range(gates):
                name = f"{k}_{t}_{g}"
                w, r, b = (
                    ops.const(f"{role}{g}_{stored}", shared[g, role]) for role in ("W", "R", "b")
                )
                px = ops.product(x, w, f"px{name}")
                ph = ops.product(h, r, f"ph{name}")
                summed = ops.op("Add", [px, ph], f"s{name}")
                pre.append(ops.op("Add", [summed, b], f"a{name}"))
            if gates == 1:
                h = ops.op("Tanh", [pre[0]], f"h{k}_{t + 1}")
                continue
            i, f, g_, o = (
                ops.op("Tanh" if g == 2 else "Sigmoid", [pre[g]], f"gate{k}_{t}_{g}")
                for g in range(4)
            )
            kept = ops.op("Mul", [f, c], f"kept{k}_{t}")
            new = ops.op("Mul", [i, g_], f"new{k}_{t}")
            c = ops.op("Add", [kept, new], f"c{k}_{t + 1}")
            squashed = ops.op("Tanh", [c], f"tc{k}_{t}")
            h = ops.op("Mul", [o, squashed], f"h{k}_{t + 1}")
        ops.outputs.append(h)
    _write(ops, path)


def constant_chain(path: Path, *, length: int, grows: bool = False) -> None:
    """W reached through `length` constant links (W_k = W_{k-1} + a zero constant, which
    grows with a new stored tensor at every link, else W_k = Reshape of W_{k-1}), each link
    applied to the input by a product of its own, an output of the graph."""
    ops = _Ops()
    ops.inputs.append(("x", [1, H]))
    weight = ops.const("W", np.eye(H, dtype=np.float32))
    shape = ops.const("shape", np.array([H, H], np.int64)) if not grows else ""
    for k in range(length):
        if grows:
            step = ops.const(f"zero{k}", np.zeros((H, H), np.float32))
            weight = ops.op("Add", [weight, step], f"W{k}")
        else:
            weight = ops.op("Reshape", [weight, shape], f"W{k}")
        ops.outputs.append(ops.product("x", weight, f"p{k}"))
    _write(ops, path)


def fan_out(path: Path, *, products: int, readers: int) -> None:
    """`products` products of one weight, each of its own input, summed by one op (Sum; TFLite
    ADD_N) whose result `readers` ops read: every product's step leads to the same wide fan."""
    ops = _Ops()
    weight = ops.const("W", np.eye(H, dtype=np.float32))
    summed = [ops.product(f"x{k}", weight, f"p{k}") for k in range(products)]
    for k in range(products):
        ops.inputs.append((f"x{k}", [1, H]))
    total = ops.op("Sum", summed, "total")
    for k in range(readers):
        ops.outputs.append(ops.op("Tanh", [total], f"t{k}"))
    _write(ops, path)


def single_steps(path: Path, *, cells: int) -> None:
    """`cells` one-step simple RNN cells side by side, h' = tanh(a·W + b·R), both inputs graph
    inputs named like states (h_a{k}, h_b{k}) and as wide as the units (d = u), so which one is
    the state is told by their places among the graph's inputs."""
    rng = np.random.default_rng(0)
    ops = _Ops()
    for k in range(cells):
        ops.inputs += [(f"h_a{k}", [1, H]), (f"h_b{k}", [1, H])]
        kernel = ops.const(f"W{k}", _weights(rng, H, H))
        recurrent = ops.const(f"R{k}", _weights(rng, H, H))
        summed = ops.op(
            "Add",
            [ops.product(f"h_a{k}", kernel, f"pa{k}"), ops.product(f"h_b{k}", recurrent, f"pb{k}")],
            f"s{k}",
        )
        ops.outputs.append(ops.op("Tanh", [summed], f"h{k}"))
    _write(ops, path)


def tflite_directions(path: Path, *, layers: int) -> None:
    """`layers` UNIDIRECTIONAL_SEQUENCE_RNN ops reading one sequence, then `layers` more reading
    it time-reversed (REVERSE_V2), each with its own weights: `layers` Bidirectional layers as
    the converter writes them, every forward one a candidate for every backward one."""
    rng = np.random.default_rng(0)
    steps = 3
    tensors = [C.tensor([1, steps, D], name="x"), C.tensor([1], 1, dtype=C.INT32, name="axis")]
    tensors.append(C.tensor([1, steps, D], name="reversed"))
    buffers = [b"", np.array([1], np.int32).tobytes()]
    ops = [C.operator(0, [0, 1], [2])]  # REVERSE_V2 along time
    outputs = []
    for direction, source in (("forward", 0), ("backward", 2)):
        for k in range(layers):
            first = len(tensors)
            for name, shape in (("W", (H, D)), ("R", (H, H)), ("b", (H,))):
                buffers.append(_weights(rng, *shape).tobytes())
                tensors.append(
                    C.tensor(list(shape), len(buffers) - 1, name=f"{direction}{k}/{name}")
                )
            tensors += [
                C.tensor([1, H], name=f"{direction}{k}/state"),
                C.tensor([1, steps, H], name=f"{direction}{k}/out"),
            ]
            inputs = [source, first, first + 1, first + 2, first + 3]
            ops.append(C.operator(1, inputs, [first + 4]))
            outputs.append(first + 4)
    main = C.subgraph(tensors, ops, [0], outputs, "main")
    codes = [C.OPS["REVERSE_V2"], C.OPS["UNIDIRECTIONAL_SEQUENCE_RNN"]]
    path.write_bytes(C.model([main], buffers, codes))


def tflite_variables(path: Path, *, count: int) -> None:
    """A WHILE loop whose body reads `count` resource variables, each through a handle the loop
    passes in (a VAR_HANDLE outside, a READ_VARIABLE inside), as the TFLite converter threads
    Keras 3 weights through a loop. No initialiser assigns them: weights the file does not
    store."""
    handles = [C.tensor([], dtype=C.RESOURCE, name=f"handle{k}") for k in range(count)]
    passed = [C.tensor([], dtype=C.RESOURCE, name=f"out{k}") for k in range(count)]
    main = C.subgraph(
        handles + passed,
        [C.operator(0, [], [k]) for k in range(count)]
        + [C.operator(2, list(range(count)), list(range(count, 2 * count)), body=1)],
        [],
        list(range(count, 2 * count)),
        "main",
    )
    body = C.subgraph(
        [C.tensor([], dtype=C.RESOURCE, name=f"in{k}") for k in range(count)]
        + [C.tensor([H, H], name=f"value{k}") for k in range(count)],
        [C.operator(1, [k], [count + k]) for k in range(count)],
        list(range(count)),
        list(range(count)),
        "layer/while_body",
    )
    codes = [C.OPS["VAR_HANDLE"], C.OPS["READ_VARIABLE"], C.OPS["WHILE"]]
    path.write_bytes(C.model([main, body], [b""], codes))


if __name__ == "__main__":  # write a pair of each at a size worth timing by hand
    import sys

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for suffix in (".onnx", ".tflite"):
        unrolled(out / f"steps{suffix}", steps=5_000)
        unrolled(out / f"gates{suffix}", steps=2_000, gates=4, copies=True)
        unrolled(out / f"chains{suffix}", steps=2, chains=5_000)
        constant_chain(out / f"links{suffix}", length=20_000)
        constant_chain(out / f"growing{suffix}", length=5_000, grows=True)
    single_steps(out / "cells.onnx", cells=20_000)
    tflite_directions(out / "directions.tflite", layers=5_000)
    tflite_variables(out / "variables.tflite", count=20_000)
