"""GGUF values for `compare`: every tensor of every fixture dequantized as the gguf package's own
`gguf.quants.dequantize` does, bit for bit; the per-type tolerance holds the package's quantizer
output to its source and refuses values moved by a few steps; a Hugging Face checkpoint and its
quantized GGUF export compare as equivalent, a tampered export does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import crafted
import gguf
import numpy as np
import pytest

from conftest import FIXTURES, manifest_entries, run_main
from inspector.errors import ValuesUnavailableError
from inspector.formats.gguf import quants
from inspector.formats.gguf import values as values_module
from inspector.formats.gguf.container import read_container
from inspector.formats.gguf.values import open_reader
from inspector.formats.source import LocalSource
from inspector.model import FileFormat

Q = gguf.GGMLQuantizationType
ENTRIES = manifest_entries("gguf")


def _reference(path: Path) -> dict[str, np.ndarray]:
    """gguf's dequantization of each tensor it can dequantize, by name."""
    found = {}
    for tensor in gguf.GGUFReader(path).tensors:
        try:
            found[tensor.name] = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError:
            continue
    return found


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_values_are_the_gguf_packages(entry: dict) -> None:
    """Big-endian files against their little-endian twin: gguf dequantizes native order only."""
    path = FIXTURES / entry["file"]
    reference = _reference(FIXTURES / entry.get("little_endian_twin", entry["file"]))
    compared = 0
    with open_reader(LocalSource(path), FileFormat.GGUF) as reader:
        for info in read_container(LocalSource(path)).tensors:
            if info.name not in reference:
                continue
            ours = reader.read(info.name)
            assert ours.shape == info.shape
            expected = reference[info.name].reshape(info.shape).astype(np.float32)
            assert np.array_equal(ours.astype(np.float32), expected, equal_nan=True), info.name
            compared += 1
    assert compared == len(reference) > 0


def test_the_decoding_fixture_holds_every_type_we_decode() -> None:
    found = read_container(LocalSource(FIXTURES / "gguf/types.gguf"))
    names = {t.type.name for t in found.tensors}
    required = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K"}
    assert required | {"Q4_K", "Q5_K", "Q6_K"} <= names
    assert names <= set(values_module.supported())


def test_q8_k_is_d_times_q() -> None:
    """The gguf package has no Q8_K dequantizer (it is ggml's dot-product type); block_q8_K is
    a float d, 256 int8 and 16 int16 sums (ggml-common.h), dequantize_row_q8_K y = d·q."""
    with pytest.raises(NotImplementedError):
        gguf.quants.dequantize(np.zeros((1, 292), np.uint8), Q.Q8_K)
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, (2, 256), dtype=np.int8)
    d = np.array([[0.25], [-3.0]], np.float32)
    blocks = np.concatenate(
        [d.view(np.uint8), q.view(np.uint8), np.zeros((2, 32), np.uint8)], axis=1
    )
    assert np.array_equal(quants.DECODERS["Q8_K"](blocks, "<"), d * q.astype(np.float32))


def test_an_unsupported_type_says_so_in_one_line(tmp_path: Path) -> None:
    """IQ2_XXS (its values come from a 256-entry grid table) is counted, not decoded."""
    path = tmp_path / "iq2.gguf"
    path.write_bytes(crafted.GGUF().tensor("w", [256], int(Q.IQ2_XXS)).build(bytes(66)))
    with (
        open_reader(LocalSource(path), FileFormat.GGUF) as reader,
        pytest.raises(ValuesUnavailableError) as e,
    ):
        reader.read("w")
    assert "IQ2_XXS" in str(e.value) and "\n" not in str(e.value)


def test_one_tensor_is_read_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    path = FIXTURES / "gguf/rwkv6_q8_0.gguf"
    info = next(
        t
        for t in read_container(LocalSource(path)).tensors
        if t.name == "blk.1.channel_mix_key.weight"
    )
    read: list[tuple[int, int]] = []
    real = values_module.read_at

    def counted(handle, offset: int, length: int) -> bytes:  # type: ignore[no-untyped-def]
        read.append((offset, length))
        return real(handle, offset, length)

    monkeypatch.setattr(values_module, "read_at", counted)
    with open_reader(LocalSource(path), FileFormat.GGUF) as reader:
        reader.read(info.name)
    assert read == [(info.begin, info.nbytes)]


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1])
def test_the_tolerance_holds_quantized_weights_and_refuses_moved_ones(qtype: Q) -> None:
    """gguf's quantizer (Q8_0 bit-exact with ggml's reference, the others its numpy port) on
    weights drawn like a trained layer's: every value within the tolerance of its source;
    values moved by three steps, nearly none."""
    rng = np.random.default_rng(1)
    source = (rng.standard_normal((64, 256)) * rng.uniform(0.01, 1, (64, 1))).astype(np.float32)
    blocks = gguf.quants.quantize(source, qtype).reshape(-1, gguf.GGML_QUANT_SIZES[qtype][1])
    values = quants.DECODERS[qtype.name](blocks, "<").reshape(-1)
    step = quants.STEPS[qtype.name](blocks, "<")
    step = np.broadcast_to(step, (blocks.shape[0], gguf.GGML_QUANT_SIZES[qtype][0])).reshape(-1)
    bound = quants.tolerance(step, values, qtype.name)
    assert bound is not None
    error = np.abs(source.reshape(-1) - values)
    assert (error <= bound).all()
    moved = np.abs(source.reshape(-1) + 3 * step - values)
    assert (moved <= bound).mean() < 0.01


def test_float16_rounding_is_half_an_ulp() -> None:
    source = np.random.default_rng(2).standard_normal(10_000).astype(np.float32)
    stored = source.astype(np.float16).astype(np.float32)
    bound = quants.tolerance(None, stored, "F16")
    assert bound is not None and (np.abs(source - stored) <= bound).all()
    assert quants.tolerance(None, stored, "F32") is None


def _compare(source: Path, export: Path) -> dict[str, str]:
    ran = run_main(["compare", str(source), str(export), "--format", "json"])
    assert ran.code in (0, 1), ran.stderr
    return {pair["source"]: pair["status"] for pair in json.loads(ran.stdout)["pairs"]}


@pytest.mark.parametrize("export", ["mamba_q8_0.gguf", "mamba_q4_0.gguf", "mamba_q8_0_be.gguf"])
def test_a_quantized_export_is_equivalent_to_its_source(export: str) -> None:
    """The transformers checkpoint the fixture was converted from: its embedding and each
    Mamba mixer (compared as a block: llama.cpp's names, its squeezed conv1d and -exp(A_log)
    reconciled, tests/test_recurrent_gguf.py) compare equivalent within their type's
    tolerance."""
    status = _compare(FIXTURES / "gguf/hf/mamba/model.safetensors", FIXTURES / "gguf" / export)
    for row in ("backbone.embeddings", "backbone.layers.0.mixer", "backbone.layers.1.mixer"):
        assert status[row] == "equivalent", status


def test_a_requantized_tensor_is_named(tmp_path: Path) -> None:
    """One Q8_0 block's scale doubled: its 32 values move by up to 32 steps."""
    path = tmp_path / "tampered.gguf"
    shutil.copy(FIXTURES / "gguf/mamba_q8_0.gguf", path)
    info = next(
        t for t in read_container(LocalSource(path)).tensors if t.name == "blk.0.ssm_out.weight"
    )
    data = bytearray(path.read_bytes())
    scale = np.frombuffer(bytes(data[info.begin : info.begin + 2]), "<f2")[0]
    data[info.begin : info.begin + 2] = np.float16(scale * 2).tobytes()
    path.write_bytes(bytes(data))
    status = _compare(FIXTURES / "gguf/hf/mamba/model.safetensors", path)
    assert status["backbone.layers.0.mixer"] == "values differ"
    assert status["backbone.layers.1.mixer"] == "equivalent"


def test_a_quantized_source_brings_its_own_tolerance() -> None:
    status = _compare(
        FIXTURES / "gguf/mamba_q4_0.gguf", FIXTURES / "gguf/hf/mamba/model.safetensors"
    )
    assert status["token_embd"] == "equivalent"
    assert status["output_norm"] == "identical"
