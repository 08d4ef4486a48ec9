"""What the fuse-stage graph rewrites of a frozen graph share: they apply to frozen
graphs only, and a rewritten graph is checked against the original on calibration images
before the stage hands it on."""

from __future__ import annotations

import numpy as np

from compressor.api import Artifact, ModelInfo, RunContext, StageError, Support
from compressor.litert.frozen_graph import (
    TFLITE_FORMAT,
    FrozenGraph,
    is_frozen,
    model_info_from_tflite,
)


def frozen_only(info: ModelInfo) -> Support | None:
    """Why a rewrite of a frozen graph does not apply to ``info`` (None when it may)."""
    if is_frozen(info):
        return None
    return Support.no(
        "rewrites a frozen graph (.tflite or SavedModel); a Keras model's ops are "
        "known only after conversion"
    )


def graph_of(artifact: Artifact, name: str) -> FrozenGraph:
    """The artifact's frozen graph; a ``StageError`` when the stage got a Keras model."""
    if artifact.graph is None:
        raise StageError(
            f"{name}: needs a frozen graph (.tflite or SavedModel) before quantize",
            "drop the fuse stage for Keras models",
        )
    return artifact.graph


def checked_rewrite(
    artifact: Artifact,
    context: RunContext,
    rewritten: bytes,
    name: str,
    tolerance: float,
    **facts: object,
) -> tuple[Artifact, float]:
    """The artifact with ``rewritten`` as its graph, once every output of it is within
    ``tolerance`` of the original's on 4 calibration images (a ``StageError`` when not);
    also the largest difference. The run's model facts follow the new graph."""
    from compressor.litert.tflite_runtime import TFLiteModel

    graph = graph_of(artifact, name)
    images = context.images.calibration[:4]
    before = graph.predict_outputs(images)
    after = TFLiteModel(rewritten).predict_outputs(images).aligned_to(before)
    error = max(
        float(np.max(np.abs(a - b))) for a, b in zip(before.arrays, after.arrays, strict=True)
    )
    if error > tolerance:
        raise StageError(
            f"{name}: rewritten graph differs by {error:.2e} (> {tolerance:g})",
            "drop the fuse stage; report the model so the rewrite can be fixed",
        )
    context.model_info = model_info_from_tflite(rewritten, graph.name, TFLITE_FORMAT)
    result = artifact.with_graph(
        FrozenGraph(rewritten, TFLITE_FORMAT, graph.name), rewrite_max_abs_diff=error, **facts
    )
    return result, error
