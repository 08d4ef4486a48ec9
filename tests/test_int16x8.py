"""int16 activations are closer to float than int8 ones, int16 I/O included: a model
whose input and output are int16 is fed and read through their scales."""

from __future__ import annotations

import numpy as np

from compressor.core.builtin_metrics import compare_outputs
from compressor.litert.tflite_runtime import TFLiteModel
from compressor.strategies.mixed_precision import Recipe
from tests.conftest import build_tiny_cnn


def test_int16x8_is_closer_to_float_than_int8():
    import tensorflow as tf

    float_model = tf.lite.TFLiteConverter.from_keras_model(build_tiny_cnn()).convert()
    images = np.random.default_rng(0).uniform(0, 1, (12, 32, 32, 3)).astype(np.float32)
    recipe = Recipe(float_model, images[:6])
    reference = TFLiteModel(float_model).predict(images)
    scores = {}
    for precision in ("int8", "int16x8"):
        quantized = TFLiteModel(recipe.build({"*": precision}))
        if precision == "int16x8":
            assert quantized.input_detail["dtype"] == np.int16  # int16 I/O, scaled
        scores[precision] = compare_outputs(reference, quantized.predict(images))
    assert scores["int16x8"]["psnr_db"] > scores["int8"]["psnr_db"] + 6
    assert scores["int16x8"]["ssim"] >= scores["int8"]["ssim"]
