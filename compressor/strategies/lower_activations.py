"""Fuse-stage graph rewrite: ``HARD_SWISH`` and ``PRELU`` of a frozen graph into the
arithmetic they are, for targets that cannot run them as quantized.

Planned on full-integer targets (EdgeTPU) when the graph has either op: the compiler has
no ``HARD_SWISH`` and cuts the graph at the first one, and ai-edge-quantizer leaves
``PRELU`` in float (no int8 kernel), which cuts it the same way. The rewrite is exact in
float; its outputs are checked against the original on calibration images before the
stage hands it on.
"""

from __future__ import annotations

from dataclasses import replace

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
    TFLITE_FORMAT,
)
from compressor.planning.coverage import not_in_op_list
from compressor.strategies.graph_rewrite import checked_rewrite, frozen_only, graph_of

# what each op becomes (and the op kind the cost model reads)
_DECOMPOSED = {
    "HARD_SWISH": (("ADD", "add"), ("ADD", "add"), ("RELU", "activation"), ("RELU", "activation"),
                   ("SUB", "add"), ("MUL", "mul"), ("MUL", "mul")),  # fmt: skip
    "PRELU": (("RELU", "activation"), ("SUB", "add"), ("MUL", "mul"), ("ADD", "add")),
}


class LowerActivationsConfig(StrategyConfig):
    tolerance: float = Field(
        default=1e-4,
        gt=0,
        description="Max abs float output difference allowed vs the original graph (PRELU "
        "is bit-exact; HARD_SWISH's four ops round differently, measured 4e-5 at the output "
        "of MediaPipe's selfie segmenter with 11 of them)",
    )


def ops_to_lower(info: ModelInfo, profile) -> list[str]:
    """Which of HARD_SWISH / PRELU ``profile`` needs decomposed in this graph: those not
    in its op list, and on a full-integer target PRELU (ai-edge-quantizer keeps it
    float)."""
    present = {layer.class_name for layer in info.layers}
    wanted = []
    for name in _DECOMPOSED:
        if name not in present:
            continue
        missing = not_in_op_list(name, profile) is not None
        stays_float = name == "PRELU" and profile.requires_full_integer
        if missing or stays_float:
            wanted.append(name)
    return wanted


class LowerActivations(Strategy):
    """Decompose HARD_SWISH and PRELU into ADD/SUB/MUL/RELU(6) on a frozen graph."""

    name = "lower-activations"
    stage = "fuse"
    summary = "Rewrite HARD_SWISH and PRELU into ADD/SUB/MUL/RELU ops (int8-quantizable)"
    Config = LowerActivationsConfig
    accepts_frozen_graph = True

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        refused = frozen_only(info)
        if refused is not None:
            return refused
        if not ops_to_lower(info, profile):
            return Support.not_needed(
                f"not needed: no HARD_SWISH or PRELU that {profile.name} cannot run quantized"
            )
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        wanted = ops_to_lower(info, profile)
        count = sum(1 for layer in info.layers if layer.class_name in wanted)
        return Estimate(note=f"{count} {'/'.join(wanted)} -> plain arithmetic (exact in float)")

    def rewrite_info(self, info: ModelInfo, params) -> ModelInfo:
        """The graph's ops with every HARD_SWISH (7 ops) and PRELU (4 ops) replaced (the
        fuse stage decides on the graph it is given, so it rewrites both)."""
        layers: list[LayerInfo] = []
        for layer in info.layers:
            parts = _DECOMPOSED.get(layer.class_name)
            if parts is None:
                layers.append(layer)
                continue
            for index, (op, kind) in enumerate(parts):
                layers.append(replace(layer, name=f"{layer.name}/{index}", class_name=op,
                                      kind=kind, params=0, macs=0))  # fmt: skip
        return replace(info, layers=layers, extra={**info.extra, FROZEN_KEY: TFLITE_FORMAT})

    def apply(
        self, artifact: Artifact, context: RunContext, config: LowerActivationsConfig
    ) -> Artifact:
        """Rewrite the graph, then check its float outputs against the original's."""
        from compressor.litert.activation_rewrite import rewrite_activations

        result = rewrite_activations(graph_of(artifact, self.name).tflite)
        if not result.rewritten:
            context.note(f"{self.name}: no HARD_SWISH or PRELU to rewrite; graph unchanged")
            return artifact
        rewritten, error = checked_rewrite(
            artifact, context, result.model, self.name, config.tolerance,
            activations_rewritten=dict(result.rewritten),
        )  # fmt: skip
        done = ", ".join(f"{count} {name}" for name, count in result.rewritten.items())
        context.note(f"{self.name}: {done} -> plain arithmetic; max abs float diff {error:.1e}")
        return rewritten


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the HARD_SWISH / PRELU rewrite."""
    registry.add(LowerActivations)
