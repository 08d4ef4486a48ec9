"""Loading and saving Keras models with clear errors (imports TF lazily)."""

from __future__ import annotations

import contextlib
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.errors import ModelError, error_line
from compressor.core.input_mapping import InputMapping
from compressor.ingest.model_trust import (
    HDF5_FORMAT,
    TRUST_HINT,
    ZIP_FORMAT,
    check_keras_file,
    sniff_format,
)

ACCEPTED_FORMATS = (
    "a Keras model (.keras, .h5 or .hdf5; tf_keras or Keras 3), a SavedModel directory, "
    "a float32 .tflite or an .onnx file"
)


def saved_keras_version(path: Path) -> str | None:
    """The Keras version that wrote ``path`` (None when the file does not say); the
    container is read from the file's bytes, not its suffix."""
    import json

    if sniff_format(path) == ZIP_FORMAT:
        with zipfile.ZipFile(path) as archive:
            if "metadata.json" not in archive.namelist():
                return None
            raw = archive.read("metadata.json")
        try:
            metadata = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(
                f"model file {path}: metadata.json is not valid JSON",
                "the archive is corrupt: re-save the model",
            ) from exc
        return metadata.get("keras_version") if isinstance(metadata, dict) else None
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
    """A one-line error for a missing, unsupported or corrupt model file (judged by its
    bytes: a ``.keras`` that is really HDF5 is an HDF5 file)."""
    if not path.exists():
        raise ModelError(f"model file {path} does not exist", "check the --model path")
    if path.is_dir():
        raise ModelError(
            f"model path {path} is a directory without saved_model.pb",
            f"pass {ACCEPTED_FORMATS}",
        )
    if not path.is_file():
        raise ModelError(f"model path {path} is not a regular file", f"pass {ACCEPTED_FORMATS}")
    if sniff_format(path) not in (ZIP_FORMAT, HDF5_FORMAT):
        if path.suffix.lower() == ".keras":
            raise ModelError(
                f"model file {path} is not a valid .keras archive (corrupt or truncated)",
                "re-save the model with model.save('model.keras')",
            )
        raise ModelError(
            f"model file {path}: unsupported format '{path.suffix or path.name}'",
            f"pass {ACCEPTED_FORMATS}",
        )


def load_keras3_model(path: Path, trust: bool = False) -> Any:
    """Load a Keras 3 file with Keras 3 itself (safe mode unless ``trust``: no Lambda
    code is run)."""
    import keras

    try:
        with _named_for_keras(path) as archive:
            return keras.saving.load_model(archive, compile=False, safe_mode=not trust)
    except Exception as exc:
        text = error_line(exc)
        hint = "re-save the model with Keras 3, or rebuild it from built-in layers"
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            hint = TRUST_HINT
        elif "Could not locate" in str(exc) or "Unknown" in str(exc):
            hint = "the model uses a custom Keras 3 layer: rebuild it from built-in layers"
        raise ModelError(f"cannot load Keras 3 model {path}: {text}", hint) from exc


@contextlib.contextmanager
def _named_for_keras(path: Path) -> Iterator[Path]:
    """``path`` under the suffix of its real container (``.keras`` for a zip, ``.h5``
    for HDF5): Keras picks its loader by the suffix, compressor by the bytes."""
    suffix = ".keras" if sniff_format(path) == ZIP_FORMAT else ".h5"
    if path.suffix.lower() == suffix or (suffix == ".h5" and path.suffix.lower() == ".hdf5"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="compressor-") as folder:
        link = Path(folder) / f"model{suffix}"
        link.symlink_to(path.resolve())
        yield link


def load_keras_model(path: Path, custom_objects: dict[str, Any], trust: bool = False) -> Any:
    """Load a tf_keras ``.keras``/``.h5``/``.hdf5`` model; any failure becomes a one-line
    ModelError. The format comes from the file's bytes; a config carrying code is refused
    before deserialization unless ``trust`` (``compressor.ingest.model_trust``). Keras 3
    files go through ``load_user_model``."""
    check_model_file(path)
    container = check_keras_file(path, custom_objects, trust)
    import h5py
    import tf_keras as keras

    from compressor.ingest.keras3_activations import registered_activation_objects

    objects = {**registered_activation_objects(), **custom_objects}
    try:
        if container == HDF5_FORMAT:
            with h5py.File(path, "r") as handle:  # an open handle: tf_keras's HDF5 loader
                model = keras.models.load_model(handle, custom_objects=objects, compile=False)
        else:
            with _named_for_keras(path) as archive:
                model = keras.models.load_model(
                    archive, custom_objects=objects, compile=False, safe_mode=not trust
                )
    except Exception as exc:
        hint = "re-save the model, or register its custom layers through a plugin"
        if "Unknown layer" in str(exc) or "Could not locate class" in str(exc):
            hint = "register the custom layer with the register_keras_objects hook of a plugin"
        elif "safe_mode" in str(exc):
            hint = TRUST_HINT
        raise ModelError(f"cannot load model {path}: {error_line(exc)}", hint) from exc
    return model


@dataclass
class UserModel:
    """A user's model as tf_keras, and how it got there."""

    model: Any
    origin: dict[str, Any]


def load_user_model(path: Path, custom_objects: dict[str, Any], trust: bool = False) -> UserModel:
    """Load a tf_keras or Keras 3 model file; Keras 3 models are translated to tf_keras
    and checked against the original. Code in the file is refused unless ``trust``."""
    check_model_file(path)
    zipped = sniff_format(path) == ZIP_FORMAT
    named_right = (path.suffix.lower() == ".keras") == zipped
    kind = path.suffix if named_right else f"{'.keras' if zipped else 'HDF5'} named {path.suffix}"
    trusted = {"trusted": True} if trust else {}
    if not is_keras3_file(path):
        model = load_keras_model(path, custom_objects, trust)
        return UserModel(model, {"format": f"tf_keras {kind}", **trusted})
    from compressor.ingest.keras3_translate import translate_keras3_model

    check_keras_file(path, custom_objects, trust)
    translation = translate_keras3_model(load_keras3_model(path, trust), str(path))
    return UserModel(
        translation.model,
        {"format": f"Keras 3 {kind}", "translation": translation.to_dict(), **trusted},
    )


def require_image_model(model: Any, source: str) -> tuple[int, int, int]:
    """Check the model takes one static image input (checked before a run directory
    exists); return (height, width, channels). Any number of outputs is fine: each is
    judged by its task."""
    if isinstance(getattr(model, "output", None), dict):
        raise ModelError(
            f"model {source} returns a dict of outputs",
            "re-export it returning a list (each output keeps its layer's name)",
        )
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


def input_mapping_from_keras(model: Any) -> InputMapping | None:
    """The input range a Keras model states itself, from a layer right after the input:
    a ``Rescaling`` that maps 0–255 to [0, 1] or [-1, 1], or a ``Normalization`` adapted
    to pixel values (a mean above 2), means the model takes pixel values 0–255. None
    when the model says nothing (then [0, 1] is assumed, and the report says so)."""
    inputs = {id(t) for t in getattr(model, "inputs", None) or []}
    for layer in getattr(model, "layers", []):
        kind = layer.__class__.__name__
        if kind not in ("Rescaling", "Normalization"):
            continue
        nodes = getattr(layer, "_inbound_nodes", [])
        fed = [t for node in nodes for t in getattr(node, "keras_inputs", [])]
        if not any(id(t) in inputs for t in fed):
            continue
        if kind == "Rescaling":
            scale = float(np.mean(np.asarray(layer.scale)))
            offset = float(np.mean(np.asarray(layer.offset)))
            if abs(scale * 255.0 + offset - 1.0) < 0.02:
                said = f"scale {scale:.6g}, offset {offset:g}"
                return InputMapping(0.0, 255.0, False, _states(kind, layer.name, said))
        else:
            mean = float(np.max(np.asarray(layer.mean)))
            if mean > 2.0:
                said = f"mean up to {mean:.4g}"
                return InputMapping(0.0, 255.0, False, _states(kind, layer.name, said))
    return None


def _states(kind: str, name: str, said: str) -> str:
    return f"model: {kind} layer '{name}' ({said}) takes 0-255"
