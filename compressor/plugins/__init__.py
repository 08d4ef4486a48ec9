"""The plugin API (hookspecs) and the plugin manager."""

import pluggy

PROJECT_NAME = "compressor"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl"]
