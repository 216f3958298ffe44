"""Hostile inputs, one builder per *kind* of attack (issue 11), made with h5py, onnx, zipfile
and struct only. Each writes a small file that would cost a careless reader gigabytes, minutes,
a byte outside the model's folder, or a forged line of output.

Used by tests/test_hostile.py; `python tests/crafted.py DIR` writes them all to DIR (to measure
a build's memory and CPU on them by hand)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
LSTM_H5 = FIXTURES / "keras2/lstm_u16_d8.h5"
LSTM_KERAS = FIXTURES / "keras3/lstm_u16_d8.keras"
LSTM_WEIGHTS = FIXTURES / "keras3/lstm_u16_d8.weights.h5"
ONNX_LSTM = FIXTURES / "onnx/torch_legacy_lstm_h16_d8.onnx"
SAVED_MODEL = FIXTURES / "savedmodel/embedding_lstm_dense"

# Terminal escapes, then Markdown / HTML structure: a forged table cell, a link, an image, a
# code span.
ESCAPES = (
    "\x1b]0;owned\x07\x1b[2J\nforged row\r\u202eevil | forged cell | [x](http://e) <img src=x> `c`"
)


# --- protobuf wire helpers (onnx.proto3 field numbers) ---------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def small_onnx(graph: bytes, *, opset: int = 17) -> bytes:
    """A ModelProto: ir_version 8, an opset, and the given GraphProto bytes."""
    return varint(1 << 3) + varint(8) + field(8, varint(2 << 3) + varint(opset)) + field(7, graph)


# --- HDF5: links, virtual datasets, attributes -------------------------------------------------


def h5_links_without_layer_names(path: Path, outside: Path) -> None:
    """A full Keras model whose `model_weights` has no `layer_names` (groups are then listed),
    holding external links to a system file, another .h5 and a FIFO, and a soft-link cycle."""
    shutil.copy(LSTM_H5, path)
    other = outside / "other.h5"
    shutil.copy(LSTM_H5, other)
    fifo = outside / "fifo.h5"
    if not fifo.exists():
        os.mkfifo(fifo)
    with h5py.File(path, "r+") as handle:
        weights = handle["model_weights"]
        del weights.attrs["layer_names"]
        weights["passwd"] = h5py.ExternalLink("/etc/passwd", "/x")
        weights["other"] = h5py.ExternalLink(str(other), "/model_weights/lstm")
        weights["fifo"] = h5py.ExternalLink(str(fifo), "/x")
        weights["loop"] = h5py.SoftLink("/model_weights/loop2")
        weights["loop2"] = h5py.SoftLink("/model_weights/loop")
        handle["optimizer_weights"] = h5py.ExternalLink(str(other), "/model_weights")


def h5_virtual_dataset(path: Path, outside: Path) -> None:
    """The LSTM kernel replaced by a virtual dataset whose source is another file."""
    source = outside / "vds_source.h5"
    with h5py.File(source, "w") as handle:
        handle.create_dataset("data", data=np.full((8, 64), 7.0, dtype=np.float32))
    shutil.copy(LSTM_H5, path)
    with h5py.File(path, "r+") as handle:
        name = "model_weights/lstm/lstm/lstm_cell/kernel:0"
        del handle[name]
        layout = h5py.VirtualLayout(shape=(8, 64), dtype=np.float32)
        layout[:] = h5py.VirtualSource(str(source), "data", shape=(8, 64))
        handle.create_virtual_dataset(name, layout)


def h5_huge_model_config(path: Path, megabytes: int = 60) -> None:
    """A `model_config` attribute of nested empty lists: tiny on disk once compressed into
    the attribute's dense storage, a gigabyte as Python lists."""
    with h5py.File(path, "w", libver="latest") as handle:  # dense storage for a big attribute
        text = "[" + "[]," * (megabytes * 1024 * 1024 // 3) + "[]]"
        handle.attrs.create("model_config", np.bytes_(text.encode()))


def h5_many_layer_names(path: Path, count: int = 1_000_000) -> None:
    """A weights-only file listing a million layers, none stored: a million warnings."""
    with h5py.File(path, "w", libver="latest") as handle:
        names = np.array([f"l{i}".encode() for i in range(count)], dtype="S8")
        handle.attrs.create("layer_names", names)


def h5_null_dataspace(path: Path) -> None:
    shutil.copy(LSTM_H5, path)
    with h5py.File(path, "r+") as handle:
        name = "model_weights/lstm/lstm/lstm_cell/bias:0"
        del handle[name]
        handle.create_dataset(name, data=h5py.Empty("f4"))


def v3_superscript_variable(path: Path) -> None:
    """A Keras 3 weights file whose variable is named `²` (str.isdigit() is true for it)."""
    shutil.copy(LSTM_WEIGHTS, path)
    with h5py.File(path, "r+") as handle:
        handle["layers/lstm/cell/vars/²"] = np.zeros(3, dtype=np.float32)


def h5_escapes_in_names(path: Path) -> None:
    """Control characters in a layer name, its class and keras_version; a formula-looking
    layer name for spreadsheets."""
    shutil.copy(LSTM_H5, path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        layers = config["config"]["layers"]
        layers[-1]["config"]["name"] = '=HYPERLINK("http://x")' + ESCAPES
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = "2.15" + ESCAPES


def h5_units(path: Path, units: object) -> None:
    """The LSTM's `units` replaced (4000 digits, negative, zero)."""
    shutil.copy(LSTM_H5, path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["units"] = units
        handle.attrs["model_config"] = json.dumps(config)


# --- .keras archives ----------------------------------------------------------------------------


def keras_conv_kernel(path: Path, size: int) -> None:
    """The Keras 3 ConvLSTM2D fixture with its `kernel_size` both `size` (4,000 digits: their
    product is past Python's int-to-text limit)."""
    fixture = FIXTURES / "keras3/convlstm2d.keras"
    with zipfile.ZipFile(fixture) as source, zipfile.ZipFile(path, "w") as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if layer["class_name"] == "ConvLSTM2D":
                        layer["config"]["kernel_size"] = [size, size]
                data = json.dumps(config).encode()
            archive.writestr(info.filename, data)


def keras_nested_config(path: Path, megabytes: int = 60) -> None:
    text = "[" + "[]," * (megabytes * 1024 * 1024 // 3) + "[]]"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", text)


def keras_deflated_weights(path: Path, padding_mb: int = 200) -> None:
    """A real .keras re-zipped with its weights deflated and padded to `padding_mb` MB: a
    reader that re-inflates from the start on every backward seek inflates gigabytes."""
    with zipfile.ZipFile(LSTM_KERAS) as source:
        members = {name: source.read(name) for name in source.namelist()}
    weights = members["model.weights.h5"] + bytes(padding_mb * 1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, weights if name == "model.weights.h5" else data)


def keras_escapes(path: Path) -> None:
    with zipfile.ZipFile(LSTM_KERAS) as source:
        members = {name: source.read(name) for name in source.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][-1]["config"]["name"] = "+cmd|' /C calc'!A0" + ESCAPES
    members["config.json"] = json.dumps(config).encode()
    members["metadata.json"] = json.dumps({"keras_version": "3" + ESCAPES}).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


# --- safetensors ---------------------------------------------------------------------------------


def safetensors_file(path: Path, header: object, data: bytes = b"") -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def safetensors_huge_lists(path: Path, megabytes: int = 95) -> None:
    text = (
        '{"a":{"dtype":"F32","shape":['
        + "[]," * (megabytes * 1024 * 1024 // 3)
        + '[]],"data_offsets":[0,0]}}'
    )
    raw = text.encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def safetensors_overlapping(path: Path) -> None:
    safetensors_file(
        path,
        {
            "rnn.weight_ih_l0": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
            "rnn.weight_hh_l0": {"dtype": "F32", "shape": [4, 4], "data_offsets": [16, 80]},
        },
        bytes(80),
    )


def safetensors_escapes(path: Path) -> None:
    name = "=1+1" + ESCAPES
    safetensors_file(path, {name: {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(8))


# --- ONNX ----------------------------------------------------------------------------------------


def declared(name: str, dims: list[int]) -> TensorProto:
    """A float TensorProto whose data is said to live in a file that is not there."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="absent.bin")
    return tensor


def onnx_slice_bomb(path: Path) -> None:
    """An LSTM whose W is a Slice of a declared 50-million-element tensor (no data stored):
    propagating the shape must not build a list of 50 million indices."""
    big = declared("big", [1, 50_000_000, 2])
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [16 * 4])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Slice", ["big", "starts", "ends", "axes"], ["W"]),
        helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=16),
    ]
    r = declared("R", [1, 64, 16])
    graph = helper.make_graph(
        nodes,
        "slice_bomb",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[big, starts, ends, axes, r],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())


def onnx_expand_bomb(path: Path) -> None:
    """An LSTM whose W is Expand(a 1-element constant, to 1 x 64 x 6,250,000): `compare` must
    refuse the 4e8 elements before materialising them."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [0.5])
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 64, 6_250_000])
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 64, 16], np.zeros(1024).tolist())
    nodes = [
        helper.make_node("Expand", ["one", "shape"], ["W"]),
        helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=16),
    ]
    graph = helper.make_graph(
        nodes,
        "expand_bomb",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, 6_250_000])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[one, shape, r],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())


def onnx_repeated_fields(path: Path, which: str, count: int = 512 * 1024) -> None:
    """`count` empty entries of one repeated field: opset_import (ModelProto 8),
    metadata_props (ModelProto 14) or sparse_initializer (GraphProto 15)."""
    empty_many = field(15, b"") * count if which == "sparse_initializer" else b""
    data = small_onnx(empty_many)
    if which == "opset_import":
        data += field(8, b"") * count
    elif which == "metadata_props":
        data += field(14, b"") * count
    path.write_bytes(data)


def onnx_many_nodes(path: Path, count: int = 1_000_000) -> None:
    """A graph of `count` empty nodes (2 bytes each on the wire)."""
    path.write_bytes(small_onnx(field(1, b"") * count))


def onnx_many_inputs(path: Path, count: int = 1_000_000) -> None:
    """One node with `count` one-byte input names."""
    path.write_bytes(small_onnx(field(1, field(1, b"x") * count)))


def onnx_external(path: Path, location: str, length: int | None = None) -> None:
    """The fixture LSTM with its W stored externally at `location` (NUL bytes, a 10^15
    length, a path outside the folder)."""
    model = onnx.load(ONNX_LSTM, load_external_data=False)
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data) + len(t.float_data))
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    tensor.external_data.add(key="location", value=location)
    if length is not None:
        tensor.external_data.add(key="length", value=str(length))
    path.write_bytes(model.SerializeToString())


def onnx_many_dims(path: Path, rank: int = 240) -> None:
    model = onnx.load(ONNX_LSTM, load_external_data=False)
    model.graph.initializer.append(helper.make_tensor("deep", TensorProto.FLOAT, [1] * rank, [0.0]))
    path.write_bytes(model.SerializeToString())


def onnx_huge_dims(path: Path) -> None:
    """A stored tensor of 17 dims of 2^62 elements: a byte size no float can hold."""
    model = onnx.load(ONNX_LSTM, load_external_data=False)
    model.graph.initializer.append(declared("huge", [1 << 62] * 17))
    path.write_bytes(model.SerializeToString())


def onnx_escapes(path: Path) -> None:
    model = onnx.load(ONNX_LSTM, load_external_data=False)
    for node in model.graph.node:
        if node.op_type == "LSTM":
            node.name = "@SUM(1)" + ESCAPES
    model.producer_name = "pytorch" + ESCAPES
    model.opset_import.add(domain="evil" + ESCAPES, version=1)
    path.write_bytes(model.SerializeToString())


# --- TensorFlow SavedModel ----------------------------------------------------------------


def _saved_model_copy(path: Path) -> Path:
    shutil.copytree(SAVED_MODEL, path)
    return path


def saved_model_metadata_json(path: Path, megabytes: int = 30) -> None:
    """keras_metadata.pb whose root node holds `[{},{},...]`: a few MB of JSON, tens of
    millions of Python dicts if decoded unbounded."""
    document = b"[" + b"{}," * (megabytes * 1024 * 1024 // 3) + b"{}]"
    node = field(3, b"root") + field(5, document)  # SavedObject.node_path, .metadata
    (_saved_model_copy(path) / "keras_metadata.pb").write_bytes(field(1, node))


def _sstable_block(entries: list[tuple[int, bytes, bytes]]) -> bytes:
    body = b"".join(
        varint(shared) + varint(len(suffix)) + varint(len(value)) + suffix + value
        for shared, suffix, value in entries
    )
    return body + struct.pack("<II", 0, 1) + bytes(5)  # one restart; trailer: uncompressed


def saved_model_index_keys(path: Path, entries: int = 300_000) -> None:
    """variables.index whose keys are prefix-compressed so that each shares all of the last
    and adds one byte: a 1 MB table, gigabytes of keys if every key is materialised."""
    entry = b"\x08\x01"  # BundleEntryProto{dtype: DT_FLOAT}
    data = _sstable_block([(0, b"a", entry)] + [(i, b"b", entry) for i in range(1, entries)])
    index = _sstable_block([(0, b"z", varint(0) + varint(len(data) - 5))])
    meta = _sstable_block([(0, b"", b"")])
    handles = (len(data) + len(index), len(meta) - 5, len(data), len(index) - 5)
    footer = b"".join(varint(v) for v in handles).ljust(40, b"\0")
    table = data + index + meta + footer + struct.pack("<Q", 0xDB4775248B80FB57)
    (_saved_model_copy(path) / "variables" / "variables.index").write_bytes(table)


def saved_model_wide_object_graph(
    path: Path, children: int = 300_000, layers: int = 20_000
) -> None:
    """A SavedModel whose checkpoint object graph gives the root `children` extra children and
    whose keras_metadata.pb lists `layers` extra layers: each layer's lookup among the root's
    children must not scan them all (layers x children)."""
    from inspector.formats.protobuf import fields
    from inspector.formats.savedmodel import objects, sstable

    model = _saved_model_copy(path)
    index_path = model / "variables" / "variables.index"
    shard_path = model / "variables" / "variables.data-00000-of-00001"
    index, shard = index_path.read_bytes(), shard_path.read_bytes()
    entries = [(key, index[start:end]) for key, start, end in sstable.entries(index)]
    key = objects.KEY.encode()
    found = dict(entries)[key]
    where = {item.number: item.value for item in fields(found, 0, len(found))}
    stored = shard[where[4] : where[4] + where[5]]  # BundleEntryProto offset, size
    start, end = objects.string_scalar(stored)
    nodes = [stored[n.value : n.end] for n in fields(stored, start, end) if n.number == 1]
    junk = field(1, varint(1 << 3) + varint(0) + field(2, b"junk"))  # ObjectReference to root
    graph = field(1, nodes[0] + junk * children) + b"".join(field(1, n) for n in nodes[1:])
    entry = varint(len(graph)) + bytes(4) + graph  # length, crc32c (unchecked), bytes
    value = varint(1 << 3) + varint(7) + field(2, b"")  # DT_STRING scalar
    value += varint(4 << 3) + varint(len(shard)) + varint(5 << 3) + varint(len(entry))
    shard_path.write_bytes(shard + entry)
    entries = [(k, value if k == key else v) for k, v in entries]
    data = _sstable_block([(0, k, v) for k, v in entries])
    table = _sstable_block([(0, b"\xff", varint(0) + varint(len(data) - 5))])
    meta = _sstable_block([(0, b"", b"")])
    handles = (len(data) + len(table), len(meta) - 5, len(data), len(table) - 5)
    footer = b"".join(varint(v) for v in handles).ljust(40, b"\0")
    index_path.write_bytes(data + table + meta + footer + struct.pack("<Q", sstable.MAGIC))
    extra = b"".join(
        field(
            1,
            field(3, b"root.layer-%d" % (1000 + i))
            + field(4, b"_tf_keras_layer")
            + field(5, b'{"name": "extra_%d"}' % i),
        )
        for i in range(layers)
    )
    metadata = model / "keras_metadata.pb"
    metadata.write_bytes(metadata.read_bytes() + extra)


# --- GGUF ----------------------------------------------------------------------------------------
# A GGUF file by hand (ggml/docs/gguf.md), so that every field can be what an attacker wants:
# versions 1 (32-bit lengths and counts) to 3, either byte order.


class GGUF:
    """Builds GGUF bytes: key/values and tensor infos as the spec lays them out, `counts` to
    claim other numbers than the entries given, `pad` the data section to the alignment."""

    def __init__(self, version: int = 3, order: str = "<") -> None:
        self.version, self.order = version, order
        self.kvs: list[bytes] = []
        self.infos: list[bytes] = []

    def pack(self, fmt: str, *values: object) -> bytes:
        return struct.pack(self.order + fmt, *values)

    def length(self, value: int) -> bytes:
        return self.pack("Q" if self.version >= 2 else "I", value)

    def string(self, text: str | bytes, length: int | None = None) -> bytes:
        raw = text.encode() if isinstance(text, str) else text
        return self.length(len(raw) if length is None else length) + raw

    def value(self, kind: int, value: object) -> bytes:
        """A value of GGUF type `kind` (8 string, 9 array as (kind, items), others scalars)."""
        formats = {
            0: "B",
            1: "b",
            2: "H",
            3: "h",
            4: "I",
            5: "i",
            6: "f",
            7: "?",
            10: "Q",
            11: "q",
            12: "d",
        }
        if kind == 8:
            return self.string(value)  # type: ignore[arg-type]
        if kind == 9:
            inner, items = value  # type: ignore[misc]
            return (
                self.pack("I", inner)
                + self.length(len(items))
                + b"".join(self.value(inner, item) for item in items)
            )
        return self.pack(formats[kind], value)

    def kv(self, key: str | bytes, kind: int, value: object) -> GGUF:
        self.kvs.append(self.string(key) + self.pack("I", kind) + self.value(kind, value))
        return self

    def raw_kv(self, raw: bytes) -> GGUF:
        self.kvs.append(raw)
        return self

    def tensor(self, name: str | bytes, dims: list[int], kind: int = 0, offset: int = 0) -> GGUF:
        dim = "Q" if self.version >= 2 else "I"
        self.infos.append(
            self.string(name)
            + self.pack("I", len(dims))
            + b"".join(self.pack(dim, d) for d in dims)
            + self.pack("I", kind)
            + self.pack("Q", offset)
        )
        return self

    def build(
        self,
        data: bytes = b"",
        counts: tuple[int | None, int | None] = (None, None),
        alignment: int = 32,
    ) -> bytes:
        tensors = len(self.infos) if counts[0] is None else counts[0]
        keys = len(self.kvs) if counts[1] is None else counts[1]
        head = b"GGUF" + self.pack("I", self.version) + self.length(tensors) + self.length(keys)
        body = head + b"".join(self.kvs) + b"".join(self.infos)
        return body + bytes(-len(body) % alignment) + data


def gguf_small(version: int = 3, order: str = "<") -> bytes:
    """A small valid file: metadata of every value type, two F32 tensors and a Q8_0 one."""
    floats = np.arange(18, dtype=np.float32).astype(order + "f4").tobytes()
    block = (
        np.float16(0.5).astype(order + "f2").tobytes() + np.arange(-16, 16, dtype=np.int8).tobytes()
    )
    data = floats[:48] + bytes(16) + floats[48:] + bytes(8) + block * 2
    return (
        GGUF(version, order)
        .kv("general.architecture", 8, "mamba")
        .kv("general.name", 8, "crafted")
        .kv("mamba.block_count", 4, 1)
        .kv("mamba.ssm.state_size", 4, 16)
        .kv("test.u8", 0, 7)
        .kv("test.i16", 3, -3)
        .kv("test.f32", 6, 0.5)
        .kv("test.bool", 7, True)
        .kv("test.ints", 9, (5, [-1, 2, 3]))
        .kv("test.strings", 9, (8, ["a", "bc"]))
        .kv("test.nested", 9, (9, [(4, [1, 2]), (4, [3])]))
        .tensor("token_embd.weight", [4, 3], 0, 0)  # 12 floats at 0
        .tensor("blk.0.ssm_d", [3, 2], 0, 64)  # 6 floats at 64
        .tensor("blk.0.ssm_in.weight", [32, 2], 8, 96)  # 2 Q8_0 blocks at 96
        .build(data)
    )


def gguf_escapes(path: Path) -> None:
    """Control characters and markup in the architecture, the name and a tensor name."""
    path.write_bytes(
        GGUF()
        .kv("general.architecture", 8, "mamba" + ESCAPES)
        .kv("general.name", 8, "=HYPERLINK(1)" + ESCAPES)
        .tensor("blk.0." + ESCAPES, [4], 0, 0)
        .build(bytes(16))
    )


def gguf_many_strings(path: Path, count: int = (1 << 22) + 1) -> None:
    """One string array of more entries than the reader walks, all empty: a sparse file of
    32 MiB that costs nothing to write."""
    head = GGUF().build(counts=(0, 1))[:24]
    entry = GGUF().string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, count)
    with path.open("wb") as handle:
        handle.write(head + entry)
        handle.truncate(len(head) + len(entry) + 8 * count)


# --- what files really are ---------------------------------------------------------------------


def saved_model_pb(path: Path) -> None:
    """The first bytes of a TensorFlow SavedModel: saved_model_schema_version 1, then a
    MetaGraphDef whose MetaInfoDef names the `serve` tag (tensorflow/core/protobuf/
    saved_model.proto, meta_graph.proto)."""
    meta_info = field(4, b"serve") + field(5, b"2.21.0")  # tags, tensorflow_version
    meta_graph = field(1, meta_info) + field(2, field(1, b"node"))
    path.write_bytes(varint(1 << 3) + varint(1) + field(2, meta_graph))


def git_lfs_pointer(path: Path) -> None:
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n"
    )


# --- issue 23: long text, huge counts, deep nesting, large reports ------------------------------


def _pickled_text(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _pickled_int(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8 or 1, "little", signed=True)
    return (
        b"J" + struct.pack("<i", value)
        if -(1 << 31) <= value < 1 << 31
        else b"\x8b" + (struct.pack("<I", len(raw)) + raw)
    )  # BININT or LONG4


def _pickled_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _pickled_tensor(key: str, numel: int, size: tuple[int, ...]) -> bytes:
    """torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()), the way
    torch.save writes a parameter (opcodes as torch's pickler emits them, protocol 2)."""
    stride = tuple(int(np.prod(size[i + 1 :], dtype=object)) for i in range(len(size)))
    storage = _pickled_global("torch", "FloatStorage")
    pid = b"(" + _pickled_text("storage") + storage + _pickled_text(key) + _pickled_text("cpu")
    pid += _pickled_int(numel) + b"t"
    hooks = _pickled_global("collections", "OrderedDict") + b")R"
    sizes = b"(" + b"".join(map(_pickled_int, size)) + b"t"
    strides = b"(" + b"".join(map(_pickled_int, stride)) + b"t"
    args = b"(" + pid + b"Q" + _pickled_int(0) + sizes + strides + b"\x89" + hooks + b"t"
    return _pickled_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def torch_state_dict(
    path: Path, entries: list[tuple[str, tuple[int, ...]]], *, deflated: bool = True
) -> None:
    """A torch.save zip of float32 tensors `(key, shape)`, each in its own storage of exactly
    its bytes; `deflated`: members compressed (torch.save never compresses, a repacker can), so
    a long key costs the file almost nothing."""
    body = b"".join(
        _pickled_text(key) + _pickled_tensor(str(i), int(np.prod(shape)), shape)
        for i, (key, shape) in enumerate(entries)
    )
    data = b"\x80\x02" + _pickled_global("collections", "OrderedDict") + b")R(" + body + b"u."
    method = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("model/data.pkl", data)
        archive.writestr("model/byteorder", "little")
        for i, (_, shape) in enumerate(entries):  # at most 64 bytes: a huge claim stores little
            archive.writestr(f"model/data/{i}", bytes(min(4 * int(np.prod(shape)), 64)))
        archive.writestr("model/version", "3\n")


def long_text(kind: str, path: Path, length: int, rows: int = 1) -> None:
    """A file of format `kind` whose text from the file is `length` characters long, beside
    `rows` - 1 ordinary rows: a name (every format), an op type (ONNX), a producer (ONNX), a
    Keras version (HDF5). One long name used to pad every row of a table to its width."""
    long = "n" * length
    if kind == "safetensors":
        header = {f"layers.{i}.weight": [0, 16] for i in range(rows - 1)}
        header[long + ".weight"] = [0, 16]
        safetensors_file(
            path,
            {
                name: {"dtype": "F32", "shape": [4], "data_offsets": [16 * i, 16 * i + 16]}
                for i, name in enumerate(header)
            },
            bytes(16 * rows),
        )
    elif kind == "pytorch":
        entries = [(f"layers.{i}.weight", (2, 3)) for i in range(rows - 1)]
        torch_state_dict(path, [*entries, (long + ".weight", (2, 3))])
    elif kind == "onnx":
        tensors = [
            helper.make_tensor(f"w{i}", TensorProto.FLOAT, [2, 2], [0.0] * 4) for i in range(rows)
        ]
        nodes = [
            helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"], name=f"mm{i}")
            for i in range(rows - 1)
        ]
        nodes.append(helper.make_node("MatMul", ["x", f"w{rows - 1}"], ["y"], name=long))
        custom = helper.make_node(long, ["x", "w0"], ["z"], name="custom", domain="x.y")
        graph = helper.make_graph(
            [*nodes, custom],
            "long",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            initializer=tensors,
        )
        model = helper.make_model(
            graph, producer_name=long, opset_imports=[helper.make_opsetid("", 17)]
        )
        path.write_bytes(model.SerializeToString())
    elif kind == "keras-h5":
        shutil.copy(LSTM_H5, path)
        with h5py.File(path, "r+") as handle:
            config = json.loads(handle.attrs["model_config"])
            config["config"]["layers"][-1]["config"]["name"] = long
            handle.attrs["model_config"] = json.dumps(config)
            handle.attrs["keras_version"] = long
    else:
        raise ValueError(kind)


LONG_TEXT_KINDS = ("safetensors", "pytorch", "onnx", "keras-h5")


def huge_count(kind: str, path: Path, value: int) -> None:
    """A count `value` (2^31 to 4,000 digits) where a file states one: a safetensors shape, an
    HDF5 dataset's dimensions (unallocated: no bytes stored), a Keras `units`, an ONNX
    initializer declared (without data) with 64 dimensions of `value`, a torch storage and view
    of `value` elements."""
    if kind == "safetensors":
        shape = [value, 4]
        safetensors_file(
            path,
            {"rnn.weight_ih_l0": {"dtype": "F32", "shape": shape, "data_offsets": [0, 16]}},
            bytes(16),
        )
    elif kind == "hdf5":
        shutil.copy(LSTM_H5, path)
        dims = (min(value, (1 << 63) - 1), 64)
        with h5py.File(path, "r+") as handle:
            name = "model_weights/lstm/lstm/lstm_cell/kernel:0"
            del handle[name]
            handle.create_dataset(name, shape=dims, maxshape=dims, chunks=(1, 64), dtype="f4")
    elif kind == "keras-units":
        h5_units(path, value)
    elif kind == "onnx":
        model = onnx.load(ONNX_LSTM, load_external_data=False)
        huge = TensorProto(name="huge", data_type=TensorProto.FLOAT)  # declared, no data
        huge.dims.extend([min(value, (1 << 63) - 1)] * 64)
        model.graph.initializer.append(huge)
        path.write_bytes(model.SerializeToString())
    elif kind == "pytorch":
        torch_state_dict(path, [("rnn.weight_ih_l0", (value, 4))])
    else:
        raise ValueError(kind)


HUGE_COUNT_KINDS = ("safetensors", "hdf5", "keras-units", "onnx", "pytorch")
HUGE_COUNTS = (1 << 31, 1 << 62, 10**30, 10**4000)


def nested(kind: str, path: Path, depth: int) -> None:
    """Structure nested `depth` deep where a reader walks it recursively: Keras models inside
    models (HDF5 config), Bidirectional wrappers, HDF5 groups, ONNX If subgraphs, ONNX value
    chains (Identity nodes between an initializer and the LSTM reading it), JSON lists in a
    .keras config, JSON objects in a safetensors header."""
    if kind == "keras-models":  # JSON written by hand: json.dumps recurses per level
        shutil.copy(LSTM_H5, path)
        with h5py.File(path, "r+") as handle:
            inner = handle.attrs["model_config"]
            inner = inner.decode() if isinstance(inner, bytes) else str(inner)
            opening = '{"class_name": "Sequential", "config": {"name": "outer", "layers": ['
            handle.attrs["model_config"] = opening * depth + inner + "]}}" * depth
    elif kind == "keras-wrappers":
        shutil.copy(LSTM_H5, path)
        with h5py.File(path, "r+") as handle:
            config = json.loads(handle.attrs["model_config"])
            lstm = json.dumps(config["config"]["layers"][-1])
            opening = '{"class_name": "Bidirectional", "config": {"name": "bidi", "layer": '
            config["config"]["layers"][-1] = "@"
            text = json.dumps(config).replace('"@"', opening * depth + lstm + "}}" * depth)
            handle.attrs["model_config"] = text
    elif kind == "hdf5-groups":
        shutil.copy(LSTM_H5, path)
        with h5py.File(path, "r+") as handle:
            group = handle["model_weights/lstm"]
            for level in range(depth):
                group = group.create_group(f"g{level}")
            group.create_dataset("deep:0", data=np.zeros(3, dtype=np.float32))
    elif kind == "onnx-if":  # wire bytes by hand: onnx's helpers copy (and re-parse) graphs
        graph = onnx.load(ONNX_LSTM, load_external_data=False).graph.SerializeToString()
        for level in range(depth):
            branch = field(1, b"then_branch") + field(6, graph) + varint(20 << 3) + varint(5)
            node = field(1, b"cond") + field(4, b"If") + field(5, branch)
            graph = field(1, node) + field(2, b"level%d" % level)
        path.write_bytes(small_onnx(graph + field(11, field(1, b"cond"))))  # cond: an input
    elif kind == "onnx-chain":
        model = onnx.load(ONNX_LSTM, load_external_data=False)
        graph = model.graph
        lstm = next(node for node in graph.node if node.op_type == "LSTM")
        source = lstm.input[1]
        names = [source] + [f"chain{i}" for i in range(depth)]
        chain = [helper.make_node("Identity", [names[i]], [names[i + 1]]) for i in range(depth)]
        lstm.input[1] = names[-1]
        nodes = list(graph.node)
        del graph.node[:]
        graph.node.extend(chain + nodes)
        path.write_bytes(model.SerializeToString())
    elif kind == "keras-json":
        text = "[" * depth + "]" * depth
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("metadata.json", "{}")
            archive.writestr("config.json", '{"class_name": "Sequential", "config": ' + text + "}")
    elif kind == "safetensors-json":
        raw = ('{"__metadata__": ' + '{"a": ' * depth + "1" + "}" * depth + "}").encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    else:
        raise ValueError(kind)


NESTED_KINDS = {  # kind: file suffix
    "keras-models": ".h5",
    "keras-wrappers": ".h5",
    "hdf5-groups": ".h5",
    "onnx-if": ".onnx",
    "onnx-chain": ".onnx",
    "keras-json": ".keras",
    "safetensors-json": ".safetensors",
}


def many_tensors(path: Path, count: int, name_length: int = 60) -> None:
    """A safetensors state dict of `count` small tensors with names of about `name_length`
    characters: a legitimate file whose report is large (about 100 bytes per tensor)."""
    stem = "m" * max(name_length - 20, 1)
    safetensors_file(
        path,
        {
            f"{stem}.blocks.{i}.weight": {
                "dtype": "F32",
                "shape": [2],
                "data_offsets": [8 * i, 8 * i + 8],
            }
            for i in range(count)
        },
        bytes(8 * count),
    )


# --- PyTorch and SavedModel, issue 23 ---------------------------------------------------------


def torch_deep_key(path: Path, depth: int = 1_000_000) -> None:
    """A torch.save zip whose pickle has a dict key nested `depth` tuples deep: hashing it
    overflows the C stack unless the nesting is refused while it is built."""
    data = b"\x80\x04}N" + b"\x85" * depth + b"Ns."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", data)
        archive.writestr("model/version", "3\n")


def saved_model_fifo(path: Path, member: str = "variables/variables.index") -> None:
    """The fixture SavedModel with one member replaced by a FIFO: opening it blocks."""
    _saved_model_copy(path)
    (path / member).unlink()
    os.mkfifo(path / member)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "model_config.h5": h5_huge_model_config,
    "layer_names.h5": h5_many_layer_names,
    "nested_config.keras": keras_nested_config,
    "deflated.keras": keras_deflated_weights,
    "lists.safetensors": safetensors_huge_lists,
    "slice.onnx": onnx_slice_bomb,
    "expand.onnx": onnx_expand_bomb,
    "opsets.onnx": lambda p: onnx_repeated_fields(p, "opset_import"),
    "metadata.onnx": lambda p: onnx_repeated_fields(p, "metadata_props"),
    "sparse.onnx": lambda p: onnx_repeated_fields(p, "sparse_initializer"),
    "nodes.onnx": onnx_many_nodes,
    "inputs.onnx": onnx_many_inputs,
    "metadata_json.savedmodel": saved_model_metadata_json,
    "index_keys.savedmodel": saved_model_index_keys,
    "long_key.pt": lambda p: long_text("pytorch", p, 1 << 20, rows=500),
    "long_type.onnx": lambda p: long_text("onnx", p, 9 << 20),
    "huge_dims.onnx": lambda p: huge_count("onnx", p, 1 << 62),
    "nested_models.h5": lambda p: nested("keras-models", p, 1000),
    "many_tensors.safetensors": lambda p: many_tensors(p, 200_000),
    "strings.gguf": gguf_many_strings,
    "deep_key.pt": torch_deep_key,
}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        build(out / name)
        print(name, (out / name).stat().st_size)
