"""The architecture, checked: packages in layers (no package imports one above it), no
import cycles, planning free of TensorFlow and LiteRT, no plugin importing the engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

PACKAGE = Path(__file__).resolve().parents[1] / "compressor"
# Packages from the bottom up: a module may import its own package and lower layers only.
LAYERS = (
    ("compressor", "compressor.core", "compressor.plugins"),  # domain + plugin contract
    ("compressor.planning",),  # TF-free planning
    ("compressor.layers",),  # the project's Keras layers (TensorFlow at import)
    ("compressor.litert", "compressor.reports"),  # LiteRT adapters; the typed report
    ("compressor.ingest",),  # users' models in
    (
        "compressor.api",
        "compressor.hardware_profiles",
        "compressor.models",
        "compressor.strategies",
        "compressor.style",
    ),
    ("compressor.engine",),  # run engine and use cases: drives the plugins
    ("compressor.cli", "compressor.testing", "compressor.__main__"),
)
PLANNING = tuple(
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
    for p in sorted((PACKAGE / "planning").glob("*.py"))
    if p.name != "__init__.py"
) + ("compressor.core.constraints", "compressor.core.profiles")
CORE = tuple(
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
    for p in sorted((PACKAGE / "core").glob("*.py"))
    if p.name != "__init__.py"
)
LITERT_ADAPTERS = tuple(
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
    for p in sorted((PACKAGE / "litert").glob("*.py"))
    if p.name != "__init__.py"
)


def _layer(module: str) -> int:
    """Index in LAYERS of the package ``module`` belongs to (longest prefix)."""
    best, found = -1, None
    for index, packages in enumerate(LAYERS):
        for package in packages:
            inside = module.startswith(package + ".") and package != "compressor"
            if (module == package or inside) and len(package) > best:
                best, found = len(package), index
    assert found is not None, f"{module} is in no layer: add its package to LAYERS"
    return found


def _imports() -> dict[str, set[str]]:
    """Every compressor module → the compressor modules it imports (lazy ones too)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("compressor"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("compressor")}
        graph[module] = found
    return graph


def test_no_module_imports_itself_back_through_others():
    graph = _imports()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            assert state.get(target) != 1, " -> ".join([*trail, module, target])
            if target not in state:
                visit(target, [*trail, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_packages_import_only_their_own_layer_and_below():
    """core <- planning <- litert/reports <- ingest <- plugins <- engine <- cli: no
    package imports one above it, lazily or not (so no cycle between packages)."""
    upward = [
        f"{module} -> {target}"
        for module, targets in _imports().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert not upward, "\n".join(sorted(upward))


def test_no_plugin_imports_the_engine_and_core_imports_no_plugin():
    graph = _imports()
    for module, targets in graph.items():
        if module.startswith(("compressor.strategies", "compressor.style", "compressor.models")):
            assert not {t for t in targets if t.startswith("compressor.engine")}, module
        if module.startswith(("compressor.core", "compressor.planning", "compressor.litert")):
            plugins = {
                t for t in targets if t.startswith(("compressor.strategies", "compressor.style"))
            }
            assert not plugins, (module, plugins)
        # the one use case that knows the built-in demo model
        models = {t for t in targets if t.startswith("compressor.models")}
        assert (
            not models
            or not module.startswith("compressor.engine")
            or module == ("compressor.engine.job")
        ), (module, models)


def _heavy_modules_after_importing(modules: tuple[str, ...]) -> str:
    """In a fresh interpreter: the TensorFlow, Keras, LiteRT and LiteRT-adapter modules
    that importing ``modules`` loads, as a printed sorted list."""
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tf_keras', 'ai_edge_litert', 'keras') or m in "
        f"{LITERT_ADAPTERS!r}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    return loaded.stdout.strip()


def test_core_imports_no_tensorflow_at_import():
    """Every ``compressor.core`` module imports without TensorFlow, Keras or LiteRT
    (they import it inside the functions that need it)."""
    assert _heavy_modules_after_importing(CORE) == "[]"


def test_planning_imports_neither_tensorflow_nor_litert():
    assert _heavy_modules_after_importing(PLANNING) == "[]"
    graph = _imports()
    for module in PLANNING:
        assert not graph[module] & set(LITERT_ADAPTERS), module
