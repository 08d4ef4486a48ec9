"""GPU coverage against TensorFlow's own GPU compatibility analyzer."""

from __future__ import annotations

from compressor.litert.gpu_analyzer import gpu_verdict, parse_verdict
from compressor.litert.tflite_coverage import model_coverage
from compressor.litert.tflite_runtime import list_operators
from compressor.planning.coverage import not_in_op_list, op_coverage


def _reflect_pad_tflite() -> bytes:
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT"))(
        inputs
    )
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    model = keras.Model(inputs, x)
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def test_reflection_padding_is_gpu_delegated_as_the_analyzer_says(host):
    model = _reflect_pad_tflite()
    ops = list_operators(model)
    assert "MIRROR_PAD" in [op.name for op in ops]
    verdict = gpu_verdict(model)
    assert verdict.compatible and not verdict.flagged_ops
    coverage = model_coverage(model, host.profiles.resolve("pixel-gpu"))
    assert coverage.fraction == 1.0, coverage.fallback
    assert coverage.to_dict()["analyzer"]["compatible"] is True
    # EdgeTPU has no MIRROR_PAD: the graph is cut there (the rewrite is still to come).
    edgetpu = op_coverage(ops, host.profiles.resolve("edgetpu"))
    assert edgetpu.cut_at and "MIRROR_PAD" in edgetpu.cut_at


def test_ops_the_analyzer_flags_are_not_delegated(host):
    text = (
        "Subgraph#0 main(T#0) -> [T#2]\n"
        "GPU COMPATIBILITY WARNING: Not supported op CUMSUM\n\n"
        "GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at "
        "nodes 0, 1 with TFLite runtime version 2.21.0\n"
    )
    verdict = parse_verdict(text)
    assert not verdict.compatible and verdict.flagged_ops == [0, 1]


def test_analyzer_passes_a_flex_op_so_its_yes_is_not_proof(host):
    """Measured with TF 2.21: the analyzer calls a model with a Flex (TensorFlow) op GPU
    compatible, though no GPU delegate runs Flex ops. Our op list keeps it off the GPU;
    if a TensorFlow release fixes the analyzer, this test says so."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def cosh_plus(x):
        return tf.math.cosh(x) + 1.0

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [cosh_plus.get_concrete_function()], cosh_plus
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    model = converter.convert()
    assert gpu_verdict(model).compatible  # the analyzer's (wrong) yes
    assert not_in_op_list("FlexCosh", host.profiles.resolve("pixel-gpu"))
