"""pytest helpers for plugin authors: ``pytest_plugins = ["compressor.testing"]`` in a
``conftest.py`` gives the ``plugin_host`` fixture; ``plan_pipeline`` and
``default_model_info`` (the built-in generator's facts) are here too.

    from compressor.testing import default_model_info, plan_pipeline

    def test_my_strategy_is_planned(plugin_host):
        plugin_host.add_plugin(my_plugin_module, "my-plugin")
        result = plan_pipeline(plugin_host.profiles.resolve("pixel-cpu"),
                               default_model_info(64), plugin_host.strategies)

No installation needed: the plugin object (a module or an object with ``@hookimpl``
methods) is registered exactly as an entry point would be. ``plugin_host.run_context(
profile=…, run_dir=…, float_model=…, model_info=…, images=…)`` builds the context an
``apply`` gets in a run.
"""

from __future__ import annotations

import pytest

from compressor.engine.plugin_host import PluginHost
from compressor.models.default import default_model_info
from compressor.planning.planner import plan_pipeline

__all__ = ["PluginHost", "default_model_info", "plan_pipeline", "plugin_host"]


@pytest.fixture
def plugin_host() -> PluginHost:
    """A fresh plugin host with the built-in plugins only (installed plugins are not
    loaded); add yours with ``plugin_host.add_plugin(plugin, "name")``."""
    return PluginHost(load_entrypoints=False)
