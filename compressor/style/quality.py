"""Two numbers that say whether a generator does style transfer, judged by networks it
was not trained with.

- Style distance: Gram-matrix distance to the style image in a *judge* network (a
  seeded, He-initialised random VGG19 that no training uses; random filter banks carry
  texture statistics — Ustyuzhaninov et al., ICLR 2017), each layer relative to the
  style Gram's magnitude, divided by the same distance for the untouched photo. Below 1
  the output is closer to the style than the photo was.
- Content kept: SSIM between the Sobel edge maps of the output and of the photo (1 =
  every edge where it was).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

JUDGE_SEED = 20171  # a seed no training in this project uses


@dataclass
class StyleJudge:
    """A loss network used only to judge, with the style image's Gram matrices."""

    network: Any
    style_grams: dict[str, Any]

    @classmethod
    def for_style(cls, style_image: np.ndarray, seed: int = JUDGE_SEED) -> StyleJudge:
        """A judge for ``style_image`` (H, W, 3) in [0, 1]."""
        import tensorflow as tf

        from compressor.style.loss_network import build_loss_network
        from compressor.style.losses import style_targets

        network = build_loss_network("random", seed=seed)
        grams = style_targets(network.model, tf.constant(style_image[None], tf.float32))
        return cls(network, grams)

    def distance(self, images: np.ndarray) -> np.ndarray:
        """Per-image relative Gram distance of ``images`` (N, H, W, 3) to the style."""
        import tensorflow as tf

        from compressor.style.losses import gram_matrix

        features = self.network.model(tf.constant(images, tf.float32))
        total = np.zeros(len(images))
        for name, target in self.style_grams.items():
            difference = tf.square(gram_matrix(features[name]) - target)
            per_image = tf.reduce_mean(difference, axis=[1, 2]) / tf.reduce_mean(tf.square(target))
            total += per_image.numpy()
        return total


def edge_ssim(outputs: np.ndarray, photos: np.ndarray) -> np.ndarray:
    """Per-image SSIM of Sobel edge maps (grey) of ``outputs`` against ``photos``."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel
    from skimage.metrics import structural_similarity

    scores = []
    for output, photo in zip(outputs, photos, strict=True):
        edges_out, edges_in = sobel(rgb2gray(output)), sobel(rgb2gray(photo))
        span = max(float(edges_in.max()), float(edges_out.max()), 1e-6)
        scores.append(structural_similarity(edges_in, edges_out, data_range=span))
    return np.asarray(scores)


def style_scores(judge: StyleJudge, outputs: np.ndarray, photos: np.ndarray) -> dict[str, float]:
    """Mean relative style distance (output / photo) and mean edge SSIM."""
    relative = judge.distance(outputs) / judge.distance(photos)
    return {
        "style_distance_vs_photo": round(float(np.mean(relative)), 4),
        "edge_ssim": round(float(np.mean(edge_ssim(outputs, photos))), 4),
    }
