"""The built-in default model: the style-transfer generator `compressor run` uses with no --model.

Its ModelInfo is shipped as JSON so `compressor plan` works without importing TF;
a test checks the JSON still matches the model the code builds.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from compressor.core.model_info import ModelInfo

DEFAULT_MODEL_NAME = "default (Johnson generator, instance norm, 128x128, seed 0)"
DEFAULT_INPUT_SIZE = 128
DEFAULT_SEED = 0
_INFO_FILE = "default_generator_info.json"


def build_default_model() -> Any:
    """Build the default generator (deterministic seed until trained weights ship)."""
    from compressor.models.generator import GeneratorConfig, build_generator

    return build_generator(GeneratorConfig(input_size=DEFAULT_INPUT_SIZE), seed=DEFAULT_SEED)


def default_model_info() -> ModelInfo:
    """The default generator's ModelInfo, read from package data (no TF import)."""
    path = Path(str(resources.files("compressor.models") / _INFO_FILE))
    return ModelInfo.load_json(path)


def write_default_model_info(path: Path | None = None) -> Path:
    """Regenerate the shipped JSON from the real model (run after changing the generator)."""
    from compressor.core.model_info import model_info_from_keras

    target = path or Path(str(resources.files("compressor.models") / _INFO_FILE))
    model_info_from_keras(build_default_model()).save_json(target)
    return target


if __name__ == "__main__":
    print(write_default_model_info())
