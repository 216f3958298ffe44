"""Safety rules, each with a crafted file that would fail the test if the rule were broken:
never follow HDF5 external links or read external datasets, never decode or run code stored in
a model, never change an input file, never write to disk."""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

from conftest import FIXTURES, ROOT, manifest_entries
from inspector import inspect_file

LSTM = FIXTURES / "keras2/lstm_u16_d8.h5"


def test_external_link_is_reported_not_followed(tmp_path: Path) -> None:
    """The LSTM's weights group is replaced by a link to another file holding the real
    weights: following it would count them."""
    target = tmp_path / "elsewhere.h5"
    shutil.copy(LSTM, target)
    crafted = tmp_path / "linked.h5"
    shutil.copy(LSTM, crafted)
    with h5py.File(crafted, "r+") as handle:
        del handle["model_weights/lstm"]
        handle["model_weights/lstm"] = h5py.ExternalLink(str(target), "/model_weights/lstm")
    report = inspect_file(crafted).to_dict()
    assert any("external link" in w and "not followed" in w for w in report["warnings"])
    assert report["total_params"] == 0  # the weights only exist behind the link


def test_external_dataset_is_reported_not_read(tmp_path: Path) -> None:
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.zeros(64 * 8, dtype=np.float32).tobytes())
    crafted = tmp_path / "external.h5"
    shutil.copy(LSTM, crafted)
    with h5py.File(crafted, "r+") as handle:
        name = "model_weights/lstm/lstm/lstm_cell/kernel:0"
        del handle[name]
        handle.create_dataset(name, shape=(8, 64), dtype="float32", external=[(str(raw), 0, 2048)])
    raw.unlink()  # reading the data now fails: only a report from metadata can succeed
    report = inspect_file(crafted).to_dict()
    assert any("external file" in w for w in report["warnings"])
    # Shapes come from metadata: the counts stay right without touching raw.bin.
    truth = manifest_entries("keras-h5")
    lstm_truth = next(e for e in truth if e["file"] == "keras2/lstm_u16_d8.h5")
    assert report["total_params"] == lstm_truth["total_params"]


def test_lambda_code_is_never_run(tmp_path: Path) -> None:
    """A Lambda layer carrying marshalled bytecode that would create a file if executed."""
    marker = tmp_path / "pwned"
    code = compile(f"open({str(marker)!r}, 'w').write('x')", "<lambda>", "exec")
    blob = base64.b64encode(marshal.dumps(code)).decode()
    crafted = tmp_path / "lambda.h5"
    shutil.copy(LSTM, crafted)
    with h5py.File(crafted, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"].append(
            {
                "class_name": "Lambda",
                "config": {
                    "name": "evil",
                    "function": [blob, None, None],
                    "function_type": "lambda",
                },
            }
        )
        handle.attrs["model_config"] = json.dumps(config)
    report = inspect_file(crafted).to_dict()
    assert not marker.exists()
    assert any("Lambda layer 'evil'" in w for w in report["warnings"])


def test_every_fixture_is_unchanged_by_inspection() -> None:
    """Every model file under fixtures/ (and the external data beside the ONNX ones) hashes the
    same after every one of them was inspected."""
    suffixes = {".h5", ".keras", ".onnx", ".safetensors", ".data"}
    paths = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix in suffixes)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    inspected = 0
    for path in paths:
        if path.suffix != ".data":
            inspect_file(path)
            inspected += 1
    assert inspected >= len(manifest_entries("keras-h5", "keras-v3", "onnx"))
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths} == before


def test_pytorch_checkpoint_is_refused_without_unpickling(tmp_path: Path) -> None:
    """A torch.save() archive: a zip whose data.pkl would run code when unpickled."""
    marker = tmp_path / "pwned"
    payload = (
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    )  # pickle protocol 0: os.system("touch <marker>")
    checkpoint = tmp_path / "model.pt"
    with zipfile.ZipFile(checkpoint, "w") as archive:
        archive.writestr("model/data.pkl", payload)
        archive.writestr("model/version", "3\n")
    done = subprocess.run(
        [sys.executable, "-m", "inspector", str(checkpoint)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "never unpickles" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "os.system" in done.stderr  # the refusal names what the pickle would have called
    assert not marker.exists()


def test_nothing_is_written_to_disk(tmp_path: Path) -> None:
    """A .keras archive is read in place: no temporary unzip, no cache, no output file."""
    work = tmp_path / "cwd"
    temp = tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONDONTWRITEBYTECODE": "1"}
    files = [FIXTURES / "keras3/nested_models.keras", FIXTURES / "keras2/trained_adam.h5"]
    done = subprocess.run(
        [sys.executable, "-m", "inspector", *map(str, files), "--format", "json"],
        cwd=work,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []
    assert list(temp.iterdir()) == []
