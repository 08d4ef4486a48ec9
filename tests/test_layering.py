"""The architecture, checked: no import cycles, planning free of TensorFlow and LiteRT,
the core never importing a strategy plugin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "compressor"
PLANNING = (
    "compressor.core.plan",
    "compressor.core.planner",
    "compressor.core.cost_model",
    "compressor.core.op_prediction",
    "compressor.core.coverage",
    "compressor.core.constraints",
    "compressor.core.profiles",
    "compressor.core.resolution",
    "compressor.core.channel_scaling",
)
LITERT_ADAPTERS = (
    "compressor.core.tflite_runtime",
    "compressor.core.tflite_fold",
    "compressor.core.tflite_coverage",
    "compressor.core.gpu_analyzer",
    "compressor.core.conversion",
    "compressor.core.measurement",
    "compressor.core.frozen_graph",
)


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


def test_core_never_imports_a_strategy_plugin():
    graph = _imports()
    for module, targets in graph.items():
        if not module.startswith("compressor.core."):
            continue
        plugin_packages = ("compressor.strategies", "compressor.style")
        plugins = {t for t in targets if t.startswith(plugin_packages)}
        assert not plugins, (module, plugins)
        # the one use case that knows the built-in demo model
        models = {t for t in targets if t.startswith("compressor.models")}
        assert not models or module == "compressor.core.job", (module, models)


def test_planning_imports_neither_tensorflow_nor_litert():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PLANNING)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tf_keras', 'ai_edge_litert', 'keras') or m in "
        f"{LITERT_ADAPTERS!r}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]", loaded.stdout
    graph = _imports()
    for module in PLANNING:
        assert not graph[module] & set(LITERT_ADAPTERS), module
