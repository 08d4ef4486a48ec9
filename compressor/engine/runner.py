"""The runner: executes a checked plan stage by stage, saving every stage's output."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compressor import __version__
from compressor.core.artifact import Artifact
from compressor.core.context import RunContext
from compressor.core.errors import CompressorError, StageError, error_line
from compressor.core.files import write_bytes_atomic, write_text_atomic
from compressor.core.strategy import Strategy, StrategyConfig
from compressor.engine.run_inputs import sha256_file
from compressor.engine.run_store import REPORT_FILE, write_json_atomic
from compressor.engine.stage_metrics import stage_snapshot
from compressor.planning.plan import StageSpec
from compressor.reports.html_report import save_samples, write_html_report
from compressor.reports.report_model import Report, validate_report

FINAL_ARTIFACT = "model.tflite"
# Stages whose output becomes the new float reference (the model the user wants).
_REFERENCE_STAGES = ("train",)


def save_stage_output(artifact: Artifact, folder: Path) -> Path:
    """Persist a stage's output (``.tflite`` bytes or a Keras model) and its facts, each
    file written under a temp name and renamed, so a failed write leaves no half file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "facts.json", json.dumps(artifact.facts, indent=2, default=str))
    if artifact.is_tflite or artifact.graph is not None:
        path = folder / "model.tflite"
        write_bytes_atomic(path, artifact.tflite_bytes or artifact.graph.tflite)
        return path
    path = folder / "model.keras"
    tmp = folder / f".partial-{os.getpid()}.keras"  # Keras picks the format by suffix
    try:
        if artifact.facts.get("qat"):
            import tensorflow_model_optimization as tfmot

            with tfmot.quantization.keras.quantize_scope():
                artifact.keras_model.save(tmp)
        else:
            artifact.keras_model.save(tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception:
        tmp.unlink(missing_ok=True)
        # Some wrapped models cannot be serialised whole; the weights still can.
        path = folder / "model.weights.h5"
        artifact.keras_model.save_weights(path)
    return path


@dataclass
class CachedStage:
    """A stage output kept for re-use, with what applying it changed in the context."""

    artifact: Artifact
    model_info: Any
    notes: list[str]
    seconds: float


class StageCache:
    """Outputs of pipeline prefixes, keyed by the prefix's strategies, params and seed:
    candidates that share a prefix (the same pruning, distillation, ...) build it once."""

    def __init__(self) -> None:
        self._entries: dict[tuple, CachedStage] = {}

    @staticmethod
    def key(steps: list[tuple[StageSpec, Strategy, StrategyConfig]], seed: int) -> tuple:
        """The cache key of a prefix of steps."""
        parts = tuple(
            (spec.stage, strategy.name, json.dumps(config.model_dump(), sort_keys=True))
            for spec, strategy, config in steps
        )
        return (*parts, seed)

    def get(self, key: tuple) -> CachedStage | None:
        """The cached output of a prefix, if built."""
        return self._entries.get(key)

    def put(self, key: tuple, entry: CachedStage) -> None:
        """Remember a prefix's output."""
        self._entries[key] = entry


def apply_step(
    steps: list[tuple[StageSpec, Strategy, StrategyConfig]],
    index: int,
    artifact: Artifact,
    context: RunContext,
    cache: StageCache | None = None,
    plugin: str | None = None,
) -> tuple[Artifact, float, bool]:
    """Apply step ``index`` of ``steps`` to ``artifact`` (or take it from ``cache``);
    returns (output, seconds it took to build, whether it came from the cache). An
    exception in the strategy becomes a StageError naming it and its ``plugin``."""
    spec, strategy, config = steps[index]
    key = StageCache.key(steps[: index + 1], context.seed) if cache is not None else None
    cached = cache.get(key) if cache is not None and spec.stage != "evaluate" else None
    if cached is not None:
        context.model_info = cached.model_info
        context.notes.extend(cached.notes)
        return cached.artifact, cached.seconds, True
    notes_before = len(context.notes)
    start = time.perf_counter()
    where = f"{strategy.name}, plugin '{plugin}'" if plugin else strategy.name
    try:
        output = strategy.apply(artifact, context, config)
    except CompressorError:
        raise
    except SystemExit as exc:  # a plugin must not end the process, least of all with 0
        raise StageError(
            f"stage {spec.stage} ({where}) called sys.exit({exc.code!r})",
            "a strategy reports failure by raising an exception: fix the plugin",
        ) from exc
    except Exception as exc:
        message = error_line(exc, fallback="")
        raise StageError(
            f"stage {spec.stage} ({where}) failed: {type(exc).__name__}: {message[:300]}",
            "run with --debug for the traceback",
        ) from exc
    seconds = time.perf_counter() - start
    if cache is not None and spec.stage != "evaluate":
        entry = CachedStage(output, context.model_info, context.notes[notes_before:], seconds)
        cache.put(key, entry)
    return output, seconds, False


def run_stages(
    steps: list[tuple[StageSpec, Strategy, StrategyConfig]],
    context: RunContext,
    notify: Any,
    plugin_of: Any,
    cache: StageCache | None = None,
    resume: ResumePoint | None = None,
    on_saved: Any = None,
) -> tuple[Artifact, list[dict[str, Any]]]:
    """Run every step in order; returns the final artifact and per-stage records.

    Stages already built by the plan search come from ``cache`` (their record says so).
    With ``resume``, the stages it has records for are not run again: its artifact is
    their saved output. ``on_saved(records, running)`` is called as each stage starts
    and once its output is saved (for the run's status file)."""
    artifact = resume.artifact if resume else Artifact.of_model(context.float_model)
    records = list(resume.records) if resume else []
    for number, (spec, strategy, config) in enumerate(steps, start=1):
        if number <= len(records):  # matched to this step by stage and strategy on resume
            continue
        if on_saved:
            on_saved(records, spec.stage)
        params = config.model_dump()
        notify(
            "on_stage_started", stage=spec.stage, strategy=strategy, params=params, context=context
        )
        artifact, seconds, reused = apply_step(
            steps, number - 1, artifact, context, cache, plugin_of(strategy.name)
        )
        if spec.stage in _REFERENCE_STAGES and artifact.keras_model is not None:
            context.float_model = artifact.keras_model
            context._float_outputs.clear()
            context._float_tflite.clear()
        metrics = stage_snapshot(artifact, context) if spec.stage != "evaluate" else None
        folder = stage_folder(context.run_dir, number, spec.stage, strategy.name)
        output = save_stage_output(artifact, folder)
        context.model_info.save_json(folder / "model_info.json")
        notify(
            "on_stage_finished",
            stage=spec.stage,
            strategy=strategy,
            seconds=seconds,
            output_path=str(output),
            context=context,
        )
        records.append(
            {
                "name": spec.stage,
                "strategy": strategy.name,
                "plugin": plugin_of(strategy.name),
                "params": params,
                "seconds": round(seconds, 3),
                **({"built_by": "plan search (re-used)"} if reused else {}),
                "output": str(output.relative_to(context.run_dir)),
                "sha256": sha256_file(output),
                "facts": {k: v for k, v in artifact.facts.items() if _is_plain(v)},
                **({"metrics": metrics} if metrics else {}),
            }
        )
        if on_saved:
            on_saved(records, None)
    return artifact, records


@dataclass
class ResumePoint:
    """Where an interrupted run continues: the records of its completed stages and the
    last one's saved output."""

    records: list[dict[str, Any]]
    artifact: Artifact


def stage_folder(run_dir: Path, number: int, stage: str, strategy: str) -> Path:
    """Where step ``number`` (1-based) of a run saves its output."""
    return run_dir / "stages" / f"{number:02d}-{stage}-{strategy}"


STAGE_OUTPUT_NAMES = ("model.tflite", "model.keras")


def load_stage_output(
    folder: Path, keras_objects: dict[str, Any], trust_model: bool = False
) -> Artifact:
    """A saved stage output as an artifact again (the inverse of ``save_stage_output``).
    A Keras output goes through the same untrusted-file checks as a user's model
    (``trust_model``: the run was started with ``--trust-model``)."""
    from compressor.engine.run_store import read_json_file
    from compressor.litert.frozen_graph import FROZEN_KEY, FrozenGraph

    facts = read_json_file(folder / "facts.json", "a stage's facts")
    if (folder / "model.tflite").is_file():
        data = (folder / "model.tflite").read_bytes()
        if facts.get(FROZEN_KEY) and "precision" not in facts:  # a rewritten frozen graph
            graph = FrozenGraph(data, facts[FROZEN_KEY], folder.name)
            return Artifact(graph=graph, facts=facts)
        return Artifact(tflite_bytes=data, facts=facts)
    path = folder / "model.keras"
    if not path.is_file():
        raise StageError(
            f"stage output {folder} was saved as weights only; it cannot be resumed from",
            "start a new run",
        )
    from compressor.ingest.keras_io import load_keras_model

    if facts.get("qat"):
        import tensorflow_model_optimization as tfmot

        with tfmot.quantization.keras.quantize_scope():
            from tf_keras.saving import get_custom_objects

            objects = {**get_custom_objects(), **keras_objects}
            model = load_keras_model(path, objects, trust_model)
    else:
        model = load_keras_model(path, keras_objects, trust_model)
    return Artifact(keras_model=model, facts=facts)


def _is_plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None))


def build_report(
    context: RunContext,
    stages: list[dict[str, Any]],
    model_source: str,
    warnings: list[str],
) -> dict[str, Any]:
    """The content of report.json."""
    baseline, result = context.results["baseline"], context.results["result"]
    info = context.original_model_info
    return {
        "compressor_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "profile": {
            "name": context.profile.name,
            "delegate": context.profile.delegate,
            "threads": context.profile.threads,
            "runs_on_this_host": context.profile.runs_on_this_host(),
        },
        "model": {
            "source": model_source,
            "name": info.name,
            "params": info.params,
            "macs": info.macs,
            "input_shape": info.inputs[0].shape if info.inputs else None,
            "output_shape": info.outputs[0].shape if info.outputs else None,
        },
        "data": {
            "source": context.images.source,
            "splits": context.images.splits(),
            "skipped": context.images.skipped,
            "input_mapping": context.images.mapping.to_dict(),
        },
        "plan": context.plan.model_dump(exclude_none=True) if context.plan else None,
        "stages": stages,
        "baseline": baseline,
        "result": result,
        "ratios": {
            "size": round(baseline["size_bytes"] / result["size_bytes"], 3),
            "gzip": round(baseline["gzip_bytes"] / result["gzip_bytes"], 3),
            "host_latency": round(baseline["host_latency_ms"] / result["host_latency_ms"], 3),
        },
        "artifact": FINAL_ARTIFACT,
        "provenance": provenance(context),
        "notes": context.notes,
        "warnings": warnings,
    }


MEASURED_KEYS = (
    "size_bytes",
    "gzip_bytes",
    "weight_zero_fraction",
    "host_latency_ms",
    "host_latency_p90_ms",
    "fidelity",
)


def provenance(context: RunContext) -> dict[str, Any]:
    """Which report numbers were measured and which estimated, and by what."""
    from compressor.planning.measured_constants import provenance as constants_provenance

    host_target = context.profile.runs_on_this_host()
    return {
        "measured": [f"{which}.{key}" for which in ("baseline", "result") for key in MEASURED_KEYS]
        + ["result.op_coverage", "stages[].metrics.measured"],
        "estimated": [
            "baseline.estimated_latency_ms",
            "result.estimated_latency_ms",
            "stages[].metrics.estimated",
        ],
        "host_latency": (
            f"measured on this host, which runs {context.profile.name}'s runtime"
            if host_target
            else f"measured on this host's CPU; {context.profile.name} runs elsewhere "
            f"({context.profile.delegate}): its latency is the estimate"
        ),
        "fidelity": (
            f"measured on {len(context.images.evaluation)} held-out images"
            if context.images.held_out
            else "measured on calibration images (no held-out split)"
        ),
        "estimates_from": {"cost_model": context.profile.name, **constants_provenance()},
    }


def finish_run(context: RunContext, artifact: Artifact, report: dict[str, Any]) -> Report:
    """Check ``report`` against the schema, write the final ``.tflite``, report.html and
    then report.json (last, atomically); returns the checked report."""
    if not artifact.is_tflite:
        raise StageError("the pipeline ended without a .tflite model")
    checked = validate_report(report, "report.json (as written)")
    write_bytes_atomic(context.run_dir / FINAL_ARTIFACT, artifact.tflite_bytes)
    if context.samples:
        save_samples(context.run_dir, context.samples)
    write_html_report(context.run_dir, checked)
    write_json_atomic(context.run_dir / REPORT_FILE, checked.to_json_dict())
    return checked
