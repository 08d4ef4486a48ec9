"""Activation swap: replace activations the target's delegate cannot run (e.g. ELU or GELU
on the EdgeTPU) with the closest one it can, then recover by self-distillation.

An unsupported op cuts an EdgeTPU graph: everything after it runs on the CPU. Swapping
the activation keeps the whole model on the accelerator; the fine-tune teaches the
swapped model to match the original's outputs.
"""

from __future__ import annotations

from dataclasses import replace
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
from compressor.planning.coverage import not_in_op_list
from compressor.planning.op_prediction import activation_ops

# Closest replacements, best first (shape of the curve, then cost).
REPLACEMENTS = {
    "elu": ("relu",),
    "selu": ("relu",),
    "gelu": ("relu",),
    "swish": ("hard_swish", "relu6", "relu"),
    "silu": ("hard_swish", "relu6", "relu"),
    "softplus": ("relu",),
    "leaky_relu": ("prelu", "relu"),
    "tanh": ("relu6",),
}
# Activations that are separate Keras layer classes (rebuilt as Activation layers).
_ACTIVATION_CLASSES = {"ELU", "LeakyReLU", "ReLU", "Activation"}


class ActivationSwapConfig(StrategyConfig):
    swaps: dict[str, str] = Field(
        default_factory=dict,
        description="old -> new activation (e.g. elu: relu); empty: chosen for the profile",
    )
    fine_tune_steps: int = Field(default=200, ge=0, le=1_000_000, description="Distill steps")
    batch_size: int = Field(default=8, ge=1, le=512, description="Images per step")
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="Adam learning rate")


def _runs(profile, activation: str) -> bool:
    ops = activation_ops(activation)
    return ops is not None and not any(not_in_op_list(op, profile) for op in ops)


def swaps_for(profile, info: ModelInfo) -> dict[str, str]:
    """Map each activation the profile cannot run to its best runnable replacement."""
    swaps = {}
    for layer in info.layers:
        activation = layer.activation
        if not activation or activation in swaps or _runs(profile, activation):
            continue
        replacement = next((r for r in REPLACEMENTS.get(activation, ()) if _runs(profile, r)), None)
        if replacement:
            swaps[activation] = replacement
    return swaps


def _swapped_layer(layer: Any, swaps: dict[str, str], activation: str | None) -> Any:
    import tf_keras as keras

    config = layer.get_config()
    if activation not in swaps:
        return layer.__class__.from_config(config)
    new = swaps[activation]
    if layer.__class__.__name__ in _ACTIVATION_CLASSES:
        return keras.layers.Activation(_keras_name(new), name=layer.name)
    config["activation"] = _keras_name(new)
    return layer.__class__.from_config(config)


def _keras_name(activation: str) -> str:
    return {"hard_swish": "hard_silu"}.get(activation, activation)


def swap_activations(model: Any, swaps: dict[str, str]) -> tuple[Any, list[str]]:
    """A copy of ``model`` with ``swaps`` applied, weights copied; and the swapped layers."""
    import tf_keras as keras

    from compressor.core.model_info import model_info_from_keras

    activations = {layer.name: layer.activation for layer in model_info_from_keras(model).layers}
    changed = [name for name, act in activations.items() if act in swaps]
    rebuilt = keras.models.clone_model(
        model,
        clone_function=lambda layer: _swapped_layer(layer, swaps, activations.get(layer.name)),
    )
    for layer, original in zip(rebuilt.layers, model.layers, strict=True):
        if original.weights:
            layer.set_weights(original.get_weights())
    return rebuilt, changed


class ActivationSwap(Strategy):
    """Replace delegate-unsupported activations and distill from the original model."""

    name = "activation-swap"
    stage = "distill"
    summary = "Replace activations the delegate cannot run (e.g. ELU on EdgeTPU), then distill"
    Config = ActivationSwapConfig

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        unsupported = {
            layer.activation
            for layer in info.layers
            if layer.activation and not _runs(profile, layer.activation)
        }
        if not unsupported:
            return Support.not_needed(f"not needed: {profile.name} runs every activation")
        swaps = swaps_for(profile, info)
        if not swaps:
            return Support.no(
                f"no replacement {profile.name} runs for {', '.join(sorted(unsupported))}"
            )
        return Support.yes()

    def candidate_params(self, profile, info) -> list[dict[str, Any]]:
        return [{"swaps": swaps_for(profile, info)}]

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        swaps = params.get("swaps") or {}
        layers = [
            replace(layer, activation=swaps[layer.activation])
            if layer.activation in swaps
            else layer
            for layer in info.layers
        ]
        return replace(info, layers=layers)

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        swaps = params.get("swaps") or swaps_for(profile, info)
        text = ", ".join(f"{old}→{new}" for old, new in swaps.items())
        return Estimate(
            ssim_loss=0.02, fine_tunes=True, note=f"{text}: keeps the graph on the delegate"
        )

    def apply(
        self, artifact: Artifact, context: RunContext, config: ActivationSwapConfig
    ) -> Artifact:
        """Swap, copy weights, fine-tune on the float model's outputs."""
        from compressor.core.model_info import model_info_from_keras

        swaps = config.swaps or swaps_for(context.profile, context.model_info)
        if not swaps:
            raise StageError(f"activation-swap: nothing to swap for {context.profile.name}")
        model, changed = swap_activations(artifact.keras_model, swaps)
        losses = fine_tune_on_float(model, context, config)
        context.model_info = model_info_from_keras(model)
        text = ", ".join(f"{old}→{new}" for old, new in swaps.items())
        context.note(
            f"{self.name}: {text} in {len(changed)} layers"
            + (f", distill loss {losses[0]:.5f} -> {losses[-1]:.5f}" if losses else "")
        )
        return artifact.with_keras(model, activation_swaps=swaps, swapped_layers=changed)


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the activation swap."""
    registry.add(ActivationSwap)
