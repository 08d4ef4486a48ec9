"""Prune stage: tfmot magnitude pruning (polynomial schedule) and 2:4 structured sparsity.

Only layers tfmot can prune are wrapped; custom layers are left as they are, so a
model with a custom layer is pruned around it. Fine-tuning is self-distillation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from compressor.api import (
    Artifact,
    Estimate,
    ModelInfo,
    PipelineView,
    RunContext,
    StageError,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    Support,
    clone_keras_model,
    fine_tune_on_float,
    hookimpl,
)
from compressor.planning.measured_constants import measured, measured_curve

_M_BY_N_LAYERS = ("Conv2D", "Dense")
_PRUNABLE_KINDS = ("conv", "depthwise_conv", "dense", "conv_transpose", "separable_conv")


class FineTuneConfig(StrategyConfig):
    fine_tune_steps: int = Field(default=40, ge=0, le=100_000, description="Training steps")
    batch_size: int = Field(default=4, ge=1, le=512, description="Images per step")
    learning_rate: float = Field(default=1e-3, gt=0, le=1, description="Adam learning rate")


class MagnitudePruneConfig(FineTuneConfig):
    target_sparsity: float = Field(
        default=0.5, gt=0, lt=1, description="Fraction of weights set to zero at the end"
    )


def _is_prunable(layer: Any, m_by_n: bool) -> bool:
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    if type(layer).__module__.split(".")[0] not in ("tf_keras", "keras", "tensorflow"):
        return False  # custom layers are left alone
    if m_by_n and layer.__class__.__name__ not in _M_BY_N_LAYERS:
        return False
    return bool(layer.weights) and prune_registry.PruneRegistry.supports(layer)


def kernel_sparsity(model: Any, layer_names: list[str]) -> float:
    """Fraction of zeros across the kernels of the named layers."""
    total = zeros = 0
    for name in layer_names:
        kernel = model.get_layer(name).get_weights()[0]
        total += kernel.size
        zeros += int(np.count_nonzero(kernel == 0))
    return zeros / total if total else 0.0


def prune_and_finetune(
    model: Any, context: RunContext, config: FineTuneConfig, schedule: Any, m_by_n: bool
) -> tuple[Any, list[str], list[float]]:
    """Wrap prunable layers, fine-tune against the float model, strip wrappers."""
    import tensorflow_model_optimization as tfmot

    pruned_names: list[str] = []
    kwargs: dict[str, Any] = {"pruning_schedule": schedule}
    if m_by_n:
        kwargs["sparsity_m_by_n"] = (2, 4)

    def wrap(layer: Any) -> Any:
        copy = layer.__class__.from_config(layer.get_config())
        if _is_prunable(layer, m_by_n):
            pruned_names.append(layer.name)
            return tfmot.sparsity.keras.prune_low_magnitude(copy, **kwargs)
        return copy

    import tf_keras as keras

    source = clone_keras_model(model)
    wrapped = keras.models.clone_model(source, clone_function=wrap)
    for layer, original in zip(wrapped.layers, source.layers, strict=True):
        if original.weights:
            target = layer.layer if hasattr(layer, "pruning_vars") else layer
            target.set_weights(original.get_weights())
    if not pruned_names:
        raise StageError("prune: the model has no layer tfmot can prune", "drop the prune stage")
    losses = fine_tune_on_float(
        wrapped, context, config, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    return stripped, pruned_names, losses


def _prune_stage(
    artifact: Artifact,
    context: RunContext,
    config: FineTuneConfig,
    schedule: Any,
    m_by_n: bool,
    label: str,
    **facts: Any,
) -> Artifact:
    """Shared tail of both pruning strategies: prune, fine-tune, measure, record."""
    if config.fine_tune_steps == 0:
        # tfmot applies masks inside a training step: one step at a negligible rate
        # prunes without changing the remaining weights.
        config = config.model_copy(update={"fine_tune_steps": 1, "learning_rate": 1e-12})
    model, names, losses = prune_and_finetune(
        artifact.keras_model, context, config, schedule, m_by_n=m_by_n
    )
    sparsity = kernel_sparsity(model, names)
    context.note(f"{label}: {len(names)} layers pruned to {sparsity:.1%} zeros")
    return artifact.with_keras(
        model,
        sparsity=round(sparsity, 4),
        pruned_layers=len(names),
        prune_final_loss=losses[-1] if losses else None,
        **facts,
    )


class _PruneBase(Strategy):
    stage = "prune"

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if not any(layer.kind in _PRUNABLE_KINDS and not layer.custom for layer in info.layers):
            return Support.no("no prunable conv/dense layer")
        return Support.yes()


class MagnitudePrune(_PruneBase):
    """Unstructured magnitude pruning with a PolynomialDecay schedule.

    Shrinks the gzip (download) size; TFLite latency is unchanged
    (docs/measurements.md).
    """

    name = "magnitude-prune"
    summary = "tfmot magnitude pruning, PolynomialDecay to target sparsity, self-distilled"
    Config = MagnitudePruneConfig

    def candidate_params(self, profile, info) -> list[dict[str, Any]]:
        return [{"target_sparsity": 0.5}, {"target_sparsity": 0.75}]

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        sparsity = float(params.get("target_sparsity", 0.5))
        return Estimate(
            gzip_factor=measured_curve("gzip_factor.magnitude_prune", sparsity, (0.0, 1.0)),
            ssim_loss=measured_curve("ssim_loss.magnitude_prune", sparsity, (0.0, 0.0)),
            fine_tunes=True,
            note=f"{sparsity:.0%} zeros: smaller gzip, same latency",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: MagnitudePruneConfig):
        """Prune to ``target_sparsity`` while fine-tuning, then strip the wrappers."""
        import tensorflow_model_optimization as tfmot

        steps = max(config.fine_tune_steps, 1)
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=config.target_sparsity,
            begin_step=0,
            end_step=max(1, int(steps * 0.7)),
            frequency=max(1, steps // 10),
        )
        if config.fine_tune_steps == 0:
            schedule = tfmot.sparsity.keras.ConstantSparsity(config.target_sparsity, 0, frequency=1)
        return _prune_stage(artifact, context, config, schedule, False, self.name)


class TwoFourPrune(_PruneBase):
    """2:4 structured sparsity (two zeros in every four weights) on Conv2D and Dense."""

    name = "prune-2x4"
    summary = "tfmot 2:4 (m-by-n) sparsity on Conv2D/Dense, self-distilled"
    Config = FineTuneConfig

    def supports(self, profile, info, pipeline) -> Support:
        if not any(layer.kind in ("conv", "dense") and not layer.custom for layer in info.layers):
            return Support.no("2:4 sparsity needs Conv2D or Dense layers")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        return Estimate(
            gzip_factor=measured("gzip_factor.prune_2x4"),
            ssim_loss=measured("ssim_loss.prune_2x4"),
            fine_tunes=True,
            note="50% zeros in a 2:4 pattern: smaller gzip, same latency on CPU/GPU delegates",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: FineTuneConfig):
        """Apply 2:4 sparsity from the first step and fine-tune."""
        import tensorflow_model_optimization as tfmot

        schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
        return _prune_stage(
            artifact, context, config, schedule, True, self.name, sparsity_pattern="2:4"
        )


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the pruning strategies."""
    registry.add(MagnitudePrune)
    registry.add(TwoFourPrune)
