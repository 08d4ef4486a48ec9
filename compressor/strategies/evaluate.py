"""Evaluate stage: size, host latency in LiteRT, estimated target latency, fidelity."""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np
from pydantic import Field

from compressor.core.artifact import Artifact
from compressor.core.context import RunContext
from compressor.core.cost_model import estimate_latency_ms
from compressor.core.coverage import op_coverage
from compressor.core.errors import StageError
from compressor.core.fidelity import compare_outputs
from compressor.core.stage_metrics import SAMPLE_IMAGES
from compressor.core.strategy import Strategy, StrategyConfig, StrategyRegistry
from compressor.core.tflite_runtime import TFLiteModel, list_operators, measure_latency
from compressor.plugins import hookimpl


class EvaluateConfig(StrategyConfig):
    runs: int = Field(default=20, ge=1, le=1000, description="Timed invocations after warm-up")
    warmup: int = Field(default=3, ge=0, le=100, description="Untimed invocations first")
    max_images: int = Field(default=8, ge=1, le=500, description="Images used for fidelity")


def gzip_size(data: bytes) -> int:
    """Size of ``data`` after gzip at level 9 (what an app download pays)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def weight_zero_fraction(model: bytes) -> float:
    """Fraction of exactly-zero values in the model's constant weight buffers."""
    from compressor.core.tflite_runtime import constant_tensors

    total = zeros = 0
    for values in constant_tensors(model):
        total += values.size
        zeros += int(np.count_nonzero(values == 0))
    return zeros / total if total else 0.0


def measure_tflite(
    model: bytes,
    context: RunContext,
    precision: str,
    config: EvaluateConfig,
    reference: np.ndarray,
    images: np.ndarray,
    info: Any,
) -> tuple[dict[str, Any], np.ndarray]:
    """All numbers of one ``.tflite`` (size, gzip, latency, estimate, fidelity), and its
    outputs on ``images``."""
    threads = context.profile.threads
    latency = measure_latency(model, images[0], threads, config.runs, config.warmup)
    outputs = TFLiteModel(model, threads).predict(images)
    numbers = {
        "precision": precision,
        "size_bytes": len(model),
        "gzip_bytes": gzip_size(model),
        "weight_zero_fraction": round(weight_zero_fraction(model), 4),
        "host_latency_ms": round(latency.median_ms, 3),
        "host_latency_p90_ms": round(latency.p90_ms, 3),
        "host_threads": threads,
        "latency_runs": latency.runs,
        **_estimate(context, precision, info),
        "fidelity": compare_outputs(reference, outputs),
    }
    return numbers, outputs


def _estimate(context: RunContext, precision: str, info: Any) -> dict[str, Any]:
    profile = context.profile
    if not profile.runs(precision):
        return {
            "estimated_latency_ms": None,
            "estimated_latency_note": f"{profile.name} cannot run {precision}",
        }
    latency = estimate_latency_ms(profile, info, precision)
    return {
        "estimated_latency_ms": round(latency, 3),
        "estimated_latency_note": f"estimated for {profile.name} by the cost model",
    }


def convert_float32(keras_model: Any) -> bytes:
    """The float32 ``.tflite`` of a Keras model: the baseline every result is compared to."""
    import tensorflow as tf

    from compressor.core.native_logs import quiet_native_logs

    with quiet_native_logs():
        return tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()


class LiteRTEvaluate(Strategy):
    """Measure the converted model against the float32 baseline on this host."""

    name = "litert-evaluate"
    stage = "evaluate"
    summary = "Size, gzip, LiteRT host latency (median/p90), estimated target latency, fidelity"
    Config = EvaluateConfig

    def apply(self, artifact: Artifact, context: RunContext, config: EvaluateConfig) -> Artifact:
        """Fill ``context.results`` with ``baseline`` and ``result`` measurements."""
        if not artifact.is_tflite:
            raise StageError("litert-evaluate needs a .tflite: the plan must have a quantize stage")
        images = context.images.evaluation[: config.max_images]
        reference = context.float_outputs("evaluation")[: config.max_images]
        context.progress("measuring float32 baseline", 0.1)
        baseline_bytes = convert_float32(context.float_model)
        context.results["baseline"], _ = measure_tflite(
            baseline_bytes,
            context,
            "float32",
            config,
            reference,
            images,
            context.original_model_info,
        )
        context.progress("measuring compressed model", 0.6)
        precision = artifact.facts.get("precision", "float32")
        context.results["result"], outputs = measure_tflite(
            artifact.tflite_bytes,
            context,
            precision,
            config,
            reference,
            images,
            context.model_info,
        )
        shown = min(SAMPLE_IMAGES, len(images))
        context.samples = {
            "inputs": images[:shown],
            "float": reference[:shown],
            "compressed": outputs[:shown],
        }
        coverage = op_coverage(list_operators(artifact.tflite_bytes), context.profile)
        context.results["result"]["op_coverage"] = coverage.to_dict()
        if coverage.fallback:
            context.note(
                f"op coverage on {context.profile.name}: {coverage.delegated_ops}/"
                f"{coverage.total_ops} ops delegated; graph cut at {coverage.cut_at}"
            )
        context.progress("done", 1.0)
        return artifact


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the LiteRT evaluation strategy."""
    registry.add(LiteRTEvaluate)
