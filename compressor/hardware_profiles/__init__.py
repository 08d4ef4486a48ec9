"""Shipped hardware profiles (YAML package data), registered as a built-in plugin."""

from __future__ import annotations

from compressor.core.profiles import ProfileRegistry, builtin_profile_paths
from compressor.plugins import hookimpl


@hookimpl
def register_hardware_profiles(registry: ProfileRegistry) -> None:
    """Register every YAML profile shipped in this package."""
    for path in builtin_profile_paths():
        registry.add_file(path)
