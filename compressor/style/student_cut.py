"""Students cut from the teacher: its most active residual blocks and its strongest
filters, then distilled on its outputs *and* its trunk feature maps.

A student trained from scratch on a CPU budget never gets close to the teacher (SSIM
0.57 after 300 steps, docs/benchmarks.md). Cutting keeps the teacher's function nearly
intact at step 0: residual blocks whose branch adds least to the trunk are removed (the
add then passes the trunk through), and every layer keeps its highest-saliency filters
(L1 norm × |norm scale|) — the residual trunk, shared by adds, keeps the channels
strongest over all the convs that write into it. Distillation then repairs the cut.
Both networks are made free-size, so each step runs teacher and student on the same
random crops: the student learns the teacher's function, which fully convolutional
models keep at any size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from compressor.models.generator_config import GeneratorConfig
from compressor.models.generator_spec import cut_config, scaled_width

TRUNK_ENTRY = "enc3_relu"  # the encoder's output: the residual trunk starts here
SSIM_WINDOW = 11  # tf.image.ssim's Gaussian window (the fidelity metric's too)


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


def _filter_saliency(model: Any, conv: str, norm: str) -> np.ndarray:
    """L1 norm of each of ``conv``'s filters times |scale| of the norm after it."""
    kernel = model.get_layer(conv).get_weights()[0]
    score = np.abs(kernel).sum(axis=(0, 1, 2))
    layer = model.get_layer(norm)
    gamma = layer.get_weights()[0]
    if layer.__class__.__name__ == "BatchNormalization":
        gamma = gamma / np.sqrt(layer.get_weights()[3] + layer.epsilon)
    return score * np.abs(gamma)


def _strongest(score: np.ndarray, count: int) -> np.ndarray:
    return np.sort(np.argsort(-score, kind="stable")[:count])


def _channel_plan(
    teacher: Any, student_config: GeneratorConfig, kept_blocks: list[int]
) -> dict[str, tuple[np.ndarray | None, np.ndarray | None]]:
    """For every student layer with weights: (teacher input channels, teacher output
    channels) it takes. Chains of convs keep each producer's strongest filters; the
    residual trunk (encoder output and every block's output, joined by adds) keeps the
    channels strongest summed over all the convs that write into it."""

    def width(channels: int) -> int:
        return scaled_width(student_config, channels)

    trunk_writers = [("enc3_conv", "enc3_norm")] + [
        (f"res{b}_2_conv", f"res{b}_2_norm") for b in kept_blocks
    ]
    trunk = _strongest(sum(_filter_saliency(teacher, c, n) for c, n in trunk_writers), width(128))
    plan: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = {}

    def conv(name: str, inputs: np.ndarray | None, outputs: np.ndarray | None) -> None:
        plan[f"{name}_conv"] = (inputs, outputs)
        if outputs is not None:
            plan[f"{name}_norm"] = (outputs, outputs)

    enc1 = _strongest(_filter_saliency(teacher, "enc1_conv", "enc1_norm"), width(32))
    enc2 = _strongest(_filter_saliency(teacher, "enc2_conv", "enc2_norm"), width(64))
    conv("enc1", None, enc1)
    conv("enc2", enc1, enc2)
    conv("enc3", enc2, trunk)
    for index, block in enumerate(kept_blocks, start=1):
        inner = _strongest(
            _filter_saliency(teacher, f"res{block}_1_conv", f"res{block}_1_norm"), width(128)
        )
        conv(f"res{index}_1", trunk, inner)
        conv(f"res{index}_2", inner, trunk)
    dec1 = _strongest(_filter_saliency(teacher, "dec1_conv", "dec1_norm"), width(64))
    dec2 = _strongest(_filter_saliency(teacher, "dec2_conv", "dec2_norm"), width(32))
    conv("dec1", trunk, dec1)
    conv("dec2", dec1, dec2)
    conv("out", dec2, None)
    plan["_trunk"] = (trunk, trunk)
    return plan


def _teacher_name(student_name: str, kept_blocks: list[int]) -> str:
    if student_name.startswith("res"):
        number, rest = student_name[3:].split("_", 1)
        return f"res{kept_blocks[int(number) - 1]}_{rest}"
    return student_name


def _sliced(
    weights: list[np.ndarray],
    channels: tuple[np.ndarray | None, np.ndarray | None],
    conv: bool,
    kernel_size: int | None = None,
) -> list[np.ndarray]:
    inputs, outputs = channels
    if conv:
        kernel, bias = weights
        if kernel_size is not None and kernel_size < kernel.shape[0]:
            start = (kernel.shape[0] - kernel_size) // 2  # the filter's centre
            kernel = kernel[start : start + kernel_size, start : start + kernel_size]
        if inputs is not None:
            kernel = kernel[:, :, inputs, :]
        if outputs is not None:
            kernel, bias = kernel[..., outputs], bias[outputs]
        return [kernel, bias]
    return [w[outputs] for w in weights]  # per-channel norm vectors


def cut_student(
    teacher: Any,
    config: GeneratorConfig,
    keep: float,
    residual_blocks: int,
    images: np.ndarray,
    seed: int = 0,
    edge_kernel: int | None = None,
    trunk_keep: float | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The student generator at ``keep`` × the teacher's width (the residual trunk at
    ``trunk_keep`` × its width; None: ``keep``) with ``residual_blocks`` blocks
    (non-depthwise, same norm), every weight taken from the teacher: its most active
    blocks and, in every layer, its strongest filters. ``edge_kernel`` shrinks the first
    and last convs' kernels to their centre. Returns the student and ``{"kept_blocks",
    "trunk_channels", "config"}``."""
    from compressor.models.generator import build_generator

    if config.depthwise:
        raise ValueError("cut students are taken from generators with plain residual convs")
    student_config = cut_config(config, keep, residual_blocks, edge_kernel, trunk_keep)
    blocks = student_config.residual_blocks
    contributions = residual_contributions(teacher, config.residual_blocks, images)
    kept_blocks = sorted(int(i) + 1 for i in np.argsort(contributions)[::-1][:blocks])
    student = build_generator(student_config, seed=seed)
    plan = _channel_plan(teacher, student_config, kept_blocks)
    for layer in student.layers:
        if not layer.weights:
            continue
        source = teacher.get_layer(_teacher_name(layer.name, kept_blocks))
        is_conv = layer.__class__.__name__ == "Conv2D"
        kernel = layer.get_weights()[0].shape[0] if is_conv else None
        layer.set_weights(_sliced(source.get_weights(), plan[layer.name], is_conv, kernel))
    return student, {
        "kept_blocks": kept_blocks,
        "trunk_channels": plan["_trunk"][1],
        "config": student_config,
    }


def _features(model: Any, layers: list[str]) -> Any:
    import tf_keras as keras

    return keras.Model(model.inputs, [model.output, *(model.get_layer(n).output for n in layers)])


def _augmented(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Crops turned (0/90/180/270°), mirrored and colour-jittered (per-channel gain and
    offset): the teacher labels any image, so the few photos of a run become many."""
    batch = np.rot90(batch, k=int(rng.integers(4)), axes=(1, 2))
    if rng.random() < 0.5:
        batch = batch[:, :, ::-1]
    gain = rng.uniform(0.7, 1.3, size=(len(batch), 1, 1, batch.shape[-1]))
    offset = rng.uniform(-0.1, 0.1, size=(len(batch), 1, 1, batch.shape[-1]))
    return np.clip(batch * gain + offset, 0.0, 1.0).astype(np.float32)


def distill_on_crops(
    teacher: Any,
    student: Any,
    images: np.ndarray,
    feature_pairs: list[tuple[str, str, np.ndarray | None]],
    steps: int,
    batch_size: int,
    learning_rate: float,
    crop_size: int,
    feature_weight: float = 1.0,
    progress: Callable[[str, float], None] | None = None,
    seed: int = 0,
    ssim_weight: float = 0.0,
) -> list[float]:
    """Train ``student`` on teacher outputs and feature maps; returns per-step losses.

    Loss: output MSE + ``ssim_weight`` × (1 − SSIM of the outputs) + ``feature_weight`` ×
    Σ over (teacher layer, student layer, teacher channels the student keeps) of the
    feature MSE relative to the teacher feature's mean square (scale-free). The SSIM term
    is the fidelity metric itself (11×11 Gaussian window, σ 1.5): MSE alone lets a student
    blur the teacher's strokes, which SSIM punishes. The learning rate follows a cosine
    decay to 2 % of ``learning_rate`` over ``steps``. Each step runs both networks on the
    same random crops of ``images`` (turned, mirrored and colour-jittered by
    ``_augmented``); the trained weights are copied back into ``student`` (fixed size)."""
    import tensorflow as tf
    import tf_keras as keras

    free_teacher = _features(_free_size(teacher), [t for t, _, _ in feature_pairs])
    free_student_model = _free_size(student)
    free_student = _features(free_student_model, [s for _, s, _ in feature_pairs])
    selections = [None if c is None else tf.constant(c, tf.int32) for _, _, c in feature_pairs]
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1), alpha=0.02)
    optimizer = keras.optimizers.Adam(schedule)

    @tf.function
    def step_fn(batch):
        targets = free_teacher(batch, training=False)
        with tf.GradientTape() as tape:
            outputs = free_student(batch, training=True)
            loss = tf.reduce_mean(tf.square(outputs[0] - targets[0]))
            if ssim_weight:
                similarity = tf.image.ssim(outputs[0], targets[0], max_val=1.0)
                loss += ssim_weight * (1.0 - tf.reduce_mean(similarity))
            for got, want, channels in zip(outputs[1:], targets[1:], selections, strict=True):
                if channels is not None:
                    want = tf.gather(want, channels, axis=-1)
                relative = tf.reduce_mean(tf.square(got - want)) / (
                    tf.reduce_mean(tf.square(want)) + 1e-8
                )
                loss += feature_weight * relative
        variables = free_student.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    size = images.shape[1]
    crop = min(crop_size or size, size, images.shape[2])
    if ssim_weight and crop < SSIM_WINDOW:
        raise ValueError(
            f"crops of {crop} px are smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window"
        )
    losses = []
    for step in range(steps):
        rng = np.random.default_rng(seed + step)
        index = rng.choice(len(images), batch_size, replace=len(images) < batch_size)
        top = int(rng.integers(0, images.shape[1] - crop + 1))
        left = int(rng.integers(0, images.shape[2] - crop + 1))
        batch = _augmented(images[index, top : top + crop, left : left + crop], rng)
        losses.append(float(step_fn(tf.constant(np.ascontiguousarray(batch))).numpy()))
        if progress:
            progress(f"distill step {step + 1}/{steps} loss {losses[-1]:.5f}", (step + 1) / steps)
    student.set_weights(free_student_model.get_weights())
    return losses
