"""Teacher → student distillation for image-to-image generators.

The student learns the teacher's outputs on unlabeled photos: pixel MSE, plus the
MSE of VGG19 content features when a loss network is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def copy_matching_weights(teacher: Any, student: Any) -> int:
    """Copy weights of same-named layers with identical shapes; return how many layers.

    A norm-swapped student (same convs, batch instead of instance norm) starts from
    the teacher's convolutions; instance-norm gamma/beta seed batch-norm gamma/beta.
    """
    copied = 0
    teacher_layers = {layer.name: layer for layer in teacher.layers}
    for layer in student.layers:
        source = teacher_layers.get(layer.name)
        if source is None or not layer.weights or not source.weights:
            continue
        source_weights = source.get_weights()
        target = layer.get_weights()
        if [w.shape for w in source_weights] == [w.shape for w in target]:
            layer.set_weights(source_weights)
            copied += 1
        elif (
            layer.__class__.__name__ == "BatchNormalization"
            and source.__class__.__name__ == "InstanceNormalization"
            and source_weights[0].shape == target[0].shape
        ):
            layer.set_weights([source_weights[0], source_weights[1], target[2], target[3]])
            copied += 1
    return copied


def recalibrate_batch_norm(model: Any, images: np.ndarray, batch_size: int = 16) -> int:
    """Set each BatchNorm's moving statistics to its input statistics on ``images``.

    Short distillations leave moving averages far from the batch statistics the student
    trained with. Layers are recalibrated in order, so each sees inputs produced with the
    already-recalibrated layers before it. Returns how many layers were set.
    """
    import tensorflow as tf
    import tf_keras as keras

    norms = [layer for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"]
    for layer in norms:
        probe = keras.Model(model.inputs, layer.input)
        total = np.zeros(layer.input.shape[-1], np.float64)
        total_sq = np.zeros_like(total)
        count = 0
        for start in range(0, len(images), batch_size):
            act = tf.cast(probe(images[start : start + batch_size], training=False), tf.float64)
            pixels = int(np.prod(act.shape[:-1]))
            total += tf.reduce_sum(act, axis=[0, 1, 2]).numpy()
            total_sq += tf.reduce_sum(tf.square(act), axis=[0, 1, 2]).numpy()
            count += pixels
        mean = total / count
        variance = np.maximum(total_sq / count - mean**2, 0.0)
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([gamma, beta, mean.astype(np.float32), variance.astype(np.float32)])
    return len(norms)


def distill(
    teacher: Any,
    student: Any,
    images: np.ndarray,
    steps: int,
    batch_size: int,
    learning_rate: float,
    loss_network: Any = None,
    feature_weight: float = 1e-3,
    progress: Callable[[str, float], None] | None = None,
    seed: int = 0,
) -> list[float]:
    """Train ``student`` to reproduce ``teacher`` on ``images``; returns per-step losses.

    When ``student`` takes a smaller input than ``images`` (a twin built at crop size),
    each step trains on random crops of the images and of the teacher's full-image
    outputs: fully convolutional generators learn the same weights ~(size/crop)² faster.
    """
    import tensorflow as tf
    import tf_keras as keras

    targets = np.asarray(teacher.predict(images, batch_size=8, verbose=0), dtype=np.float32)
    optimizer = keras.optimizers.Adam(learning_rate)
    features = loss_network.model if loss_network is not None else None
    layer = loss_network.content_layer if loss_network is not None else ""

    @tf.function
    def step_fn(batch, target):
        with tf.GradientTape() as tape:
            output = student(batch, training=True)
            loss = tf.reduce_mean(tf.square(output - target))
            if features is not None:
                loss += feature_weight * tf.reduce_mean(
                    tf.square(features(output)[layer] - features(target)[layer])
                )
        variables = student.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    crop = int(student.input_shape[1])
    losses = []
    for step in range(steps):
        rng = np.random.default_rng(seed + step)
        index = rng.choice(len(images), batch_size, replace=len(images) < batch_size)
        batch, target = images[index], targets[index]
        if crop < batch.shape[1]:
            top, left = rng.integers(0, batch.shape[1] - crop + 1, size=2)
            batch = batch[:, top : top + crop, left : left + crop]
            target = target[:, top : top + crop, left : left + crop]
        loss = float(step_fn(tf.constant(batch), tf.constant(target)).numpy())
        losses.append(loss)
        if progress:
            progress(f"distill step {step + 1}/{steps} loss {loss:.5f}", (step + 1) / steps)
    if crop >= images.shape[1]:
        recalibrate_batch_norm(student, images)
    return losses
