"""Custom ops with an exact builtin equivalent, rewritten so LiteRT's builtin resolver
(and every delegate) runs the file.

``Convolution2DTransposeBias`` (MediaPipe's segmentation models) is a transposed conv
with its bias folded in: inputs ``(input, weights OHWI, bias)`` (the weights often the
output of a float16 ``DEQUANTIZE``, as in selfie_segmentation.tflite), custom options the raw
``TfLiteTransposeConvParams`` struct (int32 padding — 1 SAME, 2 VALID — then stride
width and stride height), output shape in the output tensor. TFLite's builtin
``TRANSPOSE_CONV`` takes the same weights and input plus an explicit output-shape
tensor and, from version 3, the bias: the same arithmetic, one op.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from compressor.core.errors import ModelError
from compressor.litert.flatbuffer_edit import (
    builtin_code,
    drop_unused_opcodes,
    int32_constant,
    model_bytes,
    opcode_index,
    read_model,
    schema_module,
)

TRANSPOSE_CONV_BIAS = "Convolution2DTransposeBias"
# custom ops this module rewrites (a hint names them when LiteRT meets another)
REWRITTEN_CUSTOM_OPS = (TRANSPOSE_CONV_BIAS,)
_TFLITE_PADDING = {1: "SAME", 2: "VALID"}  # TfLitePadding values in the C struct


@dataclass
class CustomOpRewrite:
    """The model after the rewrite and what it replaced (op name -> count)."""

    model: bytes
    rewritten: dict[str, int] = field(default_factory=dict)


def _custom_name(code) -> str:
    raw = code.customCode or b""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def custom_op_names(data: bytes) -> list[str]:
    """Names of the custom ops a ``.tflite`` declares."""
    model = read_model(data)
    custom = schema_module().BuiltinOperator.CUSTOM
    return [_custom_name(c) for c in model.operatorCodes if builtin_code(c) == custom]


def rewrite_custom_ops(data: bytes, source: str = "model") -> CustomOpRewrite:
    """Replace every ``Convolution2DTransposeBias`` by a builtin ``TRANSPOSE_CONV`` with
    bias; other models come back unchanged."""
    schema = schema_module()
    model = read_model(data)
    codes = {
        index
        for index, code in enumerate(model.operatorCodes)
        if builtin_code(code) == schema.BuiltinOperator.CUSTOM
        and _custom_name(code) == TRANSPOSE_CONV_BIAS
    }
    if not codes:
        return CustomOpRewrite(data)
    transpose_conv = opcode_index(model, schema.BuiltinOperator.TRANSPOSE_CONV, version=3)
    count = 0
    for subgraph in model.subgraphs:
        for number, op in enumerate(subgraph.operators):
            if op.opcodeIndex not in codes:
                continue
            options = bytes(op.customOptions if op.customOptions is not None else b"")
            if len(op.inputs) != 3 or len(options) < 12:
                raise ModelError(
                    f"{source}: op {number} ({TRANSPOSE_CONV_BIAS}) has {len(op.inputs)} "
                    f"inputs and {len(options)} option bytes; expected 3 and 12",
                    "the file is not MediaPipe's Convolution2DTransposeBias layout",
                )
            padding, stride_w, stride_h = struct.unpack("<3i", options[:12])
            if padding not in _TFLITE_PADDING:
                raise ModelError(
                    f"{source}: op {number} ({TRANSPOSE_CONV_BIAS}): padding {padding}"
                )
            source_input, weights, bias = op.inputs
            output_shape = list(subgraph.tensors[op.outputs[0]].shape)
            shape = int32_constant(
                model, subgraph, f"{TRANSPOSE_CONV_BIAS}_{number}/shape", output_shape
            )
            converted = schema.TransposeConvOptionsT()
            converted.padding = getattr(schema.Padding, _TFLITE_PADDING[padding])
            converted.strideW, converted.strideH = stride_w, stride_h
            op.opcodeIndex = transpose_conv
            op.inputs = [shape, weights, source_input, bias]
            op.builtinOptionsType = schema.BuiltinOptions.TransposeConvOptions
            op.builtinOptions = converted
            op.customOptions = None
            count += 1
    drop_unused_opcodes(model, codes)
    return CustomOpRewrite(model_bytes(model), {TRANSPOSE_CONV_BIAS: count})
