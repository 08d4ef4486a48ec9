"""The generator's layers computed without TensorFlow, and its config read back from
ModelInfo, so the planner can reason about students and norm swaps (TF-free).

A test checks ``generator_info(config)`` equals ``model_info_from_keras(build_generator)``.
"""

from __future__ import annotations

from dataclasses import replace

from compressor.core.model_info import LayerInfo, ModelInfo, TensorSpec
from compressor.models.generator_config import GeneratorConfig

TRUNK_CHANNELS = 128  # the base width of the encoder's output and the residual blocks


def scaled_width(config: GeneratorConfig, channels: int) -> int:
    """Channels of a layer after the width multiplier (the trunk's own for the trunk;
    multiples of 4, at least 4)."""
    factor = config.width
    if channels == TRUNK_CHANNELS and config.trunk_width is not None:
        factor = config.trunk_width
    return max(4, int(round(channels * factor / 4)) * 4)


class _Builder:
    def __init__(self, size: int) -> None:
        self.layers: list[LayerInfo] = []
        self.h = self.w = size
        self.c = 3

    def _add(self, name, class_name, kind, params, macs, custom=False, **options):
        shape = [None, self.h, self.w, self.c]
        elements = self.h * self.w * self.c
        self.layers.append(
            LayerInfo(name, class_name, kind, params, macs, elements, shape, custom, **options)
        )

    def conv(self, name, filters, kernel, stride=1, same=True):
        in_c = self.c
        self.h, self.w, self.c = -(-self.h // stride), -(-self.w // stride), filters
        macs = self.h * self.w * filters * kernel * kernel * in_c
        params = kernel * kernel * in_c * filters + filters
        geometry = {"kernel": [kernel, kernel], "in_channels": in_c, "out_channels": filters}
        self._add(
            name,
            "Conv2D",
            "conv",
            params,
            macs,
            activation="linear",
            stride_one_same=stride == 1 and same,
            **geometry,
        )

    def depthwise(self, name):
        macs = self.h * self.w * self.c * 9
        params = 9 * self.c + self.c
        self._add(name, "DepthwiseConv2D", "depthwise_conv", params, macs, activation="linear")

    def norm(self, name, kind):
        if kind == "instance":
            self._add(name, "InstanceNormalization", "instance_norm", 2 * self.c, 0, custom=True)
        else:
            self._add(name, "BatchNormalization", "batch_norm", 4 * self.c, 0)

    def simple(self, name, class_name, kind, **options):
        self._add(name, class_name, kind, 0, 0, **options)

    def upsample(self, name):
        self.h, self.w = self.h * 2, self.w * 2
        self.simple(name, "UpSampling2D", "resize", interpolation="nearest")


def generator_info(config: GeneratorConfig) -> ModelInfo:
    """ModelInfo of ``build_generator(config)``, computed analytically."""
    b = _Builder(config.input_size)

    def block(prefix, filters, kernel, stride):
        b.conv(f"{prefix}_conv", filters, kernel, stride)
        b.norm(f"{prefix}_norm", config.norm)
        b.simple(f"{prefix}_relu", "ReLU", "activation", activation="relu")

    block("enc1", scaled_width(config, 32), config.edge_kernel, 1)
    block("enc2", scaled_width(config, 64), 3, 2)
    block("enc3", scaled_width(config, 128), 3, 2)
    filters = scaled_width(config, 128)
    for index in range(1, config.residual_blocks + 1):
        name = f"res{index}"
        for part in (1, 2):
            if config.depthwise:
                b.depthwise(f"{name}_{part}_dw")
                b.conv(f"{name}_{part}_pw", filters, 1, same=False)  # Keras: "valid"
            else:
                b.conv(f"{name}_{part}_conv", filters, 3)
            b.norm(f"{name}_{part}_norm", config.norm)
            if part == 1:
                b.simple(f"{name}_{part}_relu", "ReLU", "activation", activation="relu")
        b.simple(f"{name}_add", "Add", "add")
    b.upsample("up1")
    block("dec1", scaled_width(config, 64), 3, 1)
    b.upsample("up2")
    block("dec2", scaled_width(config, 32), 3, 1)
    b.conv("out_conv", 3, config.edge_kernel)
    b.simple("stylized", "Activation", "activation", activation="sigmoid")
    size = config.input_size
    return ModelInfo(
        name=generator_name(config),
        layers=b.layers,
        inputs=[TensorSpec("image", [None, size, size, 3], "float32")],
        outputs=[TensorSpec("stylized/Sigmoid:0", [None, size, size, 3], "float32")],
        extra={"channel_groups": _channel_groups(config)},
    )


def _channel_groups(config: GeneratorConfig) -> list[dict]:
    """The generator's prunable conv → conv chains (as ``find_channel_groups`` reads them)."""

    def group(producer, between, consumer):
        return {"producer": producer, "between": between, "consumer": consumer}

    groups = [
        group("enc1_conv", ["enc1_norm", "enc1_relu"], "enc2_conv"),
        group("enc2_conv", ["enc2_norm", "enc2_relu"], "enc3_conv"),
    ]
    for index in range(1, config.residual_blocks + 1):
        name = f"res{index}"
        if config.depthwise:
            groups.append(
                group(
                    f"{name}_1_pw",
                    [f"{name}_1_norm", f"{name}_1_relu", f"{name}_2_dw"],
                    f"{name}_2_pw",
                )
            )
        else:
            groups.append(
                group(f"{name}_1_conv", [f"{name}_1_norm", f"{name}_1_relu"], f"{name}_2_conv")
            )
    groups.append(group("dec1_conv", ["dec1_norm", "dec1_relu", "up2"], "dec2_conv"))
    groups.append(group("dec2_conv", ["dec2_norm", "dec2_relu"], "out_conv"))
    return groups


def generator_name(config: GeneratorConfig) -> str:
    """The Keras model name ``build_generator`` gives."""
    trunk = "" if config.trunk_width is None else f"_t{config.trunk_width:g}"
    return f"johnson_{config.norm[:2]}_w{config.width:g}{trunk}_r{config.residual_blocks}"


def generator_config_from_info(info: ModelInfo) -> GeneratorConfig | None:
    """Recover the GeneratorConfig of a compressor generator, or None for other models."""
    names = {layer.name: layer for layer in info.layers}
    if not {"enc1_conv", "enc3_conv", "dec2_conv", "out_conv"} <= set(names):
        return None
    shape = info.input_image_shape
    if shape is None or shape[0] != shape[1]:
        return None
    blocks = sum(1 for n in names if n.startswith("res") and n.endswith("_add"))
    norm = "instance" if names["enc1_norm"].kind == "instance_norm" else "batch"
    width = names["enc2_conv"].output_shape[-1] / 64
    trunk_width = names["enc3_conv"].output_shape[-1] / TRUNK_CHANNELS
    enc1 = names["enc1_conv"]  # params = k·k·3·filters + filters
    filters = enc1.output_shape[-1] or 1
    kernel = round(((enc1.params - filters) / (3 * filters)) ** 0.5)
    config = GeneratorConfig(
        width=width,
        residual_blocks=blocks,
        norm=norm,
        depthwise="res1_1_dw" in names,
        input_size=shape[0],
        edge_kernel=kernel,
        trunk_width=None if trunk_width == width else trunk_width,
    )
    return config if generator_info(config).layers == info.layers else None


def student_of(config: GeneratorConfig, **changes) -> GeneratorConfig:
    """A copy of ``config`` with some fields changed (width, blocks, norm, depthwise)."""
    return replace(config, **changes)


def cut_config(
    config: GeneratorConfig,
    keep: float,
    residual_blocks: int,
    edge_kernel: int | None = None,
    trunk_keep: float | None = None,
) -> GeneratorConfig:
    """The shape of a student cut from ``config``: ``keep`` × its width, the residual
    trunk at ``trunk_keep`` × the trunk's width (None: ``keep``), at most its blocks and
    at most its edge kernel (None: the teacher's)."""
    width = config.width * keep
    teacher_trunk = config.trunk_width if config.trunk_width is not None else config.width
    trunk_width = teacher_trunk * (keep if trunk_keep is None else trunk_keep)
    return replace(
        config,
        width=width,
        trunk_width=None if trunk_width == width else trunk_width,
        residual_blocks=min(residual_blocks, config.residual_blocks),
        edge_kernel=min(edge_kernel or config.edge_kernel, config.edge_kernel),
    )
