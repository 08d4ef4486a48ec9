"""Evaluate stage: size, host latency in LiteRT, estimated target latency, fidelity."""

from __future__ import annotations

from pydantic import Field

from compressor.api import (
    Artifact,
    ModelOutputs,
    RunContext,
    StageError,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    hookimpl,
)
from compressor.core.artifact import is_frozen_graph
from compressor.core.context import SAMPLE_IMAGES
from compressor.core.labels import label_accuracy
from compressor.litert.crash_guard import check_runs
from compressor.litert.measurement import measure_tflite
from compressor.litert.tflite_coverage import model_coverage
from compressor.litert.tflite_runtime import interleaved_stats


class EvaluateConfig(StrategyConfig):
    runs: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Timed invocations (5 rounds, interleaved with the baseline)",
    )
    warmup: int = Field(default=3, ge=0, le=100, description="Untimed invocations first")
    max_images: int = Field(
        default=256,
        ge=1,
        le=10000,
        description="Held-out images used for fidelity (all of them up to this many)",
    )


class LiteRTEvaluate(Strategy):
    """Measure the converted model against the float32 baseline on this host."""

    name = "litert-evaluate"
    stage = "evaluate"
    summary = "Size, gzip, LiteRT host latency (median/p90), estimated target latency, fidelity"
    Config = EvaluateConfig
    accepts_frozen_graph = True

    def apply(self, artifact: Artifact, context: RunContext, config: EvaluateConfig) -> Artifact:
        """Fill ``context.results`` with ``baseline`` and ``result`` measurements."""
        if not artifact.is_tflite:
            raise StageError("litert-evaluate needs a .tflite: the plan must have a quantize stage")
        images = context.images.evaluation[: config.max_images]
        reference = context.float_outputs("evaluation")[: config.max_images]
        baseline_bytes = context.float_tflite()
        if is_frozen_graph(context.float_model):  # a user's graph may crash LiteRT
            context.progress("running the result once in a child process", 0.05)
            check_runs(artifact.tflite_bytes, images, context.profile.threads, "the result")
        context.progress("timing float32 baseline and result, interleaved", 0.1)
        timed = interleaved_stats(
            {"baseline": baseline_bytes, "result": artifact.tflite_bytes},
            images[0],
            context.profile.threads,
            rounds=5,
            runs=max(1, config.runs // 5),
            warmup=config.warmup,
        )
        context.progress("measuring float32 baseline", 0.5)
        context.results["baseline"], baseline_outputs = measure_tflite(
            baseline_bytes,
            context,
            "float32",
            reference,
            images,
            context.original_model_info,
            latency=timed["baseline"],
            source_model=context.float_model,
        )
        context.progress("measuring compressed model", 0.7)
        precision = artifact.facts.get("precision", "float32")
        context.results["result"], outputs = measure_tflite(
            artifact.tflite_bytes,
            context,
            precision,
            reference,
            images,
            context.model_info,
            latency=timed["result"],
            source_model=artifact.source_model,
        )
        if context.images.evaluation_labels is not None:
            _score_labels(context, baseline_outputs, outputs, config.max_images)
        shown = min(SAMPLE_IMAGES, len(images))
        context.samples = {"inputs": context.images.mapping.to_display(images[:shown])}
        image_output = _image_output(reference)
        if image_output is not None:
            context.samples["float"] = reference.named()[image_output][:shown]
            context.samples["compressed"] = outputs.named()[image_output][:shown]
        coverage = model_coverage(artifact.tflite_bytes, context.profile)
        context.results["result"]["op_coverage"] = coverage.to_dict()
        if coverage.refused:
            context.note(f"op coverage on {context.profile.name}: none: {coverage.refused}")
        elif coverage.fallback:
            context.note(
                f"op coverage on {context.profile.name}: {coverage.delegated_ops}/"
                f"{coverage.total_ops} ops delegated; graph cut at {coverage.cut_at}"
            )
        context.progress("done", 1.0)
        return artifact


def _score_labels(
    context: RunContext, baseline: ModelOutputs, result: ModelOutputs, limit: int
) -> None:
    """Accuracy against the class folders, of the baseline and the result, for every
    output judged as classification; a note when none can be read as those classes."""
    labels = context.images.evaluation_labels[:limit]
    judged = context.results["result"].get("fidelity_outputs") or {}
    names = [name for name, output in judged.items() if output["task"] == "classification"]
    for key, outputs in (("baseline", baseline), ("result", result)):
        context.results[key]["label_accuracy"] = label_accuracy(outputs, labels, names)
    if not context.results["result"]["label_accuracy"]:
        classes = len(context.images.classes)
        context.note(
            f"labels: {classes} class folders, but no classification output has a score "
            "for each of them: accuracy against the labels is not measured"
        )


def _image_output(outputs: ModelOutputs) -> str | None:
    """The first output that is a picture (shown before/after in report.html)."""
    for name, values in outputs.named().items():
        if values.ndim == 4 and min(values.shape[1:3]) >= 8 and values.shape[-1] in (1, 3, 4):
            return name
    return None


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the LiteRT evaluation strategy."""
    registry.add(LiteRTEvaluate)
