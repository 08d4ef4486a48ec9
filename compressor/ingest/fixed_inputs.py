"""``--input NAME=VALUE``: fix a model's extra inputs (e.g. a style-conditioning vector)
as constants, so one image input remains to compress and evaluate.

- A Keras model is rebuilt from its config with each fixed ``InputLayer`` replaced by a
  ``FixedInput`` layer that emits the value (broadcast over the image's batch); every
  other layer, and its weights, is kept, so pruning, QAT and distillation still apply.
  Traced at batch 1 for conversion, the converter folds the value into constants.
- A frozen graph (``.tflite``, or a SavedModel / ONNX file once converted) gets the
  value written into its input tensor as a constant buffer, and the tensor is removed
  from the graph's and the signature's inputs.

Both are checked: the fixed model's outputs are compared with the original's fed the
same value (max abs difference recorded in report.json's ``model.origin``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from compressor.core.errors import CompressorError, ModelError

_VALUE_HELP = "NAME=VALUE with VALUE a number, a list such as [0.1, 0.2], or an .npy file"


def parse_fixed_inputs(specs: list[str] | None) -> dict[str, np.ndarray]:
    """``["style=[0.1,0.2]", "strength=0.5", "z=z.npy"]`` as {name: float32 array}."""
    values: dict[str, np.ndarray] = {}
    for spec in specs or []:
        name, sep, text = spec.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise CompressorError(f"--input {spec}: expected {_VALUE_HELP}")
        if name in values:
            raise CompressorError(f"--input {spec}: input '{name}' is given twice")
        values[name] = _parse_value(spec, text)
    return values


def _parse_value(spec: str, text: str) -> np.ndarray:
    if text.lower().endswith(".npy"):
        try:
            return np.asarray(np.load(text), dtype=np.float32)
        except (OSError, ValueError) as exc:
            raise CompressorError(f"--input {spec}: cannot read {text} ({exc})") from exc
    try:
        parsed = json.loads(text if text.startswith("[") else f"[{text}]")
        array = np.asarray(parsed, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise CompressorError(f"--input {spec}: '{text}' is not a number or a list",
                              f"expected {_VALUE_HELP}") from exc  # fmt: skip
    return array if text.startswith("[") or array.size != 1 else array.reshape(())


def shaped_value(name: str, value: np.ndarray, shape: list[int | None]) -> np.ndarray:
    """``value`` fitted to an input of ``shape`` (batch first, dropped): a scalar fills
    it, otherwise the sizes must match (a leading batch of 1 is allowed)."""
    dims = [int(d) if d is not None and d >= 0 else None for d in shape[1:]]
    if None in dims:
        raise ModelError(f"--input {name}: the input's shape {shape} is not fixed")
    if value.ndim == 0:
        return np.full(dims, float(value), np.float32)
    if value.ndim == len(dims) + 1 and value.shape[0] == 1:
        value = value[0]
    if value.size != int(np.prod(dims)):
        raise ModelError(
            f"--input {name}: {value.size} values given, the input takes "
            f"{int(np.prod(dims))} (shape {dims})"
        )
    return value.reshape(dims).astype(np.float32)


def _unknown(names: list[str], known: list[str]) -> None:
    missing = [name for name in names if name not in known]
    if missing:
        raise ModelError(
            f"--input {missing[0]}: the model has no input of that name",
            f"its inputs: {', '.join(known)}",
        )


def fix_keras_inputs(model: Any, values: dict[str, np.ndarray]) -> tuple[Any, dict[str, Any]]:
    """``model`` with the named inputs fixed; and what was fixed (for the report)."""
    import tf_keras as keras

    from compressor.ingest.fixed_input_layer import FixedInput

    layer_names = list(model.input_names)
    _unknown(list(values), layer_names)
    kept = [name for name in layer_names if name not in values]
    if len(kept) != 1:
        raise ModelError(
            f"model {model.name}: {len(kept)} inputs would remain after --input",
            f"fix all inputs but the image one (inputs: {', '.join(layer_names)})",
        )
    shapes = {n: list(t.shape) for n, t in zip(layer_names, model.inputs, strict=True)}
    fitted = {n: shaped_value(n, v, shapes[n]) for n, v in values.items()}
    config = model.get_config()
    for entry in config["layers"]:
        if entry["name"] in fitted:
            entry.pop("module", None)  # the layer is compressor's, not keras.layers'
            entry.update(
                class_name="FixedInput",
                registered_name="compressor>FixedInput",
                config={"name": entry["name"], "value": fitted[entry["name"]].tolist()},
                inbound_nodes=[[[kept[0], 0, 0, {}]]],
            )
    config["input_layers"] = [item for item in config["input_layers"] if item[0] in kept]
    fixed = keras.Model.from_config(config, custom_objects={"FixedInput": FixedInput})
    for layer in fixed.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    image_shape = [2 if d is None else int(d) for d in shapes[kept[0]]]
    image = np.random.default_rng(0).uniform(0, 1, image_shape).astype(np.float32)
    feeds = [
        image if n == kept[0] else np.broadcast_to(fitted[n], (2, *fitted[n].shape))
        for n in layer_names
    ]
    error = float(np.max(np.abs(model.predict(feeds, verbose=0) - fixed.predict(image, verbose=0))))
    return fixed, _record(fitted, error)


def _record(fitted: dict[str, np.ndarray], error: float) -> dict[str, Any]:
    return {
        "inputs": {
            name: {"shape": list(value.shape), "mean": round(float(value.mean()), 6)}
            for name, value in fitted.items()
        },
        "max_abs_diff": error,
    }


def fix_tflite_inputs(model: bytes, values: dict[str, np.ndarray]) -> tuple[bytes, dict]:
    """A float ``.tflite`` with the named inputs (signature names or tensor names) made
    constant tensors; and what was fixed."""
    from ai_edge_litert.tools import flatbuffer_utils

    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    graph = flat.subgraphs[0]
    by_name = _input_indices(flat, graph)
    _unknown(list(values), list(by_name))
    if len(graph.inputs) - len(values) != 1:
        raise ModelError(
            f"model: {len(graph.inputs) - len(values)} inputs would remain after --input",
            f"fix all inputs but the image one (inputs: {', '.join(by_name)})",
        )
    fitted = {}
    for name, value in values.items():
        index = by_name[name]
        tensor = graph.tensors[index]
        shape = list(tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape)
        fitted[name] = shaped_value(name, value, shape)
        dims = [1, *fitted[name].shape]
        buffer = flatbuffer_utils.BufferT()
        buffer.data = np.frombuffer(fitted[name].astype(np.float32).tobytes(), np.uint8)
        flat.buffers.append(buffer)
        tensor.buffer = len(flat.buffers) - 1
        tensor.shape, tensor.shapeSignature = dims, None
        graph.inputs = [i for i in graph.inputs if i != index]
        for signature in flat.signatureDefs or []:
            signature.inputs = [s for s in signature.inputs if s.tensorIndex != index]
    fixed = bytes(flatbuffer_utils.convert_object_to_bytearray(flat))
    error = _tflite_check(model, fixed, by_name, fitted)
    return fixed, _record(fitted, error)


def _input_indices(flat, graph) -> dict[str, int]:
    """Input names (signature names first, then tensor names) -> tensor index."""
    names: dict[str, int] = {}
    for signature in flat.signatureDefs or []:
        for item in signature.inputs:
            names[item.name.decode() if isinstance(item.name, bytes) else item.name] = (
                item.tensorIndex
            )
    for index in graph.inputs:
        name = graph.tensors[index].name
        names.setdefault(name.decode() if isinstance(name, bytes) else name, index)
    return names


def _tflite_check(original: bytes, fixed: bytes, by_name: dict, fitted: dict) -> float:
    """Max abs difference between the original fed the fixed values and the fixed model."""
    from ai_edge_litert.interpreter import Interpreter

    from compressor.litert.tflite_runtime import TFLiteModel

    interpreter = Interpreter(model_content=original)
    interpreter.allocate_tensors()
    image_detail = None
    indices = {by_name[name]: value for name, value in fitted.items()}
    for detail in interpreter.get_input_details():
        if detail["index"] in indices:
            interpreter.set_tensor(detail["index"], indices[detail["index"]][None])
        else:
            image_detail = detail
    shape = [1, *[int(d) for d in image_detail["shape"][1:]]]
    image = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    interpreter.set_tensor(image_detail["index"], image)
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    got = TFLiteModel(fixed).predict(image)
    return float(np.max(np.abs(expected - got)))
