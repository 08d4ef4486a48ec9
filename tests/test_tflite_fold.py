"""Constant folding of a float .tflite at batch 1: the run-time shape arithmetic a
dynamic batch leaves (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE) becomes constants."""

from __future__ import annotations

import numpy as np

from compressor.litert.tflite_coverage import model_coverage
from compressor.litert.tflite_fold import fold_constants
from compressor.litert.tflite_runtime import TFLiteModel, list_operators


def _dynamic_batch_reshape_tflite() -> bytes:
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Reshape((16 * 16, 4))(x)
    x = keras.layers.Dense(4)(x)
    x = keras.layers.Reshape((16, 16, 4))(x)
    outputs = keras.layers.Conv2D(3, 1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()  # dynamic batch


def test_shape_arithmetic_folds_away_and_outputs_are_unchanged(host):
    original = _dynamic_batch_reshape_tflite()
    names = [op.name for op in list_operators(original)]
    assert "SHAPE" in names and "PACK" in names
    result = fold_constants(original)
    folded_names = [op.name for op in list_operators(result.model)]
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(folded_names)
    assert result.folded_ops >= 6 and "RESHAPE" in folded_names
    x = np.random.default_rng(2).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        TFLiteModel(original).predict(x), TFLiteModel(result.model).predict(x)
    )
    assert result.max_abs_diff == 0.0
    gpu = host.profiles.resolve("pixel-gpu")
    assert model_coverage(original, gpu).fraction < 1.0
    assert model_coverage(result.model, gpu).fraction == 1.0


def test_a_graph_with_nothing_to_fold_is_returned_as_is():
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input((8, 8, 3), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    result = fold_constants(data)
    assert result.folded_ops == 0 and result.model == data
