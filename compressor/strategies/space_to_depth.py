"""Fuse stage: run large-kernel, narrow, full-resolution convs on space-to-depth blocks
(``compressor.core.space_to_depth_conv``): the same function, a GEMM shape the CPU fills.

Which convs gain is predicted by the profile's conv channel tiles (the cost model's
``tile_padded_macs``) and proven by the search's measurement; the rewritten model is
checked numerically against the original before it moves on.
"""

from __future__ import annotations

from dataclasses import replace
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
from compressor.core.keras_objects import KerasObjectRegistry
from compressor.core.model_info import LayerInfo
from compressor.core.profiles import ConvTiles
from compressor.litert.frozen_graph import is_frozen
from compressor.planning.cost_model import tile_padded_macs
from compressor.planning.coverage import not_in_op_list

MIN_GAIN = 1.2  # rewrite a conv only where the tiles predict at least this speed-up


def block_form(layer: LayerInfo, block: int = 2) -> LayerInfo | None:
    """``layer`` as the block-grid conv that computes it, or None when it has none (not a
    plain stride-1 'same' conv with an odd kernel on a size divisible by ``block``)."""
    from compressor.core.space_to_depth_conv import block_kernel_size

    if layer.class_name != "Conv2D" or not layer.stride_one_same or not layer.kernel:
        return None
    kh, kw = layer.kernel
    shape = layer.output_shape
    if kh % 2 == 0 or kw % 2 == 0 or len(shape) != 4:
        return None
    if shape[1] is None or shape[2] is None or shape[1] % block or shape[2] % block:
        return None
    size_h, size_w = block_kernel_size(kh, block), block_kernel_size(kw, block)
    cin, cout = layer.in_channels * block**2, layer.out_channels * block**2
    pixels = shape[1] * shape[2] // block**2
    return replace(
        layer,
        class_name="SpaceToDepthConv2D",
        macs=pixels * size_h * size_w * cin * cout,
        params=size_h * size_w * cin * cout + cout,
        kernel=[size_h, size_w],
        in_channels=cin,
        out_channels=cout,
        stride_one_same=False,
    )


def gainful_layers(info: ModelInfo, tiles: ConvTiles) -> dict[str, float]:
    """Convs whose block form the tiles predict at least ``MIN_GAIN``× faster: name → gain."""
    gains = {}
    for layer in info.layers:
        rewritten = block_form(layer)
        if rewritten is None:
            continue
        gain = tile_padded_macs(layer, tiles) / tile_padded_macs(rewritten, tiles)
        if gain >= MIN_GAIN:
            gains[layer.name] = round(gain, 2)
    return gains


def rewrite_model(model: Any, names: set[str]) -> Any:
    """``model`` with the Conv2D layers in ``names`` replaced by SpaceToDepthConv2D layers
    computing the same function (weights rearranged by ``block_weights``)."""
    import tf_keras as keras

    from compressor.core.space_to_depth_conv import (
        SpaceToDepthConv2D,
        block_kernel_size,
        block_weights,
    )

    def clone(layer: Any) -> Any:
        if layer.name in names:
            kernel_h, kernel_w = layer.kernel_size
            return SpaceToDepthConv2D(
                layer.filters,
                (block_kernel_size(kernel_h), block_kernel_size(kernel_w)),
                activation=keras.activations.serialize(layer.activation),
                name=layer.name,
            )
        return layer.__class__.from_config(layer.get_config())

    rewritten = keras.models.clone_model(model, clone_function=clone)
    for layer in rewritten.layers:
        original = model.get_layer(layer.name)
        if layer.name in names:
            weights = original.get_weights()
            layer.set_weights(
                list(block_weights(weights[0], weights[1] if len(weights) > 1 else None))
            )
        elif original.weights:
            layer.set_weights(original.get_weights())
    return rewritten


class SpaceToDepthConfig(StrategyConfig):
    layers: list[str] = Field(
        default_factory=list,
        description="Conv layers to rewrite (empty: those the channel tiles predict to gain)",
    )
    tiles: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="Input and output channel tiles that decide which convs gain "
        "(None: the profile's conv_tiles)",
    )
    tolerance: float = Field(
        default=1e-3, gt=0, description="Max abs output difference allowed vs the original"
    )


_BLOCK_OPS = ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE")


class SpaceToDepth(Strategy):
    """Compute narrow large-kernel convs on 2×2 space-to-depth blocks (exact rewrite)."""

    name = "space-to-depth"
    stage = "fuse"
    summary = "Run narrow large-kernel convs on 2x2 space-to-depth blocks (same function)"
    Config = SpaceToDepthConfig

    def candidate_params(self, profile, info: ModelInfo) -> list[dict[str, Any]]:
        tiles = profile.conv_tiles
        return [{"tiles": [tiles.input, tiles.output]} if tiles else {}]

    @staticmethod
    def _chosen(info: ModelInfo, config: SpaceToDepthConfig, profile_tiles) -> dict[str, float]:
        """The convs to rewrite (name → predicted gain; 0 where the plan names a conv
        the tiles do not pick)."""
        tiles = ConvTiles(input=config.tiles[0], output=config.tiles[1]) if config.tiles else None
        gains = gainful_layers(info, tiles or profile_tiles) if tiles or profile_tiles else {}
        if config.layers:
            return {name: gains.get(name, 0.0) for name in config.layers}
        return gains

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if is_frozen(info):
            return Support.no("rewrites Keras models (a frozen graph's convs are left as they are)")
        if profile.conv_tiles is None:
            return Support.not_needed(f"not needed: {profile.name} states no conv channel tiles")
        for op in _BLOCK_OPS:
            missing = not_in_op_list(op, profile)
            if missing:
                return Support.no(missing)
        if pipeline.has("qat"):
            return Support.no("QAT wraps the Keras convs; the rewrite would drop its quantizers")
        if not gainful_layers(info, profile.conv_tiles):
            return Support.not_needed(
                f"not needed: no conv gains {MIN_GAIN:g}x on {profile.name}'s channel tiles"
            )
        return Support.yes()

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        names = set(self._chosen(info, self.Config.model_validate(params), None))
        layers = [
            (block_form(layer) or layer) if layer.name in names else layer for layer in info.layers
        ]
        return replace(info, name=f"{info.name}_s2d", layers=layers, macs=0, params=0)

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        chosen = self._chosen(info, self.Config.model_validate(params), profile.conv_tiles)
        return Estimate(
            note="exact rewrite; "
            + ", ".join(f"{name} ~{gain}x" for name, gain in chosen.items() if gain)
        )

    def apply(self, artifact: Artifact, context: RunContext, config: SpaceToDepthConfig):
        """Rewrite the chosen convs, then check the outputs against the original model's."""
        from compressor.core.model_info import model_info_from_keras

        model = artifact.keras_model
        if model is None:
            raise StageError(
                f"{self.name}: needs a Keras model (a frozen graph's convs are not rewritten)",
                "drop the fuse stage for .tflite and SavedModel inputs",
            )
        info = model_info_from_keras(model)
        names = set(self._chosen(info, config, context.profile.conv_tiles))
        by_name = {layer.name: layer for layer in info.layers}
        unknown = sorted(n for n in names if n not in by_name or block_form(by_name[n]) is None)
        if unknown:
            raise StageError(
                f"{self.name}: layers.{unknown[0]} is not a stride-1 'same' Conv2D with an odd "
                "kernel on a size divisible by 2",
                "name only such convs in fuse.params.layers, or leave it empty",
            )
        if not names:
            context.note(f"{self.name}: no conv gains on this profile's tiles; model unchanged")
            return artifact
        try:
            rewritten = rewrite_model(model, names)
        except ValueError as exc:  # subclassed models cannot be cloned layer by layer
            raise StageError(f"{self.name}: cannot rebuild the model: {exc}") from exc
        images = context.images.calibration[:4]
        error = float(
            np.max(np.abs(model.predict(images, verbose=0) - rewritten.predict(images, verbose=0)))
        )
        if error > config.tolerance:
            raise StageError(
                f"{self.name}: rewritten model differs by {error:.2e} (> {config.tolerance:g})",
                "drop the fuse stage; report the model so the rewrite can be fixed",
            )
        context.model_info = model_info_from_keras(rewritten)
        context.note(
            f"{self.name}: {', '.join(sorted(names))} on 2x2 blocks; max abs diff {error:.1e}"
        )
        return artifact.with_keras(rewritten, space_to_depth_layers=sorted(names))


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the space-to-depth conv rewrite."""
    registry.add(SpaceToDepth)


@hookimpl
def register_keras_objects(registry: KerasObjectRegistry) -> None:
    """Register SpaceToDepthConv2D, so rewritten models load by name."""
    from compressor.core.space_to_depth_conv import SpaceToDepthConv2D

    registry.add("SpaceToDepthConv2D", SpaceToDepthConv2D)
    registry.add("compressor>SpaceToDepthConv2D", SpaceToDepthConv2D)
