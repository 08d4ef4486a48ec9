"""Fuse stage: fold BatchNormalization into the preceding Conv/Depthwise/Dense in Keras."""

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
    hookimpl,
)

_FOLDABLE = ("Conv2D", "DepthwiseConv2D", "Dense")


class FoldConfig(StrategyConfig):
    tolerance: float = Field(
        default=1e-3, gt=0, description="Max abs output difference allowed vs the unfused model"
    )


def checked_rewrite_error(
    name: str, original: Any, rewritten: Any, context: RunContext, tolerance: float, hint: str
) -> float:
    """Max abs output difference between two Keras models on calibration images; a
    StageError naming ``name`` when it exceeds ``tolerance`` (a rewrite must keep the
    function)."""
    images = context.images.calibration[:4]
    before = original.predict(images, verbose=0)
    error = float(np.max(np.abs(before - rewritten.predict(images, verbose=0))))
    if error > tolerance:
        raise StageError(f"{name}: rewritten model differs by {error:.2e} (> {tolerance:g})", hint)
    return error


def _inbound_layers(layer: Any) -> list[Any]:
    layers = []
    for node in layer._inbound_nodes:
        inbound = node.inbound_layers
        layers.extend(inbound if isinstance(inbound, list) else [inbound])
    return layers


def find_foldable_pairs(model: Any) -> dict[str, str]:
    """Map BatchNorm layer name -> the conv/dense it follows, where folding is exact.

    Exact means: the BN normalises the last axis, has one inbound layer which is a
    foldable layer with a linear activation, and that layer feeds nothing else.
    """
    pairs = {}
    for layer in model.layers:
        if layer.__class__.__name__ != "BatchNormalization":
            continue
        axis = layer.axis[0] if isinstance(layer.axis, list | tuple) else layer.axis
        if axis not in (-1, len(layer.input_shape) - 1) or len(layer._inbound_nodes) != 1:
            continue
        inbound = _inbound_layers(layer)
        if len(inbound) != 1:
            continue
        source = inbound[0]
        if source.__class__.__name__ not in _FOLDABLE or len(source._outbound_nodes) != 1:
            continue
        if getattr(source, "activation", None).__name__ != "linear":
            continue
        pairs[layer.name] = source.name
    return pairs


def _folded_weights(source: Any, bn: Any) -> list[np.ndarray]:
    weights = source.get_weights()
    kernel = weights[0]
    bias = weights[1] if source.use_bias else None
    bn_weights = dict(
        zip(
            [w.name.split("/")[-1].split(":")[0] for w in bn.weights], bn.get_weights(), strict=True
        )
    )
    mean, variance = bn_weights["moving_mean"], bn_weights["moving_variance"]
    gamma = bn_weights.get("gamma", np.ones_like(mean))
    beta = bn_weights.get("beta", np.zeros_like(mean))
    scale = gamma / np.sqrt(variance + bn.epsilon)
    if source.__class__.__name__ == "DepthwiseConv2D":
        in_channels, multiplier = kernel.shape[2], kernel.shape[3]
        kernel = kernel * scale.reshape(in_channels, multiplier)
    else:
        kernel = kernel * scale
    if bias is None:
        bias = np.zeros_like(mean)
    return [kernel, (bias - mean) * scale + beta]


def fold_batch_norm(model: Any) -> tuple[Any, int]:
    """Return (model with every exact Conv+BN pair folded, number of pairs folded)."""
    import tf_keras as keras

    pairs = find_foldable_pairs(model)
    if not pairs:
        return model, 0
    sources = {source: bn for bn, source in pairs.items()}

    def clone(layer: Any) -> Any:
        if layer.name in pairs:
            return keras.layers.Activation("linear", name=layer.name)
        config = layer.get_config()
        if layer.name in sources:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in folded.layers:
        original = model.get_layer(layer.name)
        if layer.name in sources:
            layer.set_weights(_folded_weights(original, model.get_layer(sources[layer.name])))
        elif layer.name not in pairs and original.weights:
            layer.set_weights(original.get_weights())
    return folded, len(pairs)


class FoldBatchNorm(Strategy):
    """Fold BatchNorm into convs, checked numerically against the unfused model.

    Not planned automatically: the TFLite converter folds Conv+BN itself, so the
    ``.tflite`` the target runs has the same ops either way (measured: outputs within
    1e-7, file 96 bytes larger). A plan may still name it, e.g. to export a folded Keras
    model.
    """

    name = "fold-batchnorm"
    stage = "fuse"
    summary = "Fold BatchNorm into the preceding Conv/Depthwise/Dense (Keras-level; plan only)"
    Config = FoldConfig
    auto_plan = False

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if info.count("batch_norm") == 0:
            return Support.no("the model has no BatchNormalization to fold")
        if pipeline.has("qat"):
            return Support.no("QAT already folds Conv+BN in its own graph transform")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        return Estimate(note=f"folds up to {info.count('batch_norm')} BatchNorm layers")

    def apply(self, artifact: Artifact, context: RunContext, config: FoldConfig) -> Artifact:
        """Fold, then compare outputs on the evaluation images."""
        model = artifact.keras_model
        if model is None:
            raise StageError("fold-batchnorm needs a Keras model (run it before quantize)")
        folded, count = fold_batch_norm(model)
        if count == 0:
            context.note("fold-batchnorm: no exactly foldable Conv+BatchNorm pair; model unchanged")
            return artifact
        error = checked_rewrite_error(
            self.name,
            model,
            folded,
            context,
            config.tolerance,
            "raise fuse.params.tolerance or drop the fuse stage",
        )
        context.note(f"fold-batchnorm: folded {count} BatchNorm layers, max abs diff {error:.1e}")
        return artifact.with_keras(folded, folded_batch_norms=count, fold_max_abs_error=error)


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the BatchNorm folding strategy."""
    registry.add(FoldBatchNorm)
