"""One `compressor run`: resolve profile, model, data and plan, then run and report.

Everything a user can get wrong is checked before the run directory is created, so
bad input never leaves a half-written run behind.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.constraints import Budgets, Constraints, primary_fidelity, resolve_constraints
from compressor.core.context import ProgressCallback, RunContext
from compressor.core.datasets import ImageSet, load_builtin_samples, load_image_folder
from compressor.core.errors import CompressorError, ConstraintsMissed, PlanError
from compressor.core.model_info import ModelInfo
from compressor.core.plan import Plan, StageSpec, load_plan, resolve_plan_steps
from compressor.core.planner import PlanningResult, plan_pipeline, to_plan
from compressor.core.profiles import HardwareProfile
from compressor.core.run_store import ERROR_FILE, create_run_dir, ensure_new_output
from compressor.core.runner import StageCache, build_report, finish_run, run_stages
from compressor.core.search import SearchResult, search_plans
from compressor.plugins.manager import PluginHost


@dataclass
class LoadedModel:
    """A Keras model ready to compress, where it came from, and its facts."""

    model: Any
    source: str
    info: ModelInfo
    origin: dict[str, Any] = field(default_factory=dict)


def load_model(
    model_path: Path | None,
    host: PluginHost,
    input_size: int | None,
    fixed_inputs: dict[str, np.ndarray] | None = None,
) -> LoadedModel:
    """The user's model (checked to be an image model) or the built-in default;
    ``fixed_inputs`` (``--input NAME=VALUE``) become constants first."""
    from compressor.core.native_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    from compressor.core.keras_io import fix_input_size, load_user_model, require_image_model
    from compressor.core.model_info import model_info_from_keras

    if model_path is not None and _is_frozen_graph_path(model_path):
        return _load_frozen(model_path, input_size, fixed_inputs or {})
    if model_path is None:
        from compressor.models.default import build_default_model, default_model_name

        if fixed_inputs:
            raise CompressorError("--input: the built-in demo has one input", "drop --input")

        model, source = build_default_model(input_size), default_model_name(input_size)
        origin = {"format": "built-in demo"}
    else:
        user = load_user_model(model_path, host.keras_objects())
        model, source, origin = user.model, str(model_path), user.origin
        if fixed_inputs:
            from compressor.core.fixed_inputs import fix_keras_inputs

            model, origin["fixed_inputs"] = fix_keras_inputs(model, fixed_inputs)
        shape = model.inputs[0].shape if len(model.inputs) == 1 else None
        if shape is not None and len(shape) == 4 and (shape[1] is None or shape[2] is None):
            if input_size:
                model = fix_input_size(model, input_size)
        elif input_size:
            raise CompressorError(f"--input-size: model {source} already has a fixed input size")
    require_image_model(model, source)
    return LoadedModel(model, source, model_info_from_keras(model), origin)


def _is_frozen_graph_path(path: Path) -> bool:
    from compressor.core.frozen_graph import is_saved_model_dir
    from compressor.core.onnx_import import ONNX_SUFFIX

    return path.suffix.lower() in (".tflite", ONNX_SUFFIX) or is_saved_model_dir(path)


def _load_frozen(
    path: Path, input_size: int | None, fixed_inputs: dict[str, np.ndarray]
) -> LoadedModel:
    """A SavedModel, float ``.tflite`` or ONNX file (converted by onnx2tf), checked to
    take one static image input."""
    from compressor.core.frozen_graph import (
        TFLITE_FORMAT,
        FrozenGraph,
        load_frozen_graph,
        model_info_from_tflite,
    )
    from compressor.core.onnx_import import ONNX_SUFFIX, convert_onnx, onnx2tf_version

    if not path.exists():
        raise CompressorError(f"model file {path} does not exist", "check the --model path")
    if input_size:
        raise CompressorError(
            f"--input-size: model {path} is a frozen graph with a fixed input size",
            "drop --input-size",
        )
    origin = {"format": None, "frozen_graph": True}
    if path.suffix.lower() == ONNX_SUFFIX:
        graph = load_frozen_graph(convert_onnx(path))
        graph.name = path.stem
        origin.update(format="ONNX", converted_by=f"onnx2tf {onnx2tf_version()}")
    else:
        graph = load_frozen_graph(path)
        origin["format"] = graph.source_format
    if fixed_inputs:
        from compressor.core.fixed_inputs import fix_tflite_inputs

        fixed, origin["fixed_inputs"] = fix_tflite_inputs(graph.tflite, fixed_inputs)
        # the SavedModel still has the inputs: from here on, the fixed .tflite is the graph
        graph = FrozenGraph(fixed, TFLITE_FORMAT, graph.name)
    if graph.source_format == TFLITE_FORMAT:
        from compressor.core.tflite_fold import fold_constants

        folded = fold_constants(graph.tflite)
        if folded.folded_ops:
            graph = FrozenGraph(folded.model, TFLITE_FORMAT, graph.name)
            origin["constant_folding"] = {
                "folded_ops": folded.folded_ops,
                "batch": 1,
                "max_abs_diff": folded.max_abs_diff,
            }
    info = model_info_from_tflite(graph.tflite, graph.name, graph.source_format)
    shape = info.input_image_shape
    if len(info.inputs) != 1 or shape is None or shape[2] not in (1, 3, 4):
        raise CompressorError(
            f"model {path}: inputs {[t.shape for t in info.inputs]} are not one static image "
            "(batch, height, width, 1|3|4)",
            "compressor compresses models with one image input",
        )
    return LoadedModel(graph, str(path), info, origin)


def load_images(data: Path | None, shape: tuple[int, int, int], seed: int) -> ImageSet:
    """Images from ``data`` or the built-in samples, at the model's input shape."""
    if data is None:
        return load_builtin_samples(shape, seed=seed)
    return load_image_folder(data, shape, seed=seed)


def choose_plan(
    user_plan: Plan | None,
    plan_path: Path | None,
    profile: HardwareProfile,
    loaded: LoadedModel,
    host: PluginHost,
    model_path: Path | None = None,
) -> tuple[Plan, str, PlanningResult | None]:
    """The user's plan, or the planner's choice for this profile and model (with the
    planning result, whose ranking the search measures)."""
    if user_plan is not None:
        if user_plan.profile != profile.name:
            raise PlanError(
                f"plan {plan_path} is for profile '{user_plan.profile}', not '{profile.name}'",
                "drop --profile or make a plan for this profile",
            )
        return user_plan, str(plan_path), None
    result = plan_pipeline(profile, loaded.info, host.strategies)
    return to_plan(result, model_path and str(model_path)), "planner", result


@dataclass
class SearchOptions:
    """What the user asked of the result and of the search for it."""

    budgets: Budgets = field(default_factory=Budgets)
    search: bool = True
    budget_seconds: float | None = None
    strict: bool = False


def _plan_of_search(plan: Plan, search: SearchResult, planning: PlanningResult) -> Plan:
    """The plan of the chosen candidate, each stage saying why it is there."""
    same = search.chosen.label == planning.chosen.label
    stages = [
        StageSpec(
            stage=spec.stage,
            strategy=spec.strategy,
            params=spec.params,
            why=(planning.reasons.get(spec.stage) if same else None)
            or f"measured: {search.chosen.status}",
        )
        for spec, _strategy, _config in search.chosen.steps
    ]
    measured = search.chosen.numbers or {}
    predicted = {
        **search.chosen.predicted,
        "precision": measured.get("precision"),
        "note": "the planner's estimate for the chosen candidate; report.json has what "
        "was measured",
    }
    return plan.model_copy(update={"stages": stages, "predicted": predicted})


def run_job(
    host: PluginHost,
    profile_name: str | None,
    plan_path: Path | None,
    model_path: Path | None,
    data: Path | None,
    output: Path | None,
    input_size: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    on_event: Callable[..., None] | None = None,
    options: SearchOptions | None = None,
    fixed_inputs: dict[str, np.ndarray] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run the whole job; returns (run directory, report). Raises CompressorError on bad input.

    With a planner-made plan (no ``--plan``) the planner's shortlist is built and measured
    against the constraints first, and the best measured candidate runs."""
    options = options or SearchOptions()
    user_plan = load_plan(plan_path) if plan_path is not None else None
    if profile_name is None:
        if user_plan is None:
            raise CompressorError("no --profile given", "pass --profile NAME or --plan FILE")
        profile_name = user_plan.profile
    if model_path is None and user_plan is not None and user_plan.model:
        model_path = Path(user_plan.model)  # a plan made with --model remembers it
    profile = host.profiles.resolve(profile_name)
    constraints = resolve_constraints(
        ("command line", options.budgets),
        ("plan", user_plan.budgets if user_plan else None),
        (f"profile {profile.name}", profile.budgets),
    )
    ensure_new_output(output)
    loaded = load_model(model_path, host, input_size, fixed_inputs)
    images = load_images(data, loaded.info.input_image_shape, seed)
    plan, plan_source, planning = choose_plan(
        user_plan, plan_path, profile, loaded, host, model_path
    )
    steps = resolve_plan_steps(plan, host.strategies, profile, loaded.info, plan_source)

    run_dir = create_run_dir(output, profile.name)
    context = RunContext(
        profile=profile,
        run_dir=run_dir,
        float_model=loaded.model,
        model_info=loaded.info,
        images=images,
        plan=plan,
        seed=seed,
        progress=progress or (lambda m, f: None),
        constraints=constraints,
    )

    def notify(hook: str, **kwargs: Any) -> None:
        host.notify(hook, **kwargs)
        if on_event:
            on_event(hook, **kwargs)

    cache = StageCache()
    search: SearchResult | None = None
    try:
        if planning is not None and options.search:
            search = search_plans(
                planning,
                context,
                constraints,
                cache,
                options.budget_seconds,
                on_candidate=lambda label, n, total: (
                    on_event("on_candidate_started", label=label, number=n, total=total)
                    if on_event
                    else None
                ),
            )
            plan = _plan_of_search(plan, search, planning)
            context.plan = plan
            evaluate = [step for step in steps if step[0].stage == "evaluate"]
            steps = [*(s for s in search.chosen.steps if s[0].stage != "evaluate"), *evaluate]
        plan.save(run_dir / "plan.yaml")
        loaded.info.save_json(run_dir / "model_info.json")
        notify("on_run_started", context=context)
        artifact, records = run_stages(steps, context, notify, host.strategies.plugin_of, cache)
        if "baseline" not in context.results:
            raise PlanError("the plan has no evaluate stage that measured the result")
        notices = [w for w in (profile.isa_warning(),) if w] + host.profiles.notices
        report = build_report(context, records, loaded.source, [*host.warnings, *notices])
        report["model"]["origin"] = loaded.origin
        report["constraints"] = _constraint_check(constraints, report, context)
        if search is not None:
            report["search"] = search.to_dict()
        if report["constraints"]["misses"]:
            report["warnings"].append(
                "the result misses its constraints: " + "; ".join(report["constraints"]["misses"])
            )
        finish_run(context, artifact, report)
    except BaseException as exc:
        (run_dir / ERROR_FILE).write_text(f"{exc}\n\n{traceback.format_exc()}", encoding="utf-8")
        raise
    notify("on_run_finished", context=context, report=report)
    if options.strict and report["constraints"]["misses"]:
        raise ConstraintsMissed(
            f"run {run_dir}: the result misses {'; '.join(report['constraints']['misses'])}",
            "the run directory holds the closest result; relax a constraint or add data",
            report=report,
            run_dir=str(run_dir),
        )
    return run_dir, report


def _constraint_check(
    constraints: Constraints, report: dict[str, Any], context: RunContext
) -> dict[str, Any]:
    """The shipped result against the constraints, as measured by the evaluate stage."""
    result = report["result"]
    metric, fidelity = primary_fidelity(result["fidelity"])
    host_target = context.profile.runs_on_this_host()
    latency = result["host_latency_ms"] if host_target else result.get("estimated_latency_ms")
    misses = constraints.misses(fidelity, latency, result["size_bytes"], result["gzip_bytes"])
    return {
        **constraints.to_dict(),
        "fidelity_metric": metric,
        "latency": "measured on this host" if host_target else "estimated",
        "met": not misses,
        "misses": [miss.text() for miss in misses],
    }
