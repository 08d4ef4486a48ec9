"""MediaPipe's ``Convolution2DTransposeBias`` custom op is rewritten to the builtin
TRANSPOSE_CONV with bias; LiteRT then runs the file and the outputs match."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from compressor.core.errors import ModelError
from compressor.litert.custom_op_rewrite import (
    TRANSPOSE_CONV_BIAS,
    custom_op_names,
    rewrite_custom_ops,
)
from compressor.litert.flatbuffer_edit import builtin_code, drop_unused_opcodes, schema_module
from compressor.litert.tflite_runtime import TFLiteModel, list_operators


def _upsampler_tflite(strides: int, padding: str) -> bytes:
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2DTranspose(3, 3, strides=strides, padding=padding, use_bias=True)(x)
    model = keras.Model(inputs, x)
    layer = model.layers[-1]
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.linspace(-1, 1, bias.size).astype(np.float32)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _zero_bias(model, subgraph, weights: int) -> int:
    schema = schema_module()
    channels = int(subgraph.tensors[weights].shape[0])
    buffer = schema.BufferT()
    buffer.data = np.zeros(channels * 4, np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.name, tensor.shape = b"zero_bias", [channels]
    tensor.type, tensor.buffer = schema.TensorType.FLOAT32, len(model.buffers) - 1
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def as_mediapipe_op(model_bytes: bytes) -> bytes:
    """The same model with each TRANSPOSE_CONV (+ bias) as MediaPipe writes it: custom op
    Convolution2DTransposeBias, inputs (input, weights, bias) as MediaPipe writes them,
    options the C struct."""
    from ai_edge_litert.tools import flatbuffer_utils

    schema = schema_module()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    tconv = {
        i
        for i, c in enumerate(model.operatorCodes)
        if builtin_code(c) == schema.BuiltinOperator.TRANSPOSE_CONV
    }
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = TRANSPOSE_CONV_BIAS.encode()
    code.version = 1
    model.operatorCodes.append(code)
    custom = len(model.operatorCodes) - 1
    padding = {schema.Padding.SAME: 1, schema.Padding.VALID: 2}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if op.opcodeIndex in tconv:
                if len(op.inputs) == 3:  # the converter kept the bias as an ADD
                    op.inputs = [*op.inputs, _zero_bias(model, subgraph, op.inputs[1])]
                _shape, weights, source, bias = op.inputs
                options = op.builtinOptions
                op.opcodeIndex = custom
                op.inputs = [source, weights, bias]
                op.customOptions = np.frombuffer(
                    struct.pack("<3i", padding[options.padding], options.strideW,
                                options.strideH), np.uint8)  # fmt: skip
                op.builtinOptionsType, op.builtinOptions = 0, None
    drop_unused_opcodes(model, tconv)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@pytest.mark.parametrize(("strides", "padding"), [(2, "same"), (2, "valid")])
def test_transpose_conv_bias_is_rewritten_exactly(strides, padding):
    original = _upsampler_tflite(strides, padding)
    assert "TRANSPOSE_CONV" in [op.name for op in list_operators(original)]
    mediapipe = as_mediapipe_op(original)
    assert custom_op_names(mediapipe) == [TRANSPOSE_CONV_BIAS]
    with pytest.raises(ModelError) as caught:
        # what LiteRT's builtin resolver says of the file as shipped (XNNPACK, when it
        # takes the op, hides it; ai-edge-quantizer and op listings have no XNNPACK)
        list_operators(mediapipe)
    assert TRANSPOSE_CONV_BIAS in caught.value.message and "rewrites" in caught.value.hint

    rewrite = rewrite_custom_ops(mediapipe)
    assert rewrite.rewritten == {TRANSPOSE_CONV_BIAS: 1}
    assert custom_op_names(rewrite.model) == []
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 4)).astype(np.float32)
    expected = TFLiteModel(original).predict(x)
    got = TFLiteModel(rewrite.model).predict(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert rewrite_custom_ops(original).model == original  # nothing to rewrite


def test_a_shipped_file_with_the_custom_op_loads_as_a_frozen_graph(tmp_path):
    from compressor.engine.job import load_model
    from compressor.engine.plugin_host import PluginHost

    path = tmp_path / "segmenter.tflite"
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same")(x)
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(x))
    path.write_bytes(as_mediapipe_op(tf.lite.TFLiteConverter.from_keras_model(model).convert()))
    loaded = load_model(path, PluginHost(load_entrypoints=False), None)
    assert loaded.origin["graph_rewrites"] == {TRANSPOSE_CONV_BIAS: 1}
    assert custom_op_names(loaded.model.tflite) == []
