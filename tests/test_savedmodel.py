"""TensorFlow SavedModel directories: layers from keras_metadata.pb, shapes from the tensor
bundle index, the same report as the `.h5` twin. Truth from fixtures/savedmodel/manifest.json
(tf_keras count_params(), the bundle's keys as TensorFlow lists them)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import crafted
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REALWORLD, entry_id, manifest_entries, realworld_entries
from inspector import inspect_file
from inspector.cli.app import app
from inspector.errors import InspectorError
from inspector.formats import choose
from inspector.formats.savedmodel import metadata as keras_metadata
from inspector.formats.savedmodel import objects, sstable

runner = CliRunner()
ENTRIES = manifest_entries("tf-savedmodel")
KERAS = [e for e in ENTRIES if e.get("keras_metadata")]
# Written without keras_metadata.pb by TF 2.4 model.save, tf.saved_model.save, Keras 3 export.
ERAS = [e for e in ENTRIES if e.get("saved_without_metadata")]
PLAIN = [e for e in ENTRIES if not e.get("keras_metadata") and not e.get("saved_without_metadata")]


def inspect(*args: str) -> tuple[int, object, str]:
    result = runner.invoke(app, [*args, "--format", "json"])
    payload = json.loads(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, payload, result.stderr


def _report(path: Path) -> dict:
    code, report, errors = inspect(str(path))
    assert code == 0, errors
    assert isinstance(report, dict)
    return report


def test_fixtures_present() -> None:
    assert len(KERAS) >= 5 and PLAIN
    writers = {e["writer"].split(" ", 1)[0] for e in ERAS}
    assert writers == {"tf.keras", "tf_keras", "keras"}  # TF 2.4, tf.saved_model.save, Keras 3


@pytest.mark.parametrize("entry", ERAS, ids=entry_id)
def test_saved_without_keras_metadata(entry: dict) -> None:
    """Layers, their order and every recurrent split as Keras counted them, whichever saver
    left out keras_metadata.pb; never a claim that Keras did not write the file."""
    report = _report(FIXTURES / entry["file"])
    assert report["total_params"] == entry["total_params"]
    layers = [row for row in report["layers"] if row["name"] != "input_1"]  # a functional Input
    assert [(r["name"], r["params"]) for r in layers] == [
        (t["name"], t["params"]) for t in entry["layers"]
    ]
    recurrent = {layer["name"]: layer for layer in report["recurrent_layers"]}
    assert list(recurrent) == [t["name"] for t in entry["recurrent_layers"]]
    for truth in entry["recurrent_layers"]:
        found = recurrent[truth["name"]]
        assert (found["params"], found["units"], found["directions"], found["input_dim"]) == (
            truth["params"],
            truth["units"],
            truth["directions"],
            truth["input_dim"],
        )
        assert found["check"] == "ok"
        assert truth["class"] in found["type"]
    assert not any("not written by Keras" in w for w in report["warnings"])
    inferred = any("layer classes and configs are not recorded" in w for w in report["warnings"])
    assert inferred == (entry["keras_metadata_in"] is None)


@pytest.mark.parametrize("entry", ERAS, ids=entry_id)
def test_compare_without_metadata_against_the_keras_twin(entry: dict) -> None:
    result = runner.invoke(
        app, ["compare", str(FIXTURES / entry["twin"]), str(FIXTURES / entry["file"]), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["faithful"] is True
    assert {pair["status"] for pair in report["pairs"]} == {"identical"}


def test_compare_against_another_training_run_names_the_first_difference() -> None:
    (entry,) = [e for e in ERAS if e.get("other_run")]
    result = runner.invoke(
        app, ["compare", str(FIXTURES / entry["other_run"]), str(FIXTURES / entry["file"])]
    )
    assert result.exit_code == 1, result.output
    assert "NOT faithful" in result.stdout
    first = entry["recurrent_layers"][0]["name"]
    assert f"{first} -> {first}: values differ" in result.stdout


REAL = [e for e in realworld_entries("tf-savedmodel") if (REALWORLD / "files" / e["file"]).exists()]


@pytest.mark.parametrize("entry", REAL, ids=entry_id)
def test_real_saved_models(entry: dict) -> None:
    report = _report(REALWORLD / "files" / entry["file"])
    assert report["total_params"] == entry["truth"]["total"]
    assert [layer["params"] for layer in report["recurrent_layers"]] == list(
        entry["truth"]["recurrent"].values()
    )
    assert all(layer["check"] == "ok" for layer in report["recurrent_layers"])
    assert not any("not written by Keras" in w for w in report["warnings"])


REAL_PAIRS = [
    (e["file"], pair["source"], pair["faithful"])
    for e in realworld_entries("tflite")
    for pair in e.get("compare", [])
    if pair["source"] in {r["file"] for r in REAL} and (REALWORLD / "files" / e["file"]).exists()
]


@pytest.mark.parametrize("export, source, faithful", REAL_PAIRS)
def test_real_saved_model_compare_verdicts(export: str, source: str, faithful: bool) -> None:
    files = REALWORLD / "files"
    result = runner.invoke(app, ["compare", str(files / source), str(files / export), "-f", "json"])
    assert result.exit_code == (0 if faithful else 1), result.output
    assert json.loads(result.stdout)["faithful"] is faithful


@pytest.mark.parametrize("entry", KERAS, ids=entry_id)
def test_counts_match_keras(entry: dict) -> None:
    report = _report(FIXTURES / entry["file"])
    assert report["format"] == "tf-savedmodel"
    assert report["file_bytes"] == entry["dir_bytes"]  # every file of the directory
    assert report["total_params"] == entry["total_params"]
    assert report["trainable_params"] == entry["trainable_params"]
    assert report["non_trainable_params"] == entry["non_trainable_params"]
    by_name = {layer["name"]: layer for layer in report["layers"]}
    for layer in entry["layers"]:
        assert by_name[layer["name"]]["params"] == layer["params"], layer["name"]
        assert by_name[layer["name"]]["type"] == layer["class"]
    assert sum(layer["params"] for layer in report["layers"]) == report["total_params"]
    recurrent = {layer["name"]: layer for layer in report["recurrent_layers"]}
    assert set(recurrent) == {layer["name"] for layer in entry["recurrent_layers"]}
    for truth in entry["recurrent_layers"]:
        found = recurrent[truth["name"]]
        assert found["params"] == truth["params"]
        assert sum(t["params"] for t in found["tensors"]) == found["params"]
        assert (found["units"], found["directions"]) == (truth["units"], truth["directions"])
        assert (found["input_dim"], found["input_dim_source"]) == (truth["input_dim"], "config")
        assert found["check"] == "ok"


@pytest.mark.parametrize("entry", KERAS, ids=entry_id)
def test_same_report_as_the_h5_twin(entry: dict) -> None:
    """Everything but the file, the format, tensor names (checkpoint keys) and what only the
    SavedModel stores (Keras metric variables) equals the .h5 of the same model."""
    directory = FIXTURES / entry["file"]
    ours = inspect_file(directory).to_dict()
    twin = inspect_file(directory.with_suffix(".h5")).to_dict()
    for report in (ours, twin):
        for key in ("file", "format", "excluded", "optimizer", "file_bytes"):
            report.pop(key, None)
        for layer in report["recurrent_layers"]:
            for tensor in layer["tensors"]:
                tensor.pop("name")
    assert ours == twin


@pytest.mark.parametrize("entry", KERAS, ids=entry_id)
def test_optimizer_and_metric_state_apart(entry: dict) -> None:
    report = _report(FIXTURES / entry["file"])
    kinds = entry["checkpoint"]["elements_by_kind"]
    optimizer = report["optimizer"]
    assert (optimizer or {}).get("values", 0) == kinds.get("optimizer", 0)
    excluded = sum(item["params"] for item in report.get("excluded", []))
    assert excluded == kinds.get("metric", 0)


@pytest.mark.parametrize("entry", PLAIN, ids=entry_id)
def test_plain_saved_model_lists_variables(entry: dict) -> None:
    report = _report(FIXTURES / entry["file"])
    assert report["total_params"] == entry["variables_total_elements"]
    assert len(report["layers"]) == len(entry["variables"])
    assert sorted(layer["params"] for layer in report["layers"]) == sorted(
        v["numel"] for v in entry["variables"]
    )
    assert report["recurrent_layers"] == []
    assert any("no keras_metadata.pb" in w for w in report["warnings"])


def test_saved_model_pb_is_accepted_and_never_taken_for_onnx(tmp_path: Path) -> None:
    directory = FIXTURES / KERAS[0]["file"]
    report = _report(directory / "saved_model.pb")
    assert report["total_params"] == KERAS[0]["total_params"]
    alone = tmp_path / "model.pb"  # a graph protobuf without its directory
    shutil.copy(directory / "saved_model.pb", alone)
    assert choose(alone).name == "tf-savedmodel"
    code, _, errors = inspect(str(alone))
    assert code == 2 and "variables" in errors and "onnx" not in errors.lower()


def test_directory_scan_lists_a_saved_model_as_one_model(tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(FIXTURES / KERAS[0]["file"], root / "nested" / "exported")
    shutil.copy(FIXTURES / "keras2/lstm_u16_d8.h5", root / "lstm.h5")
    code, reports, errors = inspect(str(root))
    assert code == 0, errors
    assert isinstance(reports, list)
    assert sorted(Path(r["file"]).name for r in reports) == ["exported", "lstm.h5"]
    code, report, _ = inspect(str(root / "nested" / "exported"))
    assert code == 0 and isinstance(report, dict) and report["format"] == "tf-savedmodel"


# --- hostile and damaged directories -------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(FIXTURES / KERAS[0]["file"], target)
    return target


def _refused(path: Path, *words: str) -> str:
    code, _, errors = inspect(str(path))
    assert code == 2, errors
    lines = errors.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in errors, errors
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("keep", [0, 20, 47, 200])
def test_truncated_index(tmp_path: Path, keep: int) -> None:
    model = _copy(tmp_path)
    index = model / "variables" / "variables.index"
    index.write_bytes(index.read_bytes()[:keep])
    _refused(model, "tensor bundle")


def _footer(index: bytes) -> tuple[int, int, int, int]:
    pos = len(index) - sstable.FOOTER_BYTES
    values = []
    for _ in range(4):
        value, pos = sstable.varint(index, pos, len(index))
        values.append(value)
    return values[0], values[1], values[2], values[3]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _with_footer(index: bytes, handles: tuple[int, int, int, int]) -> bytes:
    encoded = b"".join(_varint(v) for v in handles).ljust(40, b"\0")
    return index[: -sstable.FOOTER_BYTES] + encoded + struct.pack("<Q", sstable.MAGIC)


@pytest.mark.parametrize(
    "change",
    [
        lambda m, s, i, n: (m, s, i + 1_000_000, n),  # index block past the end
        lambda m, s, i, n: (m, s, i, n + 1_000_000),  # index block overruns the file
        lambda m, s, i, n: (m, s, 0, 2),  # index block too small for its restart count
        lambda m, s, i, n: (m, s, 2**62, 2**62),  # huge handle
    ],
    ids=["offset", "size", "tiny", "huge"],
)
def test_bad_block_handles(tmp_path: Path, change: object) -> None:
    model = _copy(tmp_path)
    index = model / "variables" / "variables.index"
    raw = index.read_bytes()
    index.write_bytes(_with_footer(raw, change(*_footer(raw))))  # type: ignore[operator]
    _refused(model, "tensor bundle")


def test_compressed_block_is_refused_with_a_reason(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    index = model / "variables" / "variables.index"
    raw = bytearray(index.read_bytes())
    _, _, offset, size = _footer(bytes(raw))
    raw[offset + size] = 1  # the index block's trailer: snappy
    index.write_bytes(bytes(raw))
    _refused(model, "snappy", "uncompressed")


def test_data_block_entries_overrunning_their_block(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    index = model / "variables" / "variables.index"
    raw = bytearray(index.read_bytes())
    raw[1] = 0x7F  # the first entry's key length, far beyond the first block
    index.write_bytes(bytes(raw))
    _refused(model, "tensor bundle")


def _block(entries: list[tuple[int, bytes, bytes]]) -> bytes:
    """An uncompressed SSTable block of (shared, key suffix, value) entries, one restart."""
    body = b"".join(
        _varint(shared) + _varint(len(suffix)) + _varint(len(value)) + suffix + value
        for shared, suffix, value in entries
    )
    return body + struct.pack("<II", 0, 1)


def _table(data: list[tuple[int, bytes, bytes]], index_repeats: int = 1) -> bytes:
    """One data block and an index naming it `index_repeats` times, then metaindex and footer."""
    block = _block(data)
    handle = _varint(0) + _varint(len(block))
    out = block + bytes(sstable.TRAILER_BYTES)
    index = _block([(0, b"z", handle)] + [(1, b"", handle)] * (index_repeats - 1))
    index_at = len(out)
    out += index + bytes(sstable.TRAILER_BYTES)
    meta = _block([(0, b"", b"")])
    meta_at = len(out)
    out += meta + bytes(sstable.TRAILER_BYTES)
    return _with_footer(
        out + bytes(sstable.FOOTER_BYTES), (meta_at, len(meta), index_at, len(index))
    )


FLOAT_ENTRY = b"\x08\x01\x28\x04"  # BundleEntryProto{dtype: DT_FLOAT, size: 4}, a scalar


@pytest.mark.parametrize(
    ("table", "words"),
    [
        # each key shares all of the previous one and adds a byte: copies grow quadratically
        (
            lambda: _table(
                [(0, b"a", FLOAT_ENTRY)] + [(i, b"b", FLOAT_ENTRY) for i in range(1, 3000)]
            ),
            "in all",
        ),
        # one key longer than any variable path
        (lambda: _table([(0, b"k" * 70_000, FLOAT_ENTRY)]), "key of 70,000 bytes"),
        # the index names the same data block again and again: its keys read once per mention
        (lambda: _table([(0, b"k" * 1000, FLOAT_ENTRY)], index_repeats=5), "repeat or overlap"),
    ],
    ids=["growing-key", "long-key", "block-named-twice"],
)
def test_index_key_bombs_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: object, words: str
) -> None:
    """Key bytes are bounded per key and in all, and no data block is read twice, so a 1 MB
    index cannot make gigabytes of keys (the total is lowered here to keep the file small)."""
    monkeypatch.setattr(sstable, "MAX_KEY_TOTAL", 1_000_000)
    model = _copy(tmp_path)
    (model / "variables" / "variables.index").write_bytes(table())  # type: ignore[operator]
    with pytest.raises(InspectorError, match=words):
        inspect_file(model)


def test_layer_lookups_in_the_object_graph_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each layer finds its node among its parent's children by name through an index, and the
    children all lookups visit are counted against one bound: 500 layers over a root with
    20,000 extra children stay within 50,000 visits (a scan per layer would make 10 M)."""
    monkeypatch.setattr(objects, "MAX_VISITS", 50_000)
    model = tmp_path / "wide"
    crafted.saved_model_wide_object_graph(model, children=20_000, layers=500)
    source = next(e for e in KERAS if e["file"] == "savedmodel/embedding_lstm_dense")
    assert FIXTURES / source["file"] == crafted.SAVED_MODEL
    assert inspect_file(model).totals.total == source["total_params"]


def test_huge_metadata_json_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose JSON is over the limit is refused before it is decoded (the limit is
    lowered so that the test writes kilobytes, not the real 64 MiB)."""
    model = _copy(tmp_path)
    metadata = model / "keras_metadata.pb"
    monkeypatch.setattr(keras_metadata, "MAX_JSON_BYTES", 4096)
    document = json.dumps({"class_name": "Sequential", "pad": "x" * 10_000}).encode()
    node = b"\x1a\x04root" + b"\x2a" + _varint(len(document)) + document
    metadata.write_bytes(b"\x0a" + _varint(len(node)) + node)
    _refused(model, "over the", "limit")


def test_metadata_length_bomb_is_refused(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    node = b"\x1a\x04root\x2a" + _varint(2**40) + b"{}"
    (model / "keras_metadata.pb").write_bytes(b"\x0a" + _varint(len(node)) + node)
    _refused(model, "keras_metadata.pb")


def test_link_out_of_the_directory_is_not_followed(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    outside = tmp_path / "elsewhere.pb"
    shutil.move(model / "keras_metadata.pb", outside)
    (model / "keras_metadata.pb").symlink_to(outside)
    _refused(model, "link")


@pytest.mark.parametrize("entry", KERAS, ids=entry_id)
def test_compare_with_the_h5_twin_reads_every_weight(entry: dict) -> None:
    """The generator verified the twin's weights bit-equal to the SavedModel's: compare reads
    each variable from its shard and finds every layer identical."""
    directory = FIXTURES / entry["file"]
    result = runner.invoke(
        app, ["compare", str(directory), str(directory.with_suffix(".h5")), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["faithful"] is True
    assert {pair["status"] for pair in report["pairs"]} == {"identical"}
    recurrent = [p for p in report["pairs"] if p["kind"] == "recurrent"]
    assert sum(p["values"]["compared"] for p in recurrent) == sum(
        layer["params"] for layer in entry["recurrent_layers"]
    )


def test_a_frozen_graph_pb_is_named_not_taken_for_onnx(tmp_path: Path) -> None:
    """GraphDef { repeated NodeDef node = 1 { string name = 1; string op = 2; } }: a frozen
    graph opens with field 1 as a message, never ONNX's ir_version varint."""
    node = b"\x0a\x01x\x12\x0bPlaceholder"
    frozen = tmp_path / "frozen_graph.pb"
    frozen.write_bytes(b"\x0a" + bytes([len(node)]) + node)
    line = _refused(frozen, "frozen TF graph")
    assert "onnx" not in line.lower()


# --- issue 23: members that are not regular files, listings without bound ------------------

MEMBERS = (
    "variables/variables.index",
    "variables/variables.data-00000-of-00001",
    "saved_model.pb",
    "keras_metadata.pb",
    "fingerprint.pb",
)


@pytest.mark.parametrize("command", ["inspect", "compare"])
@pytest.mark.parametrize("name", MEMBERS)
def test_a_fifo_member_is_refused_before_it_is_opened(
    tmp_path: Path, name: str, command: str
) -> None:
    """Every member a SavedModel holds is checked before anything is opened: a FIFO in its
    place would block the read forever."""
    import os
    import signal

    model = _copy(tmp_path)
    (model / name).unlink()
    os.mkfifo(model / name)
    args = [str(model)] if command == "inspect" else ["compare", str(model), str(model)]
    signal.alarm(60)  # a member opened by mistake blocks: fail, never hang the suite
    try:
        result = runner.invoke(app, [*args, "--timeout", "0"])
    finally:
        signal.alarm(0)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "FIFO" in line and name.rsplit("/", 1)[-1] in line


@pytest.mark.parametrize("extra", [5, 50])
def test_the_listing_of_a_saved_model_directory_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    """A directory listing more entries than MAX_ENTRIES (lowered here) is refused in one
    line instead of walked; one within it is counted file by file."""
    from inspector.formats.savedmodel import reader

    monkeypatch.setattr(reader, "MAX_ENTRIES", 30)
    model = _copy(tmp_path)
    (model / "assets").mkdir(exist_ok=True)
    for index in range(extra):
        (model / "assets" / f"vocab{index}.txt").write_bytes(b"x")
    code, report, errors = inspect(str(model), "--timeout", "0")
    if extra < 20:
        assert code == 0 and isinstance(report, dict), errors
        assert report["file_bytes"] == KERAS[0]["dir_bytes"] + extra
    else:
        assert code == 2 and "more than 30 entries" in errors


# --- saved_model.pb mutated: every way of breaking the object graph is one line or a report ---

_GRAPHS = ("savedmodel_eras/tf24_lstm", "savedmodel_eras/export_lstm")


def _mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    """Truncations, bit flips, spliced and zeroed runs of a saved_model.pb."""
    import random

    rng = random.Random(seed)
    out = []
    for index in range(count):
        raw = bytearray(data)
        kind = index % 4
        at = rng.randrange(len(raw))
        if kind == 0:
            del raw[at:]
        elif kind == 1:
            for _ in range(8):
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        elif kind == 2:
            raw[at:at] = raw[rng.randrange(len(raw)) :][:64]
        else:
            raw[at : at + 32] = bytes(min(32, len(raw) - at))
        out.append(bytes(raw))
    return out


def _mutated_graphs(tmp_path: Path, count: int) -> None:
    for stem in _GRAPHS:
        model = tmp_path / Path(stem).name
        shutil.copytree(FIXTURES / stem, model)
        graph = model / "saved_model.pb"
        original = graph.read_bytes()
        for data in _mutations(original, 2026, count):
            graph.write_bytes(data)
            code, _, errors = inspect(str(model), "--timeout", "0")
            assert code in (0, 2), errors
            assert "internal error" not in errors and "Traceback" not in errors
            if code == 2:
                assert len(errors.strip().splitlines()) == 1, errors


def test_mutated_saved_model_pb_sample(tmp_path: Path) -> None:
    _mutated_graphs(tmp_path, 12)


@pytest.mark.fuzz
def test_mutated_saved_model_pb_campaign(tmp_path: Path) -> None:
    _mutated_graphs(tmp_path, 300)


def _dims(*sizes: int) -> bytes:
    """TensorShapeProto { repeated Dim dim = 2 { int64 size = 1; } }."""
    return b"".join(b"\x12" + _varint(len(d)) + d for d in (b"\x08" + _varint(s) for s in sizes))


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        (_dims(*[1 << 62] * 64), 4),  # 64 legal dims of 2^62: a 4,000-bit element count
        (_dims((1 << 63) - 1, (1 << 63) - 1), 1 << 40),
        (_dims(3, 4), 47),  # one byte short of 3·4 floats
    ],
    ids=["64-dims-of-2^62", "two-int64-max-dims", "size-mismatch"],
)
def test_a_shape_claiming_more_than_it_stores_is_a_bad_file(
    tmp_path: Path, shape: bytes, size: int
) -> None:
    """Every count is range-checked where it is read: a fixed-size tensor stores exactly its
    elements, so a shape claiming more (or other) is one line, exit 2, in every output."""
    entry = b"\x08\x01" + b"\x12" + _varint(len(shape)) + shape + b"\x28" + _varint(size)
    model = _copy(tmp_path)
    (model / "variables" / "variables.index").write_bytes(_table([(0, b"w", entry)]))
    for output in ("table", "json", "csv"):
        result = runner.invoke(app, [str(model), "--timeout", "0", "--format", output])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert "does not match" in line and len(line) < 400
