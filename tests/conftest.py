"""Shared test helpers: the fixture manifests (truth recorded by the frameworks that wrote the
files) and the optional real-world corpus in ../shared/realworld."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def realworld_entries(*formats: str) -> list[dict]:
    manifest = REALWORLD / "manifest.json"
    if not manifest.exists():
        return []
    return [e for e in json.loads(manifest.read_text()) if e.get("format") in formats]


def entry_id(entry: dict) -> str:
    return entry["file"]


def drain(fd: int) -> bytes:
    """Everything written to the other side of a pseudo-terminal, until it is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO once the writer has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
