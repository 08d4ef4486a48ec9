"""`compressor run`: plan (or read a plan), compress, evaluate, and store the run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from compressor.cli import options
from compressor.cli.render import console, print_report, warn_failed_plugins
from compressor.engine.plugin_host import get_host
from compressor.reports.report_model import Report


def _quiet_tensorflow() -> None:
    import logging

    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``10m`` or ``1h``; a one-line error otherwise."""
    from compressor.core.errors import CompressorError

    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    value, unit = (text[:-1], text[-1]) if text[-1:].lower() in units else (text, "s")
    try:
        seconds = float(value) * units[unit.lower()]
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds <= 0:
        raise CompressorError(
            f"--search-budget {text}: expected a positive duration", "e.g. 90s, 10m or 1h"
        )
    return seconds


def run(
    profile: str = typer.Option(None, "--profile", "-p", help="Profile name or YAML file."),
    plan: Path = typer.Option(None, "--plan", help="A plan YAML (from `compressor plan -o`)."),
    model: Path = typer.Option(None, "--model", "-m", help="Keras model; default: built-in."),
    data: Path = typer.Option(None, "--data", "-d", help="Folder of images; default: built-in."),
    output: Path = typer.Option(None, "--output", "-o", help="New run directory (default runs/…)."),
    input_size: int = options.INPUT_SIZE,
    fixed_input: list[str] = options.FIXED_INPUTS,
    input_range: str = options.INPUT_RANGE,
    bgr: bool = options.BGR,
    mean: str = options.MEAN,
    std: str = options.STD,
    task: list[str] = options.TASKS,
    metric: list[str] = options.METRICS,
    seed: int = typer.Option(0, "--seed", help="Seed for data sampling and training."),
    min_fidelity: float = typer.Option(
        None,
        "--min-fidelity",
        help="Fidelity floor on held-out images, 0..1, for the worst output's task score: "
        "SSIM (images), top-1 agreement (classifiers), detection F1, mask mIoU, 1 − landmark "
        "NME, embedding cosine or output match; 0 sets no floor. "
        "Default: the plan's or profile's budget, else 0.99.",
    ),
    max_latency_ms: float = typer.Option(
        None, "--max-latency-ms", help="Latency ceiling on the target (ms)."
    ),
    max_size_mb: float = typer.Option(None, "--max-size-mb", help=".tflite size ceiling (MB)."),
    search_budget: str = typer.Option(
        None, "--search-budget", help="Time for measuring candidates, e.g. 90s, 10m, 1h."
    ),
    no_search: bool = typer.Option(
        False, "--no-search", help="Run the planner's first choice without measuring others."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Exit with code 3 when the result misses a constraint."
    ),
    resume: Path = typer.Option(
        None,
        "--resume",
        help="Continue an interrupted run directory after its last completed stage.",
    ),
    trust_model: bool = options.TRUST_MODEL,
) -> None:
    """Compress a model for a profile, measure it, and store everything in a run directory.

    Without --plan the planner's shortlist is built and measured (post-training candidates
    first, fine-tuning ones only if none meets the constraints) and the best measured
    candidate that meets every constraint is shipped."""
    from compressor.core.constraints import Budgets
    from compressor.core.errors import CompressorError, ConstraintsMissed
    from compressor.core.input_mapping import InputFlags
    from compressor.engine.job import SearchOptions, run_job
    from compressor.engine.resume import resume_job
    from compressor.ingest.fixed_inputs import parse_fixed_inputs

    if resume is not None:
        given = [
            name
            for name, value in (("--profile", profile), ("--plan", plan), ("--model", model),
                                ("--data", data), ("--output", output), ("--input", fixed_input),
                                ("--trust-model", trust_model), ("--input-range", input_range),
                                ("--bgr", bgr), ("--mean", mean), ("--std", std),
                                ("--task", task), ("--metric", metric))
            if value
        ]  # fmt: skip
        if given:
            raise CompressorError(
                f"--resume takes the run's own settings; drop {', '.join(given)}",
                "the run directory remembers its profile, plan, model and data",
            )

    fixed_inputs = parse_fixed_inputs(fixed_input)
    options.check_limit("--min-fidelity", min_fidelity)
    if min_fidelity is not None and min_fidelity > 1:
        raise CompressorError(f"--min-fidelity {min_fidelity}: expected a number in 0..1")
    options.check_limit("--max-latency-ms", max_latency_ms)
    options.check_limit("--max-size-mb", max_size_mb)
    options.check_size("--input-size", input_size)

    search_options = SearchOptions(
        budgets=Budgets(
            min_fidelity=min_fidelity, max_latency_ms=max_latency_ms, max_size_mb=max_size_mb
        ),
        search=not no_search,
        budget_seconds=parse_duration(search_budget) if search_budget else None,
        strict=strict,
    )

    _quiet_tensorflow()
    host = get_host()
    warn_failed_plugins(host)
    with Progress(
        TextColumn("[bold]{task.fields[stage]:<9}"),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}
        current = {"task": progress.add_task("loading model and data", stage="setup", total=1)}

        def on_event(hook: str, **kwargs: Any) -> None:
            if hook == "on_run_started":
                progress.update(current["task"], completed=1, description="ready")
            elif hook == "on_candidate_started":
                progress.update(current["task"], completed=1)
                task = progress.add_task(
                    kwargs["label"], stage=f"cand {kwargs['number']}/{kwargs['total']}", total=1
                )
                current["task"] = task
            elif hook == "on_stage_started":
                task = progress.add_task(kwargs["strategy"].name, stage=kwargs["stage"], total=1)
                tasks[kwargs["stage"]] = current["task"] = task
            elif hook == "on_stage_finished":
                progress.update(
                    current["task"],
                    completed=1,
                    description=f"{kwargs['strategy'].name} ({kwargs['seconds']:.1f} s)",
                )

        def on_progress(message: str, fraction: float) -> None:
            progress.update(
                current["task"], completed=min(max(fraction, 0.0), 1.0), description=message
            )

        try:
            if resume is not None:
                run_dir, report = resume_job(host, resume, on_progress, on_event)
            else:
                run_dir, report = run_job(
                    host,
                    profile,
                    plan,
                    model,
                    data,
                    output,
                    input_size,
                    seed,
                    progress=on_progress,
                    on_event=on_event,
                    options=search_options,
                    fixed_inputs=fixed_inputs,
                    trust_model=trust_model,
                    input_flags=InputFlags(input_range, bgr, mean, std),
                    tasks=task,
                    metrics=metric,
                )
        except ConstraintsMissed as missed:
            run_dir, report, failure = missed.run_dir, missed.report, missed
        except KeyboardInterrupt as stop:
            where = getattr(stop, "run_dir", None)
            console.print(
                "[bold red]interrupted[/bold red]"
                + (f": continue with `compressor run --resume {where}`" if where else "")
            )
            raise typer.Exit(130) from None
        else:
            failure = None
    if report is not None:
        print_report(Report.model_validate(report), str(run_dir))
    if failure is not None:
        raise failure
