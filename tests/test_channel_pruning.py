"""Structured channel pruning: fewer filters, fewer MACs, outputs recovered by fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest

from compressor.core.artifact import Artifact
from compressor.core.channels import GROUPS_KEY, find_channel_groups, prune_channels
from compressor.core.model_info import model_info_from_keras
from compressor.models.default import default_model_info
from compressor.models.generator import GeneratorConfig, build_generator
from compressor.planning.channel_scaling import scale_info
from compressor.planning.planner import plan_pipeline
from tests.conftest import build_tiny_cnn, make_context


@pytest.mark.parametrize("depthwise", [False, True])
def test_pruned_generator_matches_the_analytic_prediction(depthwise):
    config = GeneratorConfig(
        width=0.5, residual_blocks=2, norm="batch", depthwise=depthwise, input_size=32
    )
    model = build_generator(config)
    info = model_info_from_keras(model)
    smaller, sizes = prune_channels(model, keep=0.5)
    real = model_info_from_keras(smaller)
    predicted = scale_info(info, 0.5)
    assert real.macs < 0.6 * info.macs and real.params < info.params
    assert predicted.macs == real.macs  # exact; params differ only by conv biases
    assert predicted.params == pytest.approx(real.params, rel=0.01)
    assert sizes["enc1_conv"] == (16, 8)
    assert smaller.output_shape == model.output_shape
    residual_trunk = smaller.get_layer("enc3_conv").filters
    assert residual_trunk == model.get_layer("enc3_conv").filters  # tied to the adds


def test_a_loaded_instance_norm_model_prunes(tmp_path):
    """Regression: a saved model records each layer's build shape; a stale one made
    instance norm keep its old channel count and the rebuild fail."""
    import tf_keras as keras

    path = tmp_path / "gen.keras"
    build_generator(GeneratorConfig(width=0.25, residual_blocks=1, input_size=32)).save(path)
    loaded = keras.models.load_model(path)
    smaller, sizes = prune_channels(loaded, keep=0.5)
    assert sizes["enc1_conv"] == (8, 4)
    assert smaller.get_layer("enc1_norm").get_weights()[0].shape == (4,)
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    assert smaller.predict(images, verbose=0).shape == (2, 32, 32, 3)


def test_groups_stop_at_adds_outputs_and_branches():
    import tf_keras as keras

    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    a = keras.layers.ReLU(name="a_relu")(a)
    b = keras.layers.Conv2D(8, 3, padding="same", name="b")(a)  # feeds an add
    c = keras.layers.Conv2D(8, 1, name="c")(inputs)  # feeds the same add
    added = keras.layers.Add(name="add")([b, c])
    d = keras.layers.Conv2D(8, 3, padding="same", name="d")(added)  # two consumers
    e = keras.layers.Conv2D(8, 1, name="e")(d)
    f = keras.layers.Conv2D(8, 1, name="f")(d)
    out = keras.layers.Conv2D(3, 1, name="out")(keras.layers.Concatenate()([e, f]))
    groups = find_channel_groups(keras.Model(inputs, out))
    assert groups == [{"producer": "a", "between": ["a_relu"], "consumer": "b"}]
    cnn = build_tiny_cnn()
    convs = [layer.name for layer in cnn.layers if layer.__class__.__name__ == "Conv2D"]
    info = model_info_from_keras(cnn)
    # conv -> BN -> ReLU -> depthwise -> BN -> ReLU -> conv, then conv -> ... -> conv
    assert [g["producer"] for g in info.extra[GROUPS_KEY]] == convs[:2]


def test_channel_prune_strategy_shrinks_macs_and_fine_tuning_recovers_outputs(
    host, tmp_path, images_dir
):
    model = build_generator(
        GeneratorConfig(width=0.25, residual_blocks=1, norm="batch", input_size=32), seed=0
    )
    context = make_context(tmp_path, model, images_dir, "x86-cpu")
    strategy = host.strategies.get("prune-channels")
    reference = context.float_outputs("evaluation").first

    untuned = strategy.apply(
        Artifact(keras_model=model), context, strategy.Config(keep=0.5, fine_tune_steps=0)
    ).keras_model
    context.model_info = model_info_from_keras(model)
    tuned_artifact = strategy.apply(
        Artifact(keras_model=model),
        context,
        strategy.Config(keep=0.5, fine_tune_steps=60, learning_rate=3e-3),
    )
    tuned = tuned_artifact.keras_model
    assert tuned_artifact.facts["macs_after"] < 0.6 * tuned_artifact.facts["macs_before"]

    def error(m):
        return float(np.mean((m.predict(context.images.evaluation, verbose=0) - reference) ** 2))

    assert error(tuned) < 0.5 * error(untuned)


def test_planner_knows_channel_pruning_cuts_latency_and_sparsity_only_gzip(host):
    info = default_model_info()
    assert info.extra[GROUPS_KEY]
    result = plan_pipeline(host.profiles.resolve("pixel-gpu"), info, host.strategies)

    def candidate(label: str):
        return next(c for c in result.ranked if c.label == label)

    plain = candidate("tflite-float16")
    channels = candidate("prune-channels(0.5,4) -> tflite-float16")
    sparse = candidate("magnitude-prune(0.5) -> tflite-float16")
    assert channels.latency_ms < 0.7 * plain.latency_ms  # fewer MACs: faster on the GPU
    assert "fewer MACs" in channels.step("prune").estimate.note
    assert sparse.latency_ms == plain.latency_ms  # zeros: same latency
    assert sparse.gzip_bytes < 0.7 * plain.gzip_bytes  # but a smaller download
