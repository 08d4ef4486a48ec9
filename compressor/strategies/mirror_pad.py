"""Fuse-stage graph rewrite: reflection padding (``MIRROR_PAD``) into one-row slices and a
concatenation, on a frozen graph, for targets whose delegate does not run ``MIRROR_PAD``.

Planned when the target's op list lacks ``MIRROR_PAD`` (EdgeTPU: the graph is cut at
the first one, so a style network padded at its input runs 0 % on the accelerator).
The rewrite is exact: its float outputs are checked against the original on calibration
images before the stage hands it on.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pydantic import Field

from compressor.api import (
    Artifact,
    Estimate,
    LayerInfo,
    ModelInfo,
    PipelineView,
    RunContext,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    Support,
    hookimpl,
)
from compressor.litert.frozen_graph import (
    FROZEN_KEY,
    MIRROR_PADS_KEY,
    TFLITE_FORMAT,
)
from compressor.planning.coverage import not_in_op_list
from compressor.strategies.graph_rewrite import checked_rewrite, frozen_only, graph_of


class MirrorPadConfig(StrategyConfig):
    tolerance: float = Field(
        default=1e-5,
        gt=0,
        description="Max abs float output difference allowed vs the original graph",
    )


def _elements(shape: list[int | None]) -> int:
    return int(np.prod([d or 1 for d in shape[1:]])) if len(shape) > 1 else 0


def predicted_layers(layer: LayerInfo, pads: list[list[int]]) -> list[LayerInfo]:
    """The SLICE and CONCATENATION ops one ``MIRROR_PAD`` becomes (one slice per padded
    row or column, one concatenation per padded axis), with their output shapes."""
    shape = [
        dim if dim is None else dim - before - after
        for dim, (before, after) in zip(layer.output_shape, pads, strict=False)
    ]
    layers = []
    for axis, (before, after) in enumerate(pads):
        if not before and not after:
            continue
        row = [*shape]
        row[axis] = 1
        for k in range(before + after):
            layers.append(
                LayerInfo(
                    f"{layer.name}/axis{axis}/slice{k}", "SLICE", "other", 0, 0, _elements(row), row
                )
            )
        shape[axis] = (shape[axis] or 0) + before + after
        layers.append(
            LayerInfo(
                f"{layer.name}/axis{axis}/concat",
                "CONCATENATION",
                "concat",
                0,
                0,
                _elements(shape),
                [*shape],
            )
        )
    return layers


def _runs_mirror_pad(profile) -> bool:
    return not_in_op_list("MIRROR_PAD", profile) is None


class MirrorPadToSlices(Strategy):
    """Replace MIRROR_PAD by slices + concatenation (bit-exact) on a frozen graph."""

    name = "mirror-pad-to-slices"
    stage = "fuse"
    summary = "Rewrite MIRROR_PAD (reflection padding) into SLICE + CONCATENATION, bit-exact"
    Config = MirrorPadConfig
    accepts_frozen_graph = True

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        refused = frozen_only(info)
        if refused is not None:
            return refused
        if not info.extra.get(MIRROR_PADS_KEY):
            return Support.not_needed("the graph has no MIRROR_PAD with constant paddings")
        if _runs_mirror_pad(profile):
            return Support.not_needed(f"not needed: {profile.name} runs MIRROR_PAD")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        pads = info.extra.get(MIRROR_PADS_KEY, {})
        added = sum(
            len(predicted_layers(layer, pads[layer.name]))
            for layer in info.layers
            if layer.name in pads
        )
        return Estimate(
            note=f"{len(pads)} MIRROR_PAD -> {added} SLICE/CONCATENATION ops (bit-exact)"
        )

    def rewrite_info(self, info: ModelInfo, params) -> ModelInfo:
        """The graph's ops with each constant-padded MIRROR_PAD replaced; the result is a
        float ``.tflite`` (a SavedModel source can no longer be re-converted)."""
        pads = info.extra.get(MIRROR_PADS_KEY, {})
        layers = []
        for layer in info.layers:
            layers.extend(
                predicted_layers(layer, pads[layer.name]) if layer.name in pads else [layer]
            )
        extra = {k: v for k, v in info.extra.items() if k != MIRROR_PADS_KEY}
        return replace(info, layers=layers, extra={**extra, FROZEN_KEY: TFLITE_FORMAT})

    def apply(self, artifact: Artifact, context: RunContext, config: MirrorPadConfig) -> Artifact:
        """Rewrite the graph, then check its float outputs against the original's."""
        from compressor.litert.mirror_pad_rewrite import rewrite_mirror_pads

        graph = graph_of(artifact, self.name)
        result = rewrite_mirror_pads(graph.tflite)
        for skipped in result.skipped:
            context.note(f"{self.name}: MIRROR_PAD at op {skipped}; left as it was")
        if result.rewritten == 0:
            context.note(f"{self.name}: no MIRROR_PAD to rewrite; graph unchanged")
            return artifact
        rewritten, error = checked_rewrite(
            artifact, context, result.model, self.name, config.tolerance,
            mirror_pads_rewritten=result.rewritten,
        )  # fmt: skip
        context.note(
            f"{self.name}: {result.rewritten} MIRROR_PAD -> {result.ops_added + result.rewritten}"
            f" SLICE/CONCATENATION ops; max abs float diff {error:.1e}"
        )
        return rewritten


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the MIRROR_PAD rewrite."""
    registry.add(MirrorPadToSlices)
