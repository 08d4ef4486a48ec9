"""Predict the TFLite operators a Keras model converts to, before converting it.

The planner uses this (TF-free, from ``ModelInfo``) to judge delegate coverage per target
with the same rules ``coverage.op_coverage`` applies to the real ``.tflite`` afterwards.
The mapping follows what the TFLite converter emits: batch norm after a conv folds into
it, ReLU/ReLU6 fuse into the preceding conv/add, instance norm lowers to MEAN /
SQUARED_DIFFERENCE / RSQRT / MUL / SUB / ADD, float16 weights add DEQUANTIZE ops, and
full-int8 with float I/O adds QUANTIZE/DEQUANTIZE at the ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from compressor.core.model_info import FROZEN_KEY, TFLITE_FORMAT, LayerInfo, ModelInfo
from compressor.core.profiles import HardwareProfile
from compressor.planning.coverage import Coverage, not_in_op_list, shape_problem, summarise

UNKNOWN = "UNKNOWN"

_OPS_BY_CLASS = {
    "Conv2D": ("CONV_2D",),
    "DepthwiseConv2D": ("DEPTHWISE_CONV_2D",),
    "SeparableConv2D": ("DEPTHWISE_CONV_2D", "CONV_2D"),
    "Conv2DTranspose": ("TRANSPOSE_CONV",),
    "Dense": ("FULLY_CONNECTED",),
    "Add": ("ADD",),
    "Multiply": ("MUL",),
    "Concatenate": ("CONCATENATION",),
    "ZeroPadding2D": ("PAD",),
    "MaxPooling2D": ("MAX_POOL_2D",),
    "AveragePooling2D": ("AVERAGE_POOL_2D",),
    "GlobalAveragePooling2D": ("MEAN",),
    "GlobalMaxPooling2D": ("REDUCE_MAX",),
    "Flatten": ("RESHAPE",),
    "Reshape": ("RESHAPE",),
    "Permute": ("TRANSPOSE",),
    "Rescaling": ("MUL", "ADD"),
    "Dropout": (),
    "FixedInput": (),  # --input NAME=VALUE: folded into constants at batch 1
    # a trained norm's (gamma 1 and beta 0, as initialised, fold away: one MUL, ADD fewer)
    "InstanceNormalization": (
        "MEAN",
        "SQUARED_DIFFERENCE",
        "MEAN",
        "ADD",
        "RSQRT",
        "SUB",
        "MUL",
        "MUL",
        "ADD",
    ),
    "LayerNormalization": ("MEAN", "SQUARED_DIFFERENCE", "MEAN", "ADD", "RSQRT", "MUL", "SUB"),
    # the space-to-depth strategy's block layers (compressor.layers.block_conv_layers); the
    # SPACE_TO_DEPTH / DEPTH_TO_SPACE at their ends are left out where the tensor stays on
    # blocks (LayerInfo.reads_blocks / writes_blocks)
    "SpaceToDepthConv2D": ("SPACE_TO_DEPTH", "CONV_2D", "DEPTH_TO_SPACE"),
    "SubPixelConv2D": ("CONV_2D", "DEPTH_TO_SPACE"),
    "BlockInstanceNormalization": (
        "MEAN",
        "RESHAPE",
        "MEAN",
        "TILE",
        "SUB",
        "SQUARED_DIFFERENCE",
        "MEAN",
        "RESHAPE",
        "MEAN",
        "ADD",
        "RSQRT",
        "MUL",
        "TILE",
        "MUL",
        "ADD",
        "DEPTH_TO_SPACE",
    ),
}
_ACTIVATION_OPS = {
    "linear": (),
    "relu": ("RELU",),
    "relu6": ("RELU6",),
    "sigmoid": ("LOGISTIC",),
    "tanh": ("TANH",),
    "softmax": ("SOFTMAX",),
    "elu": ("ELU",),
    "gelu": ("GELU",),
    "hard_swish": ("HARD_SWISH",),
    "swish": ("LOGISTIC", "MUL"),
    "silu": ("LOGISTIC", "MUL"),
    "leaky_relu": ("LEAKY_RELU",),
    "prelu": ("PRELU",),
    "selu": ("ELU", "MUL"),
    "softplus": ("EXP", "ADD", "LOG"),
}
_FUSABLE_ACTIVATIONS = {"relu", "relu6"}
# Ops with a fused_activation_function in the TFLite schema (ReLU/ReLU6 fold into them).
_FUSING_OPS = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "TRANSPOSE_CONV",
    "ADD",
    "SUB",
    "MUL",
    "CONCATENATION",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    # the converter moves a ReLU after a depth-to-space before it, into the op that
    # computed the blocks (a block conv's or a block norm's)
    "DEPTH_TO_SPACE",
}
# Ops the converter has no int8 kernel for: full-int8 models run them in float between a
# DEQUANTIZE and a QUANTIZE (measured with the TFLite converter of TF 2.21).
_FLOAT_ONLY_IN_INT8 = {"ELU", UNKNOWN}
# ...and the ops ai-edge-quantizer (which quantizes a frozen .tflite) has no int8 for
# (ai-edge-quantizer 0.x: its policy lists no PRELU).
_FLOAT_ONLY_IN_AEQ_INT8 = {"PRELU"}
_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


def activation_ops(activation: str) -> tuple[str, ...] | None:
    """TFLite ops an activation converts to (None when unknown)."""
    return _ACTIVATION_OPS.get(activation)


@dataclass(frozen=True)
class PredictedOp:
    """One operator the converter is expected to emit, and the layer it comes from."""

    index: int
    name: str
    layer: str
    note: str = ""
    float_in_int8: bool = False  # left in float by the quantizer (no int8 kernel)


def _layer_ops(layer: LayerInfo, previous: str | None) -> tuple[str, ...]:
    if layer.class_name == "BatchNormalization":
        return () if previous in _WEIGHTED else ("MUL", "ADD")
    if layer.class_name == "UpSampling2D":
        bilinear = layer.interpolation == "bilinear"
        return ("RESIZE_BILINEAR",) if bilinear else ("RESIZE_NEAREST_NEIGHBOR",)
    if layer.kind == "activation":
        ops = _ACTIVATION_OPS.get(layer.activation or "", (UNKNOWN,))
        if layer.activation in _FUSABLE_ACTIVATIONS and previous in _FUSING_OPS:
            return ()
        return ops
    ops = _OPS_BY_CLASS.get(layer.class_name)
    if ops is None:
        return (UNKNOWN,)
    if layer.reads_blocks and ops[0] == "SPACE_TO_DEPTH":
        ops = ops[1:]
    if layer.writes_blocks and ops[-1] == "DEPTH_TO_SPACE":
        ops = ops[:-1]
    fused = layer.activation
    if fused and fused != "linear" and not (fused in _FUSABLE_ACTIVATIONS and ops):
        ops = ops + _ACTIVATION_OPS.get(fused, (UNKNOWN,))
    return ops


def predict_ops(info: ModelInfo, precision: str, io_type: str = "float32") -> list[PredictedOp]:
    """The operators, in order, that ``info`` converts to at ``precision``."""
    ops: list[PredictedOp] = []
    previous: str | None = None

    def add(name: str, layer: str, note: str = "", float_in_int8: bool = False) -> None:
        ops.append(PredictedOp(len(ops), name, layer, note, float_in_int8))

    float_io = precision == "int8" and io_type == "float32"
    if float_io:
        add("QUANTIZE", "input")
    frozen = bool(info.extra.get(FROZEN_KEY))
    aeq = info.extra.get(FROZEN_KEY) == TFLITE_FORMAT
    for layer in info.layers:
        # A frozen graph's layers are its TFLite operators already.
        for op in (layer.class_name,) if frozen else _layer_ops(layer, previous):
            if precision == "float16" and op in _WEIGHTED:
                # float16 kernels and biases are dequantized at load time (identical constant
                # buffers are shared, so the real count can be lower)
                add("DEQUANTIZE", layer.name, "float16 weights")
                add("DEQUANTIZE", layer.name, "float16 bias")
            note = f"custom layer {layer.class_name}" if op == UNKNOWN else ""
            float_island = precision == "int8" and (
                op in _FLOAT_ONLY_IN_INT8 or (aeq and op in _FLOAT_ONLY_IN_AEQ_INT8)
            )
            if float_island:
                add("DEQUANTIZE", layer.name, f"{op} has no int8 kernel")
            add(f"{UNKNOWN}:{layer.class_name}" if op == UNKNOWN else op, layer.name, note,
                float_island)  # fmt: skip
            if float_island:
                add("QUANTIZE", layer.name, f"{op} has no int8 kernel")
            previous = op
    if float_io:
        add("DEQUANTIZE", "output")
    return ops


def predict_coverage(
    info: ModelInfo, profile: HardwareProfile, precision: str, io_type: str = "float32"
) -> Coverage:
    """Coverage of ``info`` on ``profile`` before conversion, by ``coverage``'s rules."""
    layers = {layer.name: layer for layer in info.layers}

    def why_not(op: PredictedOp) -> str | None:
        if op.name.startswith(UNKNOWN):
            return f"{op.note}: its ops are known only after conversion"
        missing = not_in_op_list(op.name, profile)
        if missing:
            return missing
        if profile.requires_full_integer and precision != "int8":
            return f"{op.name} runs in {precision} ({profile.name} runs int8 only)"
        if profile.requires_full_integer and op.float_in_int8:
            return f"{op.name} stays float32: no int8 kernel ({profile.name} runs int8 only)"
        if op.layer in layers:
            return shape_problem(op.name, [layers[op.layer].output_shape], profile)
        return None

    ops = predict_ops(info, precision, io_type)
    return summarise([(op.index, op.name, why_not(op)) for op in ops], profile)
