"""What the planner knows about a model: layers, params, MACs, op kinds, I/O specs.

``ModelInfo`` is plain data (JSON round-trips) so planning never needs TensorFlow;
``model_info_from_keras`` builds one from a Keras model (imports TF lazily).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compressor.core.files import write_text_atomic

# Keras class name -> op kind the cost model and the strategies reason about.
_KIND_BY_CLASS = {
    "Conv2D": "conv",
    "Conv2DTranspose": "conv_transpose",
    "DepthwiseConv2D": "depthwise_conv",
    "SeparableConv2D": "separable_conv",
    "Dense": "dense",
    "BatchNormalization": "batch_norm",
    "InstanceNormalization": "instance_norm",
    "BlockInstanceNormalization": "instance_norm",
    "SpaceToDepthConv2D": "conv",
    "SubPixelConv2D": "conv",
    "LayerNormalization": "layer_norm",
    "GroupNormalization": "group_norm",
    "ReLU": "activation",
    "Activation": "activation",
    "LeakyReLU": "activation",
    "PReLU": "activation",
    "Softmax": "activation",
    "ELU": "activation",
    "Add": "add",
    "Multiply": "mul",
    "Concatenate": "concat",
    "UpSampling2D": "resize",
    "ZeroPadding2D": "pad",
    "MaxPooling2D": "pool",
    "AveragePooling2D": "pool",
    "GlobalAveragePooling2D": "pool",
    "GlobalMaxPooling2D": "pool",
    "Flatten": "reshape",
    "Reshape": "reshape",
    "Dropout": "identity",
    "InputLayer": "input",
    "Rescaling": "scale",
}
_WEIGHTED_KINDS = {"conv", "conv_transpose", "depthwise_conv", "separable_conv", "dense"}
KERAS_BUILTIN_MODULE_PREFIXES = ("keras", "tf_keras", "tensorflow")

# ModelInfo.extra keys of a frozen graph (SavedModel, float .tflite, ONNX), and its formats.
FROZEN_KEY = "frozen_graph"  # the graph's source format
MIRROR_PADS_KEY = "mirror_pads"  # MIRROR_PAD layer -> its paddings
TFLITE_FORMAT = "float .tflite"  # source formats: this or SAVED_MODEL_FORMAT
SAVED_MODEL_FORMAT = "SavedModel"


@dataclass
class LayerInfo:
    """One layer: its class, op kind, parameter count, MACs and output size."""

    name: str
    class_name: str
    kind: str
    params: int
    macs: int
    output_elements: int
    output_shape: list[int | None]
    custom: bool = False
    activation: str | None = None  # fused (conv/dense) or standalone activation function
    interpolation: str | None = None  # resize layers: nearest or bilinear
    # Plain convs (Conv2D): the GEMM the runtime computes, for tile-aware costs and rewrites
    kernel: list[int] | None = None  # kernel height, width
    in_channels: int = 0  # GEMM input channels per tap (0: not a plain conv)
    out_channels: int = 0  # GEMM output channels
    stride_one_same: bool = False  # stride 1, 'same' padding, no dilation, no groups
    # Tensors held as 2×2 space-to-depth blocks (the space-to-depth strategy's layers)
    reads_blocks: bool = False  # the input is blocks already (no SPACE_TO_DEPTH)
    writes_blocks: bool = False  # the output stays on blocks (no DEPTH_TO_SPACE)


@dataclass
class TensorSpec:
    """A model input or output: name, shape (batch is None) and dtype."""

    name: str
    shape: list[int | None]
    dtype: str


@dataclass
class ModelInfo:
    """Facts about a model for planning and cost estimation."""

    name: str
    layers: list[LayerInfo]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    params: int = 0
    macs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.params:
            self.params = sum(layer.params for layer in self.layers)
        if not self.macs:
            self.macs = sum(layer.macs for layer in self.layers)

    def kinds(self) -> set[str]:
        """Op kinds present in the model."""
        return {layer.kind for layer in self.layers}

    def count(self, kind: str) -> int:
        """How many layers of ``kind`` the model has."""
        return sum(1 for layer in self.layers if layer.kind == kind)

    def elements_of(self, *kinds: str) -> int:
        """Total output elements of layers of the given kinds (memory-bound work)."""
        return sum(layer.output_elements for layer in self.layers if layer.kind in kinds)

    @property
    def has_instance_norm(self) -> bool:
        """Instance norm breaks full-int8 quality and tfmot wrappers (docs/measurements.md)."""
        return "instance_norm" in self.kinds()

    @property
    def custom_layers(self) -> list[str]:
        """Names of layers whose classes are not Keras built-ins."""
        return [layer.name for layer in self.layers if layer.custom]

    @property
    def is_image_to_image(self) -> bool:
        """Output is an image of the input's spatial size (e.g. style transfer)."""
        if not self.inputs or not self.outputs:
            return False
        ins, out = self.inputs[0].shape, self.outputs[0].shape
        return len(out) == 4 and len(ins) == 4 and out[1:3] == ins[1:3]

    @property
    def is_classifier(self) -> bool:
        """Output is a vector of class scores."""
        return bool(self.outputs) and len(self.outputs[0].shape) == 2

    @property
    def input_image_shape(self) -> tuple[int, int, int] | None:
        """(height, width, channels) of the first input when it is a static image."""
        if not self.inputs:
            return None
        shape = self.inputs[0].shape
        if len(shape) != 4 or any(d is None for d in shape[1:]):
            return None
        return int(shape[1]), int(shape[2]), int(shape[3])

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Inverse of ``to_dict``."""
        return cls(
            name=data["name"],
            layers=[LayerInfo(**layer) for layer in data["layers"]],
            inputs=[TensorSpec(**t) for t in data["inputs"]],
            outputs=[TensorSpec(**t) for t in data["outputs"]],
            params=data.get("params", 0),
            macs=data.get("macs", 0),
            extra=data.get("extra", {}),
        )

    def save_json(self, path: Path) -> None:
        """Write the model facts as JSON."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load_json(cls, path: Path) -> ModelInfo:
        """Read model facts written by ``save_json``."""
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _product(dims) -> int:
    total = 1
    for d in dims:
        total *= int(d) if d is not None else 1
    return total


def _shape_list(shape) -> list[int | None]:
    return [None if d is None else int(d) for d in shape]


_BLOCK_CONVS = ("SpaceToDepthConv2D", "SubPixelConv2D")
_BLOCK_LAYERS = (*_BLOCK_CONVS, "BlockInstanceNormalization")
_BLOCK_IO = ("reads_blocks", "writes_blocks")  # their config keys, mirrored in LayerInfo


def _block_grid_pixels(layer, in_shape) -> int:
    """Pixels of the grid a block conv computes on: the input's, or its blocks'."""
    pixels = _product(in_shape[1:3])
    on_blocks = layer.__class__.__name__ == "SpaceToDepthConv2D" and not layer.reads_blocks
    return pixels // layer.block**2 if on_blocks else pixels


def _layer_macs(layer, kind: str, in_shape, out_shape) -> int:
    if layer.__class__.__name__ in _BLOCK_CONVS:  # the block kernel over the block grid
        return _block_grid_pixels(layer, in_shape) * _product(layer.kernel.shape)
    if kind == "conv":
        kh, kw = layer.kernel_size
        in_ch = int(in_shape[-1])
        return _product(out_shape[1:]) * kh * kw * in_ch // max(1, getattr(layer, "groups", 1))
    if kind == "depthwise_conv":
        kh, kw = layer.kernel_size
        return _product(out_shape[1:]) * kh * kw
    if kind == "separable_conv":
        kh, kw = layer.kernel_size
        in_ch = int(in_shape[-1])
        spatial = _product(out_shape[1:-1])
        return spatial * in_ch * kh * kw * layer.depth_multiplier + _product(out_shape[1:]) * in_ch
    if kind == "conv_transpose":
        kh, kw = layer.kernel_size
        return _product(in_shape[1:]) * kh * kw * int(out_shape[-1])
    if kind == "dense":
        return _product(in_shape[1:-1]) * int(in_shape[-1]) * int(out_shape[-1])
    return 0


def _conv_geometry(layer, config: dict[str, Any], in_shape, out_shape) -> dict[str, Any]:
    """Kernel and GEMM channels of a plain conv: a Conv2D, or a SpaceToDepthConv2D /
    SubPixelConv2D (its block kernel's channels); {} for other layers."""
    class_name = layer.__class__.__name__
    if class_name in _BLOCK_CONVS:
        return {
            "kernel": [int(k) for k in layer.kernel_size],
            "in_channels": int(layer.kernel.shape[2]),
            "out_channels": int(layer.kernel.shape[3]),
        }
    if class_name != "Conv2D":
        return {}
    plain = (
        class_name == "Conv2D"
        and tuple(config.get("strides", ())) == (1, 1)
        and config.get("padding") == "same"
        and tuple(config.get("dilation_rate", ())) == (1, 1)
        and config.get("groups", 1) == 1
        and config.get("data_format", "channels_last") == "channels_last"
    )
    return {
        "kernel": [int(k) for k in layer.kernel_size],
        "in_channels": int(in_shape[-1]) // max(1, int(config.get("groups", 1))),
        "out_channels": int(out_shape[-1]),
        "stride_one_same": plain,
    }


def _safe_config(layer) -> dict[str, Any]:
    try:
        return layer.get_config()
    except (NotImplementedError, TypeError, AttributeError):
        return {}


_ACTIVATION_LAYERS = {
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "Softmax": "softmax",
    "ELU": "elu",
}


def _activation_of(class_name: str, config: dict[str, Any]) -> str | None:
    """The activation a layer applies: its ``activation`` argument or its own function."""
    if class_name == "ReLU":
        if config.get("negative_slope"):
            return "leaky_relu"
        return "relu6" if config.get("max_value") == 6 else "relu"
    if class_name in _ACTIVATION_LAYERS:
        return _ACTIVATION_LAYERS[class_name]
    activation = config.get("activation")
    return activation if isinstance(activation, str) else None


def model_info_from_keras(model) -> ModelInfo:
    """Describe a built Keras model; nested models are flattened into their layers."""
    layers: list[LayerInfo] = []

    def visit(layer) -> None:
        if hasattr(layer, "layers") and layer.__class__.__name__ in (
            "Functional",
            "Sequential",
            "Model",
        ):
            for inner in layer.layers:
                visit(inner)
            return
        class_name = layer.__class__.__name__
        kind = _KIND_BY_CLASS.get(class_name, "other")
        if class_name == "Activation":
            kind = "activation"
        module = type(layer).__module__ or ""
        custom = not module.startswith(KERAS_BUILTIN_MODULE_PREFIXES)
        try:
            in_shape = layer.input_shape
            out_shape = layer.output_shape
        except (AttributeError, RuntimeError):
            in_shape, out_shape = None, None
        if isinstance(in_shape, list):
            in_shape = in_shape[0]
        if isinstance(out_shape, list):
            out_shape = out_shape[0]
        if kind == "input":
            return
        macs = _layer_macs(layer, kind, in_shape, out_shape) if out_shape and in_shape else 0
        config = _safe_config(layer)
        geometry = _conv_geometry(layer, config, in_shape, out_shape) if macs else {}
        if class_name in _BLOCK_LAYERS:  # which of its tensors are held as blocks
            geometry.update({key: bool(config.get(key, False)) for key in _BLOCK_IO})
        layers.append(
            LayerInfo(
                name=layer.name,
                class_name=class_name,
                kind=kind,
                params=int(layer.count_params()) if layer.built else 0,
                macs=int(macs),
                output_elements=_product(out_shape[1:]) if out_shape else 0,
                output_shape=_shape_list(out_shape) if out_shape else [],
                custom=custom,
                activation=_activation_of(class_name, config),
                interpolation=config.get("interpolation") if kind == "resize" else None,
                **geometry,
            )
        )

    for layer in model.layers:
        visit(layer)
    inputs = [TensorSpec(t.name, _shape_list(t.shape), t.dtype.name) for t in model.inputs]
    outputs = [TensorSpec(t.name, _shape_list(t.shape), t.dtype.name) for t in model.outputs]
    from compressor.core.channels import GROUPS_KEY, find_channel_groups

    groups = find_channel_groups(model) if hasattr(model, "_output_layers") else []
    extra = {GROUPS_KEY: groups} if groups else {}
    return ModelInfo(name=model.name, layers=layers, inputs=inputs, outputs=outputs, extra=extra)
