"""Delegate op coverage read from real converted models."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from compressor.core.artifact import Artifact
from compressor.core.fidelity import psnr_db
from compressor.core.model_info import model_info_from_keras
from compressor.litert.tflite_runtime import list_operators
from compressor.models.default import default_model_info
from compressor.planning.coverage import op_coverage
from compressor.planning.op_prediction import predict_coverage, predict_ops
from compressor.planning.planner import plan_pipeline
from tests.conftest import build_tiny_classifier, build_tiny_cnn, build_tiny_generator, make_context


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
    predicted = predict_coverage(model_info_from_keras(model), context.profile, "int8", "int8")
    assert predicted.cut_at == coverage.cut_at  # same op, same index, before converting


def _elu_model():
    import tf_keras as keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.Activation("elu")(x)
    outputs = keras.layers.Conv2D(3, 3, padding="same")(x)
    return keras.Model(inputs, outputs, name="elu_cnn")


@pytest.mark.parametrize(
    "build",
    [build_tiny_cnn, build_tiny_classifier, build_tiny_generator, _elu_model],
    ids=["bn-cnn", "classifier", "in-generator", "elu"],
)
def test_predicted_ops_match_the_converted_model(host, tmp_path, images_dir, build):
    model = build()
    rng = np.random.default_rng(0)
    for layer in model.layers:  # trained norms: the converter folds gamma 1, beta 0 away
        if layer.__class__.__name__ == "InstanceNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    info = model_info_from_keras(model)
    context = make_context(tmp_path, model, images_dir, "x86-cpu")
    for strategy, precision in (
        ("tflite-float32", "float32"),
        ("tflite-float16", "float16"),
        ("tflite-full-int8", "int8"),
    ):
        converted = _convert(host, context, model, strategy)
        actual = Counter(op.name for op in list_operators(converted))
        io = "int8" if precision == "int8" else "float32"  # x86-cpu: io_type=auto is int8
        predicted = Counter(op.name for op in predict_ops(info, precision, io))
        # float16 DEQUANTIZE ops are deduplicated for identical constants: compare as a set
        assert set(actual) == set(predicted), (strategy, actual, predicted)
        actual.pop("DEQUANTIZE", None), predicted.pop("DEQUANTIZE", None)
        assert actual == predicted, (strategy, actual, predicted)


def test_edgetpu_tensor_rank_limit_is_checked_before_and_after_conversion(
    host, tmp_path, images_dir
):
    import tf_keras as keras

    tpu = host.profiles.resolve("edgetpu")
    # a dynamic batch converts like batch 1 (traced at batch 1: no SHAPE arithmetic left)
    for batch, cut, reason in ((1, "0:RESHAPE", "4 non-unit dims"), (None, "0:RESHAPE", "4 non")):
        inputs = keras.Input((8, 8, 4), batch_size=batch)
        x = keras.layers.Reshape((2, 4, 8, 4))(inputs)  # 4 non-unit dims: EdgeTPU takes 3
        x = keras.layers.Permute((2, 1, 3, 4))(x)
        outputs = keras.layers.Reshape((8, 8, 4))(x)
        model = keras.Model(inputs, outputs)
        predicted = predict_coverage(model_info_from_keras(model), tpu, "int8", "int8")
        context = make_context(tmp_path / str(batch), model, images_dir, "edgetpu")
        ops = list_operators(_convert(host, context, model, "tflite-full-int8"))
        actual = op_coverage(ops, tpu)
        assert predicted.cut_at == actual.cut_at == cut
        assert reason in predicted.fallback[0] and reason in actual.fallback[0]


def test_gpu_plan_for_the_default_generator_is_fully_delegated(host):
    result = plan_pipeline(
        host.profiles.resolve("pixel-gpu"), default_model_info(), host.strategies
    )
    assert result.chosen.coverage.fraction == 1.0 and result.chosen.coverage.cut_at is None
    tpu = plan_pipeline(host.profiles.resolve("edgetpu"), default_model_info(), host.strategies)
    assert tpu.chosen.precision == "int8" and tpu.chosen.coverage.fraction == 1.0
    assert tpu.baseline.coverage.cut_at == "0:CONV_2D"  # float32 never runs on the EdgeTPU


def test_float_model_is_not_covered_on_integer_target_but_is_on_gpu(host, tmp_path, images_dir):
    model = build_tiny_generator("instance")
    context = make_context(tmp_path, model, images_dir, "pixel-gpu")
    ops = list_operators(_convert(host, context, model, "tflite-float16"))
    assert op_coverage(ops, context.profile).fraction == 1.0
    tpu = host.profiles.resolve("edgetpu")
    coverage = op_coverage(ops, tpu)
    assert coverage.cut_at is not None and "int8 only" in coverage.fallback[0]


def test_plan_rewrites_an_unsupported_activation_and_the_result_is_fully_delegated(
    host, tmp_path, images_dir
):
    model = _elu_model()
    tpu = host.profiles.resolve("edgetpu")
    result = plan_pipeline(tpu, model_info_from_keras(model), host.strategies)
    swap = result.chosen.step("distill")
    assert swap.strategy.name == "activation-swap" and swap.params == {"swaps": {"elu": "relu"}}
    assert result.chosen.coverage.fraction == 1.0

    context = make_context(tmp_path, model, images_dir, "edgetpu")
    config = swap.strategy.Config(fine_tune_steps=40, batch_size=4, learning_rate=1e-3)
    swapped = swap.strategy.apply(Artifact(keras_model=model), context, config)
    assert swapped.facts["swapped_layers"] == [model.layers[2].name]
    # the fine-tune recovers fidelity on held-out images vs the bare swap
    bare = swap.strategy.apply(
        Artifact(keras_model=model),
        context,
        config.model_copy(update={"fine_tune_steps": 0, "swaps": {"elu": "relu"}}),
    )
    held_out, reference = context.images.evaluation, context.float_outputs("evaluation").first
    tuned_psnr = psnr_db(reference, swapped.keras_model.predict(held_out, verbose=0))
    bare_psnr = psnr_db(reference, bare.keras_model.predict(held_out, verbose=0))
    assert tuned_psnr > bare_psnr + 1.0, (tuned_psnr, bare_psnr)
    ops = list_operators(_convert(host, context, swapped.keras_model, "tflite-full-int8"))
    assert "ELU" not in {op.name for op in ops}
    assert op_coverage(ops, tpu).fraction == 1.0


def test_an_op_version_the_edgetpu_compiler_cannot_parse_refuses_the_whole_model(
    host, tmp_path, images_dir
):
    from ai_edge_litert.tools import flatbuffer_utils

    from compressor.litert.tflite_coverage import model_coverage

    model = build_tiny_cnn()
    context = make_context(tmp_path, model, images_dir, "edgetpu")
    converted = _convert(host, context, model, "tflite-full-int8")
    tpu = host.profiles.resolve("edgetpu")
    assert model_coverage(converted, tpu).refused is None
    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(converted))
    for index, code in enumerate(flat.operatorCodes):
        if flatbuffer_utils.opcode_to_name(flat, index) == "CONV_2D":
            code.version = 6  # what TF 2.9's converter wrote (google-coral/edgetpu#631)
    bumped = bytes(flatbuffer_utils.convert_object_to_bytearray(flat))
    coverage = model_coverage(bumped, tpu)
    assert coverage.delegated_ops == 0 and "version 6" in coverage.refused
    assert "parses up to 5" in coverage.refused
    assert model_coverage(bumped, host.profiles.resolve("pixel-cpu")).refused is None


def test_a_run_whose_result_the_edgetpu_compiler_refuses_says_so(host, tmp_path, images_dir):
    import tf_keras as keras

    from compressor.engine.job import SearchOptions, run_job

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    # int8 TRANSPOSE_CONV with a bias and a fused ReLU is written as version 4 by TF 2.21
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(3, 1)(x)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:  # trained biases are not zero (zero ones are dropped)
        if layer.weights:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.full_like(bias, 0.1)])
    path = tmp_path / "upsampler.keras"
    model.save(path)
    _, report = run_job(host, "edgetpu", None, path, images_dir, tmp_path / "run",
                        options=SearchOptions(search=False))  # fmt: skip
    coverage = report["result"]["op_coverage"]
    assert coverage["delegated_ops"] == 0 and "TRANSPOSE_CONV is version 4" in coverage["refused"]
    assert any("cannot run on edgetpu" in w for w in report["warnings"])
