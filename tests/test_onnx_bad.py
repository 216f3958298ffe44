"""ONNX files that cannot be inspected exit 2 with one line; files that point outside their
folder are reported, never followed. Every case is crafted here, in tmp_path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from conftest import FIXTURES
from inspector.cli.app import app

runner = CliRunner()
SOURCE = FIXTURES / "onnx/torch_legacy_lstm_h16_d8.onnx"
H, D = 4, 3


def _lstm_model(**graph_changes: object) -> onnx.ModelProto:
    """A valid one-LSTM model; tests break one thing in it."""
    weights = [
        numpy_helper.from_array(np.zeros((1, 4 * H, D), np.float32), "W"),
        numpy_helper.from_array(np.zeros((1, 4 * H, H), np.float32), "R"),
    ]
    nodes = [helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=H, name="lstm")]
    graph = helper.make_graph(
        graph_changes.get("nodes", nodes),  # type: ignore[arg-type]
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, D])],
        [helper.make_tensor_value_info(graph_changes.get("output", "Y"), TensorProto.FLOAT, None)],  # type: ignore[arg-type]
        graph_changes.get("initializers", weights),  # type: ignore[arg-type]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save(model: onnx.ModelProto, path: Path) -> None:
    path.write_bytes(model.SerializeToString())


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("not a model at all\n" * 20)


def _random(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _truncated(path: Path) -> None:
    data = SOURCE.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _wrong_wire_type(path: Path) -> None:
    # ir_version 8, then field 7 (graph) sent as a 32-bit value instead of a message.
    path.write_bytes(b"\x08\x08" + bytes([(7 << 3) | 5]) + b"\x00\x00\x00\x00")


def _length_beyond_end(path: Path) -> None:
    path.write_bytes(b"\x08\x08\x3a\xff\xff\xff\xff\x0f" + b"\x00" * 16)


def _invalid_wire_type(path: Path) -> None:
    path.write_bytes(b"\x08\x08\x3f" + b"\x00" * 16)


def _no_graph(path: Path) -> None:
    path.write_bytes(helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString()[:2])


def _cycle(path: Path) -> None:
    nodes = [
        helper.make_node("Add", ["X", "c"], ["b"], name="add"),
        helper.make_node("Relu", ["b"], ["c"], name="relu"),
        helper.make_node("LSTM", ["c", "W", "R"], ["Y"], hidden_size=H, name="lstm"),
    ]
    _save(_lstm_model(nodes=nodes), path)


def _self_loop(path: Path) -> None:
    nodes = [helper.make_node("Relu", ["z"], ["z"], name="relu")]
    _save(_lstm_model(nodes=nodes, output="z"), path)


def _dangling(path: Path) -> None:
    nodes = [helper.make_node("LSTM", ["X", "W", "ghost"], ["Y"], hidden_size=H, name="lstm")]
    _save(_lstm_model(nodes=nodes), path)


def _undefined_output(path: Path) -> None:
    _save(_lstm_model(output="nowhere"), path)


def _defined_twice(path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["X"], ["Y"], name="a"),
        helper.make_node("Relu", ["X"], ["Y"], name="b"),
    ]
    _save(_lstm_model(nodes=nodes), path)


def _negative_dim(path: Path) -> None:
    model = _lstm_model()
    model.graph.initializer[0].dims[1] = -16
    _save(model, path)


def _absurd_dims(path: Path) -> None:
    """Dims claiming 10^12 elements over 192 bytes of data: counting them would be nonsense."""
    model = _lstm_model()
    model.graph.initializer[0].dims[1] = 10**12
    _save(model, path)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (protobuf itself refuses to build this deep)."""
    length, out = len(payload), bytearray()
    while True:
        out.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            break
    return bytes([(number << 3) | 2]) + bytes(out) + payload


def _deep_nesting(path: Path) -> None:
    graph = b""
    for _ in range(200):
        attribute = _field(1, b"then_branch") + b"\xa0\x01\x05" + _field(6, graph)  # type GRAPH
        graph = _field(1, _field(4, b"If") + _field(5, attribute))  # GraphProto.node
    path.write_bytes(b"\x08\x08" + _field(7, graph))


def _control_characters(path: Path) -> None:
    nodes = [helper.make_node("LSTM", ["X", "W", "gho\nst\r\x1b[2J"], ["Y"], hidden_size=H)]
    _save(_lstm_model(nodes=nodes), path)


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (_empty, "empty file"),
    "text": (_text, "not an ONNX model"),
    "random": (_random, "ONNX"),
    "truncated": (_truncated, "truncated"),
    "wrong-wire-type": (_wrong_wire_type, "expected length-delimited"),
    "length-beyond-end": (_length_beyond_end, "remain"),
    "invalid-wire-type": (_invalid_wire_type, "wire type"),
    "no-graph": (_no_graph, "graph"),
    "cycle": (_cycle, "cycle"),
    "self-loop": (_self_loop, "cycle"),
    "dangling-input": (_dangling, "'ghost'"),
    "undefined-output": (_undefined_output, "'nowhere'"),
    "defined-twice": (_defined_twice, "assign each name once"),
    "negative-dim": (_negative_dim, "negative dimension"),
    "absurd-dims": (_absurd_dims, "declares shape"),
    "deep-nesting": (_deep_nesting, "nested more than"),
    "control-characters": (_control_characters, "gho\\nst"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_onnx_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    path = tmp_path / f"{case}.onnx"
    make(path)
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rnninspect: error: ")
    assert "internal error" not in lines[0]
    assert expected in lines[0]


@pytest.mark.parametrize("cut", [1, 2, 10, 100, 1000, 5000, -50, -1])
def test_truncation_anywhere_exits_2(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.onnx"
    path.write_bytes(SOURCE.read_bytes()[:cut])
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "internal error" not in result.stderr


def test_structure_only_tensor_is_a_warning(tmp_path: Path) -> None:
    """Tools that strip weights keep dims without data: report from the shapes, and say so."""
    model = _lstm_model()
    model.graph.initializer[0].ClearField("raw_data")
    path = tmp_path / "stripped.onnx"
    _save(model, path)
    report = json.loads(runner.invoke(app, [str(path), "-f", "json"]).stdout)
    assert report["total_params"] == 4 * H * (D + H)
    assert any("stores no data" in w for w in report["warnings"])


def _external_model(location: str) -> onnx.ModelProto:
    model = _lstm_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(4 * H * D * 4))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return model


@pytest.mark.parametrize(
    "location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin", "link.bin"]
)
def test_external_data_outside_the_folder_is_reported_not_opened(
    tmp_path: Path, location: str
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00" * 4096)
    (folder / "link.bin").symlink_to(secret)  # inside by name, outside in fact
    path = folder / "m.onnx"
    _save(_external_model(location), path)
    report = json.loads(runner.invoke(app, [str(path), "-f", "json"]).stdout)
    assert any("outside the model's folder" in w for w in report["warnings"])
    assert report["details"]["external data"] == f"{location} (not available)"
    assert report["recurrent_layers"][0]["check"] == "ok"  # shapes come from the model file


def test_inspection_changes_nothing(tmp_path: Path) -> None:
    before = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert runner.invoke(app, [str(SOURCE)]).exit_code == 0
    assert hashlib.sha256(SOURCE.read_bytes()).hexdigest() == before
