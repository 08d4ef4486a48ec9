"""The hook contract: the ``hookimpl`` marker and the hook specifications.

The plugin host that discovers and calls plugins is ``compressor.engine.plugin_host``.
"""

import pluggy

PROJECT_NAME = "compressor"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl"]
