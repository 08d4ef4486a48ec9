"""The model families the benchmarks compare on, with the data each is compressed with.

Two are trained here, offline and seeded, on images scikit-image ships in its wheel:

* ``texture_classifier`` — a grayscale 32×32 classifier (separable convs, batch norm) that
  tells which of six textures a crop comes from (brick, grass, gravel, coins,
  printed page, moon surface). It trains on crops from the left 70 % of each image; the crops the
  benchmark compresses with (and scores on) come from the right 30 %, which training
  never saw.
* ``denoiser`` — a small image-to-image net (conv encoder, skip connection, conv
  decoder) trained to remove Gaussian noise (σ = 0.1) from 64×64 crops of the photos.

The other two: the trained demo style generator shipped in the package (128², instance
norm, reflection padding) and Keras MobileNetV2 (α = 0.35, 96², random weights: the
architecture, not a task).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TEXTURES = ("brick", "grass", "gravel", "coins", "page", "moon")
CLASSIFIER_SIZE = 32
TRAIN_FRACTION = 0.7
CROPS_PER_CLASS_FOR_DATA = 50
NOISE = 0.1


@dataclass
class Family:
    """A model to compress and the folder of images to compress it with (None: the
    built-in sample photos)."""

    name: str
    model: Any
    data: Path | None
    kind: str


def _gray_texture(name: str) -> np.ndarray:
    """One of scikit-image's bundled images as float32 grayscale in [0, 1]."""
    import skimage.data
    from skimage.color import rgb2gray

    image = getattr(skimage.data, name)()
    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    image = image.astype(np.float32)
    return image / 255.0 if image.max() > 1.0 else image


def _crops(image: np.ndarray, count: int, size: int, left: float, right: float, rng: Any):
    """``count`` random ``size``² crops whose columns lie in [left, right) of the width."""
    height, width = image.shape
    low, high = int(width * left), int(width * right) - size
    rows = rng.integers(0, height - size + 1, count)
    cols = rng.integers(low, high + 1, count)
    return np.stack([image[r : r + size, c : c + size] for r, c in zip(rows, cols, strict=True)])


def build_texture_classifier(steps: int = 900, seed: int = 0) -> Any:
    """Train the grayscale texture classifier (about a minute on 2 cores)."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(TEXTURES):
        crops = _crops(_gray_texture(name), 400, CLASSIFIER_SIZE, 0.0, TRAIN_FRACTION, rng)
        images.append(crops)
        labels.append(np.full(len(crops), label))
    x = np.concatenate(images)[..., None]
    x = np.concatenate([x, x[:, :, ::-1], x[:, ::-1, :]])  # flips: textures have no up or left
    y = np.tile(np.concatenate(labels), 3)
    inputs = keras.Input((CLASSIFIER_SIZE, CLASSIFIER_SIZE, 1), name="crop")
    h = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    h = keras.layers.BatchNormalization(momentum=0.9)(h)
    h = keras.layers.ReLU()(h)
    for filters in (32, 64):
        h = keras.layers.SeparableConv2D(filters, 3, strides=2, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization(momentum=0.9)(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(len(TEXTURES), activation="softmax")(h)
    model = keras.Model(inputs, outputs, name="texture_classifier")
    batch = 32
    epochs = max(1, steps * batch // len(x))
    # Decay to zero so the batch-norm moving statistics catch up with the final weights.
    rate = keras.optimizers.schedules.CosineDecay(2e-3, epochs * (len(x) // batch + 1))
    model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    return model


def write_texture_crops(folder: Path, seed: int = 1) -> Path:
    """Crops from the right 30 % of each texture (never trained on), as PNG files."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in TEXTURES:
        crops = _crops(
            _gray_texture(name), CROPS_PER_CLASS_FOR_DATA, CLASSIFIER_SIZE, TRAIN_FRACTION, 1.0, rng
        )
        for index, crop in enumerate(crops):
            Image.fromarray((crop * 255).round().astype(np.uint8), "L").save(
                folder / f"{name}_{index:02d}.png"
            )
    return folder


def texture_accuracy(model: Any, folder: Path) -> float:
    """Accuracy of ``model`` on the crops in ``folder`` (labels from the file names)."""
    from PIL import Image

    paths = sorted(folder.glob("*.png"))
    x = np.stack([np.asarray(Image.open(p), dtype=np.float32) / 255.0 for p in paths])[..., None]
    y = np.array([TEXTURES.index(p.stem.rsplit("_", 1)[0]) for p in paths])
    return float((model.predict(x, verbose=0).argmax(-1) == y).mean())


def build_denoiser(steps: int = 300, seed: int = 0) -> Any:
    """Train the small denoiser on noisy crops of the built-in photos (about a minute)."""
    import tf_keras as keras

    from compressor.core.datasets import load_builtin_samples

    keras.utils.set_random_seed(seed)
    clean = load_builtin_samples((64, 64, 3), crops_per_image=24, seed=seed).train
    inputs = keras.Input((64, 64, 3), name="noisy")
    e1 = keras.layers.Conv2D(24, 3, padding="same", activation="relu")(inputs)
    e2 = keras.layers.Conv2D(48, 3, strides=2, padding="same", activation="relu")(e1)
    e2 = keras.layers.Conv2D(48, 3, padding="same", activation="relu")(e2)
    d1 = keras.layers.Conv2DTranspose(24, 3, strides=2, padding="same", activation="relu")(e2)
    d1 = keras.layers.Concatenate()([d1, e1])
    residual = keras.layers.Conv2D(3, 3, padding="same")(d1)
    outputs = keras.layers.Add()([inputs, residual])
    model = keras.Model(inputs, outputs, name="denoiser")
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    rng = np.random.default_rng(seed)
    batch = 16
    pick = clean[rng.integers(0, len(clean), steps * batch)]
    noisy = pick + rng.normal(0, NOISE, pick.shape).astype(np.float32)
    model.fit(noisy, pick, batch_size=batch, epochs=1, verbose=0)
    return model


def denoising_gain_db(model: Any, seed: int = 5) -> float:
    """PSNR gain (dB) of ``model`` over its noisy input on the held-out photos."""
    from compressor.core.datasets import load_builtin_samples
    from compressor.core.fidelity import psnr_db

    clean = load_builtin_samples((64, 64, 3)).evaluation
    noisy = clean + np.random.default_rng(seed).normal(0, NOISE, clean.shape).astype(np.float32)
    denoised = model.predict(noisy, verbose=0)
    return psnr_db(clean, denoised, 1.0) - psnr_db(clean, noisy, 1.0)


def build_families(work: Path, names: list[str]) -> list[Family]:
    """Build (and train where needed) the named families; data folders go under ``work``."""
    import tf_keras as keras

    families = []
    for name in names:
        keras.utils.set_random_seed(0)
        if name == "generator":
            from compressor.models.default import build_default_model

            families.append(Family(name, build_default_model(128), None, "trained (demo)"))
        elif name == "texture_classifier":
            model = build_texture_classifier()
            data = write_texture_crops(work / "texture_crops")
            accuracy = texture_accuracy(model, data)
            families.append(Family(name, model, data, f"trained, accuracy {accuracy:.3f}"))
        elif name == "denoiser":
            model = build_denoiser()
            gain = denoising_gain_db(model)
            families.append(Family(name, model, None, f"trained, +{gain:.1f} dB on held-out"))
        elif name == "mobilenet_v2":
            model = keras.applications.MobileNetV2(
                input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10
            )
            families.append(Family(name, model, None, "random weights"))
        else:
            raise SystemExit(f"unknown model family {name!r}")
    return families
