"""Two-stage perceptual training of a style-transfer generator.

Warm-up (optional, stage 0): the generator learns to reproduce its input (pixel loss, no
VGG), so perceptual training starts from a content-preserving generator; a CPU cannot
afford the tens of thousands of perceptual steps a generator needs from scratch.
Stage 1 (feature alignment): VGG19 frozen, the generator learns content/style/TV.
Stage 2 (style fusion): the generator keeps training while VGG's shallow blocks are
unfrozen at a lower learning rate; skipped when the loss network is random.
Checkpoints every N steps; an interrupted training resumes from the latest one; a
non-finite loss stops training and keeps the last good checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.errors import CompressorError
from compressor.style.loss_network import SHALLOW_BLOCKS, LossNetwork
from compressor.style.losses import LossWeights, perceptual_losses, style_targets


class TrainingError(CompressorError):
    """Training could not go on (e.g. the loss became NaN)."""


@dataclass(frozen=True)
class StyleTrainConfig:
    """Steps, batch, learning rates, loss weights and checkpointing of a training."""

    stage1_steps: int = 200
    warmup_steps: int = 0
    stage2_steps: int = 50
    batch_size: int = 4
    learning_rate: float = 1e-3
    vgg_learning_rate: float = 1e-5
    unfreeze_blocks: tuple[str, ...] = SHALLOW_BLOCKS
    weights: LossWeights = LossWeights()
    checkpoint_every: int = 50
    seed: int = 0


@dataclass
class TrainResult:
    """What happened: per-step losses, where it resumed, whether stage 2 ran."""

    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_step: int = 0
    stage2_ran: bool = False
    loss_network: str = ""


class StyleTrainer:
    """Trains ``generator`` towards ``style_image`` on content images."""

    def __init__(
        self,
        generator: Any,
        loss_network: LossNetwork,
        style_image: np.ndarray,
        config: StyleTrainConfig,
        checkpoint_dir: Path | None = None,
        progress: Callable[[str, float], None] | None = None,
        log_dir: Path | None = None,
        distribution: Any = None,
    ) -> None:
        """``distribution`` is a ``tf.distribute`` strategy (e.g. MirroredStrategy); the
        generator and the loss network must have been built inside its scope."""
        import tensorflow as tf
        import tf_keras as keras

        self.distribution = distribution or tf.distribute.get_strategy()
        self.replicas = self.distribution.num_replicas_in_sync
        if config.batch_size % self.replicas:
            raise TrainingError(
                f"batch size {config.batch_size} does not split over {self.replicas} devices",
                f"use a multiple of {self.replicas}",
            )
        self.generator = generator
        self.loss_network = loss_network
        self.style_image = tf.constant(style_image[None, ...], tf.float32)
        self.config = config
        self.progress = progress or (lambda message, fraction: None)
        with self.distribution.scope():
            self.optimizer = keras.optimizers.Adam(config.learning_rate)
            self.vgg_optimizer = keras.optimizers.Adam(config.vgg_learning_rate)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            step=self.step,
            generator=generator,
            optimizer=self.optimizer,
            vgg=loss_network.vgg,
            vgg_optimizer=self.vgg_optimizer,
        )
        self.manager = (
            tf.train.CheckpointManager(self.checkpoint, str(checkpoint_dir), max_to_keep=2)
            if checkpoint_dir
            else None
        )
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
        self.stage2_enabled = config.stage2_steps > 0 and not loss_network.is_random

    @property
    def total_steps(self) -> int:
        """Warm-up, stage 1 and (when enabled) stage 2 steps."""
        stage2 = self.config.stage2_steps if self.stage2_enabled else 0
        return self.config.warmup_steps + self.config.stage1_steps + stage2

    def _warmup_step(self, batch: Any) -> dict[str, Any]:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            generated = self.generator(batch, training=True)
            reconstruction = tf.reduce_mean(tf.square(generated - batch))
            scaled = reconstruction / self.replicas
        variables = self.generator.trainable_variables
        self.optimizer.apply_gradients(
            zip(tape.gradient(scaled, variables), variables, strict=True)
        )
        return {"total": reconstruction, "reconstruction": reconstruction}

    def _stage1_step(self, batch: Any) -> dict[str, Any]:
        import tensorflow as tf

        style_grams = style_targets(self.loss_network.model, self.style_image)
        with tf.GradientTape() as tape:
            generated = self.generator(batch, training=True)
            losses = perceptual_losses(
                self.loss_network.model, generated, batch, style_grams, self.config.weights
            )
            scaled = losses["total"] / self.replicas  # replicas' gradients are summed
        variables = self.generator.trainable_variables
        self.optimizer.apply_gradients(
            zip(tape.gradient(scaled, variables), variables, strict=True)
        )
        return losses

    def _stage2_step(self, batch: Any) -> dict[str, Any]:
        import tensorflow as tf

        generator_vars = self.generator.trainable_variables
        vgg_vars = self.loss_network.shallow_variables()
        with tf.GradientTape(persistent=True) as tape:
            # VGG changes in this stage, so the style targets are recomputed each step.
            style_grams = style_targets(self.loss_network.model, self.style_image)
            generated = self.generator(batch, training=True)
            losses = perceptual_losses(
                self.loss_network.model, generated, batch, style_grams, self.config.weights
            )
            scaled = losses["total"] / self.replicas  # replicas' gradients are summed
        self.optimizer.apply_gradients(
            zip(tape.gradient(scaled, generator_vars), generator_vars, strict=True)
        )
        self.vgg_optimizer.apply_gradients(
            zip(tape.gradient(scaled, vgg_vars), vgg_vars, strict=True)
        )
        del tape
        return losses

    def _compiled(self, step_fn: Callable[[Any], dict[str, Any]]) -> Callable[[Any], Any]:
        """One tf.function running ``step_fn`` on every replica, losses averaged."""
        import tensorflow as tf

        def run(batch: Any) -> dict[str, Any]:
            results = self.distribution.run(step_fn, args=(batch,))
            return {
                key: self.distribution.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                for key, value in results.items()
            }

        return tf.function(run)

    def _split(self, batch: np.ndarray) -> Any:
        """The batch as per-replica slices (a plain tensor with one device)."""
        import tensorflow as tf

        if self.replicas == 1:
            return tf.constant(batch, tf.float32)
        per = len(batch) // self.replicas
        return self.distribution.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(
                batch[
                    ctx.replica_id_in_sync_group * per : (ctx.replica_id_in_sync_group + 1) * per
                ],
                tf.float32,
            )
        )

    def train(self, content_images: np.ndarray) -> TrainResult:
        """Run (or resume) both stages on ``content_images`` (N, H, W, 3) in [0, 1]."""
        import tensorflow as tf

        result = TrainResult(loss_network=self.loss_network.weights)
        if self.manager and self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint)
            result.resumed_from_step = int(self.step.numpy())
        stage1 = self._compiled(self._stage1_step)
        warmup = self._compiled(self._warmup_step)
        stage2 = None
        config = self.config
        while int(self.step.numpy()) < self.total_steps:
            step = int(self.step.numpy())
            in_warmup = step < config.warmup_steps
            in_stage2 = step >= config.warmup_steps + config.stage1_steps
            if in_stage2 and stage2 is None:
                self.loss_network.set_trainable_blocks(config.unfreeze_blocks)
                stage2 = self._compiled(self._stage2_step)
            rng = np.random.default_rng(config.seed + step)
            index = rng.choice(
                len(content_images),
                config.batch_size,
                replace=len(content_images) < config.batch_size,
            )
            batch = self._split(content_images[index])
            losses = (warmup if in_warmup else stage2 if in_stage2 else stage1)(batch)
            values = {k: float(v.numpy()) for k, v in losses.items()}
            if not all(np.isfinite(list(values.values()))):
                kept = self.manager.latest_checkpoint if self.manager else None
                raise TrainingError(
                    f"loss became non-finite at step {step + 1} ({values})",
                    f"last good checkpoint kept: {kept}"
                    if kept
                    else "lower the learning rate; use --checkpoint-dir to keep progress",
                )
            self.step.assign_add(1)
            values["step"] = step + 1
            values["stage"] = 0 if in_warmup else 2 if in_stage2 else 1
            result.history.append(values)
            result.stage2_ran = result.stage2_ran or in_stage2
            if self.writer:
                with self.writer.as_default(step=step + 1):
                    for key in ("total", "content", "style", "tv", "reconstruction"):
                        if key in values:
                            tf.summary.scalar(f"loss/{key}", values[key])
            if self.manager and (step + 1) % config.checkpoint_every == 0:
                self.manager.save(checkpoint_number=step + 1)
            self.progress(
                f"stage {values['stage']} step {step + 1}/{self.total_steps} "
                f"loss {values['total']:.4g}",
                (step + 1) / self.total_steps,
            )
        if self.manager and result.history:
            self.manager.save(checkpoint_number=int(self.step.numpy()))
        self.loss_network.vgg.trainable = False
        return result
