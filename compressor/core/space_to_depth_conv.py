"""A stride-1 convolution computed on space-to-depth blocks: exactly the same function,
different work shape.

A k×k convolution with few output channels at full resolution wastes most of a CPU's
GEMM tile: XNNPACK on AVX-512 computes output channels 16 at a time, so a 9×9 conv to
3 channels runs at a fifth of the rate of a wide one (docs/measurements.md). Rearranged
as space_to_depth(b) → a ⌈k/b⌉-ish conv from b²·Cin to b²·Cout channels at 1/b of the
resolution → depth_to_space(b), the same outputs come from a GEMM whose tile is full:
the 9×9 16→3 conv of the demo generator runs 3× faster at 256².

Output pixel (b·i + a) reads input pixels b·i + a + d for taps d ∈ [−p, p] (p = k//2).
Writing a + d = b·P + q (q ∈ [0, b)) puts tap d at block offset P and phase q of the
space-to-depth input, so the block kernel has taps P ∈ [⌊−p/b⌋, ⌊(b−1+p)/b⌋]. For
b = 2 and odd k that range is symmetric, so 'same' padding on the block grid equals the
original's zero padding (an input block is either wholly inside or wholly outside).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

BLOCK = 2  # the block size the rewrite uses (symmetric 'same' padding for odd kernels)


def block_kernel_size(kernel: int, block: int = BLOCK) -> int:
    """Taps of the block-grid kernel that reproduces an odd ``kernel`` × ``kernel`` conv."""
    half = kernel // 2
    low, high = (-half) // block, (block - 1 + half) // block
    if -low != high:
        raise ValueError(f"a {kernel}x{kernel} kernel has no symmetric {block}x{block} form")
    return high - low + 1


def block_weights(
    kernel: np.ndarray, bias: np.ndarray | None, block: int = BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """The block-grid kernel (K, K, b²·Cin, b²·Cout) and bias (b²·Cout) of a stride-1,
    'same', odd-sized ``kernel`` (kh, kw, Cin, Cout), in TF's space_to_depth /
    depth_to_space channel order ((row phase · b + column phase) · C + c)."""
    kh, kw, cin, cout = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"only odd kernels have an exact block form, not {kh}x{kw}")
    size_h, size_w = block_kernel_size(kh, block), block_kernel_size(kw, block)
    out = np.zeros((size_h, size_w, block * block * cin, block * block * cout), kernel.dtype)
    for a_y in range(block):
        for a_x in range(block):
            out_slice = slice((a_y * block + a_x) * cout, (a_y * block + a_x + 1) * cout)
            for ky in range(kh):
                shift_y = a_y + ky - kh // 2
                p_y, q_y = shift_y // block, shift_y % block
                for kx in range(kw):
                    shift_x = a_x + kx - kw // 2
                    p_x, q_x = shift_x // block, shift_x % block
                    in_start = (q_y * block + q_x) * cin
                    out[
                        p_y + size_h // 2, p_x + size_w // 2, in_start : in_start + cin, out_slice
                    ] = kernel[ky, kx]
    tiled_bias = np.tile(np.zeros(cout, kernel.dtype) if bias is None else bias, block * block)
    return out, tiled_bias


@keras.saving.register_keras_serializable(package="compressor")
class SpaceToDepthConv2D(keras.layers.Layer):
    """space_to_depth(block) → conv (block grid, 'same') → depth_to_space(block) →
    activation: a stride-1 'same' conv of ``filters`` outputs, rearranged (see the
    module docstring). Weights come from ``block_weights``."""

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
        channels = int(input_shape[-1]) * self.block**2
        outputs = self.filters * self.block**2
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels, outputs), initializer="zeros"
        )
        self.bias = self.add_weight(name="bias", shape=(outputs,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        blocks = tf.nn.space_to_depth(inputs, self.block)
        blocks = tf.nn.conv2d(blocks, self.kernel, 1, "SAME") + self.bias
        return self.activation(tf.nn.depth_to_space(blocks, self.block))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([*input_shape[:-1], self.filters])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "block": self.block,
            "activation": keras.activations.serialize(self.activation),
        }
