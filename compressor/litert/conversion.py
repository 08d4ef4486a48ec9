"""TFLite converter settings per precision, shared by the quantize strategies, profile
calibration and the benchmarks (one place decides what "float16" or "int8" means)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

PRECISIONS = ("float32", "float16", "dynamic_int8", "int8", "int16x8")


def representative_dataset(samples: np.ndarray):
    """Calibration generator for the converter: one float32 image per step."""

    def generate():
        for image in samples:
            yield [image[None, ...].astype("float32")]

    return generate


def configure_converter(
    converter: Any, precision: str, samples: np.ndarray | None = None, io_type: str = "float32"
) -> None:
    """Set ``converter`` up for ``precision`` (int8/int16x8 calibrate on ``samples``)."""
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return
    if precision == "dynamic_int8":
        return
    if samples is None:
        raise ValueError(f"{precision} needs calibration samples")
    converter.representative_dataset = representative_dataset(samples)
    if precision == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        return
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type != "float32":
        converter.inference_input_type = getattr(tf, io_type)
        converter.inference_output_type = getattr(tf, io_type)


def keras_converter(model: Any) -> Any:
    """A TFLite converter for ``model`` traced at batch 1.

    ``from_keras_model`` keeps the batch dimension dynamic, so every ``Reshape`` leaves
    ``SHAPE``/``STRIDED_SLICE``/``PACK`` ops computing the target shape at run time;
    delegates cannot run them (measured: a denoiser's GPU coverage fell to 85 % and its
    EdgeTPU graph was cut at the first ``SHAPE``). Traced at batch 1, the converter folds
    them away; outputs are unchanged (max abs diff 0 on a conv-reshape-conv model).
    """
    import tensorflow as tf

    specs = [tf.TensorSpec([1, *t.shape[1:]], t.dtype) for t in model.inputs]
    if len(specs) == 1:
        function = tf.function(lambda image: model(image, training=False))
    else:
        function = tf.function(lambda *inputs: model(list(inputs), training=False))
    concrete = function.get_concrete_function(*specs)
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def saved_model_converter(path: str, image_size: int | None = None) -> Any:
    """A TFLite converter for a SavedModel's serving signature traced at batch 1 (see
    ``keras_converter``) and, with ``image_size``, a dynamic height and width of a 4-D
    input at ``image_size``; the signature as saved when it has nothing to fix."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        return tf.lite.TFLiteConverter.from_saved_model(path)
    specs = signature.structured_input_signature[1]

    def fixed_shape(shape: Any) -> list[int | None]:
        dims = [1 if shape[0] is None else shape[0], *shape[1:]]
        if image_size and len(dims) == 4:
            dims[1] = dims[1] or image_size
            dims[2] = dims[2] or image_size
        return dims

    fixed = {
        name: tf.TensorSpec(fixed_shape(spec.shape), spec.dtype, name=name)
        for name, spec in specs.items()
        if spec.shape.rank
    }
    if len(fixed) != len(specs) or all(
        list(fixed[name].shape) == list(spec.shape) for name, spec in specs.items()
    ):
        return tf.lite.TFLiteConverter.from_saved_model(path)
    function = tf.function(lambda **inputs: signature(**inputs))
    concrete = function.get_concrete_function(**fixed)
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)


def convert_keras(
    model: Any, precision: str, samples: np.ndarray | None = None, io_type: str = "float32"
) -> bytes:
    """Convert a Keras model to ``.tflite`` bytes at ``precision`` (native logs quiet)."""
    from compressor.litert.native_logs import quiet_native_logs

    converter = keras_converter(model)
    configure_converter(converter, precision, samples, io_type)
    with quiet_native_logs(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def convert_float32(model: Any) -> bytes:
    """A Keras model as a float32 ``.tflite`` (``RunContext``'s float converter)."""
    return convert_keras(model, "float32")
