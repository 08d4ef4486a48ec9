"""The plugin system: documented hooks, built-ins as plugins, broken plugins isolated."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

from compressor.core.strategy import STAGES, Strategy
from compressor.engine.plugin_host import DEFAULT_PLUGINS, PluginHost
from compressor.plugins import hookimpl, hookspecs

pytestmark = pytest.mark.fast


def test_every_hook_is_documented():
    hooks = [
        f
        for name, f in vars(hookspecs).items()
        if inspect.isfunction(f) and name.startswith(("register_", "on_"))
    ]
    assert len(hooks) >= 6
    for hook in hooks:
        assert hook.__doc__ and len(hook.__doc__.strip()) > 30, hook.__name__


def test_builtins_register_through_hooks_with_unique_names(host):
    entries = host.strategies.entries()
    names = [e.strategy.name for e in entries]
    assert len(names) == len(set(names))
    assert {e.plugin for e in entries} <= set(DEFAULT_PLUGINS)
    stages = {e.strategy.stage for e in entries}
    assert {"train", "prune", "qat", "fuse", "quantize", "evaluate"} <= stages <= set(STAGES)
    assert not host.errors()


def _write_dist(site: Path, name: str, entry: str) -> None:
    dist = site / f"{name}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[compressor]\n{entry}\n")


def test_broken_entry_point_plugins_are_reported_not_fatal(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _write_dist(site, "broken-import", "broken = no_such_module_xyz")
    (site / "misspelled_hook.py").write_text(
        "from compressor.plugins import hookimpl\n"
        "@hookimpl\ndef register_strategy(registry):\n    pass\n"
    )
    _write_dist(site, "misspelled", "misspelled = misspelled_hook")
    (site / "raising_plugin.py").write_text(
        "from compressor.plugins import hookimpl\n"
        "@hookimpl\ndef register_strategies(registry):\n    raise RuntimeError('boom')\n"
    )
    _write_dist(site, "raising", "raising = raising_plugin")
    monkeypatch.syspath_prepend(str(site))
    host = PluginHost(load_entrypoints=True)
    assert host.strategies.get("tflite-float16")  # unrelated strategies still work
    errors = {r.name: r.error for r in host.errors()}
    assert "No module named 'no_such_module_xyz'" in errors["broken"]
    assert "unknown hook register_strategy" in errors["misspelled"]
    assert "boom" in errors["raising"]
    assert host.profiles.resolve("x86-cpu")


def test_block_env_var_blocks_plugins(monkeypatch):
    monkeypatch.setenv("COMPRESSOR_BLOCK_PLUGINS", "compressor.strategies.prune")
    host = PluginHost(load_entrypoints=False)
    names = {e.strategy.name for e in host.strategies.entries()}
    assert "magnitude-prune" not in names and "tflite-full-int8" in names


class _ObservedStrategy(Strategy):
    name = "test-noop-fuse"
    stage = "fuse"
    summary = "test strategy"


class _ThirdParty:
    @hookimpl
    def register_strategies(self, registry):
        registry.add(_ObservedStrategy)


def test_third_party_strategy_object_registers_like_builtins():
    host = PluginHost(load_entrypoints=False)
    plugin = _ThirdParty()
    host._register(plugin, "third-party", "thirdparty-dist", "1.0", False)
    try:
        assert host.strategies.plugin_of("test-noop-fuse") == "third-party"
    finally:
        host.pm.unregister(plugin)


def test_duplicate_strategy_name_fails_the_second_plugin():
    class Dup:
        @hookimpl
        def register_strategies(self, registry):
            class Clash(Strategy):
                name = "tflite-float16"
                stage = "quantize"

            registry.add(Clash)

    host = PluginHost(load_entrypoints=False)
    host._register(Dup(), "dup", "dup-dist", "1.0", False)
    host.strategies  # noqa: B018 - builds the registry
    assert "already registered" in {r.name: r.error for r in host.errors()}["dup"]


def test_hookspecs_import_no_tensorflow():
    import subprocess

    script = (
        "import sys, compressor.plugins.hookspecs, compressor.engine.plugin_host; "
        "assert 'tensorflow' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", script]).returncode == 0
    assert not hasattr(hookspecs, "register_strategy")  # misspellings are not hooks
