"""What `pip install .` declares (issue 25): the runtime dependencies are exactly the libraries
rnninspect imports (numpy was imported by ~15 modules and not declared; onnx was declared and
reached by no file), the license is an SPDX expression with its file (no deprecation warning
from setuptools >= 77), and the classifiers say POSIX."""

from __future__ import annotations

import ast
import re
import sys

from conftest import ROOT

PYPROJECT = (ROOT / "pyproject.toml").read_text()
# Import name -> distribution name, where they differ.
DISTRIBUTION = {"yaml": "pyyaml"}


def _array(key: str) -> list[str]:
    """A top-level array of strings in pyproject.toml (a regex: tomllib is Python 3.11's)."""
    body = re.search(rf"(?ms)^{re.escape(key)} = \[(.*?)\]$", PYPROJECT)
    assert body is not None, key
    items = [line.split("#", 1)[0] for line in body[1].splitlines()]  # comments aside
    return re.findall(r'"([^"]+)"', "\n".join(items))


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", item, maxsplit=1)[0].lower() for item in requirements}


# The transport of the `remote` extra: the only module that imports its libraries.
REMOTE = ROOT / "inspector" / "formats" / "remote.py"


def _imported(remote: bool = False) -> set[str]:
    """Every top-level module the package imports that is neither the standard library's nor
    its own, wherever the import sits (many are inside the function that needs them): outside
    the remote transport, or (`remote`) in it."""
    found: set[str] = set()
    for path in (ROOT / "inspector").rglob("*.py"):
        if (path == REMOTE) != remote:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "inspector"}


def test_the_runtime_dependencies_are_what_the_package_imports() -> None:
    imported = {DISTRIBUTION.get(name, name) for name in _imported()}
    assert imported == _names(_array("dependencies")) == {"h5py", "numpy", "typer"}


def test_the_remote_extra_declares_what_the_transport_imports() -> None:
    imported = {DISTRIBUTION.get(name, name) for name in _imported(remote=True)}
    declared = _names(_array("remote"))
    assert imported <= declared, sorted(imported - declared)
    # the filesystems fsspec loads by protocol, never imported by name
    assert declared - imported == {"s3fs", "gcsfs"}


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    assert re.search(r'(?m)^license = "MIT"$', PYPROJECT)
    (licence,) = _array("license-files")
    assert (ROOT / licence).read_text().startswith("MIT License")
    (backend,) = _array("requires")
    assert backend == "setuptools>=77"  # the first to take an SPDX string without a warning


def test_the_classifiers_say_posix_and_no_other_system() -> None:
    systems = [c for c in _array("classifiers") if c.startswith("Operating System ::")]
    assert systems and all(c.startswith("Operating System :: POSIX") for c in systems)
