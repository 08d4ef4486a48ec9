"""Measure a `.tflite` the way every report states it: size, gzip size, zero weights,
LiteRT host latency, the cost model's target estimate, and fidelity vs the float model.

Shared by the evaluate stage and the plan search, so a candidate the search measured and
the result a report shows are measured the same way.
"""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np

from compressor.core.artifact import is_frozen_graph
from compressor.core.context import RunContext
from compressor.core.outputs import ModelOutputs
from compressor.litert.crash_guard import guarded_outputs
from compressor.planning.cost_model import estimate_latency_ms


def gzip_size(data: bytes) -> int:
    """Size of ``data`` after gzip at level 9 (what an app download pays)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def weight_zero_fraction(model: bytes) -> float:
    """Fraction of exactly-zero values in the model's constant weight buffers."""
    from compressor.litert.tflite_runtime import constant_tensors

    total = zeros = 0
    for values in constant_tensors(model):
        total += values.size
        zeros += int(np.count_nonzero(values == 0))
    return zeros / total if total else 0.0


def estimated_latency(context: RunContext, precision: str, info: Any) -> dict[str, Any]:
    """The cost model's latency on the run's target (None where it cannot run it)."""
    profile = context.profile
    if not profile.runs(precision):
        return {
            "estimated_latency_ms": None,
            "estimated_latency_note": f"{profile.name} cannot run {precision}",
        }
    return {
        "estimated_latency_ms": round(estimate_latency_ms(profile, info, precision), 3),
        "estimated_latency_note": f"estimated for {profile.name} by the cost model",
    }


def measure_tflite(
    model: bytes,
    context: RunContext,
    precision: str,
    reference: ModelOutputs,
    images: np.ndarray,
    info: Any,
    runs: int = 20,
    warmup: int = 3,
    latency: Any = None,
    split: str | None = None,
    source_model: Any = None,
) -> tuple[dict[str, Any], ModelOutputs]:
    """All numbers of one ``.tflite`` and its outputs on ``images`` (the held-out split
    unless ``split`` names another), named and ordered as ``reference``.

    ``latency`` (``LatencyStats``) is used when the caller timed the model already, e.g.
    interleaved with the baseline. On a target that computes floats in float16, a float
    model's fidelity is that of ``source_model`` (its Keras model) re-run in float16; the
    host's float32 fidelity is kept beside it."""
    from compressor.litert.tflite_runtime import TFLiteModel, measure_latency

    threads = context.profile.threads
    if is_frozen_graph(context.float_model):  # a user's graph may crash LiteRT
        outputs = guarded_outputs(model, images, threads, f"the {precision} .tflite")
    else:
        outputs = TFLiteModel(model, threads).predict_outputs(images)
    outputs = outputs.aligned_to(reference)
    if latency is None:  # timed once the model is known to run
        latency = measure_latency(model, images[0], threads, runs, warmup)
    method, emulated = _arithmetic(context, precision, source_model, images)
    host_judgement = context.judge(reference, outputs)
    judgement = host_judgement
    if emulated is not None:
        outputs = emulated.aligned_to(reference)
        judgement = context.judge(reference, emulated)
    numbers = {
        "precision": precision,
        "size_bytes": len(model),
        "gzip_bytes": gzip_size(model),
        "weight_zero_fraction": round(weight_zero_fraction(model), 4),
        "host_latency_ms": round(latency.median_ms, 3),
        "host_latency_p90_ms": round(latency.p90_ms, 3),
        "host_threads": threads,
        "latency_runs": latency.runs,
        **estimated_latency(context, precision, info),
        **judgement.numbers(),
        "fidelity_arithmetic": method,
        **(
            {"fidelity_host_float32": host_judgement.worst.scores}
            if emulated is not None
            else {}
        ),
        "fidelity_images": int(len(images)),
        "fidelity_split": split
        or ("held_out" if context.images.held_out else "calibration (no split)"),
    }
    return numbers, outputs


def _arithmetic(
    context: RunContext, precision: str, source_model: Any, images: np.ndarray
) -> tuple[str, ModelOutputs | None]:
    """How fidelity is computed on this target, and the float16 outputs when emulated."""
    if context.profile.float_arithmetic != "float16" or precision not in ("float32", "float16"):
        return f"{precision} as LiteRT computes it on this host", None
    from compressor.litert.float16_arithmetic import emulated_outputs

    outputs, method = emulated_outputs(source_model, images)
    return method, outputs
