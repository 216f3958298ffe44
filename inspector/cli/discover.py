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

A URL's prefix (`s3://bucket/models/`, `gs://...`, `hf://org/repo`) is scanned the same way
from one listing of the store: objects named like a model, SavedModel and checkpoint prefixes
as one model each, and objects named like a PyTorch checkpoint kept when their first bytes
(fetched together, a few KiB each) carry torch.save's signature. The shards a sharded
safetensors checkpoint's `*.safetensors.index.json` names are read through the index, not one
by one.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from inspector.formats.detect import (
    HEAD_BYTES,
    HF_CONFIG,
    HF_WEIGHTS,
    is_gguf,
    is_hdf5,
    is_model_dir,
    is_onnx,
    is_tflite,
    is_torch,
    is_zip,
)
from inspector.location import Location, Url

MODEL_SUFFIXES = frozenset({".h5", ".hdf5", ".keras", ".onnx", ".safetensors", ".tflite", ".gguf"})

# Members a Keras v3 archive writes first (keras/src/saving/saving_lib.py writes metadata.json,
# then config.json, then model.weights.h5); any other zip (.whl, .docx, .jar) is not a model.
_KERAS_MEMBERS = frozenset({"metadata.json", "config.json", "model.weights.h5"})
_ZIP_HEADER = struct.Struct("<26xHH")  # local file header up to the name and extra lengths
# A sharded checkpoint's index (inspected as the whole model) and the shard names beside it.
_INDEX_SUFFIX = ".safetensors.index.json"
_SHARD = re.compile(r"-\d{5}-of-\d{5}\.safetensors$")


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
    if path.suffix.lower() in MODEL_SUFFIXES or path.name.lower().endswith(_INDEX_SUFFIX):
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return False  # unreadable and not named like a model: not ours to report
    return any(match(head, path) for match in SIGNATURES)


def links_out(root: Location, path: Location) -> bool:
    """Whether `path`, found under `root`, is a symbolic link whose target lies outside it (a
    folder a stranger sends can hold `model.h5 -> ~/private/model.h5`)."""
    if not isinstance(root, Path) or not isinstance(path, Path) or not path.is_symlink():
        return False
    inside = os.path.realpath(root)
    return os.path.commonpath([inside, os.path.realpath(path)]) != inside


def model_files(root: Location) -> list[Location]:
    """Candidate files (and model directories) under `root`, in a stable order (sorted by
    path). Links out of `root` are judged by their name alone (see `links_out`)."""
    if isinstance(root, Url):
        return list(_prefix_models(root))
    if is_model_dir(root):
        return [root]
    found: list[Location] = []
    for path in _files(root):
        if path.is_dir():
            found.append(path)
        elif links_out(root, path):
            if path.suffix.lower() in MODEL_SUFFIXES:
                found.append(path)
        elif is_candidate(path):
            found.append(path)
    indexed = {path.parent for path in found if path.name.lower().endswith(_INDEX_SUFFIX)}
    return sorted(
        (p for p in found if not (p.parent in indexed and _SHARD.search(p.name.lower()))),
        key=str,
    )


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


# Objects whose name alone does not tell (PyTorch's extensions name many other things): their
# first bytes are fetched to look for torch.save's signature.
_CHECKED_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt"})
_SNIFF_BYTES = 4096
# A file that makes its folder one model, and what must lie beside it.
_DIRECTORY_MODELS = {
    "saved_model.pb": ("variables/", "keras_metadata.pb"),
    HF_CONFIG: HF_WEIGHTS,
}


def _prefix_models(root: Url) -> list[Url]:
    """The models below a URL's prefix (see the module's docstring), sorted by URL."""
    from inspector.formats import open_source
    from inspector.formats.remote import heads, listing

    if is_model_dir(open_source(root)):
        return [root]
    objects = [url for url, _ in listing(root)]
    keys = {url.text for url in objects}
    base = root.text.rstrip("/") + "/"
    # One model each (as `detect.is_model_dir` tells a local folder): saved_model.pb beside
    # variables/ or keras_metadata.pb, and config.json beside a Hugging Face checkpoint's weights.
    saved = sorted(
        {
            url.text.removesuffix(url.name)
            for url in objects
            if any(
                key.startswith(url.text.removesuffix(url.name) + part)
                for key in keys
                for part in _DIRECTORY_MODELS.get(url.name, ())
            )
        }
    )
    indexed = {url.text.rsplit("/", 1)[0] for url in objects if url.name.endswith(_INDEX_SUFFIX)}
    found: list[Url] = [Url(text, root.timeout) for text in saved]
    checked: list[Url] = []
    for url in objects:
        relative = url.text[len(base) :]
        if any(url.text.startswith(folder) for folder in saved) or any(
            part.startswith(".") for part in relative.split("/")[:-1]
        ):
            continue  # inside a model directory, or a hidden folder (.git, .cache)
        folder = url.text.rsplit("/", 1)[0]
        name = url.name.lower()
        if name.endswith(_INDEX_SUFFIX):
            found.append(url)
        elif folder in indexed and _SHARD.search(name):
            continue  # read through its index
        elif url.suffix.lower() in MODEL_SUFFIXES:
            found.append(url)
        elif url.suffix.lower() in _CHECKED_SUFFIXES:
            checked.append(url)
    for url, head in zip(checked, heads(checked, _SNIFF_BYTES), strict=True):
        if is_torch(head, Path(url.name)):
            found.append(url)
    return sorted(found, key=lambda url: url.text)
