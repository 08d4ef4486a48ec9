"""pytest helpers for plugin authors: ``pytest_plugins = ["compressor.testing"]`` in a
``conftest.py`` gives the ``plugin_host`` fixture.

    def test_my_strategy_is_planned(plugin_host):
        plugin_host.add_plugin(my_plugin_module, "my-plugin")
        result = plan_pipeline(plugin_host.profiles.resolve("pixel-cpu"), info,
                               plugin_host.strategies)

No installation needed: the plugin object (a module or an object with ``@hookimpl``
methods) is registered exactly as an entry point would be.
"""

from __future__ import annotations

import pytest

from compressor.plugins.manager import PluginHost


@pytest.fixture
def plugin_host() -> PluginHost:
    """A fresh plugin host with the built-in plugins only (installed plugins are not
    loaded); add yours with ``plugin_host.add_plugin(plugin, "name")``."""
    return PluginHost(load_entrypoints=False)
