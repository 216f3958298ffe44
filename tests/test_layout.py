"""The package layout ARCHITECTURE.md describes: imports only run downward.

Every `inspector` import is collected from the source (module level, inside functions, and the
dotted module names the registries import lazily), so a test fails as soon as a module imports
one that imports it back, or the data model starts depending on a reader or a renderer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "inspector"
# The data model and the cell table: no I/O, no reader, no renderer, no command line.
DATA_MODEL = {
    "model",
    "counts",
    "errors",
    "cells",
    "blocks",
    "dims",
    "formula",
    "compute",
    "layer_spec",
    "location",
}
LAYER_ORDER = ("formats", "report", "compare", "render", "cli")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                targets.add(node.value)  # lazily imported reader / renderer modules
        package = name.rsplit(".", 1)[0]
        edges[name] = {t for t in targets if t in modules and t not in (name, package)}
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_runs_back_up() -> None:
    edges = _imports(_modules())
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_data_model_imports_only_the_data_model() -> None:
    edges = _imports(_modules())
    for name, targets in edges.items():
        if _group(name) in DATA_MODEL:
            outside = {t for t in targets if _group(t) not in DATA_MODEL}
            assert not outside, f"{name} imports {sorted(outside)}"


def test_lower_layers_never_import_higher_ones() -> None:
    edges = _imports(_modules())
    rank = {group: index for index, group in enumerate(LAYER_ORDER)}
    for name, targets in edges.items():
        here = rank.get(_group(name))
        if here is None:
            continue
        for target in targets:
            there = rank.get(_group(target))
            assert there is None or there <= here, f"{name} imports {target}"


def test_every_reader_lives_in_its_format_folder() -> None:
    from inspector.formats import READERS

    for entry in READERS:
        assert entry.module.startswith("inspector.formats."), entry.module
        assert (PACKAGE.parent / (entry.module.replace(".", "/") + ".py")).is_file()
