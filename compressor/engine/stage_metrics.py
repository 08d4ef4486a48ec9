"""A quick measurement after every stage, so reports can chart baseline → each stage.

Fidelity is measured after every stage on a few held-out images; a ``.tflite`` output's
size is measured, a Keras output's size and every stage's target latency are estimated
by the cost model (kept apart in ``measured`` and ``estimated``). Host latency is
measured once, by the evaluate stage.
"""

from __future__ import annotations

from typing import Any

from compressor.core.artifact import Artifact
from compressor.core.context import SAMPLE_IMAGES, RunContext, predict_outputs
from compressor.planning.cost_model import estimate_latency_ms, estimate_size_bytes


def stage_snapshot(artifact: Artifact, context: RunContext) -> dict[str, Any]:
    """What is known of a stage's output, split into what was ``measured`` (fidelity on
    held-out images; size of a ``.tflite``) and what is ``estimated`` by the cost model
    (size of a Keras model, target latency)."""
    from compressor.litert.measurement import gzip_size

    images = context.images.evaluation[:SAMPLE_IMAGES]
    reference = context.float_outputs("evaluation")[:SAMPLE_IMAGES]
    precision = artifact.facts.get("precision", "float32") if artifact.is_tflite else "float32"
    measured: dict[str, Any] = {}
    estimated: dict[str, Any] = {}
    flatbuffer = artifact.tflite_bytes or (artifact.graph.tflite if artifact.graph else None)
    if flatbuffer is not None:
        from compressor.litert.tflite_runtime import TFLiteModel

        outputs = TFLiteModel(flatbuffer).predict_outputs(images)
        measured["size_bytes"] = len(flatbuffer)
        measured["gzip_bytes"] = gzip_size(flatbuffer)
    else:
        outputs = predict_outputs(artifact.keras_model, images)
        estimated["size_bytes"] = estimate_size_bytes(context.model_info, "float32")
    if context.profile.runs(precision):
        estimated["latency_ms"] = round(
            estimate_latency_ms(context.profile, context.model_info, precision), 3
        )
    judgement = context.judge(reference, outputs)
    measured["fidelity"] = judgement.worst.scores
    measured["fidelity_metric"] = judgement.worst.primary
    measured["fidelity_images"] = int(len(images))
    return {
        "precision": precision,
        "params": context.model_info.params,
        "measured": measured,
        "estimated": estimated,
    }
