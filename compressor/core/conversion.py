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


def convert_keras(
    model: Any, precision: str, samples: np.ndarray | None = None, io_type: str = "float32"
) -> bytes:
    """Convert a Keras model to ``.tflite`` bytes at ``precision`` (native logs quiet)."""
    import tensorflow as tf

    from compressor.core.native_logs import quiet_native_logs

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    configure_converter(converter, precision, samples, io_type)
    with quiet_native_logs(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()
