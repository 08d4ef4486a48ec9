"""Keras layers that compute a conv on 2×2 blocks with the same function as the layers
they replace (weights from ``compressor.core.block_conv_weights``): a narrow wide-kernel
conv on space-to-depth blocks, and a nearest upsample + conv as a conv followed by
depth-to-space. Registered as ``compressor>…``, so saved models load by name."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from compressor.core.block_conv_weights import BLOCK


class _BlockConv(keras.layers.Layer):
    """A conv with ``filters`` outputs computed through ``block``×``block`` blocks: its
    kernel has block² × the outputs (and, on space-to-depth blocks, × the inputs)."""

    input_blocks = False  # True: the conv reads space-to-depth blocks of the input

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        block: int = BLOCK,
        activation: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = (
            tuple(kernel_size) if isinstance(kernel_size, list | tuple) else (kernel_size,) * 2
        )
        self.block = block
        self.activation = keras.activations.get(activation)

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1]) * (self.block**2 if self.input_blocks else 1)
        outputs = self.filters * self.block**2
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels, outputs), initializer="zeros"
        )
        self.bias = self.add_weight(name="bias", shape=(outputs,), initializer="zeros")
        super().build(input_shape)

    def _conv_to_space(self, inputs):
        """The conv on ``inputs``, its block² output phases put back into space."""
        phases = tf.nn.conv2d(inputs, self.kernel, 1, "SAME") + self.bias
        return self.activation(tf.nn.depth_to_space(phases, self.block))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "block": self.block,
            "activation": keras.activations.serialize(self.activation),
        }


@keras.saving.register_keras_serializable(package="compressor")
class SpaceToDepthConv2D(_BlockConv):
    """space_to_depth(block) → conv (block grid, 'same') → depth_to_space(block) →
    activation: a stride-1 'same' conv of ``filters`` outputs, rearranged (see the
    module docstring). Weights come from ``block_weights``."""

    input_blocks = True

    def call(self, inputs):
        return self._conv_to_space(tf.nn.space_to_depth(inputs, self.block))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([*input_shape[:-1], self.filters])


@keras.saving.register_keras_serializable(package="compressor")
class SubPixelConv2D(_BlockConv):
    """conv ('same') to block²·``filters`` channels → depth_to_space(block) → activation:
    a nearest ×block upsample followed by a stride-1 'same' conv, computed at the input's
    resolution (weights from ``upsampled_weights``). The upsampled tensor is never
    written, and the conv's outputs fill block² times wider tiles."""

    def call(self, inputs):
        return self._conv_to_space(inputs)

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        return tf.TensorShape(
            [
                input_shape[0],
                None if height is None else height * self.block,
                None if width is None else width * self.block,
                self.filters,
            ]
        )
