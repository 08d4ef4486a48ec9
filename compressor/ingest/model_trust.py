"""A model file is untrusted input: read its format from its bytes and refuse code it
carries before any Keras deserializer sees it.

Keras configs can carry code three ways, and each is found here by reading the saved
JSON config only (nothing is deserialized, no bytecode is unmarshalled):

- a ``Lambda`` layer: marshalled Python bytecode (``function_type: lambda``) or a
  function looked up by name;
- a ``module`` field naming a Python module outside Keras: tf_keras imports it and takes
  the named attribute (the attack behind CVE-2025-1550 in Keras 3);
- a ``TFOpLambda`` layer calling a TensorFlow function with side effects (file I/O,
  ``py_function``, ``raw_ops``): it runs as soon as the model is called.

``--trust-model`` lifts the refusal for a file the user vouches for.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compressor.core.errors import ModelError

HDF5_FORMAT = "hdf5"
ZIP_FORMAT = "zip"
TFLITE_BYTES = "tflite"
SAVED_MODEL_DIR = "savedmodel"
UNKNOWN_FORMAT = "unknown"

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8
# HDF5 allows a user block before the superblock, at 0, 512, 1024, 2048, ...
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)

# Python packages a Keras config may name in a ``module`` field.
TRUSTED_MODULE_ROOTS = ("keras", "tf_keras", "tensorflow_model_optimization", "builtins")
# TensorFlow namespaces whose functions touch files, run Python or print: a TFOpLambda
# calling them acts on the machine, not on tensors.
SIDE_EFFECT_TF_FUNCTIONS = (
    "io.",
    "raw_ops.",
    "py_function",
    "numpy_function",
    "compat.v1.py_func",
    "compat.v1.io.",
    "compat.v1.gfile.",
    "compat.v1.Print",
    "compat.v1.summary.",
    "print",
    "summary.",
    "debugging.",
    "saved_model.",
    "data.",
    "distribute.",
    "config.",
    "experimental.",
)
TRUST_HINT = (
    "code in a model file is never run; if you trust this file, pass --trust-model "
    "(or rebuild the model from layer classes)"
)


def sniff_format(path: Path) -> str:
    """The container format of ``path`` read from its first bytes: ``hdf5``, ``zip``,
    ``tflite``, ``savedmodel`` (a directory with saved_model.pb) or ``unknown``."""
    if path.is_dir():
        return SAVED_MODEL_DIR if (path / "saved_model.pb").is_file() else UNKNOWN_FORMAT
    with path.open("rb") as handle:
        head = handle.read(8)
        if head.startswith(_ZIP_MAGIC):
            return ZIP_FORMAT
        if head[4:8] == _TFLITE_IDENTIFIER:
            return TFLITE_BYTES
        for offset in _HDF5_OFFSETS:
            handle.seek(offset)
            if handle.read(8) == _HDF5_MAGIC:
                return HDF5_FORMAT
    return UNKNOWN_FORMAT


def h5_model_config(path: Path) -> dict[str, Any] | None:
    """The ``model_config`` JSON a tf_keras HDF5 file stores (None for weights-only
    files), read with h5py: no layer is deserialized."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except OSError as exc:
        raise ModelError(f"model file {path} is not a readable HDF5 file ({exc})") from exc
    if raw is None:
        return None
    return _parse_config(raw.decode() if isinstance(raw, bytes) else str(raw), path, "model_config")


def zip_model_config(path: Path) -> dict[str, Any] | None:
    """The ``config.json`` of a ``.keras`` archive (None when it has none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return None
            raw = archive.read("config.json").decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"model file {path} is not a valid .keras archive ({exc})") from exc
    return _parse_config(raw, path, "config.json")


def _parse_config(raw: str, path: Path, field: str) -> dict[str, Any]:
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"model file {path}: {field} is not valid JSON ({exc.msg} at line {exc.lineno})",
            "the file is corrupt: re-save the model",
        ) from exc
    if not isinstance(config, dict):
        raise ModelError(f"model file {path}: {field} is not a JSON object", "re-save the model")
    return config


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _layer_name(node: dict[str, Any]) -> str:
    config = node.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name or node.get("name") or "?")


def _tf_function_name(node: dict[str, Any]) -> str:
    config = node.get("config")
    function = config.get("function") if isinstance(config, dict) else None
    return function if isinstance(function, str) else ""


def code_in_config(config: dict[str, Any], registered: set[str] = frozenset()) -> list[str]:
    """What in a saved Keras ``config`` would run code on load or on call, one phrase
    each (empty when nothing does). ``registered``: names of the custom objects the
    installed plugins register (Keras resolves those names to them, not to the module
    the file names)."""
    found: list[str] = []
    for node in _walk(config):
        class_name = node.get("class_name")
        if class_name == "Lambda":
            found.append(f"Lambda layer '{_layer_name(node)}' (Python code)")
        elif class_name == "TFOpLambda":
            function = _tf_function_name(node)
            if function.startswith(SIDE_EFFECT_TF_FUNCTIONS):
                found.append(f"TFOpLambda layer '{_layer_name(node)}' calling tf.{function}")
        module = node.get("module")
        if isinstance(module, str) and class_name is not None:
            # Keras looks the object up by this name first, and imports ``module`` only
            # when no registered object has it
            lookup = node.get("registered_name", class_name)
            if module.split(".")[0] not in TRUSTED_MODULE_ROOTS and lookup not in registered:
                found.append(f"'{class_name}' imported from Python module '{module}'")
    return found


def registered_names(custom_objects: dict[str, Any]) -> set[str]:
    """The names Keras resolves to plugin-registered custom objects: the keys, and the
    ``package>Name`` form of classes registered as serializable."""
    from tf_keras.saving import get_registered_name

    names = set(custom_objects)
    for obj in custom_objects.values():
        try:
            names.add(get_registered_name(obj))
        except (AttributeError, TypeError):
            continue
    return names


def check_keras_file(path: Path, custom_objects: dict[str, Any], trust: bool) -> str:
    """Refuse a Keras file whose config carries code (unless ``trust``); returns its
    container format as read from its bytes (``hdf5`` or ``zip``)."""
    container = sniff_format(path)
    if container == HDF5_FORMAT:
        config = h5_model_config(path)
    elif container == ZIP_FORMAT:
        config = zip_model_config(path)
    else:
        raise ModelError(
            f"model file {path} is neither a .keras archive nor an HDF5 file "
            f"(its first bytes say: {container})",
            "pass the file model.save() wrote",
        )
    if trust or config is None:
        return container
    code = code_in_config(config, registered_names(custom_objects))
    if code:
        more = f" and {len(code) - 2} more" if len(code) > 2 else ""
        raise ModelError(f"model file {path} carries code: {'; '.join(code[:2])}{more}", TRUST_HINT)
    return container
