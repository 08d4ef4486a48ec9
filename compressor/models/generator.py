"""Johnson et al. (2016) feed-forward style-transfer generator, configurable for students.

Upsample + conv (not transposed conv) avoids checkerboard artefacts; zero padding is
used because reflection padding is not an XNNPACK/GPU-delegate op (docs/measurements.md).
Output is in [0, 1] through a sigmoid.
"""

from __future__ import annotations

import tf_keras as keras

from compressor.layers.instance_norm import InstanceNormalization
from compressor.models.generator_config import GeneratorConfig

__all__ = ["GeneratorConfig", "InstanceNormalization", "build_generator"]


def _norm(kind: str, name: str) -> keras.layers.Layer:
    if kind == "instance":
        return InstanceNormalization(name=name)
    return keras.layers.BatchNormalization(name=name)


def _conv_block(x, filters: int, kernel: int, stride: int, norm: str, name: str):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", name=f"{name}_conv")(x)
    x = _norm(norm, f"{name}_norm")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _separable(x, filters: int, name: str):
    x = keras.layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(x)
    return keras.layers.Conv2D(filters, 1, name=f"{name}_pw")(x)


def _residual_block(x, filters: int, config: GeneratorConfig, name: str):
    shortcut = x
    for i in (1, 2):
        if config.depthwise:
            x = _separable(x, filters, f"{name}_{i}")
        else:
            x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_{i}_conv")(x)
        x = _norm(config.norm, f"{name}_{i}_norm")(x)
        if i == 1:
            x = keras.layers.ReLU(name=f"{name}_{i}_relu")(x)
    return keras.layers.Add(name=f"{name}_add")([shortcut, x])


def build_generator(config: GeneratorConfig | None = None, seed: int = 0) -> keras.Model:
    """Build the generator for ``config`` (default: GeneratorConfig()) seeded by ``seed``."""
    config = config or GeneratorConfig()
    from compressor.models.generator_spec import scaled_width

    keras.utils.set_random_seed(seed)

    def width(channels: int) -> int:
        return scaled_width(config, channels)

    size = config.input_size
    inputs = keras.Input((size, size, 3), name="image")
    x = _conv_block(inputs, width(32), config.edge_kernel, 1, config.norm, "enc1")
    x = _conv_block(x, width(64), 3, 2, config.norm, "enc2")
    x = _conv_block(x, width(128), 3, 2, config.norm, "enc3")
    for block in range(config.residual_blocks):
        x = _residual_block(x, width(128), config, f"res{block + 1}")
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name="up1")(x)
    x = _conv_block(x, width(64), 3, 1, config.norm, "dec1")
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name="up2")(x)
    x = _conv_block(x, width(32), 3, 1, config.norm, "dec2")
    x = keras.layers.Conv2D(3, config.edge_kernel, padding="same", name="out_conv")(x)
    outputs = keras.layers.Activation("sigmoid", name="stylized")(x)
    from compressor.models.generator_spec import generator_name

    return keras.Model(inputs, outputs, name=generator_name(config))
