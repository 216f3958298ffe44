"""Find the model files under a directory, by signature as well as by extension.

A file is a candidate when its extension names a model format (it is then inspected whatever it
holds, so a junk `.h5` is reported as unreadable rather than silently skipped), or when its first
bytes carry a model signature: the HDF5 superblock, a zip whose first member is a Keras archive
member, the ONNX protobuf header, TFLite's "TFL3" identifier, GGUF's magic "GGUF", or a
torch.save file (`.pt`, `.pth`, `.bin`, `.ckpt` are found this way: those extensions name many
other things). Hidden
directories (`.git`, `.venv`, ...) are not entered and symbolic links to directories are not
followed. A symbolic link to a file outside the scanned directory is never opened: one named
like a model is listed (the CLI reports it as not followed), any other is passed over. A
TensorFlow SavedModel directory or a Hugging Face checkpoint directory (config.json beside
its weights) is one model: it is listed itself and not entered.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from inspector.formats.detect import (
    HEAD_BYTES,
    is_gguf,
    is_hdf5,
    is_model_dir,
    is_onnx,
    is_tflite,
    is_torch,
    is_zip,
)

MODEL_SUFFIXES = frozenset({".h5", ".hdf5", ".keras", ".onnx", ".safetensors", ".tflite", ".gguf"})

# Members a Keras v3 archive writes first (keras/src/saving/saving_lib.py writes metadata.json,
# then config.json, then model.weights.h5); any other zip (.whl, .docx, .jar) is not a model.
_KERAS_MEMBERS = frozenset({"metadata.json", "config.json", "model.weights.h5"})
_ZIP_HEADER = struct.Struct("<26xHH")  # local file header up to the name and extra lengths


def _is_keras_archive(head: bytes, path: Path) -> bool:
    if not is_zip(head, path) or len(head) < _ZIP_HEADER.size:
        return False
    name_length, _extra = _ZIP_HEADER.unpack_from(head)
    start = _ZIP_HEADER.size
    return head[start : start + name_length].decode("utf-8", "replace") in _KERAS_MEMBERS


SIGNATURES: tuple[Callable[[bytes, Path], bool], ...] = (
    is_hdf5,
    _is_keras_archive,
    is_onnx,
    is_torch,
    is_tflite,
    is_gguf,
)


def is_candidate(path: Path) -> bool:
    if path.suffix.lower() in MODEL_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return False  # unreadable and not named like a model: not ours to report
    return any(match(head, path) for match in SIGNATURES)


def links_out(root: Path, path: Path) -> bool:
    """Whether `path`, found under `root`, is a symbolic link whose target lies outside it (a
    folder a stranger sends can hold `model.h5 -> ~/private/model.h5`)."""
    if not path.is_symlink():
        return False
    inside = os.path.realpath(root)
    return os.path.commonpath([inside, os.path.realpath(path)]) != inside


def model_files(root: Path) -> list[Path]:
    """Candidate files (and model directories) under `root`, in a stable order (sorted by
    path). Links out of `root` are judged by their name alone (see `links_out`)."""
    if is_model_dir(root):
        return [root]
    found = []
    for path in _files(root):
        if path.is_dir():
            found.append(path)
        elif links_out(root, path):
            if path.suffix.lower() in MODEL_SUFFIXES:
                found.append(path)
        elif is_candidate(path):
            found.append(path)
    return sorted(found)


def _files(root: Path) -> Iterator[Path]:
    # An explicit stack, not os.walk: os.walk recurses once per directory level (Python < 3.12),
    # so a tree nested a thousand deep ended in RecursionError. Like os.walk: an unreadable
    # directory is passed over and symbolic links to directories are not entered.
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError:
            continue
        subdirectories: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (subdirectories if is_dir else files).append(entry.name)
        subdirectories = [name for name in subdirectories if not name.startswith(".")]
        for name in subdirectories:
            path = Path(directory, name)
            if path.is_symlink():
                continue
            if is_model_dir(path):
                yield path
            else:
                pending.append(str(path))
        for name in files:
            path = Path(directory, name)
            if path.is_file():
                yield path
