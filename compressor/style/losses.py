"""Perceptual losses (Johnson et al. 2016): content, Gram-matrix style, total variation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three terms; 1e4:1e6 content:style is the literature's start."""

    content: float = 1e4
    style: float = 1e6
    total_variation: float = 1.0


def gram_matrix(features: Any) -> Any:
    """(B, H, W, C) features -> (B, C, C) Gram matrices normalised by H·W·C."""
    import tensorflow as tf

    shape = tf.shape(features)
    count = tf.cast(shape[1] * shape[2] * shape[3], features.dtype)
    return tf.einsum("bhwc,bhwd->bcd", features, features) / count


def content_loss(generated: Any, target: Any) -> Any:
    """Mean squared difference of content features."""
    import tensorflow as tf

    return tf.reduce_mean(tf.square(generated - target))


def style_loss(
    generated_features: dict[str, Any], style_grams: dict[str, Any], relative: bool = False
) -> Any:
    """Sum over the style layers (the keys of ``style_grams``) of the mean squared Gram
    difference (style grams broadcast over the batch). ``relative`` divides each layer's
    term by the mean square of its style Gram, so every layer counts alike whatever the
    scale of its activations."""
    import tensorflow as tf

    total = 0.0
    for name, target in style_grams.items():
        term = tf.reduce_mean(tf.square(gram_matrix(generated_features[name]) - target))
        if relative:
            term = term / (tf.reduce_mean(tf.square(target)) + 1e-12)
        total += term
    return total


def total_variation_loss(images: Any) -> Any:
    """Mean squared difference between neighbouring pixels (x and y)."""
    import tensorflow as tf

    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return tf.reduce_mean(tf.square(dx)) + tf.reduce_mean(tf.square(dy))


def style_targets(loss_model: Any, style_image: Any) -> dict[str, Any]:
    """Gram matrices of the style image (1, H, W, 3) at every style layer."""
    features = loss_model(style_image)
    return {name: gram_matrix(features[name]) for name in loss_model.style_layers}


def perceptual_losses(
    loss_model: Any,
    generated: Any,
    content_images: Any,
    style_grams: dict[str, Any],
    weights: LossWeights,
) -> dict[str, Any]:
    """All terms and the weighted total for one batch."""
    generated_features = loss_model(generated)
    content_features = loss_model(content_images)
    layer = loss_model.content_layer
    content = content_loss(generated_features[layer], content_features[layer])
    style = style_loss(generated_features, style_grams, loss_model.relative_style)
    tv = total_variation_loss(generated)
    total = weights.content * content + weights.style * style + weights.total_variation * tv
    return {"content": content, "style": style, "tv": tv, "total": total}
