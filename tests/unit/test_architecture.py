"""The layering of docs/architecture.md, checked on the import statements of the package.

model → codec → {storage, runtimes} → {worker, client} → {http, functions, cli}: a module may
import its own layer and the ones below, never one above; ``codec`` stays pure (no Azure SDK, no
aiohttp), and the worker's partition decisions import no Azure SDK.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "durable_azstorage"

LAYER = {
    "model": 0,
    "codec": 1,
    "storage": 2,
    "runtimes": 2,
    "worker": 3,
    "client": 3,
    "aio": 3,
    "operations": 3,
    "http": 4,
    "sidecar": 4,
    "dashboard": 5,
    "functions": 6,
    "cli": 7,
}
"""Foundations that every layer may use (errors, settings, connection, metrics, app files, azurite)."""


def _imports(path: Path) -> list[str]:
    """Absolute ``durable_azstorage.*`` / third-party module names a file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = ".".join(base + ([node.module] if node.module else []))
                names.append(target)
                if node.module is None:
                    names += [f"{target}.{alias.name}" for alias in node.names]
            elif node.module:
                names.append(node.module)
    return names


def _layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "durable_azstorage" or len(parts) < 2:
        return None
    return LAYER.get(parts[1])


def _files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _files("codec"), ids=lambda p: p.name)
def test_codec_is_pure(path: Path) -> None:
    bad = [m for m in _imports(path) if m.split(".")[0] in {"azure", "aiohttp", "grpc"}]
    assert not bad, f"{path.name} imports {bad}: codecs are pure, I/O belongs in storage/"


def test_partition_manager_imports_no_azure_sdk() -> None:
    bad = [m for m in _imports(PACKAGE / "worker" / "partition_manager.py") if m.startswith("azure")]
    assert not bad, f"worker/partition_manager.py imports {bad}: rows are read and written by storage/"


@pytest.mark.parametrize("folder", sorted(LAYER), ids=str)
def test_no_import_runs_back_up_the_layers(folder: str) -> None:
    own = LAYER[folder]
    upward = []
    for path in _files(folder):
        for module in _imports(path):
            layer = _layer_of(module)
            if layer is not None and layer > own:
                upward.append(f"{path.relative_to(PACKAGE)} -> {module}")
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)


def test_private_modules_are_imported_only_inside_their_package() -> None:
    """Package faces (``__init__.py``) may re-export: the clients' public homes are faces."""
    leaks = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        here = path.relative_to(PACKAGE).parts[0]
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] != "durable_azstorage":
                continue
            for part in parts[2:]:
                if part.startswith("_") and not part.startswith("__") and parts[1] != here:
                    leaks.append(f"{path.relative_to(PACKAGE)} -> {module}")
                    break
    assert not leaks, "private modules used from another package (import from the package face):\n" + "\n".join(
        leaks
    )


def test_packages_do_not_import_each_other_in_a_loop() -> None:
    """Same-layer packages may use each other one way only (the dashboard builds on http, not back)."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE).parts[0]
        if here not in LAYER:
            continue
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "durable_azstorage" and len(parts) > 1 and parts[1] in LAYER and parts[1] != here:
                edges.setdefault(here, set()).add(parts[1])

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in edges.get(start, ())
        )

    loops = sorted(f"{a} -> {b} -> … -> {a}" for a in edges for b in edges[a] if reaches(b, a, {b}))
    assert not loops, "package import loops:\n" + "\n".join(loops)
