"""TFLite flatbuffers: weights found per operator, recurrent ops split per gate, WHILE-lowered
recurrences found, quantized weights at their itemsize. Truth from fixtures/tflite/manifest.json:
the source Keras model's count_params() and the converter's tensors as TensorFlow's own schema
reader lists them, each weight matched to the Keras weight (and gate block) it holds."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, entry_id, manifest_entries
from inspector.cli.app import app
from inspector.formats.source import LocalSource
from inspector.formats.tflite import schema
from inspector.formats.tflite.reader import read
from inspector.model import Model, TensorRole

runner = CliRunner()
ENTRIES = [e for e in manifest_entries("tflite") if e["file"].startswith("tflite/")]
GATES = {"LSTM": ("i", "f", "c", "o"), "GRU": ("z", "r", "h"), "SimpleRNN": ("h",)}


def _matched(entry: dict) -> dict[str, dict]:
    """Tensors the generator matched to a Keras weight, by our key `subgraph:index`."""
    return {
        f"{graph['index']}:{tensor['index']}": tensor
        for graph in entry["tflite_truth"]["subgraphs"]
        for tensor in graph["tensors"]
        if tensor.get("source_match")
    }


def _model(entry: dict) -> Model:
    return read(LocalSource(FIXTURES / entry["file"]))


def test_fixtures_present() -> None:
    assert len(ENTRIES) >= 8


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_counted_tensors_are_the_keras_weights(entry: dict) -> None:
    """What we count as parameters is exactly the set of tensors holding a Keras weight (or a
    gate block of one), at the dtype and size the converter stored."""
    model = _model(entry)
    counted = {t.key: t for layer in model.layers for t in layer.tensors}
    counted.update({t.key: t for t in model.extra_tensors})
    matched = _matched(entry)
    assert set(counted) == set(matched)
    for key, tensor in counted.items():
        truth = matched[key]
        assert list(tensor.shape) == truth["shape"] and tensor.dtype == truth["dtype"]
        assert tensor.nbytes == truth["constant_bytes"], key


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_recurrent_layers_match_the_keras_source(entry: dict) -> None:
    code = runner.invoke(app, [str(FIXTURES / entry["file"]), "--format", "json"])
    assert code.exit_code == 0, code.output
    report = json.loads(code.stdout)
    assert report["format"] == "tflite"
    source = entry["source"]
    layers = report["recurrent_layers"]
    truth = source["recurrent_layers"]
    assert sum(layer["params"] for layer in layers) == sum(layer["params"] for layer in truth)
    assert len(layers) == len(truth)
    for found, keras in zip(layers, truth, strict=True):
        assert found["check"] == "ok", found
        assert sum(t["params"] for t in found["tensors"]) == found["params"] == keras["params"]
        assert (found["units"], found["input_dim"]) == (keras["units"], keras["input_dim"])
        assert (found["cell"], found["directions"]) == (keras["cell_class"], keras["directions"])
    assert sum(layer["params"] for layer in report["layers"]) == report["total_params"]
    excess = sum(t["numel"] for t in _matched(entry).values()) - report["total_params"]
    assert excess == 0
    if not _shares_tensors(entry):
        assert report["total_params"] == source["total_params"]


def _shares_tensors(entry: dict) -> bool:
    """A constant fed to several inputs of one op (identical constants deduplicated)."""
    for graph in entry["tflite_truth"]["subgraphs"]:
        for op in graph["operators"]:
            used = [i for i in op["inputs"] if i >= 0]
            if len(used) != len(set(used)):
                return True
    return False


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_each_tensor_holds_the_gate_and_role_it_is_given(entry: dict) -> None:
    """The generator matched each constant to a Keras weight part by value (`full[gate k].T`:
    gate block k of the kernel, transposed); our role and gate must agree."""
    model = _model(entry)
    matched = _matched(entry)
    for layer in model.recurrent_layers:
        order = GATES[layer.cell.kind.value]
        for item in layer.tensors:
            parts = matched[item.tensor.key]["source_match"]
            weights = {p["weight"].rsplit("/", 1)[-1].split(":")[0] for p in parts}
            expected = {
                TensorRole.KERNEL: "kernel",
                TensorRole.RECURRENT_KERNEL: "recurrent_kernel",
            }.get(item.role, "bias")
            assert expected in weights, (item, parts)
            if item.gate is not None:
                block = f"[gate {order.index(item.gate)}]"
                assert any(block in p["part"] for p in parts), (item, parts)


# --- detection ------------------------------------------------------------------------------


def test_detected_by_identifier_whatever_the_name(tmp_path: Path) -> None:
    renamed = tmp_path / "model.bin"
    renamed.write_bytes((FIXTURES / ENTRIES[0]["file"]).read_bytes())
    result = runner.invoke(app, [str(renamed), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["format"] == "tflite"


def test_directory_scan_finds_tflite(tmp_path: Path) -> None:
    (tmp_path / "a.tflite").write_bytes((FIXTURES / ENTRIES[0]["file"]).read_bytes())
    (tmp_path / "noext").write_bytes((FIXTURES / ENTRIES[1]["file"]).read_bytes())
    result = runner.invoke(app, [str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert sorted(Path(r["file"]).name for r in json.loads(result.stdout)) == ["a.tflite", "noext"]


# --- hostile files ---------------------------------------------------------------------------


def _refused(path: Path) -> str:
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9])
def test_truncated_flatbuffer(tmp_path: Path, fraction: float) -> None:
    raw = (FIXTURES / ENTRIES[0]["file"]).read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(raw[: max(8, int(len(raw) * fraction))])
    assert "TFLite" in _refused(cut)


def test_root_offset_out_of_range(tmp_path: Path) -> None:
    raw = bytearray((FIXTURES / ENTRIES[0]["file"]).read_bytes())
    raw[0:4] = struct.pack("<I", len(raw) + 1000)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(raw))
    assert "outside" in _refused(bad)


def _tiny(vector_length: int) -> bytes:
    """A hand-built model whose subgraphs vector claims `vector_length` elements.

    Layout: root offset, "TFL3", vtable (6 slots), table (soffset + 5 uoffsets), vector."""
    vtable = struct.pack("<HHHHHHH", 4 + 2 * 5, 4 + 4 * 5, 0, 0, 4, 0, 0)
    vtable_at = 8
    table_at = vtable_at + len(vtable) + 2  # keep 4-byte alignment
    vector_at = table_at + 4 + 4 * 5
    table = struct.pack("<i", table_at - vtable_at)
    slot = table_at + 4  # field 2 (subgraphs) sits at table offset 4
    table += struct.pack("<I", vector_at - slot) + b"\0" * 16
    body = struct.pack("<I", table_at) + b"TFL3" + vtable + b"\0\0" + table
    return body + struct.pack("<I", vector_length) + b"\0" * 8


def test_vector_length_bomb(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tflite"
    bomb.write_bytes(_tiny(0xFFFFFFF0))
    assert "vector" in _refused(bomb)


def test_vector_longer_than_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "long.tflite"
    bad.write_bytes(_tiny(1000))
    assert "past the end" in _refused(bad)


def _aliased(subgraphs: int, operators: int) -> bytes:
    """A model whose `subgraphs` vector entries all point at one subgraph table, whose
    `operators` vector entries all point at one operator table: flatbuffer offsets may alias,
    so `subgraphs * operators` operators from `4 * (subgraphs + operators)` bytes.

    Layout: root offset, "TFL3"; model table (vtable: version, operator_codes, subgraphs);
    codes vector -> one OperatorCode table; subgraphs vector -> one SubGraph table (field 3,
    operators) -> operators vector -> one Operator table (opcode_index 0)."""
    out = bytearray(8)
    out[4:8] = b"TFL3"

    def table(slots: int) -> int:  # a table of `slots` 4-byte fields after its vtable
        vtable = struct.pack("<HH", 4 + 2 * slots, 4 + 4 * slots)
        vtable += b"".join(struct.pack("<H", 4 + 4 * i) for i in range(slots))
        at = len(out)
        out.extend(vtable + b"\0" * (-len(vtable) % 4))
        pos = len(out)
        out.extend(struct.pack("<i", pos - at) + bytes(4 * slots))
        return pos

    def point(slot: int, target: int) -> None:
        out[slot : slot + 4] = struct.pack("<I", target - slot)

    def vector(count: int) -> tuple[int, int]:  # (vector position, first element slot)
        pos = len(out)
        out.extend(struct.pack("<I", count) + bytes(4 * count))
        return pos, pos + 4

    model = table(3)
    out[model + 4 : model + 8] = struct.pack("<I", 3)  # version
    codes, code_slot = vector(1)
    point(model + 8, codes)
    point(code_slot, table(1))  # OperatorCode: deprecated_builtin_code 0 (ADD)
    graphs, graph_slots = vector(subgraphs)
    point(model + 12, graphs)
    graph = table(4)
    ops, op_slots = vector(operators)
    point(graph + 16, ops)  # SubGraph field 3: operators
    operator = table(1)  # Operator: opcode_index 0
    for i in range(subgraphs):
        point(graph_slots + 4 * i, graph)
    for i in range(operators):
        point(op_slots + 4 * i, operator)
    struct.pack_into("<I", out, 0, model)
    return bytes(out)


def test_aliased_offsets_are_bounded_in_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offsets pointing at the same tables again and again cannot multiply the work: every
    decoded subgraph, tensor, operator and index counts against one total (lowered here so the
    file holds 400 offsets, not the 400,000 that took 67 s and 2 GB before the bound)."""
    small = tmp_path / "small.tflite"
    small.write_bytes(_aliased(2, 3))
    assert "operators: 6" in runner.invoke(app, [str(small)]).stdout
    monkeypatch.setattr(schema, "MAX_ELEMENTS", 10_000)
    bomb = tmp_path / "aliased.tflite"
    bomb.write_bytes(_aliased(200, 200))
    assert "10,000" in _refused(bomb)


def test_vtable_out_of_range(tmp_path: Path) -> None:
    raw = bytearray(_tiny(0))
    table_at = struct.unpack_from("<I", raw, 0)[0]
    raw[table_at : table_at + 4] = struct.pack("<i", -(2**30))
    bad = tmp_path / "vtable.tflite"
    bad.write_bytes(bytes(raw))
    assert "outside" in _refused(bad)


def test_every_single_byte_flip_is_handled(tmp_path: Path) -> None:
    """Corrupting any one header/table byte yields a report or one line, never a traceback
    (bounded: the first 512 bytes, where the tables of a small model live)."""
    raw = (FIXTURES / ENTRIES[0]["file"]).read_bytes()
    target = tmp_path / "flip.tflite"
    for position in range(0, min(512, len(raw)), 3):
        damaged = bytearray(raw)
        damaged[position] ^= 0xFF
        target.write_bytes(bytes(damaged))
        try:
            read(LocalSource(target))
        except Exception as error:
            from inspector.errors import InspectorError

            assert isinstance(error, InspectorError), (position, error)


# --- compare a Keras source with its conversion --------------------------------------------


def _tolerance(entry: dict) -> list[str]:
    """The generator's measured dequantization error for quantized weights; float16 rounding
    (10 stored mantissa bits: relative error at most 2^-11) for float16 weights; else exact."""
    errors = [
        part["max_abs_err"]
        for graph in entry["tflite_truth"]["subgraphs"]
        for tensor in graph["tensors"]
        for part in tensor.get("source_match") or []
        if part.get("max_abs_err") is not None
    ]
    if errors:
        return ["--atol", repr(max(errors) * 1.0001)]
    if entry["tflite_truth"]["constant_elements_by_dtype"].get("float16"):
        return ["--atol", "0", "--rtol", repr(2.0**-11)]
    return []


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_compare_with_the_keras_source(entry: dict) -> None:
    source = str(FIXTURES / entry["source"]["file"])
    args = [
        "compare",
        source,
        str(FIXTURES / entry["file"]),
        "--format",
        "json",
        *_tolerance(entry),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["faithful"] is True
    recurrent = [p for p in report["pairs"] if p["kind"] == "recurrent"]
    truth = entry["source"]["recurrent_layers"]
    assert [p["source_params"] for p in recurrent] == [t["params"] for t in truth]
    for pair in recurrent:
        assert pair["export_params"] == pair["source_params"]
        assert pair["values"]["compared"] >= pair["source_params"]
        assert pair["differences"] == []
    model = _model(entry)
    quantized = any(
        t.tensor.dtype.startswith("int") and t.role is not TensorRole.BIAS
        for layer in model.recurrent_layers
        for t in layer.tensors
    )
    for pair in recurrent:
        said = {c["what"] for c in pair["conventions"]}
        assert ("dequantized" in said) == quantized, said
    exact = not _tolerance(entry)
    assert all(p["status"] in ("identical", "lowered in export") for p in recurrent) or not exact


def test_quantized_weights_agree_within_their_step_and_not_beyond(tmp_path: Path) -> None:
    """At the default tolerance an int8 conversion is faithful (each value within the half step
    its rounding cost, by the file's own scale); one int8 value moved by two steps is not."""
    from inspector.formats.tflite.flatbuffer import root

    entry = next(e for e in ENTRIES if e["file"].endswith("_int8.tflite"))
    source = str(FIXTURES / entry["source"]["file"])
    result = runner.invoke(app, ["compare", source, str(FIXTURES / entry["file"])])
    assert result.exit_code == 0, result.output
    assert "dequantized" in result.output and "half quantization step" in result.output
    layer = _model(entry).recurrent_layers[0]
    target = next(
        t
        for t in layer.tensors
        if t.role is TensorRole.RECURRENT_KERNEL and t.tensor.dtype == "int8"
    )
    graph, index = (int(p) for p in target.tensor.key.split(":"))
    truth = entry["tflite_truth"]["subgraphs"][graph]["tensors"][index]
    raw = bytearray((FIXTURES / entry["file"]).read_bytes())
    buffers = root(bytes(raw)).vector(4, 4)
    assert buffers is not None
    data = buffers.table(truth["buffer"]).vector(0, 1)
    assert data is not None and data.length == truth["constant_bytes"]
    (value,) = struct.unpack_from("b", raw, data.start)
    struct.pack_into("b", raw, data.start, value + 2 if value < 100 else value - 2)
    changed = tmp_path / "changed.tflite"
    changed.write_bytes(bytes(raw))
    result = runner.invoke(app, ["compare", source, str(changed)])
    assert result.exit_code == 1, result.output
    assert "values differ in recurrent_kernel" in result.output


def test_a_changed_weight_is_found(tmp_path: Path) -> None:
    """One float of one gate block changed in the flatbuffer: compare names that gate."""
    entry = next(e for e in ENTRIES if e["file"].endswith("lstm_u8_d4.tflite"))
    model = _model(entry)
    layer = model.recurrent_layers[0]
    target = next(
        t for t in layer.tensors if t.role is TensorRole.RECURRENT_KERNEL and t.gate == "c"
    )
    graph, index = (int(p) for p in target.tensor.key.split(":"))
    truth = entry["tflite_truth"]["subgraphs"][graph]["tensors"][index]
    raw = bytearray((FIXTURES / entry["file"]).read_bytes())
    original = (FIXTURES / entry["file"]).read_bytes()
    from inspector.formats.tflite.values import open_reader

    with open_reader(LocalSource(FIXTURES / entry["file"]), model.format) as reader:
        first = float(reader.read(target.tensor.key).reshape(-1)[0])
    position = original.find(struct.pack("<f", first))
    assert position > 0 and truth["buffer"] > 0
    raw[position : position + 4] = struct.pack("<f", first + 0.5)
    tampered = tmp_path / "tampered.tflite"
    tampered.write_bytes(bytes(raw))
    result = runner.invoke(app, ["compare", str(FIXTURES / entry["source"]["file"]), str(tampered)])
    assert result.exit_code == 1, result.output
    assert "recurrent_kernel, gate c" in result.output


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_signature_is_the_main_subgraphs_inputs_and_outputs(entry: dict) -> None:
    model = _model(entry)
    graph = entry["tflite_truth"]["subgraphs"][0]

    def specs(indices: list[int]) -> list[tuple[str, list[int | None], str]]:
        out = []
        for index in indices:
            tensor = graph["tensors"][index]
            shape = tensor["shape_signature"] or tensor["shape"]
            dims = [None if d < 0 else d for d in shape]
            out.append((tensor["name"], dims, tensor["dtype"]))
        return out

    assert [(s.name, list(s.shape or ()), s.dtype) for s in model.inputs] == specs(graph["inputs"])
    assert [(s.name, list(s.shape or ()), s.dtype) for s in model.outputs] == specs(
        graph["outputs"]
    )
