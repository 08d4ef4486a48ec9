"""`compressor run --resume DIR`: continue a run that stopped, as the run it says it is.

A run directory is trusted only as far as it can be checked: the inputs it names must
still have the hashes job.json recorded, plan.yaml must be the plan the run chose, each
completed stage must be the plan's stage at that place (by stage, strategy and params,
never by position alone) and its output must be the file the run wrote (its name inside
the run directory, its hash). Anything else is refused in one line. A run stopped during
the plan search continues it, re-using the candidates already measured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.constraints import Budgets, resolve_constraints
from compressor.core.context import ProgressCallback
from compressor.core.datasets import IMAGE_SUFFIXES
from compressor.core.errors import CompressorError
from compressor.core.input_mapping import InputMapping
from compressor.core.model_info import ModelInfo
from compressor.engine.job import (
    PLAN_FILE,
    SearchOptions,
    _execute,
    _new_context,
    load_images,
    load_model,
    search_then_execute,
)
from compressor.engine.plugin_host import PluginHost
from compressor.engine.run_inputs import check_unchanged, input_hashes, sha256_file
from compressor.engine.run_lock import acquire_lock, release_lock
from compressor.engine.run_store import ERROR_FILE, JOB_FILE, read_json_file, read_status
from compressor.engine.runner import (
    STAGE_OUTPUT_NAMES,
    ResumePoint,
    load_stage_output,
    stage_folder,
)
from compressor.planning.plan import load_plan, resolve_plan_steps
from compressor.planning.planner import plan_pipeline, to_plan

_JOB_KEYS = ("profile", "model", "data", "input_size", "seed", "fixed_inputs", "budgets")


def resume_job(
    host: PluginHost,
    run_dir: Path,
    progress: ProgressCallback | None = None,
    on_event: Callable[..., None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Continue an interrupted (or failed) run after its last completed stage, or in its
    plan search. Completed stages and measured candidates are not redone; with the same
    seed the result is the one an uninterrupted run gives."""
    if not run_dir.is_dir() or not (run_dir / JOB_FILE).is_file():
        raise CompressorError(
            f"--resume {run_dir}: not a run directory with a status file",
            "pass a run directory made by compressor run",
        )
    note = acquire_lock(run_dir)
    try:
        return _resume_locked(host, run_dir, progress, on_event, note)
    finally:
        release_lock(run_dir)


def _read_job(run_dir: Path) -> dict[str, Any]:
    job = read_json_file(run_dir / JOB_FILE, "what the run was asked to do")
    missing = [key for key in _JOB_KEYS if key not in job]
    if missing:
        raise CompressorError(f"{run_dir / JOB_FILE}: missing {', '.join(missing)}")
    if "inputs" not in job:
        raise CompressorError(
            f"--resume {run_dir}: the run records no input hashes (made by an older "
            "compressor), so its inputs cannot be checked",
            "start a new run",
        )
    return job


def _resume_locked(
    host: PluginHost,
    run_dir: Path,
    progress: ProgressCallback | None,
    on_event: Callable[..., None] | None,
    note: str | None,
) -> tuple[Path, dict[str, Any]]:
    status = read_status(run_dir)
    if status is None:
        raise CompressorError(
            f"--resume {run_dir}: not a run directory with a status file",
            "pass a run directory made by compressor run",
        )
    if status["state"] == "finished":
        raise CompressorError(f"--resume {run_dir}: the run is finished; nothing to resume")
    job = _read_job(run_dir)
    model_path = Path(job["model"]) if job["model"] else None
    data = Path(job["data"]) if job["data"] else None
    if model_path is not None and not model_path.exists():
        raise CompressorError(f"--resume {run_dir}: the run's model {model_path} is gone")
    if data is not None and not data.is_dir():
        raise CompressorError(f"--resume {run_dir}: the run's data folder {data} is gone")
    profile = host.profiles.resolve(job["profile"])
    check_unchanged(run_dir, job["inputs"], input_hashes(model_path, data, profile, IMAGE_SUFFIXES))

    fixed = {k: np.asarray(v, np.float32) for k, v in job["fixed_inputs"].items()}
    trust = bool(job.get("trust_model"))
    loaded = load_model(model_path, host, job["input_size"], fixed, trust_model=trust)
    mapping = InputMapping.from_dict(job.get("input_mapping"))
    judge = host.fidelity_judge(**(job.get("judging") or {}))
    images = load_images(data, loaded.info.input_image_shape, job["seed"]).mapped(mapping)
    options = SearchOptions(
        budgets=Budgets(**job["budgets"]),
        strict=bool(job.get("strict")),
        budget_seconds=job.get("search_budget_seconds"),
    )
    plan_path = run_dir / PLAN_FILE
    if not plan_path.is_file():
        return _resume_search(
            host, run_dir, job, loaded, images, options, progress, on_event, note, judge
        )

    if job.get("plan_sha256") != sha256_file(plan_path):
        raise CompressorError(
            f"--resume {run_dir}: {PLAN_FILE} was edited after the run chose it",
            "a resumed run keeps its plan: start a new run with --plan for the edited one",
        )
    plan = load_plan(plan_path)
    constraints = resolve_constraints(
        ("command line", options.budgets),
        ("plan", plan.budgets),
        (f"profile {profile.name}", profile.budgets),
    )
    steps = resolve_plan_steps(
        plan, host.strategies, profile.constrained(constraints), loaded.info, str(run_dir)
    )
    context = _new_context(
        host, profile, run_dir, loaded, images, plan, job["seed"], progress, constraints, judge
    )
    if note:
        context.note(note)
    records = [r for r in status["completed_stages"] if r.get("name") != "evaluate"]
    resume = None
    if records:
        resume = _restore_stages(run_dir, records, steps, context, host.keras_objects(), trust)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    return _execute(host, run_dir, context, steps, loaded, options, on_event, None, resume)


def _resume_search(
    host: PluginHost,
    run_dir: Path,
    job: dict[str, Any],
    loaded: Any,
    images: Any,
    options: SearchOptions,
    progress: ProgressCallback | None,
    on_event: Callable[..., None] | None,
    note: str | None,
    judge: Any,
) -> tuple[Path, dict[str, Any]]:
    """The run stopped before its plan was chosen: plan again (the planner is
    deterministic) and continue the search from the candidates already recorded."""
    if not job.get("search"):
        raise CompressorError(
            f"--resume {run_dir}: the run stopped before its plan was saved", "start a new run"
        )
    profile = host.profiles.resolve(job["profile"])
    constraints = resolve_constraints(
        ("command line", options.budgets), (f"profile {profile.name}", profile.budgets)
    )
    planning_profile = profile.constrained(constraints)
    planning = plan_pipeline(planning_profile, loaded.info, host.strategies)
    plan = to_plan(planning, job["model"])
    steps = resolve_plan_steps(plan, host.strategies, planning_profile, loaded.info, "planner")
    context = _new_context(
        host, profile, run_dir, loaded, images, plan, job["seed"], progress, constraints, judge
    )
    if note:
        context.note(note)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    return search_then_execute(
        host, run_dir, job, context, plan, planning, steps, loaded, options, on_event
    )


def _restore_stages(
    run_dir: Path,
    records: list[dict[str, Any]],
    steps: list[Any],
    context: Any,
    keras_objects: dict[str, Any],
    trust: bool,
) -> ResumePoint:
    """The completed stages' saved outputs, each checked to be the plan's stage at its
    place and the file the run wrote."""
    if len(records) > len(steps):
        raise CompressorError(
            f"--resume {run_dir}: status.json lists {len(records)} completed stages, "
            f"the plan has {len(steps)}",
            "the run directory was altered: start a new run",
        )
    folders = []
    for number, (record, (spec, strategy, config)) in enumerate(
        zip(records, steps, strict=False), start=1
    ):
        folders.append(_checked_stage_output(run_dir, number, record, spec, strategy, config))
    artifact = load_stage_output(folders[-1], keras_objects, trust)
    for record, folder in zip(records, folders, strict=True):
        if record["name"] == "train":  # a trained model is the run's float reference
            context.float_model = load_stage_output(folder, keras_objects, trust).keras_model
    if records[-1]["name"] == "qat":  # full int8 also tries the pre-QAT model
        before = (
            load_stage_output(folders[-2], keras_objects, trust).keras_model
            if len(records) > 1
            else context.float_model
        )
        artifact.pre_qat_model = before
    context.model_info = ModelInfo.load_json(folders[-1] / "model_info.json")
    return ResumePoint(records, artifact)


def _checked_stage_output(
    run_dir: Path, number: int, record: dict[str, Any], spec: Any, strategy: Any, config: Any
) -> Path:
    """The folder of completed stage ``number``, or a one-line refusal naming what does
    not match."""
    where = f"--resume {run_dir}: completed stage {number}"
    expected = (spec.stage, strategy.name, config.model_dump())
    found = (record.get("name"), record.get("strategy"), record.get("params"))
    if found[:2] != expected[:2]:
        raise CompressorError(
            f"{where} is {found[0]} ({found[1]}), but the plan's stage {number} is "
            f"{spec.stage} ({strategy.name})",
            "the run directory was altered: start a new run",
        )
    if found[2] != expected[2]:
        raise CompressorError(
            f"{where} ({spec.stage}, {strategy.name}) ran with other params than plan.yaml's",
            "the run directory was altered: start a new run",
        )
    folder = stage_folder(run_dir, number, spec.stage, strategy.name)
    names = {f"{folder.relative_to(run_dir)}/{name}" for name in STAGE_OUTPUT_NAMES}
    if record.get("output") not in names:
        raise CompressorError(
            f"{where}: its output {record.get('output')!r} is not a file this run writes",
            "the run directory was altered: start a new run",
        )
    output = run_dir / record["output"]
    if not output.is_file():
        raise CompressorError(
            f"{where}: its output {output} is missing", "start a new run (or restore the file)"
        )
    if record.get("sha256") != sha256_file(output):
        raise CompressorError(
            f"{where}: its output {output} changed after the stage wrote it",
            "the run directory was altered: start a new run",
        )
    return folder
