"""Grid search over content:style loss weights, judged on held-out photos.

Each grid point trains a fresh generator for a few steps; the measured (unweighted)
content and style losses on held-out images are compared relative to the best of
the grid, so neither term's scale dominates the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from compressor.style.loss_network import LossNetwork
from compressor.style.losses import LossWeights, perceptual_losses, style_targets
from compressor.style.training import StyleTrainConfig, StyleTrainer


@dataclass
class SearchPoint:
    """One grid point: its weights, held-out losses and balanced score."""

    weights: LossWeights
    content: float
    style: float
    score: float = 0.0


def default_grid(base: LossWeights) -> list[LossWeights]:
    """Style weights ×0.01, ×1, ×100 around the base ratio, content fixed."""
    return [
        LossWeights(base.content, base.style * factor, base.total_variation)
        for factor in (0.01, 1.0, 100.0)
    ]


def heldout_losses(
    generator: Any, loss_network: LossNetwork, style_image: np.ndarray, images: np.ndarray
) -> tuple[float, float]:
    """Unweighted content and style loss of ``generator`` on ``images``."""
    import tensorflow as tf

    grams = style_targets(loss_network.model, tf.constant(style_image[None], tf.float32))
    outputs = generator(images, training=False)
    losses = perceptual_losses(loss_network.model, outputs, images, grams, LossWeights())
    return float(losses["content"].numpy()), float(losses["style"].numpy())


def search_loss_weights(
    build: Callable[[], Any],
    loss_network: LossNetwork,
    style_image: np.ndarray,
    train_images: np.ndarray,
    heldout_images: np.ndarray,
    grid: list[LossWeights],
    base: StyleTrainConfig,
    progress: Callable[[str, float], None] | None = None,
) -> tuple[list[SearchPoint], SearchPoint]:
    """Train briefly at every grid point; return all points and the chosen one.

    Score = content / best content + style / best style (lower is better).
    """
    points = []
    for index, weights in enumerate(grid):
        config = StyleTrainConfig(
            stage1_steps=base.stage1_steps,
            stage2_steps=0,
            batch_size=base.batch_size,
            learning_rate=base.learning_rate,
            weights=weights,
            seed=base.seed,
        )
        generator = build()
        StyleTrainer(generator, loss_network, style_image, config).train(train_images)
        content, style = heldout_losses(generator, loss_network, style_image, heldout_images)
        points.append(SearchPoint(weights, content, style))
        if progress:
            progress(f"grid {index + 1}/{len(grid)}", (index + 1) / len(grid))
    best_content = max(min(p.content for p in points), 1e-12)
    best_style = max(min(p.style for p in points), 1e-12)
    for point in points:
        point.score = point.content / best_content + point.style / best_style
    return points, min(points, key=lambda p: p.score)
