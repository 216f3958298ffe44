"""Shared test helpers: the fixture manifests (truth recorded by the frameworks that wrote the
files) and the optional real-world corpus in ../shared/realworld."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REALWORLD = ROOT.parent / "shared" / "realworld"


def manifest_entries(*formats: str) -> list[dict]:
    """Every fixture entry of the given contract formats, from all fixtures/*/manifest.json."""
    entries: list[dict] = []
    for manifest in sorted(FIXTURES.glob("*/manifest.json")):
        for entry in json.loads(manifest.read_text())["fixtures"]:
            if entry.get("format") in formats and "file" in entry:
                entries.append(entry)
    return entries


def framework_total(file: str) -> int:
    """The total parameter count the framework that wrote `file` (relative to fixtures/)
    recorded in its manifest."""
    (entry,) = [e for e in manifest_entries("keras-h5") if e["file"] == file]
    total: int = entry["total_params"]
    return total


def realworld_entries(*formats: str) -> list[dict]:
    manifest = REALWORLD / "manifest.json"
    if not manifest.exists():
        return []
    return [e for e in json.loads(manifest.read_text()) if e.get("format") in formats]


def entry_id(entry: dict) -> str:
    return entry["file"]


def simple_tables(text: str) -> list[list[dict[str, str]]]:
    """Every tabulate "simple" table in the text, cut into cells by the dashes of its rule:
    per row, header -> cell."""
    lines = text.splitlines()
    tables = []
    for at, line in enumerate(lines):
        if at == 0 or not re.fullmatch(r"-+( +-+)*", line):
            continue
        spans = [match.span() for match in re.finditer(r"-+", line)]

        def cut(row: str, spans: list[tuple[int, int]] = spans) -> list[str]:
            cells = [row[start:end].strip() for start, end in spans[:-1]]
            return [*cells, row[spans[-1][0] :].strip()]

        headers = cut(lines[at - 1])
        rows = []
        for row in lines[at + 1 :]:
            if not row.strip() or row.startswith("("):  # a table ends at a blank line or a note
                break
            rows.append(dict(zip(headers, cut(row), strict=True)))
        tables.append(rows)
    return tables


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal, so the CLI's terminal-only behaviour (colour,
    fitting tables to COLUMNS, the progress bar) runs in process, without a pseudo-terminal."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def run_main(
    args: list[str],
    *,
    stdout_tty: bool = False,
    stderr_tty: bool = False,
    env: dict[str, str] | None = None,
    typer_only: bool = False,
) -> Ran:
    """`rnninspect ARGS` through the real entry point (`inspector.cli.entry.run`, which parses
    the common command lines itself and gives the others to typer; `entry.main` only adds the
    process's exit), or through typer alone (`inspector.cli.app.main`), in process, with stdout and
    stderr captured as a terminal or as a pipe would see them."""
    from inspector.cli import app as cli
    from inspector.cli import entry

    def main() -> None:
        code = cli.main() if typer_only else entry.run()
        if code is not None:
            sys.exit(code)

    out = FakeTerminal() if stdout_tty else io.StringIO()
    err = FakeTerminal() if stderr_tty else io.StringIO()
    code = 0
    with (
        mock.patch.object(sys, "argv", ["rnninspect", *args]),
        mock.patch.object(sys, "stdout", out),
        mock.patch.object(sys, "stderr", err),
        mock.patch.dict(os.environ, env or {}),
    ):
        try:
            main()
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exported COLUMNS would fit every report to it (the user asked); tests that want a
    width set it themselves."""
    monkeypatch.delenv("COLUMNS", raising=False)


# --- servers on the loopback for the remote tests (tests/servers.py): one each per session ---

# The files every format's remote test reads (relative to fixtures/; a folder is uploaded
# whole: a SavedModel, a sharded checkpoint, an ONNX model with its external data).
REMOTE_FILES = (
    "keras2/embedding_lstm_dense.h5",
    "keras1/lstm_dense_weights.h5",
    "keras3/stacked_lstm.keras",
    "keras3/stacked_lstm.weights.h5",
    "onnx/hand_gru_bidir_lbr1.onnx",
    "onnx/external/hand_lstm_external.onnx",
    "cases/torch_lstm_h8_d4.safetensors",
    "sharded/lstm_head/model.safetensors.index.json",
    "torch/lstm_state.pt",
    "torch/lstm_state_legacy.pt",
    "tflite/lstm_u8_d4.tflite",
    "gguf/llama_f32.gguf",
    "savedmodel/embedding_lstm_dense/",
    "savedmodel/tf_module_variables/",  # no keras_metadata.pb: told by its variables' index
    "hf/mamba_sharded/",  # a Hugging Face checkpoint: config.json, index, shards
)


def remote_objects() -> dict[str, bytes]:
    """Every object the remote tests serve, by its path under fixtures/."""
    objects: dict[str, bytes] = {}
    for name in REMOTE_FILES:
        path = FIXTURES / name
        if name.endswith("/"):
            files = [file for file in path.rglob("*") if file.is_file()]
        elif name.startswith(("sharded/", "onnx/external/")):  # with the files beside it
            files = [file for file in path.parent.iterdir() if file.is_file()]
        else:
            files = [path]
        for file in files:
            objects[file.relative_to(FIXTURES).as_posix()] = file.read_bytes()
    return objects


@pytest.fixture(scope="session")
def http_server() -> Iterator[Any]:
    """The counting HTTP server (also the GCS and Hub endpoints) in a process of its own,
    holding `remote_objects()` by name, under `gcs/bucket/` and under `hf/org/repo/`."""
    from servers import ServerProcess

    server = ServerProcess("http")
    try:
        for name, data in remote_objects().items():
            for prefix in ("", "gcs/bucket/", "hf/org/repo/"):
                server.put(prefix + name, data)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's S3 server in a process of its own, with `remote_objects()` in the bucket
    `models`; the AWS variables point every client at it (AWS_ENDPOINT_URL, as for MinIO)."""
    import boto3
    from servers import ServerProcess

    server = ServerProcess("s3")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {
                "AWS_ENDPOINT_URL": server.url,
                "AWS_ACCESS_KEY_ID": "rnninspect-test-key-id",
                "AWS_SECRET_ACCESS_KEY": "rnninspect-test-secret-key",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
            }.items():
                patch.setenv(name, value)
            client = boto3.client("s3")
            client.create_bucket(Bucket="models")
            for name, data in remote_objects().items():
                client.put_object(Bucket="models", Key=name, Body=data)
            server.reset()
            yield server
    finally:
        server.stop()
