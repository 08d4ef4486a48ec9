"""`compressor run`: plan (or read a plan), compress, evaluate, and store the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from compressor.cli.render import console, print_report
from compressor.plugins.manager import get_host


def _quiet_tensorflow() -> None:
    import logging

    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run(
    profile: str = typer.Option(None, "--profile", "-p", help="Profile name or YAML file."),
    plan: Path = typer.Option(None, "--plan", help="A plan YAML (from `compressor plan -o`)."),
    model: Path = typer.Option(None, "--model", "-m", help="Keras model; default: built-in."),
    data: Path = typer.Option(None, "--data", "-d", help="Folder of images; default: built-in."),
    output: Path = typer.Option(None, "--output", "-o", help="New run directory (default runs/…)."),
    input_size: int = typer.Option(
        None, "--input-size", help="Input size of a dynamic-size model or of the built-in demo."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for data sampling and training."),
) -> None:
    """Compress a model for a profile, measure it, and store everything in a run directory."""
    from compressor.core.job import run_job

    _quiet_tensorflow()
    host = get_host()
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
        )
    print_report(report, str(run_dir))
