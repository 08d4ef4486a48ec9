"""Label-free fine-tuning: a compressed model learns to match the float model's outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def self_distill(
    model: Any,
    inputs: np.ndarray,
    targets: np.ndarray | list[np.ndarray],
    steps: int,
    batch_size: int,
    learning_rate: float,
    callbacks: list[Any] | None = None,
    progress: Callable[[str, float], None] | None = None,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` for ``steps`` batches to reproduce ``targets`` (MSE); return losses.

    Used after pruning and for QAT: no labels needed, the float model is the teacher.
    A multi-output model gets one target per output (a list in its output order); each
    output's MSE is divided by its target's variance, so a head in pixels does not drown
    a head of probabilities.
    """
    import tensorflow as tf
    import tf_keras as keras

    if steps <= 0:
        return []
    loss_weights = None
    if isinstance(targets, list):
        loss_weights = [1.0 / max(float(np.var(t)), 1e-8) for t in targets]
        targets = tuple(targets)
    dataset = (
        tf.data.Dataset.from_tensor_slices((inputs, targets))
        .shuffle(len(inputs), seed=seed)
        .repeat()
        .batch(batch_size)
    )
    losses: list[float] = []

    class _Track(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float((logs or {}).get("loss", float("nan"))))
            if progress:
                progress(f"step {batch + 1}/{steps} loss {losses[-1]:.5f}", (batch + 1) / steps)

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="mse", loss_weights=loss_weights
    )
    model.fit(
        dataset,
        epochs=1,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=[*(callbacks or []), _Track()],
    )
    return losses


def fine_tune_on_float(
    model: Any,
    context: Any,
    config: Any,
    callbacks: list[Any] | None = None,
) -> list[float]:
    """Self-distil ``model`` on a run's training images against the float model's outputs.

    ``context`` is the RunContext; ``config`` has ``fine_tune_steps``, ``batch_size`` and
    ``learning_rate``.
    """
    return self_distill(
        model,
        context.images.train,
        context.float_outputs("train").keras_targets(),
        steps=config.fine_tune_steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        callbacks=callbacks,
        progress=context.progress,
        seed=context.seed,
    )
