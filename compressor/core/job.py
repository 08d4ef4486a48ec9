"""One `compressor run`: resolve profile, model, data and plan, then run and report.

Everything a user can get wrong is checked before the run directory is created, so
bad input never leaves a half-written run behind.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compressor.core.context import ProgressCallback, RunContext
from compressor.core.datasets import ImageSet, load_builtin_samples, load_image_folder
from compressor.core.errors import CompressorError, PlanError
from compressor.core.model_info import ModelInfo
from compressor.core.plan import Plan, load_plan, resolve_plan_steps
from compressor.core.planner import plan_pipeline, to_plan
from compressor.core.profiles import HardwareProfile
from compressor.core.run_store import ERROR_FILE, create_run_dir, ensure_new_output
from compressor.core.runner import build_report, finish_run, run_stages
from compressor.plugins.manager import PluginHost


@dataclass
class LoadedModel:
    """A Keras model ready to compress, where it came from, and its facts."""

    model: Any
    source: str
    info: ModelInfo


def load_model(model_path: Path | None, host: PluginHost, input_size: int | None) -> LoadedModel:
    """The user's model (checked to be an image model) or the built-in default."""
    from compressor.core.native_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    from compressor.core.keras_io import fix_input_size, load_keras_model, require_image_model
    from compressor.core.model_info import model_info_from_keras

    if model_path is None:
        from compressor.models.default import build_default_model, default_model_name

        model, source = build_default_model(input_size), default_model_name(input_size)
    else:
        model, source = load_keras_model(model_path, host.keras_objects()), str(model_path)
        shape = model.inputs[0].shape if len(model.inputs) == 1 else None
        if shape is not None and len(shape) == 4 and (shape[1] is None or shape[2] is None):
            if input_size:
                model = fix_input_size(model, input_size)
        elif input_size:
            raise CompressorError(f"--input-size: model {source} already has a fixed input size")
    require_image_model(model, source)
    return LoadedModel(model, source, model_info_from_keras(model))


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
) -> tuple[Plan, str]:
    """The user's plan, or the planner's choice for this profile and model."""
    if user_plan is not None:
        if user_plan.profile != profile.name:
            raise PlanError(
                f"plan {plan_path} is for profile '{user_plan.profile}', not '{profile.name}'",
                "drop --profile or make a plan for this profile",
            )
        return user_plan, str(plan_path)
    result = plan_pipeline(profile, loaded.info, host.strategies)
    return to_plan(result, model_path and str(model_path)), "planner"


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
) -> tuple[Path, dict[str, Any]]:
    """Run the whole job; returns (run directory, report). Raises CompressorError on bad input."""
    user_plan = load_plan(plan_path) if plan_path is not None else None
    if profile_name is None:
        if user_plan is None:
            raise CompressorError("no --profile given", "pass --profile NAME or --plan FILE")
        profile_name = user_plan.profile
    if model_path is None and user_plan is not None and user_plan.model:
        model_path = Path(user_plan.model)  # a plan made with --model remembers it
    profile = host.profiles.resolve(profile_name)
    ensure_new_output(output)
    loaded = load_model(model_path, host, input_size)
    images = load_images(data, loaded.info.input_image_shape, seed)
    plan, plan_source = choose_plan(user_plan, plan_path, profile, loaded, host, model_path)
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
    )

    def notify(hook: str, **kwargs: Any) -> None:
        host.notify(hook, **kwargs)
        if on_event:
            on_event(hook, **kwargs)

    try:
        plan.save(run_dir / "plan.yaml")
        loaded.info.save_json(run_dir / "model_info.json")
        notify("on_run_started", context=context)
        artifact, records = run_stages(steps, context, notify, host.strategies.plugin_of)
        if "baseline" not in context.results:
            raise PlanError("the plan has no evaluate stage that measured the result")
        report = build_report(context, records, loaded.source, host.warnings)
        finish_run(context, artifact, report)
    except BaseException as exc:
        (run_dir / ERROR_FILE).write_text(f"{exc}\n\n{traceback.format_exc()}", encoding="utf-8")
        raise
    notify("on_run_finished", context=context, report=report)
    return run_dir, report
