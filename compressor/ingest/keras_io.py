"""Loading and saving Keras models with clear errors (imports TF lazily)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compressor.core.errors import ModelError, error_line

SUPPORTED_SUFFIXES = (".keras", ".h5", ".hdf5")
ACCEPTED_FORMATS = (
    "a Keras model (.keras, .h5 or .hdf5; tf_keras or Keras 3), a SavedModel directory, "
    "a float32 .tflite or an .onnx file"
)


def saved_keras_version(path: Path) -> str | None:
    """The Keras version that wrote ``path`` (None when the file does not say)."""
    import json

    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            if "metadata.json" not in archive.namelist():
                return None
            return json.loads(archive.read("metadata.json")).get("keras_version")
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            version = handle.attrs.get("keras_version")
    except OSError as exc:
        raise ModelError(
            f"model file {path} is not a valid HDF5 file ({exc})",
            "re-save the model with model.save('model.h5')",
        ) from exc
    return version.decode() if isinstance(version, bytes) else version


def is_keras3_file(path: Path) -> bool:
    """True when ``path`` was saved by Keras 3 (tf_keras writes 2.x versions)."""
    version = saved_keras_version(path)
    return bool(version) and str(version).split(".")[0] == "3"


def check_model_file(path: Path) -> None:
    """A one-line error for a missing, unsupported or corrupt model file."""
    if not path.exists():
        raise ModelError(f"model file {path} does not exist", "check the --model path")
    if path.is_dir():
        raise ModelError(
            f"model path {path} is a directory without saved_model.pb",
            f"pass {ACCEPTED_FORMATS}",
        )
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ModelError(
            f"model file {path}: unsupported format '{path.suffix or path.name}'",
            f"pass {ACCEPTED_FORMATS}",
        )
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(
            f"model file {path} is not a valid .keras archive (corrupt or truncated)",
            "re-save the model with model.save('model.keras')",
        )


def load_keras3_model(path: Path) -> Any:
    """Load a Keras 3 file with Keras 3 itself (safe mode: no Lambda code is run)."""
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        text = error_line(exc)
        hint = "re-save the model with Keras 3, or rebuild it from built-in layers"
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            hint = "replace Lambda layers with layer classes (their Keras 3 code cannot be run)"
        elif "Could not locate" in str(exc) or "Unknown" in str(exc):
            hint = "the model uses a custom Keras 3 layer: rebuild it from built-in layers"
        raise ModelError(f"cannot load Keras 3 model {path}: {text}", hint) from exc


def load_keras_model(path: Path, custom_objects: dict[str, Any]) -> Any:
    """Load a tf_keras ``.keras``/``.h5``/``.hdf5`` model; any failure becomes a one-line
    ModelError. Keras 3 files go through ``load_user_model``."""
    check_model_file(path)
    import tf_keras as keras

    from compressor.ingest.keras3_activations import registered_activation_objects

    objects = {**registered_activation_objects(), **custom_objects}
    try:
        model = keras.models.load_model(path, custom_objects=objects, compile=False)
    except Exception as exc:
        hint = "re-save the model, or register its custom layers through a plugin"
        if "Unknown layer" in str(exc) or "Could not locate class" in str(exc):
            hint = "register the custom layer with the register_keras_objects hook of a plugin"
        raise ModelError(f"cannot load model {path}: {error_line(exc)}", hint) from exc
    return model


@dataclass
class UserModel:
    """A user's model as tf_keras, and how it got there."""

    model: Any
    origin: dict[str, Any]


def load_user_model(path: Path, custom_objects: dict[str, Any]) -> UserModel:
    """Load a tf_keras or Keras 3 model file; Keras 3 models are translated to tf_keras
    and checked against the original."""
    check_model_file(path)
    if not is_keras3_file(path):
        model = load_keras_model(path, custom_objects)
        return UserModel(model, {"format": f"tf_keras {path.suffix}"})
    from compressor.ingest.keras3_translate import translate_keras3_model

    translation = translate_keras3_model(load_keras3_model(path), str(path))
    return UserModel(
        translation.model,
        {"format": f"Keras 3 {path.suffix}", "translation": translation.to_dict()},
    )


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
            "pass --input-size N, or a latency budget (--max-latency-ms) to let compressor "
            "choose the size",
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
