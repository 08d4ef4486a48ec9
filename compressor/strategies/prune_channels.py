"""Structured channel pruning: remove whole filters, rebuild a smaller Keras model,
recover by self-distillation. Unlike unstructured pruning (zeros that only gzip well),
fewer channels mean fewer MACs, so CPU, GPU and EdgeTPU latency drops too."""

from __future__ import annotations

from typing import Any

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
    fine_tune_on_float,
    hookimpl,
)
from compressor.core.channels import GROUPS_KEY, prune_channels
from compressor.planning.channel_scaling import scale_info
from compressor.planning.measured_constants import measured_curve


class ChannelPruneConfig(StrategyConfig):
    keep: float = Field(default=0.75, gt=0, lt=1, description="Fraction of filters kept")
    alignment: int = Field(
        default=4, ge=1, le=64, description="Kept channels are a multiple of this"
    )
    fine_tune_steps: int = Field(default=200, ge=0, le=1_000_000, description="Distill steps")
    batch_size: int = Field(default=4, ge=1, le=512, description="Images per step")
    learning_rate: float = Field(default=1e-3, gt=0, le=1, description="Adam learning rate")


class ChannelPrune(Strategy):
    """Remove the least salient filters (L1 norm × norm scale) of every prunable conv."""

    name = "prune-channels"
    stage = "prune"
    summary = "Structured channel pruning (whole filters), smaller model, self-distilled"
    Config = ChannelPruneConfig

    def candidate_params(self, profile, info) -> list[dict[str, Any]]:
        alignment = profile.channel_alignment or 4
        return [{"keep": 0.75, "alignment": alignment}, {"keep": 0.5, "alignment": alignment}]

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if not info.extra.get(GROUPS_KEY):
            return Support.no("no conv whose filters can be removed alone (all feed adds/outputs)")
        return Support.yes()

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        config = self.Config.model_validate(params)
        return scale_info(info, config.keep, config.alignment)

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        config = self.Config.model_validate(params)
        smaller = scale_info(info, config.keep, config.alignment)
        share = 1 - smaller.macs / info.macs if info.macs else 0.0
        return Estimate(
            ssim_loss=measured_curve("ssim_loss.prune_channels", config.keep, (1.0, 0.0)),
            fine_tunes=True,
            note=f"keeps {config.keep:.0%} of filters: {share:.0%} fewer MACs (latency drops)",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: ChannelPruneConfig):
        """Prune filters, rebuild, and fine-tune the smaller model on the float outputs."""
        from compressor.core.model_info import model_info_from_keras

        model = artifact.keras_model
        before = model_info_from_keras(model)
        if not before.extra.get(GROUPS_KEY):
            raise StageError("prune-channels: the model has no prunable channel group")
        smaller, sizes = prune_channels(
            model,
            config.keep,
            config.alignment,
            context.keras_objects,
        )
        losses = fine_tune_on_float(smaller, context, config)
        after = model_info_from_keras(smaller)
        context.model_info = after
        context.note(
            f"{self.name}: {len(sizes)} convs pruned, MACs {before.macs / 1e6:.1f}M -> "
            f"{after.macs / 1e6:.1f}M, params {before.params:,} -> {after.params:,}"
            + (f", distill loss {losses[0]:.5f} -> {losses[-1]:.5f}" if losses else "")
        )
        return artifact.with_keras(
            smaller,
            pruned_channels={k: list(v) for k, v in sizes.items()},
            macs_before=before.macs,
            macs_after=after.macs,
        )


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register structured channel pruning."""
    registry.add(ChannelPrune)
