"""TFLite graphs built by hand (tests/tflite_craft.py), for what converters may write but the ones
at hand do not, and for hostile files.

- The bias of a WHILE-lowered cell wherever a converter may put it: the FULLY_CONNECTED's own
  operand (input or state product), an ADD after the two products are summed or before, one
  ADD per gate after SPLIT, int32 with scales in a quantized loop; "dropped" only when no
  constant reaches the gate sums.
- Hostile: a constant declaring more elements than its buffer holds (64 legal int32 dims in a
  few hundred bytes), a resource variable of astronomical shape, megabyte names and custom-op
  codes, WHILE loops nested beyond the limit or naming an enclosing subgraph as their body.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tflite_craft as C
from typer.testing import CliRunner

from inspector.cli.app import app
from inspector.formats.tflite import view

runner = CliRunner()
U, D, T = 3, 2, 4  # units, input width, steps; an LSTM: 4 gates
G = 4 * U


def _loop(bias: str) -> tuple[bytes, int]:
    """A model whose one WHILE body is one LSTM step with its bias placed as `bias` says, and
    the cell's parameter count."""
    quantized = bias == "int32_scaled"
    wtype = C.INT8 if quantized else C.FLOAT32
    w_bytes = bytes(G * D) if quantized else C.floats(G * D)
    u_bytes = bytes(G * U) if quantized else C.floats(G * U, 0.5)
    scales = G if quantized else 0
    buffers = [b"", w_bytes, u_bytes, C.floats(U, 0.0), b"\0\0\0\0", b"\1\0\0\0"]
    body = [
        C.tensor([], dtype=C.INT32, name="iter"),  # 0
        C.tensor([1, U], name="h"),  # 1
        C.tensor([T, 1, D], name="xs"),  # 2
        C.tensor([G, D], 1, dtype=wtype, name="kernel", scales=scales),  # 3
        C.tensor([G, U], 2, dtype=wtype, name="recurrent_kernel", scales=scales),  # 4
        C.tensor([], 5, dtype=C.INT32, name="one"),  # 5
        C.tensor([1, D], name="x_t"),  # 6
        C.tensor([1, G], name="px"),  # 7
        C.tensor([1, G], name="ph"),  # 8
        C.tensor([1, G], name="sum"),  # 9
        C.tensor([], 4, dtype=C.INT32, name="axis"),  # 10
    ]
    ops: list[C.Table] = [C.operator(2, [2, 0], [6])]  # GATHER the step's input
    bias_inputs = {"fc_operand": -1, "recurrent_fc_operand": -1, "int32_scaled": -1}

    def add_tensor(item: C.Table) -> int:
        body.append(item)
        return len(body) - 1

    def bias_tensor(shape: list[int], name: str) -> int:
        if quantized:
            buffers.append(bytes(4 * shape[0]))
            return add_tensor(
                C.tensor(shape, len(buffers) - 1, dtype=C.INT32, name=name, scales=shape[0])
            )
        buffers.append(C.floats(shape[0], 0.3))
        return add_tensor(C.tensor(shape, len(buffers) - 1, name=name))

    if bias in ("fc_operand", "int32_scaled"):
        bias_inputs[bias] = bias_tensor([G], "bias")
    x_bias = bias_inputs.get("fc_operand", -1)
    if bias == "int32_scaled":
        x_bias = bias_inputs["int32_scaled"]
    h_bias = -1
    if bias == "recurrent_fc_operand":
        h_bias = bias_tensor([G], "bias")
    ops.append(C.operator(1, [6, 3, x_bias], [7]))  # FULLY_CONNECTED on the step input
    ops.append(C.operator(1, [1, 4, h_bias], [8]))  # FULLY_CONNECTED on the state
    gates_from = 9
    if bias == "add_before_sum":
        b = bias_tensor([G], "bias")
        biased = add_tensor(C.tensor([1, G], name="px_b"))
        ops.append(C.operator(0, [7, b], [biased]))
        ops.append(C.operator(0, [biased, 8], [9]))
    else:
        ops.append(C.operator(0, [7, 8], [9]))
        if bias == "add_after_sum":
            b = bias_tensor([G], "bias")
            gates_from = add_tensor(C.tensor([1, G], name="pre"))
            ops.append(C.operator(0, [9, b], [gates_from]))
    parts = [add_tensor(C.tensor([1, U], name=f"part{k}")) for k in range(4)]
    ops.append(C.operator(5, [10, gates_from], parts))  # SPLIT(axis, input)
    if bias == "per_gate_after_split":
        summed = []
        for k, part in enumerate(parts):
            b = bias_tensor([U], f"bias_{'ifco'[k]}")
            out = add_tensor(C.tensor([1, U], name=f"biased{k}"))
            ops.append(C.operator(0, [part, b], [out]))
            summed.append(out)
        parts = summed
    gated = []
    for k, part in enumerate(parts):
        out = add_tensor(C.tensor([1, U], name=f"gate{k}"))
        ops.append(C.operator(4 if k == 2 else 3, [part], [out]))  # TANH for c, else LOGISTIC
        gated.append(out)
    new_h = add_tensor(C.tensor([1, U], name="h_next"))
    ops.append(C.operator(6, [gated[3], gated[2]], [new_h]))  # MUL
    next_iter = add_tensor(C.tensor([], dtype=C.INT32, name="iter_next"))
    ops.append(C.operator(0, [0, 5], [next_iter]))
    main = C.subgraph(
        [
            C.tensor([T, 1, D], name="input"),
            C.tensor([], 4, dtype=C.INT32, name="zero"),
            C.tensor([1, U], 3, name="h0"),
            C.tensor([], dtype=C.INT32, name="i_out"),
            C.tensor([1, U], name="h_out"),
            C.tensor([T, 1, D], name="xs_out"),
        ],
        [C.operator(7, [1, 2, 0], [3, 4, 5], body=1)],
        [0],
        [4],
        "main",
    )
    loop = C.subgraph(body, ops, [0, 1, 2], [next_iter, new_h, 2], "layer/while_body")
    codes = [
        C.OPS[name]
        for name in (
            "ADD",
            "FULLY_CONNECTED",
            "GATHER",
            "LOGISTIC",
            "TANH",
            "SPLIT",
            "MUL",
            "WHILE",
        )
    ]
    params = G * D + G * U + (0 if bias == "none" else G)
    return C.model([main, loop], buffers, codes), params


BIASES = (
    "fc_operand",
    "recurrent_fc_operand",
    "add_after_sum",
    "add_before_sum",
    "per_gate_after_split",
    "int32_scaled",
    "none",
)


@pytest.mark.parametrize("bias", BIASES)
def test_the_bias_is_found_wherever_the_converter_put_it(tmp_path: Path, bias: str) -> None:
    data, params = _loop(bias)
    path = tmp_path / f"{bias}.tflite"
    path.write_bytes(data)
    result = runner.invoke(app, [str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (layer,) = report["recurrent_layers"]
    assert (layer["cell"], layer["units"], layer["input_dim"]) == ("LSTM", U, D)
    assert layer["check"] == "ok" and layer["params"] == params
    assert report["total_params"] == params
    roles = [t["role"] for t in layer["tensors"]]
    assert layer["use_bias"] == (bias != "none")
    assert (bias != "none") == any("bias" in role for role in roles)
    dropped = any("dropped the bias" in note for note in layer["notes"])
    assert dropped == (bias == "none")
    assert layer["name"] == "layer"


def _refused(path: Path) -> str:
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def _single(tensors: list[C.Table], ops: list[C.Table], buffers: list[bytes], codes: list) -> bytes:
    return C.model([C.subgraph(tensors, ops, [0], [len(tensors) - 1], "main")], buffers, codes)


def test_a_constant_cannot_declare_more_than_its_buffer_holds(tmp_path: Path) -> None:
    """64 legal int32 dimensions on a 16-byte buffer: a damaged file, one line, exit 2."""
    huge = [2**31 - 1] * 64
    data = _single(
        [C.tensor([1, 4]), C.tensor(huge, 1, name="w"), C.tensor([1, 4])],
        [C.operator(0, [0, 1], [2])],
        [b"", C.floats(4)],
        [C.OPS["ADD"]],
    )
    path = tmp_path / "huge.tflite"
    path.write_bytes(data)
    assert len(data) < 2000
    assert "needing more than the 16 bytes" in _refused(path)


@pytest.mark.parametrize("shape", [[-4, 2], [-1], [2, -(2**31)], [0, 2], [-4, -(2**31)]])
def test_a_constant_of_no_elements_over_stored_bytes_is_refused(
    tmp_path: Path, shape: list[int]
) -> None:
    """A constant whose shape holds a negative or zero dimension over a buffer of 8 floats: read
    as 0 elements, it counted 0 parameters, exit 0; the same shape on an activation (a dynamic
    dimension) is still read."""
    path = tmp_path / "empty.tflite"
    path.write_bytes(
        _single(
            [C.tensor(shape, 1, name="w"), C.tensor([4])],
            [C.operator(0, [0, 1], [1])],
            [b"", C.floats(8)],
            [C.OPS["ADD"]],
        )
    )
    assert "declares a shape of no elements" in _refused(path)
    path.write_bytes(
        _single(
            [C.tensor(shape, name="x"), C.tensor([1, 4], 1, name="w"), C.tensor([1, 4])],
            [C.operator(0, [0, 1], [2])],
            [b"", C.floats(4)],
            [C.OPS["ADD"]],
        )
    )
    assert runner.invoke(app, [str(path), "--timeout", "0"]).exit_code == 0


def test_huge_dimensions_of_a_value_that_is_not_stored_are_only_shown(tmp_path: Path) -> None:
    """An activation's shape is not a count: the report and a size gate run, no overflow."""
    huge = [2**31 - 1] * 64
    data = _single(
        [C.tensor(huge, name="x"), C.tensor([4], 1, name="b"), C.tensor(huge, name="y")],
        [C.operator(0, [0, 1], [2])],
        [b"", C.floats(4)],
        [C.OPS["ADD"]],
    )
    path = tmp_path / "wide.tflite"
    path.write_bytes(data)
    result = runner.invoke(app, [str(path), "--format", "json", "--max-params", "10"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_params"] == 4


def test_a_resource_variable_of_astronomical_shape_is_refused(tmp_path: Path) -> None:
    data = _single(
        [
            C.tensor([1, 4], name="x"),
            C.tensor([], dtype=C.RESOURCE, name="handle"),
            C.tensor([2**31 - 1] * 3, name="value"),
            C.tensor([1, 4], name="y"),
        ],
        [
            C.operator(0, [], [1]),
            C.operator(1, [1], [2]),
            C.operator(2, [0, 2], [3]),
        ],
        [b""],
        [C.OPS["VAR_HANDLE"], C.OPS["READ_VARIABLE"], C.OPS["ADD"]],
    )
    path = tmp_path / "variable.tflite"
    path.write_bytes(data)
    assert "more than" in _refused(path)


@pytest.mark.parametrize("where", ["custom op code", "tensor name", "subgraph name"])
def test_megabyte_strings_are_read_as_a_bounded_prefix(tmp_path: Path, where: str) -> None:
    """A 2 MB string becomes a short name that says its length: the report stays small."""
    long = "N" * 2_000_000
    code: int | str = long if where == "custom op code" else C.OPS["ADD"]
    tensors = [
        C.tensor([1, 4], name="x"),
        C.tensor([4], 1, name=long if where == "tensor name" else "w"),
        C.tensor([1, 4], name="y"),
    ]
    graph = C.subgraph(
        tensors, [C.operator(0, [0, 1], [2])], [0], [2], long if where == "subgraph name" else ""
    )
    path = tmp_path / "long.tflite"
    path.write_bytes(C.model([graph], [b"", C.floats(4)], [code]))
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout) < 20_000
    if where == "custom op code":  # the op's type column
        assert "(2,000,000 bytes, #" in result.stdout


def _nested(depth: int, *, cycle: bool = False) -> bytes:
    """Subgraph k runs subgraph k + 1 as a WHILE body, `depth` deep; with `cycle` the last one
    names subgraph 1 (its own enclosing loop) as its body."""
    graphs = []
    for index in range(depth + 1):
        body = index + 1 if index < depth else (1 if cycle else None)
        ops = [C.operator(0, [0], [1], body=body)] if body is not None else []
        graphs.append(C.subgraph([C.tensor([1]), C.tensor([1])], ops, [0], [1], f"level{index}"))
    return C.model(graphs, [b""], [C.OPS["WHILE"]])


def test_loops_nested_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    deep = tmp_path / "deep.tflite"
    deep.write_bytes(_nested(view.MAX_NESTING + 1))
    assert f"nested more than {view.MAX_NESTING} deep" in _refused(deep)
    fine = tmp_path / "fine.tflite"
    fine.write_bytes(_nested(view.MAX_NESTING))
    assert runner.invoke(app, [str(fine)]).exit_code == 0


def test_a_loop_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cycle.tflite"
    path.write_bytes(_nested(3, cycle=True))
    assert "encloses it" in _refused(path)


def test_a_buffer_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    """Models past 2 GB place a buffer by offset and size: a size the file cannot hold would let
    a constant declare 2^60 elements; it is a damaged file instead."""
    graph = C.subgraph(
        [C.tensor([1, 4]), C.tensor([2**30, 2**30], 1, name="w"), C.tensor([1, 4])],
        [C.operator(0, [0, 1], [2])],
        [0],
        [2],
        "main",
    )
    data = C.build(
        C.Table(
            {
                0: ("u32", 3),
                1: ("tables", [C.Table({0: ("u8", 0), 3: ("i32", 0)})]),
                2: ("tables", [graph]),
                4: ("tables", [C.Table(), C.Table({1: ("u64", 8), 2: ("u64", 2**62)})]),
            }
        )
    )
    path = tmp_path / "offset.tflite"
    path.write_bytes(data)
    assert "past the end of the file" in _refused(path)


FLEX_FIXTURE = Path(__file__).parent.parent / "fixtures/tflite_converters"


def _flex_options(path: Path) -> tuple[bytes, int]:
    """The custom options of the first FlexMatMul a converter wrote, and where they sit."""
    from inspector.formats.tflite.flatbuffer import root

    data = path.read_bytes()
    model = root(data)
    codes = model.vector(1, 4)
    graphs = model.vector(2, 4)
    assert codes is not None and graphs is not None
    names = [codes.table(i).string(1) for i in range(codes.length)]
    for g in range(graphs.length):
        operators = graphs.table(g).vector(3, 4)
        for o in range(operators.length if operators is not None else 0):
            assert operators is not None
            op = operators.table(o)
            if names[op.uint32(0)] == "FlexMatMul":
                custom = op.vector(5, 1)
                assert custom is not None
                return data[custom.start : custom.start + custom.length], custom.start
    raise AssertionError("no FlexMatMul")


def test_a_flex_ops_nodedef_attributes_are_read_and_damage_reads_as_none(tmp_path: Path) -> None:
    """A FlexMatMul keeps transpose_b in the NodeDef of its custom options (what orients a
    square weight); every truncation or overwritten byte of those options reads as no
    attributes or fewer, never an error, and the file still gives a report."""
    from inspector.formats.tflite import flex

    path = FLEX_FIXTURE / "k3_simplernn_mixed_float16_flex.tflite"
    options, start = _flex_options(path)
    assert "transpose_b" in flex.true_attributes(options)
    for cut in range(len(options)):
        for damaged in (options[:cut], options[cut:]):
            assert isinstance(flex.true_attributes(damaged), frozenset)
    for at in range(len(options)):
        for value in (0x00, 0x7F, 0xFF):
            damaged = options[:at] + bytes([value]) + options[at + 1 :]
            found = flex.true_attributes(damaged)  # an overwritten key names another one
            assert isinstance(found, frozenset) and len(found) <= 2
    raw = bytearray(path.read_bytes())
    raw[start + len(options) - 2] = 0xFF  # the root's packed type: not a vector any more
    broken = tmp_path / "flex.tflite"
    broken.write_bytes(bytes(raw))
    result = runner.invoke(app, [str(broken), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["recurrent_layers"]
