"""The space-to-depth conv rewrite: exact on any stride-1 'same' odd conv, picked by the
profile's channel tiles, converted and run by LiteRT, saved and loaded by name; instance
norms after the rewritten convs computed on blocks, kept on blocks into the next
space-to-depth conv where the graph allows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from compressor.core.artifact import Artifact
from compressor.core.block_conv_weights import block_weights, upsampled_weights
from compressor.core.errors import StageError
from compressor.layers.block_conv_layers import (
    BlockInstanceNormalization,
    SpaceToDepthConv2D,
    SubPixelConv2D,
)
from compressor.models.default import demo_config
from compressor.models.generator_spec import generator_info
from compressor.planning.cost_model import estimate_latency_ms, tile_padded_macs
from compressor.strategies.space_to_depth import (
    BlockNormChain,
    SpaceToDepth,
    block_norm_chains,
    gainful_layers,
    rewrite_model,
    upsampled_convs,
)
from tests.conftest import build_tiny_cnn, make_context


@pytest.mark.parametrize("kernel", [(3, 3), (5, 5), (7, 7), (9, 9), (9, 5), (1, 7)])
def test_block_conv_equals_the_conv_it_came_from(kernel):
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(3, kernel, padding="same", activation="relu")
    x = np.random.default_rng(0).normal(size=(2, 12, 10, 5)).astype(np.float32)
    want = conv(x).numpy()
    weights = block_weights(*conv.get_weights())
    block = SpaceToDepthConv2D(3, weights[0].shape[:2], activation="relu")
    block.build(x.shape)
    block.set_weights(list(weights))
    assert weights[0].shape[2:] == (20, 12)  # 2x2 blocks: 4x the channels each way
    np.testing.assert_allclose(block(x).numpy(), want, atol=1e-5)


@pytest.mark.parametrize("kernel", [(3, 3), (5, 5), (1, 1), (3, 5)])
def test_sub_pixel_conv_equals_upsample_then_conv(kernel):
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(4, kernel, padding="same", activation="relu")
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 5)).astype(np.float32)
    want = conv(keras.layers.UpSampling2D(2)(x)).numpy()
    weights = upsampled_weights(*conv.get_weights())
    sub_pixel = SubPixelConv2D(4, weights[0].shape[:2], activation="relu")
    sub_pixel.build(x.shape)
    sub_pixel.set_weights(list(weights))
    assert weights[0].shape[2:] == (5, 16)  # at the input's size, 4 phases of outputs
    np.testing.assert_allclose(sub_pixel(x).numpy(), want, atol=1e-5)


@pytest.mark.parametrize("writes_blocks", [False, True])
def test_block_norm_equals_the_instance_norm_in_space(writes_blocks):
    import tensorflow as tf

    from compressor.layers.instance_norm import InstanceNormalization

    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(2, 12, 10, 5)).astype(np.float32)
    norm = InstanceNormalization(epsilon=1e-3)
    norm.build(x.shape)
    norm.set_weights([rng.normal(size=5).astype(np.float32) for _ in range(2)])
    want = norm(x).numpy()
    blocks = tf.nn.space_to_depth(x, 2)
    on_blocks = BlockInstanceNormalization(1e-3, writes_blocks=writes_blocks)
    on_blocks.build(blocks.shape)
    on_blocks.set_weights(norm.get_weights())  # the same C-channel gamma and beta
    got = on_blocks(blocks).numpy()
    assert got.shape == ((2, 6, 5, 20) if writes_blocks else x.shape)
    got = got if not writes_blocks else tf.nn.depth_to_space(got, 2).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the statistics are the whole channel's: a plain norm over the 4C block channels
    # (each phase on its own) gives another function
    per_phase = InstanceNormalization(epsilon=1e-3)
    per_phase.build(blocks.shape)
    per_phase.set_weights([np.tile(w, 4) for w in norm.get_weights()])
    wrong = tf.nn.depth_to_space(per_phase(blocks), 2).numpy()
    assert np.abs(wrong - want).max() > 1e-2


def _user_model(size: int = 32, with_lambda: bool = True):
    """Not one of ours: a Lambda, instance norms, 9x9 convs at full size (to 8 and to 3
    channels), a nearest upsample before a conv, a norm and LeakyReLU between it and the
    last 9x9 conv."""
    import tf_keras as keras

    from compressor.layers.instance_norm import InstanceNormalization

    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3))
    x = inputs
    if with_lambda:
        x = keras.layers.Lambda(lambda t: t * 2.0 - 1.0, name="scale")(x)
    x = keras.layers.Conv2D(8, 9, padding="same", name="wide_in")(x)
    x = InstanceNormalization(name="norm")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="down")(x)
    x = keras.layers.UpSampling2D(2, name="up")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="middle")(x)
    x = InstanceNormalization(name="norm2")(x)
    x = keras.layers.LeakyReLU(0.2, name="leaky")(x)
    x = keras.layers.Conv2D(3, 9, padding="same", activation="sigmoid", name="wide_out")(x)
    return keras.Model(inputs, x, name="user_net")


def test_rewrite_keeps_a_users_model_exact_in_keras_and_litert(tmp_path):
    from compressor.core.model_info import model_info_from_keras
    from compressor.ingest.keras_io import load_keras_model
    from compressor.litert.conversion import convert_keras
    from compressor.litert.tflite_runtime import TFLiteModel, list_operators

    model = _user_model()
    blocks, pairs = {"wide_in", "wide_out"}, {"middle": "up"}
    chains = block_norm_chains(model_info_from_keras(model), blocks, set(pairs))
    assert chains == [
        BlockNormChain("wide_in", "norm"),  # the strided conv after it reads space
        BlockNormChain("middle", "norm2", ("leaky",), "wide_out"),
    ]
    rewritten = rewrite_model(model, blocks, pairs, chains)
    images = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    want = model.predict(images, verbose=0)
    np.testing.assert_allclose(rewritten.predict(images, verbose=0), want, atol=1e-5)

    tflite = convert_keras(rewritten, "float32")
    ops = [op.name for op in list_operators(tflite)]
    assert {"SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "CONV_2D"} <= set(ops)
    assert "RESIZE_NEAREST_NEIGHBOR" not in ops  # the upsample went into the conv
    # wide_out reads norm2's blocks: only wide_in's input goes through SPACE_TO_DEPTH
    assert ops.count("SPACE_TO_DEPTH") == 1
    np.testing.assert_allclose(TFLiteModel(tflite).predict(images), want, atol=1e-4)

    # saved and loaded by name (a Lambda with a Python lambda never loads safely: none here)
    model = _user_model(with_lambda=False)
    want = model.predict(images, verbose=0)
    path = tmp_path / "rewritten.keras"
    rewrite_model(model, blocks, pairs, chains).save(path)
    from compressor.layers.instance_norm import InstanceNormalization

    loaded = load_keras_model(
        path,
        {
            "SpaceToDepthConv2D": SpaceToDepthConv2D,
            "SubPixelConv2D": SubPixelConv2D,
            "BlockInstanceNormalization": BlockInstanceNormalization,
            "InstanceNormalization": InstanceNormalization,
        },
    )
    np.testing.assert_allclose(loaded.predict(images, verbose=0), want, atol=1e-5)


def test_tiles_pick_the_narrow_wide_kernel_convs_of_the_generator(host):
    tiles = host.profiles.resolve("x86-cpu").conv_tiles
    info = generator_info(demo_config(256))
    layers = {layer.name: layer for layer in info.layers}
    out = layers["out_conv"]  # 9x9, 16 -> 3 channels: the 3 outputs fill a 16-wide tile
    assert tile_padded_macs(out, tiles) == pytest.approx(out.macs * 16 / 3)
    # the 3x3 convs never gain (4x the MACs on blocks); enc1 (3 -> 16) gains too little
    assert set(gainful_layers(info, tiles)) == {"out_conv"}
    assert gainful_layers(info, tiles)["out_conv"] > 3


def test_planner_offers_the_rewrite_where_tiles_are_stated_and_predicts_it_faster(host):
    strategy = SpaceToDepth()
    info = generator_info(replace(demo_config(256), width=0.25))
    x86, gpu = host.profiles.resolve("x86-cpu"), host.profiles.resolve("pixel-gpu")
    from compressor.core.strategy import PipelineView

    assert strategy.supports(x86, info, PipelineView()).ok
    assert not strategy.supports(gpu, info, PipelineView()).ok  # no tiles stated
    params = strategy.candidate_params(x86, info)[0]
    rewritten = strategy.rewrite_info(info, params)
    classes = {layer.name: layer.class_name for layer in rewritten.layers}
    assert classes["enc1_conv"] == classes["out_conv"] == "SpaceToDepthConv2D"
    assert classes["dec1_conv"] == classes["dec2_conv"] == "SubPixelConv2D"
    assert classes["up1"] == classes["up2"] == "Activation"
    assert estimate_latency_ms(x86, rewritten, "float32") < estimate_latency_ms(
        x86, info, "float32"
    )
    # the block convs' ops are known: the rewrite is predicted to run wholly on XNNPACK
    from compressor.planning.op_prediction import predict_ops

    ops = [op.name for op in predict_ops(rewritten, "float32")]
    assert {"SPACE_TO_DEPTH", "DEPTH_TO_SPACE"} <= set(ops)
    assert not any(op.startswith("UNKNOWN") for op in ops), ops
    assert "RESIZE_NEAREST_NEIGHBOR" not in ops


def test_strategy_rewrites_checks_and_refuses_convs_it_cannot_rewrite(host, tmp_path, images_dir):
    model = _user_model()
    context = make_context(tmp_path, model, images_dir)
    strategy = host.strategies.get("space-to-depth")
    out = strategy.apply(Artifact(keras_model=model), context, strategy.Config())
    # both 9x9 convs fill a tile of 16 outputs badly (8 and 3 channels); "middle" is 3x3
    assert out.facts["space_to_depth_layers"] == ["wide_in", "wide_out"]
    assert out.facts["sub_pixel_layers"] == ["middle"]
    assert out.facts["block_norm_layers"] == ["norm", "norm2"]
    classes = {layer.name: layer.class_name for layer in context.model_info.layers}
    assert classes["wide_out"] == "SpaceToDepthConv2D" and classes["middle"] == "SubPixelConv2D"
    layers = {layer.name: layer for layer in context.model_info.layers}
    assert layers["wide_out"].reads_blocks and layers["norm2"].writes_blocks
    assert not layers["norm"].writes_blocks  # the strided conv after it reads space

    strided = build_tiny_cnn()  # conv2d_1 has stride 2
    context = make_context(tmp_path, strided, images_dir)
    with pytest.raises(StageError, match="layers.conv2d_1 is not a stride-1 'same' Conv2D"):
        strategy.apply(Artifact(keras_model=strided), context, strategy.Config(layers=["conv2d_1"]))


def test_predicted_rewrite_matches_the_rewritten_keras_model(host):
    from compressor.core.model_info import model_info_from_keras
    from compressor.models.generator import build_generator

    config = replace(demo_config(32), width=0.25, residual_blocks=1)
    info = generator_info(config)
    strategy = SpaceToDepth()
    params = strategy.candidate_params(host.profiles.resolve("x86-cpu"), info)[0]
    predicted = strategy.rewrite_info(info, params)
    names = set(strategy.chosen_convs(info, strategy.Config.model_validate(params), None))
    pairs = upsampled_convs(info)
    chains = strategy.chains_of(info, strategy.Config.model_validate(params), names, pairs)
    generator = build_generator(config)
    rng = np.random.default_rng(0)
    for layer in generator.layers:  # trained norms: the converter folds gamma 1, beta 0 away
        if layer.__class__.__name__ == "InstanceNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    rewritten = rewrite_model(generator, names, pairs, chains)
    real = model_info_from_keras(rewritten)

    def convs(model_info):
        return [
            (c.name, c.class_name, c.macs, c.kernel, c.in_channels, c.out_channels)
            for c in model_info.layers
            if c.kind == "conv"
        ]

    assert convs(predicted) == convs(real)
    assert predicted.macs == real.macs

    # norms on blocks: same layers, same block layouts, the converter's ops as predicted
    def layouts(model_info):
        return [
            (c.name, c.class_name, c.output_shape, c.reads_blocks, c.writes_blocks)
            for c in model_info.layers
        ]

    assert layouts(predicted) == layouts(real)
    assert "BlockInstanceNormalization" in {c.class_name for c in real.layers}
    from collections import Counter

    from compressor.litert.conversion import convert_keras
    from compressor.litert.tflite_runtime import list_operators
    from compressor.planning.op_prediction import predict_ops

    tflite = convert_keras(rewritten, "float32")
    assert Counter(op.name for op in predict_ops(predicted, "float32")) == Counter(
        op.name for op in list_operators(tflite)
    )


def test_norm_whose_output_is_shared_goes_back_to_space(host, tmp_path, images_dir):
    """A tail the graph does not allow (the activation also feeds a concat) ends the
    chain at the norm: the norm still runs on blocks, the reader reads space."""
    import tf_keras as keras

    from compressor.layers.instance_norm import InstanceNormalization

    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 9, padding="same", name="wide_in")(inputs)
    x = InstanceNormalization(name="norm")(x)
    x = keras.layers.ReLU(name="relu")(x)
    y = keras.layers.Conv2D(3, 9, padding="same", name="wide_out")(x)
    model = keras.Model(inputs, keras.layers.Concatenate()([x, y]))
    context = make_context(tmp_path, model, images_dir)
    strategy = host.strategies.get("space-to-depth")
    out = strategy.apply(Artifact(keras_model=model), context, strategy.Config())
    assert out.facts["block_norm_layers"] == ["norm"]
    layers = {layer.name: layer for layer in context.model_info.layers}
    assert not layers["norm"].writes_blocks and not layers["wide_out"].reads_blocks
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(
        out.keras_model.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5
    )
    off = strategy.apply(Artifact(keras_model=model), context, strategy.Config(block_norms=False))
    assert off.facts["block_norm_layers"] == []


def test_narrow_norms_cost_whole_vectors_and_blocks_fill_them(host):
    from compressor.core.model_info import LayerInfo
    from compressor.core.profiles import ConvTiles
    from compressor.models.generator_spec import cut_config
    from compressor.planning.cost_model import tile_padded_norm_elements

    tiles = ConvTiles(input=4, output=16)

    def norm(channels: int, class_name: str = "InstanceNormalization") -> LayerInfo:
        shape = [None, 64, 64, channels]
        return LayerInfo("n", class_name, "instance_norm", 2 * channels, 0, 4096 * channels, shape)

    assert tile_padded_norm_elements(norm(8), tiles) == 2 * 4096 * 8  # half the lanes idle
    assert tile_padded_norm_elements(norm(16), tiles) == 4096 * 16
    assert tile_padded_norm_elements(norm(8), None) == 4096 * 8  # no tiles stated
    on_blocks = norm(8, "BlockInstanceNormalization")  # computed on 32 channels
    assert tile_padded_norm_elements(on_blocks, tiles) == 4096 * 8

    # the shipped real-time student: its 8-channel norms on blocks are predicted faster
    x86 = host.profiles.resolve("x86-cpu")
    info = generator_info(cut_config(demo_config(256), 0.5, 2, 9, 1.0))
    strategy = SpaceToDepth()
    params = strategy.candidate_params(x86, info)[0]
    with_norms = strategy.rewrite_info(info, params)
    without = strategy.rewrite_info(info, {**params, "block_norms": False})
    assert estimate_latency_ms(x86, with_norms, "float32") < estimate_latency_ms(
        x86, without, "float32"
    )
