"""The Keras layer ``--input NAME=VALUE`` puts where a fixed input was (tf_keras)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="compressor")
class FixedInput(keras.layers.Layer):
    """Emits a constant ``value`` once per image of the batch it is called on.

    It takes the image input only for its batch size; traced at batch 1 (as compressor
    converts), the converter folds it and whatever depends only on it into constants.
    """

    def __init__(self, value, **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.value = np.asarray(value, dtype=np.float32)

    def call(self, image):
        """``value`` broadcast to (batch of ``image``, *value.shape)."""
        batch = tf.shape(image)[:1]
        shape = tf.concat([batch, tf.constant(self.value.shape, tf.int32)], axis=0)
        return tf.broadcast_to(tf.constant(self.value)[None], shape)

    def compute_output_shape(self, input_shape):
        """(batch, *value.shape)."""
        return tf.TensorShape([input_shape[0], *self.value.shape])

    def get_config(self) -> dict:
        """The value as a nested list, so saved stage outputs reload."""
        return {**super().get_config(), "value": self.value.tolist()}
