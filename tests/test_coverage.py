"""Delegate op coverage read from real converted models."""

from __future__ import annotations

from compressor.core.artifact import Artifact
from compressor.core.coverage import op_coverage
from compressor.core.tflite_runtime import list_operators
from tests.conftest import build_tiny_cnn, build_tiny_generator, make_context


def _convert(host, context, model, strategy_name):
    strategy = host.strategies.get(strategy_name)
    return strategy.apply(Artifact(keras_model=model), context, strategy.Config()).tflite_bytes


def test_full_int8_cnn_is_fully_covered_on_edgetpu(host, tmp_path, images_dir):
    model = build_tiny_cnn()
    context = make_context(tmp_path, model, images_dir, "edgetpu")
    ops = list_operators(_convert(host, context, model, "tflite-full-int8"))
    coverage = op_coverage(ops, context.profile)
    assert coverage.fraction == 1.0 and coverage.cut_at is None


def test_unsupported_op_cuts_the_edgetpu_graph(host, tmp_path, images_dir):
    import tf_keras as keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.Activation("elu")(x)  # ELU is not an EdgeTPU op
    outputs = keras.layers.Conv2D(3, 3, padding="same")(x)
    model = keras.Model(inputs, outputs)
    context = make_context(tmp_path, model, images_dir, "edgetpu")
    ops = list_operators(_convert(host, context, model, "tflite-full-int8"))
    coverage = op_coverage(ops, context.profile)
    elu = next(op for op in ops if op.name == "ELU")
    assert coverage.cut_at == f"{elu.index}:ELU"
    assert coverage.delegated_ops == elu.index < coverage.total_ops
    assert any("ELU is not in edgetpu's op list" in f for f in coverage.fallback)


def test_float_model_is_not_covered_on_integer_target_but_is_on_gpu(host, tmp_path, images_dir):
    model = build_tiny_generator("instance")
    context = make_context(tmp_path, model, images_dir, "pixel-gpu")
    ops = list_operators(_convert(host, context, model, "tflite-float16"))
    assert op_coverage(ops, context.profile).fraction == 1.0
    tpu = host.profiles.resolve("edgetpu")
    coverage = op_coverage(ops, tpu)
    assert coverage.cut_at is not None and "int8 only" in coverage.fallback[0]
