"""The VGG19 loss network: ImageNet weights (Keras cache or a local file) or a seeded
random network for offline use. Which one was used is always recorded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.errors import CompressorError

CONTENT_LAYER = "block4_conv2"
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
SHALLOW_BLOCKS = ("block1", "block2")
# Caffe-style VGG preprocessing: BGR order, ImageNet channel means, 0–255 range.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
KERAS_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
OFFLINE_ENV = "COMPRESSOR_OFFLINE"


class LossNetworkError(CompressorError):
    """The requested loss-network weights cannot be had."""


@dataclass
class LossNetwork:
    """VGG19 features for perceptual losses; ``weights`` says where they came from."""

    model: Any  # Keras model: image in [0, 1] -> {layer name: features}
    vgg: Any  # the underlying VGG19 (for freezing/unfreezing blocks)
    weights: str  # "imagenet (…)", "file …" or "random (seed N, He-normal)"

    @property
    def is_random(self) -> bool:
        """True when the loss network has no trained weights."""
        return self.weights.startswith("random")

    def set_trainable_blocks(self, blocks: tuple[str, ...]) -> None:
        """Freeze all VGG layers except those of ``blocks`` (e.g. block1, block2)."""
        self.vgg.trainable = True
        for layer in self.vgg.layers:
            layer.trainable = layer.name.split("_")[0] in blocks

    def shallow_variables(self) -> list[Any]:
        """Trainable VGG variables (after ``set_trainable_blocks``)."""
        return list(self.vgg.trainable_variables)


def keras_cache_path() -> Path:
    """Where Keras keeps downloaded application weights."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "models" / KERAS_WEIGHTS_FILE


def preprocess_for_vgg(images: Any) -> Any:
    """[0, 1] RGB images -> VGG19's caffe input (BGR, 0–255, mean subtracted)."""
    import tensorflow as tf

    bgr = tf.reverse(images, axis=[-1]) * 255.0
    return bgr - tf.constant(IMAGENET_BGR_MEAN, dtype=bgr.dtype)


def _he_initialise(model: Any, seed: int) -> None:
    """He-normal conv kernels, zero biases: keeps ReLU activations at a steady scale
    through all 16 layers (Keras' default Glorot init shrinks them ~2x per layer, which
    leaves block4/5 features near zero and the content loss without a usable gradient;
    He et al. 2016, "A Powerful Generative Model Using Random Weights")."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ != "Conv2D":
            continue
        kernel, bias = layer.get_weights()
        fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
        scale = np.sqrt(2.0 / fan_in)
        layer.set_weights(
            [rng.normal(0.0, scale, kernel.shape).astype(kernel.dtype), np.zeros_like(bias)]
        )


def _build_vgg(weights: str, seed: int) -> tuple[Any, str]:
    import tf_keras as keras

    if weights == "random":
        keras.utils.set_random_seed(seed)
        model = keras.applications.VGG19(include_top=False, weights=None)
        _he_initialise(model, seed)
        return model, f"random (seed {seed}, He-normal)"
    if weights == "imagenet":
        cached = keras_cache_path()
        if not cached.is_file() and os.environ.get(OFFLINE_ENV):
            raise LossNetworkError(
                f"VGG19 ImageNet weights are not in the Keras cache ({cached}) and "
                f"{OFFLINE_ENV} forbids downloading",
                "pass --vgg-weights PATH to a local vgg19 notop .h5 file, or --vgg-weights "
                "random for a seeded offline loss network",
            )
        try:
            model = keras.applications.VGG19(include_top=False, weights="imagenet")
        except Exception as exc:
            raise LossNetworkError(
                f"cannot get VGG19 ImageNet weights ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120] if str(exc) else ''})",
                f"put {KERAS_WEIGHTS_FILE} in {cached.parent}, pass --vgg-weights PATH, or "
                "--vgg-weights random",
            ) from exc
        return model, f"imagenet (Keras cache {cached})"
    path = Path(weights)
    if not path.is_file():
        raise LossNetworkError(
            f"--vgg-weights {weights}: no such file",
            "use imagenet, random, or a path to a VGG19 notop weights .h5 file",
        )
    try:
        model = keras.applications.VGG19(include_top=False, weights=str(path))
    except Exception as exc:
        raise LossNetworkError(
            f"--vgg-weights {path}: not VGG19 notop weights ({type(exc).__name__})",
            f"use Keras' {KERAS_WEIGHTS_FILE}",
        ) from exc
    return model, f"file {path}"


def build_loss_network(weights: str = "imagenet", seed: int = 0) -> LossNetwork:
    """VGG19 (include_top=False) exposing content and style layers, frozen."""
    import tf_keras as keras

    vgg, description = _build_vgg(weights, seed)
    vgg.trainable = False
    names = (CONTENT_LAYER, *STYLE_LAYERS)
    features = keras.Model(vgg.input, [vgg.get_layer(n).output for n in names])
    # Preprocessing stays in plain Python (no Lambda layer: Keras safe mode refuses them).
    return LossNetwork(model=_FeatureExtractor(features, names), vgg=vgg, weights=description)


class _FeatureExtractor:
    """Callable: [0, 1] images -> {layer name: features} through preprocessing + VGG."""

    def __init__(self, features: Any, names: tuple[str, ...]) -> None:
        self.features = features
        self.names = names

    def __call__(self, images: Any, training: bool = False) -> dict[str, Any]:
        outputs = self.features(preprocess_for_vgg(images), training=training)
        return dict(zip(self.names, outputs, strict=True))
