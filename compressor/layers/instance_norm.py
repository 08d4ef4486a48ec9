"""Instance normalization as a Keras layer (tf_keras has none built in). A core building
block: the generator family, the host calibration workloads and users' models use it.
Registered as ``compressor>InstanceNormalization``, so saved models load by name."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="compressor")
class InstanceNormalization(keras.layers.Layer):
    """Per-image, per-channel normalisation over height and width, with scale and offset."""

    def __init__(self, epsilon: float = 1e-3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        mean, variance = tf.nn.moments(inputs, axes=[1, 2], keepdims=True)
        return (inputs - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}
