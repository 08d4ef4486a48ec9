"""A float `.tflite` is read the way every quantizer here needs it: float16 weights
(DEQUANTIZE of float16 constants) widened to float32, and operator codes of pre-2.4 files
(kept only in ``deprecated_builtin_code``) copied to the field ai-edge-quantizer reads."""

from __future__ import annotations

import numpy as np
from conftest import build_tiny_cnn

from compressor.litert.flatbuffer_edit import model_bytes, read_model, with_builtin_codes
from compressor.litert.float16_weights import FLOAT16_DEQUANTIZE, widen_float16_weights
from compressor.litert.frozen_graph import load_frozen_graph
from compressor.litert.tflite_runtime import TFLiteModel, list_operators
from compressor.litert.tflite_signature import add_default_signature
from compressor.strategies.mixed_precision import Recipe

IMAGES = np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype(np.float32)


def _float16_tflite() -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(build_tiny_cnn())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _full_int8(model: bytes) -> bytes:
    return Recipe(add_default_signature(model) or model, IMAGES).build({"*": "int8"})


def _int8_weights_are_symmetric(model: bytes) -> None:
    flat = read_model(model)
    graph = flat.subgraphs[0]
    convs = [op for op in graph.operators if flat.operatorCodes[op.opcodeIndex].builtinCode == 3]
    assert convs
    for op in convs:
        weights = graph.tensors[op.inputs[1]].quantization
        assert weights is not None and not np.any(np.asarray(weights.zeroPoint))


def test_float16_weights_become_float32_constants_exactly(tmp_path):
    half = _float16_tflite()
    assert "DEQUANTIZE" in [op.name for op in list_operators(half)]
    widened, count = widen_float16_weights(half)
    assert count >= 3  # the conv kernels and biases
    assert "DEQUANTIZE" not in [op.name for op in list_operators(widened)]
    before, after = TFLiteModel(half).predict(IMAGES), TFLiteModel(widened).predict(IMAGES)
    assert np.max(np.abs(before - after)) < 1e-6
    path = tmp_path / "half.tflite"
    path.write_bytes(half)
    graph = load_frozen_graph(path)
    assert graph.rewritten_ops[FLOAT16_DEQUANTIZE] == count
    # ai-edge-quantizer now sees the weights: full int8 quantizes them per channel
    quantized = _full_int8(graph.tflite)
    _int8_weights_are_symmetric(quantized)
    assert TFLiteModel(quantized).predict(IMAGES).shape == before.shape


def _as_pre_2_4_file(model: bytes) -> bytes:
    """The file as TFLite < 2.4 wrote it: the operator only in deprecated_builtin_code."""
    flat = read_model(model)
    for code in flat.operatorCodes:
        code.deprecatedBuiltinCode = min(int(code.builtinCode), 127)
        code.builtinCode = 0
    return model_bytes(flat)


def test_a_pre_2_4_file_quantizes_with_real_conv_weights(tmp_path):
    from compressor.litert.conversion import convert_keras

    old = _as_pre_2_4_file(convert_keras(build_tiny_cnn(), "float32"))
    assert {int(c.builtinCode) for c in read_model(old).operatorCodes} == {0}
    fixed, count = with_builtin_codes(old)
    assert count == len(read_model(old).operatorCodes)
    assert with_builtin_codes(fixed) == (fixed, 0)
    path = tmp_path / "old.tflite"
    path.write_bytes(old)
    graph = load_frozen_graph(path)
    assert graph.rewritten_ops["operator codes in deprecated_builtin_code only"] == count
    quantized = _full_int8(graph.tflite)
    _int8_weights_are_symmetric(quantized)  # read as ADDs, the weights were activations
    TFLiteModel(quantized).predict(IMAGES)  # LiteRT refused the old result outright
