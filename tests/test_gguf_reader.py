"""GGUF files read by rnninspect's own bounded reader, held to llama.cpp's gguf package: counts,
types, shapes, byte sizes and offsets from `gguf.GGUFReader` (recorded by
fixtures/generate_gguf.py), parameter counts from transformers, the type table from
`GGML_QUANT_SIZES`."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import crafted
import gguf
import pytest

from conftest import FIXTURES, manifest_entries, run_main
from inspector import inspect_file
from inspector.counts import shortened
from inspector.formats import read_model
from inspector.formats.gguf import container as container_module
from inspector.formats.gguf.container import WINDOW, read_container
from inspector.formats.gguf.types import FILE_TYPES, GGML_TYPES, VALUE_TYPES
from inspector.formats.source import LocalSource
from inspector.model import FileFormat

ENTRIES = manifest_entries("gguf")


def test_the_fixtures_are_there() -> None:
    assert len(ENTRIES) >= 13


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_tensors_match_gguf_reader(entry: dict) -> None:
    path = FIXTURES / entry["file"]
    found = read_container(LocalSource(path))
    assert found.data_start == entry["data_offset"]
    assert found.alignment == entry["alignment"]
    assert found.big_endian == (entry["byte_order"] == "big")
    truth = {t["name"]: t for t in entry["tensors"]}
    assert [t.name for t in found.tensors] == list(truth)
    for info in found.tensors:
        expected = truth[info.name]
        assert info.type.name == expected["type"]
        assert list(info.dims) == expected["ne"]
        assert info.elements == expected["n_elements"]
        assert info.nbytes == expected["n_bytes"]
        assert info.begin == expected["data_offset"]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_report_counts_match_gguf_and_transformers(entry: dict) -> None:
    report = inspect_file(FIXTURES / entry["file"]).to_dict()
    assert report["format"] == "gguf"
    assert report["total_params"] == entry["total_elements"]
    assert report["weights_bytes"] == entry["total_bytes"]
    source = entry.get("source")
    if source is not None:  # the transformers model the file was converted from
        assert report["total_params"] == source["num_parameters"]
    blocks = [row for row in report["layers"] if row["name"].startswith("blk.")]
    count = entry["metadata"].get(f"{entry['architecture']}.block_count")
    if count is not None:
        assert len(blocks) == count


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_tensor_rows_keep_names_shapes_and_types(entry: dict) -> None:
    model = read_model(FIXTURES / entry["file"])
    tensors = {t.name: t for layer in model.layers for t in layer.tensors}
    for expected in entry["tensors"]:
        tensor = tensors[expected["name"]]
        assert tensor.shape == tuple(reversed(expected["ne"]))  # PyTorch order: ne reversed
        assert tensor.dtype == expected["type"]
        assert tensor.params == expected["n_elements"]
        assert tensor.nbytes == expected["n_bytes"]


def test_shapes_are_the_transformers_shapes() -> None:
    """A weight llama.cpp's converter wrote unchanged has its PyTorch shape back."""
    (entry,) = [e for e in ENTRIES if e["file"] == "gguf/llama_f32.gguf"]
    source = {p["name"]: p["shape"] for p in entry["source"]["parameters"]}
    model = read_model(FIXTURES / entry["file"])
    tensors = {t.name: t.shape for layer in model.layers for t in layer.tensors}
    assert tensors["blk.0.ffn_down.weight"] == tuple(source["model.layers.0.mlp.down_proj.weight"])
    assert tensors["blk.1.attn_k.weight"] == tuple(source["model.layers.1.self_attn.k_proj.weight"])
    assert tensors["token_embd.weight"] == tuple(source["model.embed_tokens.weight"])


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_metadata_matches_gguf_reader(entry: dict) -> None:
    model = read_model(FIXTURES / entry["file"])
    for key, value in entry["metadata"].items():
        if isinstance(value, str) and value.startswith("<") and value.endswith(" items>"):
            continue
        kept = model.metadata[key]
        if isinstance(value, list):
            assert kept == tuple(value), key
        elif isinstance(value, float):
            assert math.isclose(kept, value, rel_tol=1e-6), key  # type: ignore[arg-type]
        else:
            assert kept == value, key


def test_hyperparameters_are_in_the_model() -> None:
    model = read_model(FIXTURES / "gguf/mamba2_q8_0.gguf")
    assert model.format is FileFormat.GGUF
    assert model.metadata["general.architecture"] == "mamba2"
    assert model.metadata["mamba2.ssm.state_size"] == 16
    assert model.metadata["mamba2.ssm.group_count"] == 1
    assert [layer.type for layer in model.layers if layer.name.startswith("blk.")] == [
        "mamba2 block",
        "mamba2 block",
    ]


def test_the_type_table_is_ggmls() -> None:
    """Every type the gguf package knows, with its block: elements and bytes. Q8_1 is the one
    difference: gguf-py keeps its 2023 block of two floats (40 bytes), ggml's block_q8_1 holds
    two halves since (36 bytes), and ggml reads files by its own size."""
    for qtype, (elements, size) in gguf.GGML_QUANT_SIZES.items():
        ours = GGML_TYPES[int(qtype)]
        assert ours.name == qtype.name
        assert ours.elements == elements
        if qtype is gguf.GGMLQuantizationType.Q8_1:
            assert (size, ours.size) == (40, 36)
        else:
            assert ours.size == size, qtype.name
    assert set(GGML_TYPES) == {int(q) for q in gguf.GGML_QUANT_SIZES}
    assert {v.code: v.name for v in VALUE_TYPES.values()} == {
        int(v): v.name for v in gguf.GGUFValueType
    }
    assert dict(FILE_TYPES) == {int(t): t.name for t in gguf.LlamaFileType}


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_version_and_byte_order(tmp_path: Path, version: int, order: str) -> None:
    """Versions 1 (32-bit lengths) to 3, either byte order: the same model; gguf's own reader
    (versions 2 and 3) agrees on each tensor's place and size."""
    path = tmp_path / "small.gguf"
    path.write_bytes(crafted.gguf_small(version, order))
    found = read_container(LocalSource(path))
    assert found.version == version and found.big_endian == (order == ">")
    assert found.metadata["test.nested"] == ((1, 2), (3,))
    assert found.metadata["test.ints"] == (-1, 2, 3)
    assert found.metadata["test.strings"] == ("a", "bc")
    assert found.metadata["test.f32"] == 0.5
    assert found.metadata["test.bool"] is True
    if version >= 2:
        reference = gguf.GGUFReader(path)
        assert [(t.name, t.n_elements, t.n_bytes, t.data_offset) for t in reference.tensors] == [
            (t.name, t.elements, t.nbytes, t.begin) for t in found.tensors
        ]
    little = tmp_path / "little3.gguf"
    little.write_bytes(crafted.gguf_small(3, "<"))
    assert read_model(path).layers == read_model(little).layers


def test_a_big_endian_conversion_reads_as_its_twin() -> None:
    (entry,) = [e for e in ENTRIES if e.get("little_endian_twin")]
    big = read_model(FIXTURES / entry["file"])
    little = read_model(FIXTURES / entry["little_endian_twin"])
    assert big.layers == little.layers
    assert ("byte order", "big-endian") in [(d.key, d.value) for d in big.details]


def test_inspect_reads_the_header_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of 8 MiB of tensor data: reading it for a report takes the header and at most one
    window beyond it, counted at the one place the reader reads."""
    payload = 8 << 20
    path = tmp_path / "big.gguf"
    path.write_bytes(
        crafted.GGUF()
        .kv("general.architecture", 8, "llama")
        .tensor("token_embd.weight", [1024, payload // 4096], 0, 0)
        .build(bytes(payload))
    )
    read: list[int] = []
    real = container_module.read_at

    def counted(handle, offset: int, length: int) -> bytes:  # type: ignore[no-untyped-def]
        data = real(handle, offset, length)
        read.append(len(data))
        return data

    monkeypatch.setattr(container_module, "read_at", counted)
    found = read_container(LocalSource(path))
    assert found.tensors[0].nbytes == payload
    assert sum(read) <= found.data_start + WINDOW < payload // 16
    report = inspect_file(path).to_dict()
    assert report["total_params"] == payload // 4


def test_detected_by_magic_whatever_the_name(tmp_path: Path) -> None:
    renamed = tmp_path / "model.bin"
    shutil.copy(FIXTURES / "gguf/mamba_q4_0.gguf", renamed)
    ran = run_main([str(renamed), "--format", "json"])
    assert ran.code == 0, ran.stderr
    assert json.loads(ran.stdout)["format"] == "gguf"
    forced = run_main([str(renamed), "--reader", "gguf", "--format", "json"])
    assert forced.code == 0 and json.loads(forced.stdout)["format"] == "gguf"


def test_a_directory_scan_finds_gguf_files(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "gguf/mamba_q4_0.gguf", tmp_path / "a.gguf")
    shutil.copy(FIXTURES / "gguf/llama_q4_0.gguf", tmp_path / "b.data")  # found by its magic
    ran = run_main([str(tmp_path), "--format", "json"])
    assert ran.code == 0, ran.stderr
    files = sorted(Path(r["file"]).name for r in json.loads(ran.stdout))
    assert files == ["a.gguf", "b.data"]


def test_legacy_ggml_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    path.write_bytes(b"tjgg" + bytes(60))
    ran = run_main([str(path)])
    assert ran.code == 2
    assert "legacy llama.cpp ggjt file" in ran.stderr and ran.stderr.count("\n") == 1


def test_split_shards_and_long_names_are_warned(tmp_path: Path) -> None:
    path = tmp_path / "shard.gguf"
    path.write_bytes(
        crafted.GGUF()
        .kv("general.architecture", 8, "llama")
        .kv("split.no", 2, 0)
        .kv("split.count", 2, 3)
        .tensor("blk.0." + "x" * 70, [4], 0, 0)
        .build(bytes(16))
    )
    warnings = read_model(path).warnings
    assert any("shard 1 of 3" in w for w in warnings)
    assert any("GGML_MAX_NAME" in w for w in warnings)


def test_block_numbers_beyond_any_model_are_names(tmp_path: Path) -> None:
    """`blk.<5,000 digits>` would pass int()'s digit limit: such a tensor is a row of its own."""
    path = tmp_path / "digits.gguf"
    name = "blk." + "9" * 5000 + ".w"
    path.write_bytes(
        crafted.GGUF().tensor(name, [4], 0, 0).tensor("blk.3.x", [4], 0, 32).build(bytes(64))
    )
    rows = [layer.name for layer in read_model(path).layers]
    assert rows == ["blk.3", shortened(name)]  # a report keeps 256 characters of a name
