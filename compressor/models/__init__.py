"""Model families shipped with compressor (a built-in plugin for their custom layers)."""

from __future__ import annotations

from compressor.core.keras_objects import KerasObjectRegistry
from compressor.plugins import hookimpl


@hookimpl
def register_keras_objects(registry: KerasObjectRegistry) -> None:
    """Register the generator's custom layers so saved generators load."""
    from compressor.models.generator import InstanceNormalization

    registry.add("InstanceNormalization", InstanceNormalization)
    registry.add("compressor>InstanceNormalization", InstanceNormalization)
