"""The built-in default model: the trained demo style generator `compressor run` uses
with no --model.

The demo was trained by `compressor train` (the exact command and the loss-network
weights are in ``demo_generator.json`` and docs/style-transfer.md). Its ModelInfo comes
from the analytic generator spec, so `compressor plan` works without importing TF.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from compressor.core.model_info import ModelInfo
from compressor.models.generator_config import GeneratorConfig

DEFAULT_INPUT_SIZE = 128
DEMO_MODEL_FILE = "demo_generator.keras"
DEMO_RECORD_FILE = "demo_generator.json"


def demo_path(name: str = DEMO_MODEL_FILE) -> Path:
    """Path of a shipped demo file inside the package."""
    return Path(str(resources.files("compressor.models") / name))


@lru_cache(maxsize=1)
def demo_record() -> dict[str, Any]:
    """The training record `compressor train` wrote for the demo (config, losses, command)."""
    return json.loads(demo_path(DEMO_RECORD_FILE).read_text(encoding="utf-8"))


def demo_config(input_size: int | None = None) -> GeneratorConfig:
    """The demo generator's shape at ``input_size`` (default 128; it is fully convolutional)."""
    shape = demo_record()["generator"]
    return GeneratorConfig(
        width=float(shape["width"]),
        residual_blocks=int(shape["residual_blocks"]),
        norm=shape["norm"],
        depthwise=bool(shape["depthwise"]),
        input_size=input_size or DEFAULT_INPUT_SIZE,
    )


def default_model_name(input_size: int | None = None) -> str:
    """How reports name the default model (shape, size and loss network it was trained with)."""
    config = demo_config(input_size)
    return (
        f"built-in demo style generator (width {config.width:g}, {config.residual_blocks} "
        f"blocks, {config.norm} norm, {config.input_size}x{config.input_size}; "
        f"trained with {demo_record()['loss_network']})"
    )


DEFAULT_MODEL_NAME = "built-in demo style generator"


def default_model_info(input_size: int | None = None) -> ModelInfo:
    """The default model's ModelInfo from the analytic spec (no TF import)."""
    from compressor.models.generator_spec import generator_info

    return generator_info(demo_config(input_size))


def build_default_model(input_size: int | None = None) -> Any:
    """The trained demo generator rebuilt at ``input_size`` with its trained weights."""
    from compressor.ingest.keras_io import load_keras_model
    from compressor.models.generator import InstanceNormalization, build_generator

    trained = load_keras_model(demo_path(), {"InstanceNormalization": InstanceNormalization})
    model = build_generator(demo_config(input_size))
    model.set_weights(trained.get_weights())
    return model
