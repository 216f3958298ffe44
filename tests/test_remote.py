"""Models read by URL (issue 27): every format over HTTP and S3 (moto's server) gives the local
report, fetching each object at most once and only the metadata of large ones (bytes counted by
the servers, tests/servers.py); gs:// and hf:// through their own clients against the same
server; compare with a remote side; prefix scans; secrets never shown; URLs never reach the
local disk; a local path never imports the remote transport."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save_model

from conftest import FIXTURES, REMOTE_FILES, ROOT, remote_objects, run_main
from inspector import inspect_file
from inspector.formats.ranges import PAGE_BYTES

# --- helpers ------------------------------------------------------------------------------


def _local(name: str) -> dict[str, Any]:
    return inspect_file(FIXTURES / name).to_dict()


def _same(remote: dict[str, Any], local: dict[str, Any]) -> None:
    assert remote["file"] != local["file"]
    assert {**remote, "file": local["file"]} == local


def _objects_of(name: str, objects: dict[str, bytes]) -> dict[str, bytes]:
    """The objects one model is made of (a folder's files for a SavedModel, a sharded
    checkpoint or external data)."""
    if name.endswith("/"):
        return {key: data for key, data in objects.items() if key.startswith(name)}
    if name.startswith(("sharded/", "onnx/external/")):
        folder = name.rsplit("/", 1)[0] + "/"
        return {key: data for key, data in objects.items() if key.startswith(folder)}
    return {name: objects[name]}


OBJECTS = remote_objects()


def _url(transport: str, http: Any, name: str) -> str:
    return {
        "http": f"{http.url}/ok/{name}",
        "s3": f"s3://models/{name}",
        "gs": f"gs://bucket/{name}",
        "hf": f"hf://org/repo/{name}",
    }[transport]


def _served(transport: str, http: Any, s3: Any, key: str) -> int:
    if transport == "s3":
        return int(s3.served()[f"models/{key}"])
    prefix = {"http": "", "gs": "gcs/bucket/", "hf": "hf/org/repo/"}[transport]
    return int(http.served()[prefix + key])


@pytest.fixture
def stores(http_server: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Both servers with their byte counts cleared; gcsfs and huggingface_hub pointed at the
    HTTP server (STORAGE_EMULATOR_HOST, HF_ENDPOINT); no proxy between them and the client."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", http_server.url)
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    http_server.reset()
    s3_server.reset()
    return http_server, s3_server


# --- every format, every store ------------------------------------------------------------

# Every format over HTTP, where the server counts each object's bytes. s3://, gs:// and hf://
# run the same reading code (Pages over fsspec) through their own clients: a file, a zip and a
# directory format each show the client, its endpoint and its listing are driven right.
THROUGH_CLIENTS = (
    "keras3/stacked_lstm.keras",
    "sharded/lstm_head/model.safetensors.index.json",
    "savedmodel/embedding_lstm_dense/",
)
CASES = [("http", name) for name in REMOTE_FILES] + [
    (transport, name) for transport in ("s3", "gs", "hf") for name in THROUGH_CLIENTS
]


@pytest.mark.parametrize(("transport", "name"), CASES, ids=[f"{t}:{n}" for t, n in CASES])
def test_a_url_reads_like_the_local_file(
    transport: str, name: str, stores: tuple[Any, Any]
) -> None:
    http, s3 = stores
    remote = inspect_file(_url(transport, http, name)).to_dict()
    local = _local(name)
    if transport == "http" and name.startswith("savedmodel/"):
        # A web server's folder cannot be listed: a SavedModel's size there is not known.
        assert remote["file_bytes"] is None
        remote["file_bytes"] = local["file_bytes"]
    _same(remote, local)
    for key, data in _objects_of(name, OBJECTS).items():
        served = _served(transport, http, s3, key)
        assert served <= len(data), key  # no object is fetched twice
        if key == name and len(data) <= PAGE_BYTES:
            assert served == len(data), key  # a small file: its one page
        if key.endswith("saved_model.pb") and f"{name}keras_metadata.pb" in OBJECTS:
            assert served == 0  # with Keras's metadata, saved_model.pb is never needed


# --- large files: only their metadata -----------------------------------------------------

MIB = 1024 * 1024


def _safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, array in tensors.items():
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    text = json.dumps(header).encode()
    with path.open("wb") as handle:
        handle.write(len(text).to_bytes(8, "little") + text)
        for array in tensors.values():
            handle.write(array.astype("<f4").tobytes())


def _lstm_arrays(units: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(27)
    return {
        "encoder.weight_ih_l0": rng.standard_normal((4 * units, units), dtype=np.float32),
        "encoder.weight_hh_l0": rng.standard_normal((4 * units, units), dtype=np.float32),
        "encoder.bias_ih_l0": rng.standard_normal(4 * units, dtype=np.float32),
        "encoder.bias_hh_l0": rng.standard_normal(4 * units, dtype=np.float32),
    }


def _onnx(path: Path, units: int) -> None:
    rng = np.random.default_rng(27)
    inits = [
        numpy_helper.from_array(rng.standard_normal(shape, dtype=np.float32), name)
        for name, shape in (
            ("W", (1, 4 * units, units)),
            ("R", (1, 4 * units, units)),
            ("B", (1, 8 * units)),
        )
    ]
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=units)
    graph = helper.make_graph(
        [node],
        "large_lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", units])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _padded_h5(path: Path) -> None:
    """A Keras model file that also holds a dataset no report reads."""
    path.write_bytes((FIXTURES / "keras2/embedding_lstm_dense.h5").read_bytes())
    with h5py.File(path, "a") as handle:
        handle.create_dataset("padding", data=np.ones(8 * MIB // 4, dtype=np.float32))


def _padded_keras(path: Path) -> None:
    """A .keras archive with a large asset stored before the members a report needs."""
    with (
        zipfile.ZipFile(FIXTURES / "keras3/stacked_lstm.keras") as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive,
    ):
        archive.writestr("assets/vocabulary.bin", np.ones(8 * MIB, dtype=np.uint8).tobytes())
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info))


# (file, how it is made, bytes a report may fetch): a few pages where the metadata lies.
LARGE = {
    "large.safetensors": (lambda p: _safetensors(p, _lstm_arrays(512)), PAGE_BYTES),
    "large.onnx": (lambda p: _onnx(p, 512), 5 * PAGE_BYTES),
    "large.h5": (_padded_h5, 4 * PAGE_BYTES),
    "large.keras": (_padded_keras, 4 * PAGE_BYTES),
}


@pytest.fixture(scope="session")
def large_files(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> Path:
    folder = tmp_path_factory.mktemp("large")
    for name, (make, _) in LARGE.items():
        make(folder / name)
        http_server.put(f"large/{name}", (folder / name).read_bytes())
    return folder


@pytest.mark.parametrize("name", sorted(LARGE))
def test_a_large_file_is_described_from_its_metadata(
    name: str, large_files: Path, stores: tuple[Any, Any]
) -> None:
    http, _ = stores
    remote = inspect_file(f"{http.url}/ok/large/{name}").to_dict()
    _same(remote, inspect_file(large_files / name).to_dict())
    size = (large_files / name).stat().st_size
    assert size > 8 * MIB
    assert http.served()[f"large/{name}"] <= LARGE[name][1]


def test_compare_reads_a_remote_side_one_tensor_at_a_time(
    large_files: Path, stores: tuple[Any, Any]
) -> None:
    http, _ = stores
    url = f"{http.url}/ok/large/large.safetensors"
    ran = run_main(["compare", url, str(large_files / "large.safetensors"), "--format", "json"])
    assert ran.code == 0, ran.stderr
    assert json.loads(ran.stdout)["faithful"] is True
    tensors = _lstm_arrays(512)
    stored = sum(array.nbytes for array in tensors.values())
    # The header's page, then each tensor's values once: the weights each in a range of its
    # own, the small biases through a page (the rest of a page is the overhead).
    counts = http.counts()
    assert counts["served"]["large/large.safetensors"] <= stored + 2 * PAGE_BYTES
    assert counts["largest"]["large/large.safetensors"] <= max(a.nbytes for a in tensors.values())


def test_compare_with_both_sides_remote(stores: tuple[Any, Any]) -> None:
    http, _ = stores
    entry = "sharded/lstm_head/"
    ran = run_main(
        [
            "compare",
            f"s3://models/{entry}model.safetensors.index.json",
            f"{http.url}/ok/{entry}model.safetensors",
        ]
    )
    assert ran.code == 0, ran.stderr
    assert "all bit-identical" in ran.stdout


def test_explain_reads_a_url(stores: tuple[Any, Any]) -> None:
    http, _ = stores
    name = "keras2/embedding_lstm_dense.h5"
    remote = run_main(["explain", f"{http.url}/ok/{name}", "--format", "json"])
    local = run_main(["explain", str(FIXTURES / name), "--format", "json"])
    assert remote.code == local.code == 0, remote.stderr
    assert remote.stdout.replace(f"{http.url}/ok/{name}", str(FIXTURES / name)) == local.stdout


# --- prefixes --------------------------------------------------------------------------------


def _model_urls(base: str) -> list[str]:
    """What a scan of the uploaded objects finds: each model, and the unsharded copy beside
    the sharded checkpoint (its shards are read through the index)."""
    names = [*REMOTE_FILES, "sharded/lstm_head/model.safetensors"]
    return sorted(f"{base}/{name}" for name in names)


def test_a_bucket_prefix_is_scanned_like_a_directory(stores: tuple[Any, Any]) -> None:
    ran = run_main(["s3://models/", "--format", "json"])
    assert ran.code == 0, ran.stderr
    reports = json.loads(ran.stdout)
    assert [r["file"] for r in reports] == _model_urls("s3://models")
    for report in reports:
        _same(report, _local(report["file"].removeprefix("s3://models/")))


def test_a_repository_prefix_is_scanned_like_a_directory(stores: tuple[Any, Any]) -> None:
    ran = run_main(["hf://org/repo", "--format", "json"])
    assert ran.code == 0, ran.stderr
    assert [r["file"] for r in json.loads(ran.stdout)] == _model_urls("hf://org/repo")


def test_a_scan_in_lanes_keeps_order_past_a_stalled_object(
    stores: tuple[Any, Any], tmp_path: Path
) -> None:
    """Many objects read in --jobs lanes: results in input order, a progress bar, a summary;
    a stalled object is one line after --timeout and the others are all reported."""
    http, _ = stores
    source = OBJECTS["onnx/hand_gru_bidir_lbr1.onnx"]
    names = [f"many/m{index:02d}.onnx" for index in range(8)]
    names[5] = "many/stall--m05.onnx"
    for name in names:
        http.put(f"gcs/bucket/{name}", source)
    env = {"STORAGE_EMULATOR_HOST": http.url}
    command = [sys.executable, "-m", "inspector", "gs://bucket/many/", "--jobs", "4"]
    done = subprocess.run(
        [*command, "--timeout", "0.5", "--format", "csv"],
        capture_output=True,
        text=True,
        env={**_environment(), **env},
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "stall--m05.onnx" in errors[0], errors
    assert "did not answer" in errors[0]
    files = list(dict.fromkeys(line.split(",")[0] for line in done.stdout.splitlines()[1:]))
    assert files == [f"gs://bucket/{n}" for n in sorted(names) if "stall" not in n]


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HF_"))}


def test_a_prefix_scan_shows_progress_and_a_summary(stores: tuple[Any, Any]) -> None:
    http, _ = stores
    source = OBJECTS["cases/torch_lstm_h8_d4.safetensors"]
    for index in range(20):
        http.put(f"gcs/bucket/progress/m{index:02d}.safetensors", source)
    ran = run_main(["gs://bucket/progress/"], stderr_tty=True)
    assert ran.code == 0, ran.stderr
    frames = [frame for frame in ran.stderr.split("\r\x1b[K") if frame]
    assert [frame.split("] ", 1)[1].split(" ", 1)[0] for frame in frames] == [
        f"{done}/20" for done in range(20)
    ]  # each file's line names the object read next, and the bar is erased at the end
    assert "gs://bucket/progress/m19.safetensors" in frames[-1]
    rows = [line for line in ran.stdout.splitlines() if "gs://bucket/progress/m" in line]
    assert len(rows) == 20 and "total: 20 files" in ran.stdout


# --- what a URL may never do ---------------------------------------------------------------

REFUSED = [
    "file:///etc/passwd",
    "local:///etc/passwd",
    "memory://model.onnx",
    "ftp://example.invalid/model.onnx",
    "github://owner:repo@main/model.onnx",
    "zip://model.onnx::s3://models/m.zip",
    "simplecache::s3://models/m.onnx",
    "reference://model.onnx",
    "data:text/plain;base64,AAAA",
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_scheme_that_could_reach_the_disk_or_run_code_is_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = Path.open

    def spy(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)
    ran = run_main([url])
    assert ran.code == 2
    assert len([line for line in ran.stderr.splitlines() if line.strip()]) <= 2
    assert not [path for path in opened if path.startswith("/etc")]


# --- secrets ---------------------------------------------------------------------------------

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "SECRETawsSecretAccessKey0123",
    "AWS_SESSION_TOKEN": "SECRETawsSessionToken0123",
    "HF_TOKEN": "hf_SECRETtokenValue0123",
}


def test_secrets_appear_in_no_output_message_or_file(
    stores: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, _ = stores
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    host = http.url.removeprefix("http://")
    user = "SECRETuser:SECRETpassword"
    query = "?X-Amz-Signature=SECRETsignature&token=SECRETquery"
    name = "keras2/embedding_lstm_dense.h5"
    output = tmp_path / "report.json"
    bad = [
        f"http://{user}@{host}/{mode}/{name}{query}"
        for mode in ("status-403", "status-404", "redirect-elsewhere")
    ] + [f"http://{user}@127.0.0.1:9/{name}{query}", "s3://models/missing.h5"]
    runs = [
        run_main([f"http://{user}@{host}/ok/{name}{query}", "--format", "json", "-o", str(output)]),
        run_main(["compare", f"http://{user}@{host}/ok/{name}{query}", str(FIXTURES / name)]),
        run_main([*bad, "--timeout", "2"]),
    ]
    assert [ran.code for ran in runs] == [0, 0, 2]
    assert len([line for line in runs[2].stderr.splitlines() if line.strip()]) == len(bad)
    report = json.loads(output.read_text())
    assert report["file"] == f"http://***@{host}/ok/{name}?***"
    for text in [output.read_text()] + [ran.stdout + ran.stderr for ran in runs]:
        assert "SECRET" not in text, text


# --- a local path never loads the transport ---------------------------------------------------

TRANSPORT = ("fsspec", "s3fs", "gcsfs", "huggingface_hub", "aiohttp", "botocore", "aiobotocore")


def test_local_paths_never_import_the_remote_transport() -> None:
    files = [str(FIXTURES / name) for name in REMOTE_FILES]
    script = (
        "import sys\n"
        "from inspector.cli.entry import run\n"
        f"sys.argv = ['rnninspect', *{files!r}, '--timeout', '0', '--jobs', '1',"
        " '-o', '/dev/null']\n"
        "code = run()\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {TRANSPORT!r})\n"
        "print(code, loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.stdout.strip() == "0 []", done.stderr
