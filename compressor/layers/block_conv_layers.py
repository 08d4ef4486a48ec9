"""Keras layers that compute a conv on 2×2 blocks with the same function as the layers
they replace (weights from ``compressor.core.block_conv_weights``): a narrow wide-kernel
conv on space-to-depth blocks, and a nearest upsample + conv as a conv followed by
depth-to-space. Registered as ``compressor>…``, so saved models load by name.

Between two such convs the tensors may stay on blocks: a conv that ``writes_blocks``
leaves its block² output phases as channels, an instance norm on blocks
(``BlockInstanceNormalization``) normalises them with the statistics of the spatial
tensor they stand for, and a space-to-depth conv that ``reads_blocks`` takes them as its
blocks; the depth-to-space and space-to-depth in between cancel."""

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
        reads_blocks: bool = False,
        writes_blocks: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if reads_blocks and not self.input_blocks:
            raise ValueError(f"{type(self).__name__} reads its input in space, not on blocks")
        self.reads_blocks = reads_blocks  # the input is already space-to-depth blocks
        self.writes_blocks = writes_blocks  # the output stays as block² phases (no D2S)
        self.filters = filters
        self.kernel_size = (
            tuple(kernel_size) if isinstance(kernel_size, list | tuple) else (kernel_size,) * 2
        )
        self.block = block
        self.activation = keras.activations.get(activation)

    def build(self, input_shape) -> None:
        expand = self.input_blocks and not self.reads_blocks
        channels = int(input_shape[-1]) * (self.block**2 if expand else 1)
        outputs = self.filters * self.block**2
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels, outputs), initializer="zeros"
        )
        self.bias = self.add_weight(name="bias", shape=(outputs,), initializer="zeros")
        super().build(input_shape)

    def _conv_to_space(self, inputs):
        """The conv on ``inputs``, its block² output phases put back into space (or left
        as channels when the layer ``writes_blocks``)."""
        phases = tf.nn.conv2d(inputs, self.kernel, 1, "SAME") + self.bias
        if self.writes_blocks:
            return self.activation(phases)
        return self.activation(tf.nn.depth_to_space(phases, self.block))

    def _output_shape(self, batch, height, width) -> tf.TensorShape:
        """Output shape from the output's spatial size (None where unknown)."""
        if self.writes_blocks:
            return tf.TensorShape(
                [
                    batch,
                    None if height is None else height // self.block,
                    None if width is None else width // self.block,
                    self.filters * self.block**2,
                ]
            )
        return tf.TensorShape([batch, height, width, self.filters])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "block": self.block,
            "activation": keras.activations.serialize(self.activation),
            "reads_blocks": self.reads_blocks,
            "writes_blocks": self.writes_blocks,
        }


@keras.saving.register_keras_serializable(package="compressor")
class SpaceToDepthConv2D(_BlockConv):
    """space_to_depth(block) → conv (block grid, 'same') → depth_to_space(block) →
    activation: a stride-1 'same' conv of ``filters`` outputs, rearranged (see the
    module docstring). Weights come from ``block_weights``."""

    input_blocks = True

    def call(self, inputs):
        blocks = inputs if self.reads_blocks else tf.nn.space_to_depth(inputs, self.block)
        return self._conv_to_space(blocks)

    def compute_output_shape(self, input_shape):
        scale = self.block if self.reads_blocks else 1
        height, width = input_shape[1], input_shape[2]
        return self._output_shape(
            input_shape[0],
            None if height is None else height * scale,
            None if width is None else width * scale,
        )


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
        return self._output_shape(
            input_shape[0],
            None if height is None else height * self.block,
            None if width is None else width * self.block,
        )


@keras.saving.register_keras_serializable(package="compressor")
class BlockInstanceNormalization(keras.layers.Layer):
    """Instance normalisation of a tensor held as space-to-depth blocks (N, H/b, W/b,
    b²·C): each channel's mean and variance are taken over its b² phases as over the
    spatial tensor, so the result equals ``InstanceNormalization`` on the tensor in space
    (same ``gamma``/``beta`` of C channels). The output is put back into space unless the
    layer ``writes_blocks``. The norm then runs on b² times wider vectors: at 256²×8
    it is 2.3× faster on x86 (docs/benchmarks.md)."""

    def __init__(
        self, epsilon: float = 1e-3, block: int = BLOCK, writes_blocks: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.block = block
        self.writes_blocks = writes_blocks

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1]) // self.block**2
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        super().build(input_shape)

    def _per_channel(self, phase_stats):
        """(N, 1, 1, b²·C) statistics of each phase → (N, 1, 1, C) over all phases."""
        phases = self.block**2
        split = tf.reshape(phase_stats, [-1, 1, 1, phases, phase_stats.shape[-1] // phases])
        return tf.reduce_mean(split, axis=3)

    def _on_phases(self, per_channel):
        """(…, C) → (…, b²·C): the same value for each of a channel's phases."""
        return tf.tile(per_channel, [1] * (per_channel.shape.rank - 1) + [self.block**2])

    def call(self, inputs):
        mean = self._per_channel(tf.reduce_mean(inputs, axis=[1, 2], keepdims=True))
        centred = inputs - self._on_phases(mean)
        variance = self._per_channel(tf.reduce_mean(tf.square(centred), axis=[1, 2], keepdims=True))
        scale = self._on_phases(self.gamma * tf.math.rsqrt(variance + self.epsilon))
        outputs = centred * scale + self._on_phases(self.beta)
        return outputs if self.writes_blocks else tf.nn.depth_to_space(outputs, self.block)

    def compute_output_shape(self, input_shape):
        if self.writes_blocks:
            return tf.TensorShape(input_shape)
        height, width = input_shape[1], input_shape[2]
        return tf.TensorShape(
            [
                input_shape[0],
                None if height is None else height * self.block,
                None if width is None else width * self.block,
                int(input_shape[-1]) // self.block**2,
            ]
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "block": self.block,
            "writes_blocks": self.writes_blocks,
        }
