"""Translate a Keras 3 model into tf_keras (config translation plus weights).

tensorflow-model-optimization (pruning, QAT) and our fine-tuning run on tf_keras, while
``pip install tensorflow`` saves models with Keras 3. Keras 3 and tf_keras share layer
names and most config keys; what differs is translated here:

* the functional graph format (Keras 3 ``inbound_nodes`` hold ``args``/``kwargs`` with
  ``__keras_tensor__`` references) — the graph is rebuilt by calling tf_keras layers;
* dtype policies (objects in Keras 3, names in tf_keras);
* activations whose maths differ under one name (see ``keras3_activations``);
* Keras-3-only config keys, dropped when they hold their neutral value (``None``,
  ``False``), refused otherwise.

Weights are copied layer by layer. ``check_translation`` runs both models on the same
random inputs and reports the largest difference.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from compressor.core.errors import ModelError

MODEL_CLASSES = frozenset({"Functional", "Model", "Sequential"})
BASE_LAYER_KEYS = frozenset({"name", "dtype", "trainable", "dynamic", "activity_regularizer"})
NEUTRAL_VALUES = (None, False)
# Keys of serialized objects Keras 3 adds around ``class_name``/``config``.
SERIALIZATION_KEYS = ("module", "registered_name", "build_config", "compile_config")


class TranslationError(ModelError):
    """A Keras 3 layer or setting that has no tf_keras equivalent."""


# Until frozen graphs (SavedModel, .tflite) are accepted, the way out is built-in layers.
REBUILD_HINT = "rebuild the model from built-in Keras layers"


@dataclass
class Translation:
    """A translated model and how closely it matches the Keras 3 original."""

    model: Any
    max_abs_diff: float
    output_scale: float
    layers: int

    def to_dict(self) -> dict[str, Any]:
        """As report.json records it."""
        return {
            "from": "Keras 3",
            "to": "tf_keras",
            "layers": self.layers,
            "max_abs_diff": float(f"{self.max_abs_diff:.3g}"),
            "output_scale": float(f"{self.output_scale:.3g}"),
            "checked_on": "2 random inputs in [0, 1]",
        }


def _dtype_name(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("config", {}).get("name", "float32")
    return value


OBJECT_MODULES = {
    "_initializer": "initializers",
    "_regularizer": "regularizers",
    "_constraint": "constraints",
}


def _translate_object(key: str, value: dict[str, Any], layer: str) -> Any:
    """A Keras 3 serialized initializer/regularizer/constraint as tf_keras reads it.

    Initializers only matter for fresh weights (the model's weights are copied), so
    one tf_keras lacks falls back to the layer's default; a regularizer or constraint
    changes fine-tuning, so one that cannot be translated is refused."""
    import tf_keras as keras

    suffix = next((s for s in OBJECT_MODULES if key.endswith(s)), None)
    if suffix is None or "class_name" not in value:
        return value
    module = getattr(keras, OBJECT_MODULES[suffix])
    cls = getattr(module, value["class_name"], None)
    config = dict(value.get("config") or {})
    if cls is not None:
        accepted = _accepted_keys(cls)
        config = {k: v for k, v in config.items() if k in accepted}
        dropped = {
            k: v
            for k, v in (value.get("config") or {}).items()
            if k not in config and v not in NEUTRAL_VALUES
        }
        if not dropped:
            return {"class_name": value["class_name"], "config": config}
    if suffix == "_initializer":
        return _DEFAULT
    raise TranslationError(
        f"Keras 3 layer '{layer}': {key} {value['class_name']} has no tf_keras translation",
        "drop it, or " + REBUILD_HINT,
    )


_DEFAULT = object()  # marker: leave the key out, the tf_keras default applies


def _activation(value: Any, layer: str) -> Any:
    from compressor.ingest.keras3_activations import SHARED_ACTIVATIONS, keras3_activations

    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("config", value.get("class_name"))
        if isinstance(value, dict):
            value = value.get("name")
    if isinstance(value, str):
        if value in SHARED_ACTIVATIONS:
            return value
        if value in keras3_activations():
            return keras3_activations()[value]
    raise TranslationError(
        f"Keras 3 layer '{layer}': activation {value!r} has no tf_keras translation",
        "use a standard activation, or " + REBUILD_HINT,
    )


def _accepted_keys(cls: type) -> set[str]:
    """Constructor keywords of ``cls``, up its classes until one stops passing
    ``**kwargs`` on (a tf_keras layer's base ``Layer`` takes the common ones)."""
    keys: set[str] = set(BASE_LAYER_KEYS)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        keys |= {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD and n != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return keys
        if klass.__name__ == "Layer":
            return keys
    return keys


def translate_layer_config(config: dict[str, Any], cls: type, layer: str) -> dict[str, Any]:
    """A Keras 3 layer config as ``cls.from_config`` (tf_keras) accepts it."""
    accepted = _accepted_keys(cls)
    translated: dict[str, Any] = {}
    for key, value in config.items():
        if key not in accepted:
            if value in NEUTRAL_VALUES or value in ({}, []):
                continue
            raise TranslationError(
                f"Keras 3 layer '{layer}' ({cls.__name__}): setting {key}={value!r} "
                "has no tf_keras equivalent",
                "drop the setting, or " + REBUILD_HINT,
            )
        if key == "dtype":
            value = _dtype_name(value)
        elif key == "activation" or key.endswith("_activation"):
            value = _activation(value, layer)
        elif isinstance(value, dict):
            value = _translate_object(key, value, layer)
            if value is _DEFAULT:
                continue
        translated[key] = value
    return translated


def _layer_class(entry: dict[str, Any], layer: str) -> type:
    import tf_keras as keras

    class_name = entry["class_name"]
    registered = entry.get("registered_name")
    module = str(entry.get("module") or "")
    if class_name == "Lambda":
        raise TranslationError(
            f"Keras 3 layer '{layer}' is a Lambda layer: its code is Keras 3 code",
            "replace the Lambda with a layer class",
        )
    builtin = module.startswith("keras") and (not registered or registered == class_name)
    cls = getattr(keras.layers, class_name, None) if builtin else None
    if cls is None:
        raise TranslationError(
            f"Keras 3 layer '{layer}' (class {registered or class_name}) has no tf_keras "
            "counterpart",
            REBUILD_HINT,
        )
    return cls


def _resolve(value: Any, tensors: dict[tuple[str, int, int], Any]) -> Any:
    """Replace Keras 3 ``__keras_tensor__`` references by the rebuilt tf_keras tensors."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            name, node, index = value["config"]["keras_history"]
            return tensors[(name, int(node), int(index))]
        return {k: _resolve(v, tensors) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v, tensors) for v in value]
    return value


def _input_from_config(entry: dict[str, Any]) -> Any:
    import tf_keras as keras

    config = entry["config"]
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    return keras.Input(
        batch_shape=tuple(shape),
        dtype=_dtype_name(config.get("dtype")) or "float32",
        name=config["name"],
        sparse=bool(config.get("sparse")),
    )


def _endpoints(spec: Any) -> list[tuple[str, int, int]]:
    if spec and isinstance(spec[0], str):
        spec = [spec]
    return [(name, int(node), int(index)) for name, node, index in spec]


def _translate_nested(layer3: Any, entry: dict[str, Any]) -> Any:
    return _translate(layer3, entry["class_name"], layer3.get_config())


def _build_layer(layer3: Any, entry: dict[str, Any]) -> Any:
    if entry["class_name"] in MODEL_CLASSES:
        return _translate_nested(layer3, entry)
    name = entry["config"]["name"]
    cls = _layer_class(entry, name)
    return cls.from_config(translate_layer_config(entry["config"], cls, name))


def _copy_weights(layer3: Any, layer: Any) -> None:
    if layer.__class__.__name__ in MODEL_CLASSES:
        return  # nested models copied their layers' weights already
    weights = layer3.get_weights()
    if len(weights) != len(layer.weights):
        raise TranslationError(
            f"Keras 3 layer '{layer3.name}': {len(weights)} weights, its tf_keras "
            f"translation has {len(layer.weights)}",
            REBUILD_HINT,
        )
    layer.set_weights(weights)


def _translate_functional(model3: Any, config: dict[str, Any]) -> Any:
    import tensorflow as tf
    import tf_keras as keras

    tensors: dict[tuple[str, int, int], Any] = {}
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if entry["class_name"] == "InputLayer":
            tensors[(name, 0, 0)] = _input_from_config(entry)
            continue
        layer3 = model3.get_layer(name)
        layer = _build_layer(layer3, entry)
        for node_index, node in enumerate(entry.get("inbound_nodes", [])):
            args = _resolve(node.get("args", []), tensors)
            kwargs = _resolve(node.get("kwargs", {}), tensors)
            outputs = layer(*args, **kwargs)
            for index, tensor in enumerate(tf.nest.flatten(outputs)):
                tensors[(name, node_index, index)] = tensor
        _copy_weights(layer3, layer)
    inputs = [tensors[key] for key in _endpoints(config["input_layers"])]
    outputs = [tensors[key] for key in _endpoints(config["output_layers"])]
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=config.get("name"),
    )


def _translate_sequential(model3: Any, config: dict[str, Any]) -> Any:
    import tf_keras as keras

    entries = config["layers"]
    if entries and entries[0]["class_name"] == "InputLayer":
        tensor = _input_from_config(entries[0])
        entries = entries[1:]
    else:
        shape = config.get("build_input_shape")
        if not shape:
            raise TranslationError(
                f"Keras 3 Sequential model '{config.get('name')}' was never built",
                "build it (call it on an input) before saving",
            )
        tensor = keras.Input(batch_shape=tuple(shape))
    inputs = tensor
    for entry, layer3 in zip(entries, model3.layers, strict=True):
        layer = _build_layer(layer3, entry)
        tensor = layer(tensor)
        _copy_weights(layer3, layer)
    return keras.Model(inputs, tensor, name=config.get("name"))


def _translate(model3: Any, class_name: str, config: dict[str, Any]) -> Any:
    if class_name == "Sequential":
        return _translate_sequential(model3, config)
    if "layers" not in config or "input_layers" not in config:
        raise TranslationError(
            f"Keras 3 model '{model3.name}' is a subclassed model ({class_name})",
            "save a functional or Sequential model",
        )
    return _translate_functional(model3, config)


def check_translation(model3: Any, model: Any, seed: int = 0) -> tuple[float, float]:
    """Largest |difference| between both models on random inputs, and the output scale."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(32 if d is None else int(d) for d in t.shape[1:]) for t in model.inputs]
    inputs = [rng.uniform(0, 1, (2, *shape)).astype(np.float32) for shape in shapes]
    feed = inputs[0] if len(inputs) == 1 else inputs
    expected = [np.asarray(o) for o in _as_list(model3.predict(feed, verbose=0))]
    actual = [np.asarray(o) for o in _as_list(model.predict(feed, verbose=0))]
    diff = max(float(np.max(np.abs(e - a))) for e, a in zip(expected, actual, strict=True))
    scale = max(float(np.max(np.abs(e))) for e in expected)
    return diff, scale


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def translate_keras3_model(model3: Any, source: str, tolerance: float = 1e-4) -> Translation:
    """The tf_keras translation of Keras 3 ``model3``, checked on random inputs.

    Raises ``TranslationError`` naming the first layer that cannot be translated, or
    when the outputs differ by more than ``tolerance`` × the output scale."""
    model = _translate(model3, model3.__class__.__name__, model3.get_config())
    diff, scale = check_translation(model3, model)
    if diff > tolerance * max(1.0, scale):
        raise TranslationError(
            f"model {source}: the tf_keras translation of this Keras 3 model differs from "
            f"it by up to {diff:.3g} (outputs up to {scale:.3g})",
            REBUILD_HINT,
        )
    return Translation(model, diff, scale, len(model.layers))
