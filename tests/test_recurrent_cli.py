"""The command line on recurrent language models: the state section, --context,
--state-dtype, the --max-state gate, the JSON contract's additions, a checkpoint directory as
one model in a scan, and every output format. Figures are held to the fixtures' manifest
(transformers' own counts and a real forward's cache, fixtures/generate_recurrent_llm.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, manifest_entries, run_main

JAMBA = FIXTURES / "hf" / "jamba"
MAMBA = FIXTURES / "hf" / "mamba"
TRUTH = {entry["file"]: entry for entry in manifest_entries("hf-checkpoint", "hf-file")}


def _json(*args: str) -> dict:
    ran = run_main([*args, "--format", "json"])
    assert ran.code == 0, ran.stderr
    document: dict = json.loads(ran.stdout)
    return document


def test_the_state_of_a_hybrid_at_a_context() -> None:
    truth = TRUTH["hf/jamba"]["state"]
    document = _json(str(JAMBA), "--context", "1000")
    state = document["state"]
    assert state["context"] == 1000
    assert state["recurrent_elements"] == truth["elements"]
    assert state["recurrent_bytes"] == truth["bytes"]
    assert state["kv_elements"] == truth["kv_elements_per_token"] * 1000
    assert state["kv_bytes"] == truth["kv_elements_per_token"] * 1000 * 4  # float32
    assert state["total_bytes"] == state["recurrent_bytes"] + state["kv_bytes"]
    transformer = state["transformer_kv"]
    assert transformer["elements"] == 2 * 16 * 2 * 1000  # hidden_size, num_hidden_layers
    assert "full multi-head attention" in transformer["assumption"]


def test_the_state_dtype_override() -> None:
    truth = TRUTH["hf/mamba_bf16"]["state"]
    stored = _json(str(FIXTURES / "hf" / "mamba_bf16"))["state"]
    assert stored["recurrent_bytes"] == truth["bytes"]  # conv bfloat16, ssm float32
    held = _json(str(FIXTURES / "hf" / "mamba_bf16"), "--state-dtype", "float16")["state"]
    assert held["dtype"] == "float16"
    assert held["recurrent_bytes"] == truth["elements"] * 2


def test_a_block_in_the_contract() -> None:
    document = _json(str(MAMBA))
    (layer, *_rest) = document["recurrent_layers"]
    assert layer["block"] == "mamba" and layer["cell"] == "Mamba"
    assert "modeling_mamba.py" in layer["block_source"]
    assert layer["dims"]["d_state"] == 4 and layer["dims"]["d_inner"] == 32
    parts = {t["member"]: t["part"] for t in layer["tensors"]}
    assert parts["A_log"] == "state transition" and parts["out_proj.weight"] == "output projection"
    streams = {s["name"]: s for s in layer["state"]}
    assert streams["ssm"]["dtype"] == "float32" and streams["ssm"]["floats"] == 32 * 4


@pytest.mark.parametrize(("limit", "code"), [("2KiB", 0), ("2047", 1)])
def test_the_max_state_gate(limit: str, code: int) -> None:
    """Mamba's recurrent state: 2,048 bytes per sequence (the forward pass's cache)."""
    assert TRUTH["hf/mamba"]["state"]["bytes"] == 2048
    ran = run_main([str(MAMBA), "--max-state", limit])
    assert ran.code == code, ran.stderr
    if code:
        assert "--max-state" in ran.stderr and "a sequence's state takes 2,048 bytes" in ran.stderr


def test_the_text_report_shows_the_state() -> None:
    ran = run_main([str(JAMBA), "--context", "1000"])
    assert ran.code == 0
    assert "State per sequence" in ran.stdout
    assert "Recurrent state: 256 elements" in ran.stdout
    assert "KV cache of 1 attention layer at 1,000 tokens" in ran.stdout
    assert "A transformer of the same width (16) and depth (2 layers)" in ran.stdout
    assert "in_proj.weight (input projection)" in ran.stdout


@pytest.mark.parametrize("output_format", ["csv", "markdown", "html"])
def test_every_format_takes_a_hybrid(output_format: str) -> None:
    ran = run_main([str(FIXTURES / "hf" / "zamba2"), "--format", output_format])
    assert ran.code == 0, ran.stderr
    assert "mamba" in ran.stdout


def test_explain_splits_a_block_by_part() -> None:
    ran = run_main(["explain", str(FIXTURES / "hf" / "recurrent_gemma")])
    assert ran.code == 0, ran.stderr
    assert "rg_lru.recurrent_param" in ran.stdout and "state transition" in ran.stdout
    assert "gates" in ran.stdout and "not split by gate" not in ran.stdout


def test_a_checkpoint_directory_is_one_model_in_a_scan(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "hf" / "mamba_sharded", tmp_path / "models" / "mamba")
    document = _json(str(tmp_path / "models"))
    assert [Path(report["file"]).name for report in document] == ["mamba"]
    assert document[0]["total_params"] == TRUTH["hf/mamba_sharded"]["params"]


def test_bad_options_are_usage_errors() -> None:
    ran = run_main([str(MAMBA), "--state-dtype", "q4_0"])
    assert ran.code == 2 and "expected one of float64, float32" in ran.stderr
    ran = run_main([str(MAMBA), "--context", "0"])
    assert ran.code == 2


def test_the_readme_shows_a_real_mamba_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import ROOT

    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "$ rnninspect fixtures/hf/mamba --context 8192\n"
    start = text.index(command) + len(command)
    shown = text[start : text.index("\n```", start) + 1]
    ran = run_main(["fixtures/hf/mamba", "--context", "8192"], env={"COLUMNS": "100"})
    assert ran.code == 0 and ran.stdout == shown


def test_a_checkpoint_directory_takes_its_config_index_and_shards_on_disk() -> None:
    """--max-file-size measures what the model is read from (not the directory entry, nor the
    generation_config.json beside it)."""
    directory = FIXTURES / "hf" / "mamba_sharded"
    files = ["config.json", "model.safetensors.index.json"]
    files += sorted(p.name for p in directory.glob("model-*.safetensors"))
    size = sum((directory / name).stat().st_size for name in files)
    assert _json(str(directory))["file_bytes"] == size
    assert run_main([str(directory), "--max-file-size", str(size)]).code == 0
    assert run_main([str(directory), "--max-file-size", str(size - 1)]).code == 1
