"""Students cut from the teacher: its most active residual blocks and its strongest
filters, then distilled on its outputs *and* its trunk feature maps.

A student trained from scratch on a CPU budget never gets close to the teacher (SSIM
0.57 after 300 steps, docs/benchmarks.md). Cutting keeps the teacher's function nearly
intact at step 0: residual blocks whose branch adds least to the trunk are removed (the
add then passes the trunk through), and every prunable conv keeps its highest-saliency
filters (``compressor.core.channels``). Distillation then only has to repair the cut.
Both networks are made free-size, so each step runs teacher and student on the same
random crops: the student learns the teacher's function, which fully convolutional
models keep at any size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from compressor.core.channels import prune_channels
from compressor.models.generator_config import GeneratorConfig

TRUNK_ENTRY = "enc3_relu"  # the encoder's output: the residual trunk starts here


def _free_size(model: Any) -> Any:
    """The same layers and weights on an input of any height and width."""
    import tf_keras as keras

    channels = int(model.inputs[0].shape[-1])
    free = keras.models.clone_model(
        model, input_tensors=keras.Input((None, None, channels), name="image")
    )
    free.set_weights(model.get_weights())
    return free


def residual_contributions(model: Any, blocks: int, images: np.ndarray) -> list[float]:
    """Per residual block: mean |branch| / mean |trunk input| on ``images``."""
    import tf_keras as keras

    outputs = []
    for index in range(1, blocks + 1):
        add = model.get_layer(f"res{index}_add")
        trunk, branch = add.input
        outputs += [trunk, branch]
    probe = keras.Model(model.inputs, outputs)
    values = [np.asarray(v) for v in probe(images[:8], training=False)]
    return [
        float(np.mean(np.abs(values[2 * i + 1])) / (np.mean(np.abs(values[2 * i])) + 1e-12))
        for i in range(blocks)
    ]


def drop_residual_blocks(
    teacher: Any, config: GeneratorConfig, keep_blocks: int, images: np.ndarray, seed: int = 0
) -> tuple[Any, list[int]]:
    """The teacher with only its ``keep_blocks`` most active residual blocks (in order);
    returns the model and the kept teacher block numbers."""
    from compressor.models.generator import build_generator

    contributions = residual_contributions(teacher, config.residual_blocks, images)
    ranked = np.argsort(contributions)[::-1][:keep_blocks]
    kept = sorted(int(i) + 1 for i in ranked)
    student = build_generator(replace(config, residual_blocks=keep_blocks), seed=seed)
    for layer in student.layers:
        name = layer.name
        if not layer.weights:
            continue
        if name.startswith("res"):
            number, rest = name[3:].split("_", 1)
            name = f"res{kept[int(number) - 1]}_{rest}"
        layer.set_weights(teacher.get_layer(name).get_weights())
    return student, kept


def cut_student(
    teacher: Any,
    config: GeneratorConfig,
    keep: float,
    residual_blocks: int,
    alignment: int,
    images: np.ndarray,
    custom_objects: dict[str, Any],
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """The cut student (fixed size, as the teacher) and what was cut."""
    shallower, kept_blocks = drop_residual_blocks(
        teacher, config, min(residual_blocks, config.residual_blocks), images, seed
    )
    student, sizes = prune_channels(shallower, keep, alignment, custom_objects)
    return student, {"kept_blocks": kept_blocks, "channels": sizes}


def _features(model: Any, layers: list[str]) -> Any:
    import tf_keras as keras

    return keras.Model(model.inputs, [model.output, *(model.get_layer(n).output for n in layers)])


def distill_on_crops(
    teacher: Any,
    student: Any,
    images: np.ndarray,
    feature_pairs: list[tuple[str, str]],
    steps: int,
    batch_size: int,
    learning_rate: float,
    crop_size: int,
    feature_weight: float = 1.0,
    progress: Callable[[str, float], None] | None = None,
    seed: int = 0,
) -> list[float]:
    """Train ``student`` on teacher outputs and feature maps; returns per-step losses.

    Loss: output MSE + ``feature_weight`` × Σ over (teacher layer, student layer) pairs of
    the feature MSE relative to the teacher feature's mean square (scale-free). Each step
    runs both networks on the same random crops (and flips) of ``images``; the trained
    weights are copied back into ``student`` (fixed size)."""
    import tensorflow as tf
    import tf_keras as keras

    free_teacher = _features(_free_size(teacher), [t for t, _ in feature_pairs])
    free_student_model = _free_size(student)
    free_student = _features(free_student_model, [s for _, s in feature_pairs])
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step_fn(batch):
        targets = free_teacher(batch, training=False)
        with tf.GradientTape() as tape:
            outputs = free_student(batch, training=True)
            loss = tf.reduce_mean(tf.square(outputs[0] - targets[0]))
            for got, want in zip(outputs[1:], targets[1:], strict=True):
                relative = tf.reduce_mean(tf.square(got - want)) / (
                    tf.reduce_mean(tf.square(want)) + 1e-8
                )
                loss += feature_weight * relative
        variables = free_student.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    size = images.shape[1]
    crop = min(crop_size or size, size, images.shape[2])
    losses = []
    for step in range(steps):
        rng = np.random.default_rng(seed + step)
        index = rng.choice(len(images), batch_size, replace=len(images) < batch_size)
        top = int(rng.integers(0, images.shape[1] - crop + 1))
        left = int(rng.integers(0, images.shape[2] - crop + 1))
        batch = images[index, top : top + crop, left : left + crop]
        if rng.random() < 0.5:
            batch = batch[:, :, ::-1]
        losses.append(float(step_fn(tf.constant(np.ascontiguousarray(batch))).numpy()))
        if progress:
            progress(f"distill step {step + 1}/{steps} loss {losses[-1]:.5f}", (step + 1) / steps)
    student.set_weights(free_student_model.get_weights())
    return losses
