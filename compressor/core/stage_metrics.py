"""A quick measurement after every stage, so reports can chart baseline → each stage.

Keras outputs are measured by estimated size and latency (cost model) and by fidelity on
a few evaluation images; ``.tflite`` outputs by their real and gzip size and fidelity
through LiteRT. Host latency is measured once, by the evaluate stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compressor.core.artifact import Artifact
from compressor.core.context import RunContext
from compressor.core.cost_model import estimate_latency_ms, estimate_size_bytes
from compressor.core.fidelity import compare_outputs

SAMPLE_IMAGES = 4


def stage_snapshot(artifact: Artifact, context: RunContext) -> dict[str, Any]:
    """Size, estimated latency and fidelity (vs the float model) of a stage's output."""
    from compressor.strategies.evaluate import gzip_size

    images = context.images.evaluation[:SAMPLE_IMAGES]
    reference = context.float_outputs("evaluation")[:SAMPLE_IMAGES]
    precision = artifact.facts.get("precision", "float32") if artifact.is_tflite else "float32"
    snapshot: dict[str, Any] = {"precision": precision, "params": context.model_info.params}
    if artifact.is_tflite:
        from compressor.core.tflite_runtime import TFLiteModel

        outputs = TFLiteModel(artifact.tflite_bytes).predict(images)
        snapshot["size_bytes"] = len(artifact.tflite_bytes)
        snapshot["gzip_bytes"] = gzip_size(artifact.tflite_bytes)
    else:
        outputs = np.asarray(artifact.keras_model.predict(images, verbose=0), dtype=np.float32)
        snapshot["size_bytes"] = estimate_size_bytes(context.model_info, "float32")
        snapshot["size_is_estimate"] = True
    if context.profile.runs(precision):
        snapshot["estimated_latency_ms"] = round(
            estimate_latency_ms(context.profile, context.model_info, precision), 3
        )
    snapshot["fidelity"] = compare_outputs(reference, outputs)
    return snapshot
