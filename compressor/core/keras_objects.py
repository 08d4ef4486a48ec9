"""Custom Keras objects known to compressor (registered by plugins)."""

from __future__ import annotations

from typing import Any

from compressor.core.errors import PluginError


class KerasObjectRegistry:
    """Name → class map passed as ``custom_objects`` when loading models."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}
        self.current_plugin = "compressor"

    def add(self, name: str, obj: Any) -> None:
        """Register ``obj`` under ``name`` (the class name used in saved configs)."""
        if name in self._objects and self._objects[name] is not obj:
            raise PluginError(
                f"plugin '{self.current_plugin}': Keras object '{name}' is already registered"
            )
        self._objects[name] = obj

    def as_dict(self) -> dict[str, Any]:
        """All registered objects, for ``custom_objects=``."""
        return dict(self._objects)
