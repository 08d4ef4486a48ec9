"""One `compressor run`: resolve profile, model, data and plan, then run and report.

Everything a user can get wrong is checked before the run directory is created, so
bad input never leaves a half-written run behind.
"""

from __future__ import annotations

import contextlib
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.constraints import (
    Budgets,
    Constraints,
    measured_fidelity,
    resolve_constraints,
)
from compressor.core.context import ProgressCallback, RunContext, output_names
from compressor.core.datasets import (
    IMAGE_SUFFIXES,
    ImageSet,
    load_builtin_samples,
    load_image_folder,
)
from compressor.core.errors import CompressorError, ConstraintsMissed, PlanError, error_line
from compressor.core.files import write_text_atomic
from compressor.core.input_mapping import InputFlags, input_mapping
from compressor.core.metrics import FidelityJudge, parse_assignments
from compressor.core.model_info import ModelInfo
from compressor.core.profiles import HardwareProfile
from compressor.engine.plugin_host import PluginHost
from compressor.engine.run_inputs import input_hashes, sha256_file
from compressor.engine.run_lock import acquire_lock, release_lock
from compressor.engine.run_store import (
    ERROR_FILE,
    JOB_FILE,
    STATUS_FILE,
    create_run_dir,
    ensure_new_output,
    write_json_atomic,
    write_status,
)
from compressor.engine.runner import (
    ResumePoint,
    StageCache,
    build_report,
    finish_run,
    run_stages,
)
from compressor.engine.search import SearchResult, search_plans
from compressor.engine.search_store import SEARCH_DIR, SearchStore
from compressor.planning.plan import (
    Plan,
    StageSpec,
    check_plan_stages,
    load_plan,
    resolve_plan_steps,
)
from compressor.planning.planner import PlanningResult, plan_pipeline, to_plan
from compressor.planning.resolution import ResolutionChoice, choose_resolution

SEARCH_FILE = "search.json"  # the plan search's candidates, kept for a resumed run's report
PLAN_FILE = "plan.yaml"


@dataclass
class LoadedModel:
    """A Keras model ready to compress, where it came from, and its facts."""

    model: Any
    source: str
    info: ModelInfo
    origin: dict[str, Any] = field(default_factory=dict)


SizeChooser = Callable[[Callable[[int], ModelInfo]], ResolutionChoice]


def size_chooser(
    profile: HardwareProfile, host: PluginHost, max_latency_ms: float | None
) -> SizeChooser | None:
    """Input-size choice for free-size models under a latency budget (None without one)."""
    if max_latency_ms is None:
        return None
    return lambda info_at: choose_resolution(profile, info_at, host.strategies, max_latency_ms)


def load_model(
    model_path: Path | None,
    host: PluginHost,
    input_size: int | None,
    fixed_inputs: dict[str, np.ndarray] | None = None,
    choose_size: SizeChooser | None = None,
    trust_model: bool = False,
) -> LoadedModel:
    """The user's model (checked to be an image model) or the built-in default;
    ``fixed_inputs`` (``--input NAME=VALUE``) become constants first. A model of free
    input size without ``input_size`` gets the size ``choose_size`` picks (recorded in
    ``origin["input_size_choice"]``). Code a Keras file carries is refused unless
    ``trust_model`` (``--trust-model``)."""
    from compressor.litert.native_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    from compressor.core.model_info import model_info_from_keras
    from compressor.ingest.keras_io import fix_input_size, load_user_model, require_image_model

    if model_path is not None and _is_frozen_graph_path(model_path):
        return _load_frozen(model_path, input_size, fixed_inputs or {})
    if model_path is None:
        from compressor.models.default import build_default_model, default_model_name

        if fixed_inputs:
            raise CompressorError("--input: the built-in demo has one input", "drop --input")

        origin = {"format": "built-in demo"}
        if input_size is None and choose_size is not None:
            from compressor.models.default import default_model_info

            choice = choose_size(default_model_info)
            input_size, origin["input_size_choice"] = choice.size, choice.to_dict()
        model, source = build_default_model(input_size), default_model_name(input_size)
    else:
        user = load_user_model(model_path, host.keras_objects(), trust_model)
        model, source, origin = user.model, str(model_path), user.origin
        if fixed_inputs:
            from compressor.ingest.fixed_inputs import fix_keras_inputs

            model, origin["fixed_inputs"] = fix_keras_inputs(model, fixed_inputs)
        shape = model.inputs[0].shape if len(model.inputs) == 1 else None
        if shape is not None and len(shape) == 4 and (shape[1] is None or shape[2] is None):
            if not input_size and choose_size is not None:
                free = model
                choice = choose_size(lambda size: model_info_from_keras(fix_input_size(free, size)))
                input_size, origin["input_size_choice"] = choice.size, choice.to_dict()
            if input_size:
                model = fix_input_size(model, input_size)
        elif input_size:
            raise CompressorError(f"--input-size: model {source} already has a fixed input size")
    require_image_model(model, source)
    return LoadedModel(model, source, model_info_from_keras(model), origin)


def _is_frozen_graph_path(path: Path) -> bool:
    """True for a SavedModel directory, a ``.tflite`` flatbuffer (by its bytes) or an
    ``.onnx`` file that is not a Keras container (ONNX has no magic bytes)."""
    from compressor.ingest.model_trust import (
        HDF5_FORMAT,
        SAVED_MODEL_DIR,
        TFLITE_BYTES,
        ZIP_FORMAT,
        sniff_format,
    )
    from compressor.ingest.onnx_import import ONNX_SUFFIX

    if not path.exists() or not (path.is_dir() or path.is_file()):
        return path.suffix.lower() in (".tflite", ONNX_SUFFIX)
    container = sniff_format(path)
    if container in (SAVED_MODEL_DIR, TFLITE_BYTES):
        return True
    return container not in (HDF5_FORMAT, ZIP_FORMAT) and path.suffix.lower() in (
        ".tflite",
        ONNX_SUFFIX,
    )


def _load_frozen(
    path: Path, input_size: int | None, fixed_inputs: dict[str, np.ndarray]
) -> LoadedModel:
    """A SavedModel, float ``.tflite`` or ONNX file (converted by onnx2tf), checked to
    take one static image input."""
    from compressor.ingest.model_trust import UNKNOWN_FORMAT, sniff_format
    from compressor.ingest.onnx_import import (
        ONNX_SUFFIX,
        convert_onnx,
        fixed_input_shape,
        onnx2tf_version,
        require_onnx2tf,
    )
    from compressor.litert.frozen_graph import (
        TFLITE_FORMAT,
        FrozenGraph,
        load_frozen_graph,
        model_info_from_tflite,
    )

    if not path.exists():
        raise CompressorError(f"model file {path} does not exist", "check the --model path")
    is_onnx = path.suffix.lower() == ONNX_SUFFIX and sniff_format(path) == UNKNOWN_FORMAT
    origin = {"format": None, "frozen_graph": True}
    if is_onnx:
        require_onnx2tf(path)
        shape = fixed_input_shape(path, input_size)
        converted = convert_onnx(path, shape)
        graph = load_frozen_graph(converted.saved_model, input_size)
        graph.name = path.stem
        origin.update(format="ONNX", converted_by=f"onnx2tf {onnx2tf_version()}")
        rewrites = {**converted.rewrites, **graph.rewritten_ops}
        if rewrites:
            origin["graph_rewrites"] = rewrites
        if shape:
            origin["input_size_fixed"] = shape
    else:
        graph = load_frozen_graph(path, input_size)
        origin["format"] = graph.source_format
        if graph.rewritten_ops:
            origin["graph_rewrites"] = dict(graph.rewritten_ops)
        graph = _fixed_size(graph, path, input_size, origin)
    if fixed_inputs:
        from compressor.ingest.fixed_inputs import fix_tflite_inputs

        fixed, origin["fixed_inputs"] = fix_tflite_inputs(graph.tflite, fixed_inputs)
        # the SavedModel still has the inputs: from here on, the fixed .tflite is the graph
        graph = FrozenGraph(fixed, TFLITE_FORMAT, graph.name)
    if graph.source_format == TFLITE_FORMAT:
        from compressor.litert.tflite_fold import fold_constants

        folded = fold_constants(graph.tflite)
        if folded.folded_ops:
            graph = FrozenGraph(folded.model, TFLITE_FORMAT, graph.name)
            origin["constant_folding"] = {
                "folded_ops": folded.folded_ops,
                "batch": 1,
                "max_abs_diff": folded.max_abs_diff,
            }
    from compressor.litert.tflite_signature import DEFAULT_SIGNATURE, add_default_signature

    signed = add_default_signature(graph.tflite)
    if signed is not None:  # ai-edge-quantizer addresses a model by its signature
        graph = replace(graph, tflite=signed)
        origin["added_signature"] = DEFAULT_SIGNATURE
    info = model_info_from_tflite(graph.tflite, graph.name, graph.source_format)
    shape = info.input_image_shape
    if len(info.inputs) == 1 and len(info.inputs[0].shape) == 4 and shape is None:
        raise CompressorError(
            f"model {path}: input height/width are dynamic {tuple(info.inputs[0].shape)}",
            "pass --input-size N to compress it at N×N",
        )
    if len(info.inputs) != 1 or shape is None or shape[2] not in (1, 3, 4):
        raise CompressorError(
            f"model {path}: inputs {[t.shape for t in info.inputs]} are not one static image "
            "(batch, height, width, 1|3|4)",
            "compressor compresses models with one image input",
        )
    return LoadedModel(graph, str(path), info, origin)


def _fixed_size(graph: Any, path: Path, size: int | None, origin: dict[str, Any]) -> Any:
    """A SavedModel or ``.tflite`` whose image input had a dynamic size, fixed at
    ``size`` (recorded in ``origin``); a fixed-size model with ``size`` is an error."""
    from compressor.litert.frozen_graph import TFLITE_FORMAT, FrozenGraph
    from compressor.litert.tflite_fold import dynamic_image_input, fix_input_size

    if not size:
        return graph
    if graph.source_format == TFLITE_FORMAT and dynamic_image_input(graph.tflite):
        graph = FrozenGraph(fix_input_size(graph.tflite, size), TFLITE_FORMAT, graph.name,
                            rewritten_ops=graph.rewritten_ops)  # fmt: skip
    from compressor.litert.tflite_runtime import TFLiteModel

    dims = TFLiteModel(graph.tflite).input_shape
    if len(dims) != 4 or dims[1:3] != (size, size):
        raise CompressorError(
            f"--input-size {size}: model {path} has a fixed input size {dims}",
            "drop --input-size",
        )
    origin["input_size_fixed"] = f"1×{size}×{size}"
    return graph


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
    trust_model: bool = False,
    input_flags: InputFlags | None = None,
    tasks: list[str] | None = None,
    metrics: list[str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run the whole job; returns (run directory, report). Raises CompressorError on bad input.

    Photos become model inputs by ``input_flags`` (``--input-range``, ``--bgr``,
    ``--mean``, ``--std``) over what the model states (a Keras ``Rescaling`` or
    ``Normalization`` input layer), else RGB in [0, 1].
    ``tasks``/``metrics`` (``--task``, ``--metric``: ``NAME`` or ``OUTPUT=NAME``) say how
    outputs are judged; otherwise each output's task is guessed from its values.

    With a planner-made plan (no ``--plan``) the planner's shortlist is built and measured
    against the constraints first, and the best measured candidate runs. Code the model
    file carries is refused unless ``trust_model``."""
    options = options or SearchOptions()
    input_flags = input_flags or InputFlags()
    input_flags.check()  # a bad range, mean or std fails before a model is loaded
    judging = {
        "tasks": parse_assignments(tasks or [], "--task"),
        "metrics": parse_assignments(metrics or [], "--metric"),
    }
    judge = host.fidelity_judge(**judging)  # unknown tasks or metrics fail here
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
    if user_plan is not None:  # a bad plan fails before a model is loaded
        check_plan_stages(user_plan, host.strategies, str(plan_path))
    # plans are made for what the user asked: the planner sees the resolved constraints
    planning_profile = profile.constrained(constraints)
    chooser = size_chooser(planning_profile, host, constraints.max_latency_ms)
    loaded = load_model(model_path, host, input_size, fixed_inputs, chooser, trust_model)
    if "input_size_choice" in loaded.origin:
        input_size = loaded.origin["input_size_choice"]["size"]  # a resume re-uses it
    judge.check_outputs(output_names(loaded.model))
    from compressor.ingest.keras_io import input_mapping_from_keras

    mapping = input_mapping(input_flags, input_mapping_from_keras(loaded.model))
    mapping.check_channels(loaded.info.input_image_shape[-1])
    images = load_images(data, loaded.info.input_image_shape, seed).mapped(mapping)
    plan, plan_source, planning = choose_plan(
        user_plan, plan_path, planning_profile, loaded, host, model_path
    )
    steps = resolve_plan_steps(plan, host.strategies, planning_profile, loaded.info, plan_source)
    inputs = input_hashes(model_path, data, profile, IMAGE_SUFFIXES)

    run_dir = create_run_dir(output, profile.name)
    acquire_lock(run_dir)
    try:
        job = {
            "profile": profile_name,
            "model": str(model_path) if model_path is not None else None,
            "data": str(data) if data is not None else None,
            "input_size": input_size,
            "seed": seed,
            "fixed_inputs": {k: np.asarray(v).tolist() for k, v in (fixed_inputs or {}).items()},
            "budgets": options.budgets.model_dump(),
            "strict": options.strict,
            "search": planning is not None and options.search,
            "search_budget_seconds": options.budget_seconds,
            "trust_model": trust_model,
            "input_mapping": mapping.to_dict(),
            "judging": judging,
            "inputs": inputs,
        }
        write_json_atomic(run_dir / JOB_FILE, job)
        context = _new_context(
            host, profile, run_dir, loaded, images, plan, seed, progress, constraints, judge
        )
        searching = job["search"]
        try:
            write_status(run_dir, "running", [], "search" if searching else None)
            if not searching:
                _save_plan(run_dir, job, plan, loaded)
        except BaseException as exc:
            _record_stop(run_dir, exc, [], None)
            raise
        if searching:
            return search_then_execute(
                host, run_dir, job, context, plan, planning, steps, loaded, options, on_event
            )
        return _execute(host, run_dir, context, steps, loaded, options, on_event, StageCache())
    finally:
        release_lock(run_dir)


def _save_plan(run_dir: Path, job: dict[str, Any], plan: Plan, loaded: LoadedModel) -> None:
    """plan.yaml and model_info.json, and the plan's hash in job.json (a resume checks it)."""
    plan.save(run_dir / PLAN_FILE)
    loaded.info.save_json(run_dir / "model_info.json")
    job["plan_sha256"] = sha256_file(run_dir / PLAN_FILE)
    write_json_atomic(run_dir / JOB_FILE, job)


def search_then_execute(
    host: PluginHost,
    run_dir: Path,
    job: dict[str, Any],
    context: RunContext,
    plan: Plan,
    planning: PlanningResult,
    steps: list[Any],
    loaded: LoadedModel,
    options: SearchOptions,
    on_event: Callable[..., None] | None,
) -> tuple[Path, dict[str, Any]]:
    """Measure the planner's shortlist (re-using candidates the run directory already
    holds), save the chosen plan, then run it."""
    cache = StageCache()
    try:
        search = search_plans(
            planning,
            context,
            context.constraints,
            cache,
            options.budget_seconds,
            on_candidate=lambda label, n, total: (
                on_event("on_candidate_started", label=label, number=n, total=total)
                if on_event
                else None
            ),
            store=SearchStore(run_dir),
        )
        restored = [c.label for c in search.candidates if c.restored]
        if restored:
            context.note(
                f"resumed the search: {len(restored)} candidate(s) measured before the "
                f"interrupt were read back from {run_dir / SEARCH_DIR}, not measured again"
            )
        plan = _plan_of_search(plan, search, planning)
        context.plan = plan
        evaluate = [step for step in steps if step[0].stage == "evaluate"]
        steps = [*(s for s in search.chosen.steps if s[0].stage != "evaluate"), *evaluate]
        write_json_atomic(run_dir / SEARCH_FILE, search.to_dict())
        _save_plan(run_dir, job, plan, loaded)
    except BaseException as exc:
        _record_stop(run_dir, exc, [], "search")
        raise
    return _execute(host, run_dir, context, steps, loaded, options, on_event, cache)


def _new_context(
    host: PluginHost,
    profile: HardwareProfile,
    run_dir: Path,
    loaded: LoadedModel,
    images: ImageSet,
    plan: Plan,
    seed: int,
    progress: ProgressCallback | None,
    constraints: Constraints,
    judge: FidelityJudge,
) -> RunContext:
    """The context a run's stages share, around the loaded float model."""
    context = host.run_context(
        fidelity_judge=judge,
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
    if "input_size_choice" in loaded.origin:
        context.note(loaded.origin["input_size_choice"]["why"])
    # tasks are guessed once, on the most images, whichever split is judged first
    judge.settle_tasks(context.float_outputs("calibration"))
    return context


def _record_stop(
    run_dir: Path, exc: BaseException, completed: list[dict[str, Any]], running: str | None
) -> None:
    """error.txt and the status file of a run that stopped early (best effort: on a full
    disk the status may be all that still fits)."""
    state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    text = (error_line(exc, fallback="") or type(exc).__name__) if state == "failed" else ""
    with contextlib.suppress(OSError):
        write_text_atomic(
            run_dir / ERROR_FILE,
            f"{str(exc) or type(exc).__name__}\n\n{traceback.format_exc()}",
        )
    try:
        write_status(run_dir, state, completed, running, error=text or None)
    except OSError:
        with contextlib.suppress(OSError):  # no room for a temp file: overwrite in place
            (run_dir / STATUS_FILE).write_text(
                json.dumps({"state": state, "completed_stages": completed,
                            "running_stage": running, "error": text}),
                encoding="utf-8",
            )  # fmt: skip
    with contextlib.suppress(AttributeError):
        exc.run_dir = str(run_dir)  # type: ignore[attr-defined]  # for the CLI's hint


def _execute(
    host: PluginHost,
    run_dir: Path,
    context: RunContext,
    steps: list[Any],
    loaded: LoadedModel,
    options: SearchOptions,
    on_event: Callable[..., None] | None,
    cache: StageCache | None = None,
    resume: ResumePoint | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run the stages (after ``resume``'s, if given), then write the report."""
    profile, constraints = context.profile, context.constraints

    def notify(hook: str, **kwargs: Any) -> None:
        host.notify(hook, **kwargs)
        if on_event:
            on_event(hook, **kwargs)

    progress = {"records": list(resume.records) if resume else [], "running": None}

    def on_saved(records: list[dict[str, Any]], running: str | None) -> None:
        progress.update(records=list(records), running=running)
        write_status(run_dir, "running", progress["records"], running)

    try:
        on_saved(progress["records"], None)
        if resume is None:
            notify("on_run_started", context=context)
        artifact, records = run_stages(
            steps, context, notify, host.strategies.plugin_of, cache, resume, on_saved
        )
        if "baseline" not in context.results:
            raise PlanError("the plan has no evaluate stage that measured the result")
        notices = [w for w in (profile.isa_warning(),) if w] + host.profiles.notices
        if loaded.origin.get("trusted"):
            notices.append(
                "the model was loaded with --trust-model: code its file carries was allowed to run"
            )
        notices.extend(context.results["result"].get("fidelity_warnings") or [])
        report = build_report(context, records, loaded.source, [*host.warnings, *notices])
        report["model"]["origin"] = loaded.origin
        report["constraints"] = _constraint_check(constraints, report, context)
        if (run_dir / SEARCH_FILE).is_file():
            report["search"] = json.loads((run_dir / SEARCH_FILE).read_text(encoding="utf-8"))
        if resume is not None:
            report["resumed_after"] = [r["name"] for r in resume.records]
        refused = report["result"].get("op_coverage", {}).get("refused")
        if refused:
            report["warnings"].append(f"the result cannot run on {profile.name}: {refused}")
        if report["constraints"]["misses"]:
            report["warnings"].append(
                "the result misses its constraints: " + "; ".join(report["constraints"]["misses"])
            )
        report = finish_run(context, artifact, report).to_json_dict()
        write_status(run_dir, "finished", records)
    except BaseException as exc:
        _record_stop(run_dir, exc, progress["records"], progress["running"])
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
    metric, fidelity = measured_fidelity(result)
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
