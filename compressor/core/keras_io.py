"""Loading and saving Keras models with clear errors (imports TF lazily)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from compressor.core.errors import ModelError

SUPPORTED_SUFFIXES = (".keras", ".h5")


def load_keras_model(path: Path, custom_objects: dict[str, Any]) -> Any:
    """Load a ``.keras``/``.h5`` model; any failure becomes a one-line ModelError."""
    if not path.exists():
        raise ModelError(f"model file {path} does not exist", "check the --model path")
    if path.suffix not in SUPPORTED_SUFFIXES:
        raise ModelError(
            f"model file {path}: unsupported format '{path.suffix}'",
            "pass a Keras model saved as .keras or .h5",
        )
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(
            f"model file {path} is not a valid .keras archive (corrupt or truncated)",
            "re-save the model with model.save('model.keras')",
        )
    import tf_keras as keras

    try:
        model = keras.models.load_model(path, custom_objects=custom_objects, compile=False)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "re-save the model, or register its custom layers through a plugin"
        if "Unknown layer" in str(exc) or "Could not locate class" in str(exc):
            hint = "register the custom layer with the register_keras_objects hook of a plugin"
        raise ModelError(f"cannot load model {path}: {first_line[:300]}", hint) from exc
    return model


def require_image_model(model: Any, source: str) -> tuple[int, int, int]:
    """Check the model takes one static image input; return (height, width, channels)."""
    if len(model.inputs) != 1:
        raise ModelError(
            f"model {source} has {len(model.inputs)} inputs",
            "compressor handles models with one image input",
        )
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] not in (1, 3, 4):
        raise ModelError(
            f"model {source}: input shape {tuple(shape)} is not an image "
            "(batch, height, width, 1|3|4)",
            "compressor compresses image models",
        )
    if shape[1] is None or shape[2] is None:
        raise ModelError(
            f"model {source}: input height/width are not fixed {tuple(shape)}",
            "pass --input-size N to fix the input size",
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def fix_input_size(model: Any, size: int) -> Any:
    """Rebuild a model whose spatial input dims are None with a static ``size`` input.

    Functional and Sequential models are cloned flat onto the new input (so every
    layer stays visible to pruning and QAT); other models are wrapped.
    """
    import tf_keras as keras

    channels = int(model.inputs[0].shape[-1])
    inputs = keras.Input((size, size, channels), name="image")
    try:
        rebuilt = keras.models.clone_model(model, input_tensors=inputs)
        rebuilt.set_weights(model.get_weights())
        return rebuilt
    except (ValueError, TypeError):
        return keras.Model(inputs, model(inputs), name=model.name)


def clone_keras_model(model: Any) -> Any:
    """A structurally identical copy with the same weights (tfmot mutates its input)."""
    import tf_keras as keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
