"""`compressor plan`: choose strategies for a profile and explain the choice."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from compressor.cli import options
from compressor.cli.render import Table, compact_params, console, mb, ms, warn_failed_plugins
from compressor.core.model_info import ModelInfo
from compressor.core.profiles import HardwareProfile
from compressor.engine.plugin_host import get_host
from compressor.planning.coverage import Coverage
from compressor.planning.planner import PlanningResult, plan_pipeline, to_plan
from compressor.planning.resolution import choose_resolution


def _model_info(
    model: Path | None,
    input_size: int | None,
    fixed_input: list[str] | None,
    profile: HardwareProfile,
    max_latency_ms: float | None,
    trust_model: bool = False,
) -> tuple[ModelInfo, str, str | None]:
    """The model's facts (at the chosen input size for a free-size model under a latency
    budget), its name, and why that size, if one was chosen."""
    from compressor.ingest.fixed_inputs import parse_fixed_inputs

    host = get_host()
    fixed_inputs = parse_fixed_inputs(fixed_input)
    budget = max_latency_ms
    if model is None and not fixed_inputs:
        from compressor.models.default import default_model_info, default_model_name

        why = None
        if input_size is None and budget:
            choice = choose_resolution(profile, default_model_info, host.strategies, budget)
            input_size, why = choice.size, choice.why()
        return default_model_info(input_size), default_model_name(input_size), why
    from compressor.engine.job import load_model, size_chooser

    chooser = size_chooser(profile, host, budget)
    loaded = load_model(model, host, input_size, fixed_inputs, chooser, trust_model)
    made = loaded.origin.get("input_size_choice")
    return loaded.info, str(model), made["why"] if made else None


def coverage_cell(coverage: Coverage | None) -> str:
    """Delegate coverage as 'delegated/total (pct)', with the cut point if any."""
    if coverage is None:
        return "—"
    text = f"{coverage.delegated_ops}/{coverage.total_ops} ({coverage.fraction:.0%})"
    return f"{text}, cut at {coverage.cut_at}" if coverage.cut_at else text


def print_planning(result: PlanningResult, model_name: str) -> None:
    """The chosen pipeline, the alternatives and the rejections as rich tables."""
    info, chosen, base = result.info, result.chosen, result.baseline
    console.print(
        f"[bold]{result.profile.name}[/bold] ({result.profile.delegate}) — model {model_name}: "
        f"{info.params / 1e6:.2f} M params, {info.macs / 1e9:.2f} GMACs"
        + (
            ", [yellow]instance norm: at risk under full int8[/yellow]"
            if info.has_instance_norm
            else ""
        )
    )
    table = Table(title="Plan", title_justify="left")
    for column in ("stage", "strategy", "params", "why"):
        table.add_column(column, overflow="fold")
    for step in chosen.steps:
        config = step.strategy.Config.model_validate(step.params)
        table.add_row(
            step.stage,
            step.strategy.name,
            compact_params(config.model_dump()),
            result.reasons.get(step.stage, ""),
        )
    console.print(table)
    predicted = Table(title="Predicted (cost model, estimated)", title_justify="left")
    columns = (
        "",
        "est. size",
        "est. gzip",
        f"est. latency on {result.profile.name}",
        "est. SSIM",
        "predicted coverage",
    )
    for column in columns:
        predicted.add_column(column)
    predicted.add_row(
        "float32 baseline",
        mb(base.size_bytes),
        mb(base.gzip_bytes),
        ms(base.latency_ms),
        "1.000",
        coverage_cell(base.coverage),
    )
    predicted.add_row(
        f"plan ({chosen.precision})",
        mb(chosen.size_bytes),
        mb(chosen.gzip_bytes),
        ms(chosen.latency_ms),
        f"{chosen.ssim:.3f}",
        coverage_cell(chosen.coverage),
    )
    console.print(predicted)
    if chosen.coverage and chosen.coverage.fallback:
        console.print(
            f"[yellow]predicted fallback on {result.profile.name}:[/yellow] "
            + "; ".join(chosen.coverage.fallback[:5])
            + (" …" if len(chosen.coverage.fallback) > 5 else "")
        )
    alternatives = Table(title="Next best alternatives (estimated)", title_justify="left")
    for column in ("pipeline", "est. latency", "est. gzip", "est. SSIM", "coverage", "budgets"):
        alternatives.add_column(column, overflow="fold")
    for candidate in result.ranked[1:6]:
        coverage = candidate.coverage
        alternatives.add_row(
            candidate.label,
            ms(candidate.latency_ms),
            mb(candidate.gzip_bytes),
            f"{candidate.ssim:.3f}",
            f"{coverage.fraction:.0%}" if coverage else "—",
            "; ".join(candidate.budget_misses) or "ok",
        )
    console.print(alternatives)
    rejected = Table(title="Strategies not chosen, and why", title_justify="left")
    for column in ("stage", "strategy", "reason"):
        rejected.add_column(column, overflow="fold")
    for rejection in result.rejections:
        rejected.add_row(rejection.stage, rejection.strategy, rejection.reason)
    console.print(rejected)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def plan(
    profile: str = typer.Option(..., "--profile", "-p", help="Profile name or YAML file."),
    model: Path = typer.Option(
        None,
        "--model",
        "-m",
        help="Keras model (.keras/.h5); default: the built-in style-transfer generator.",
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Write the plan YAML here."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --output file."),
    input_size: int = options.INPUT_SIZE,
    fixed_input: list[str] = options.FIXED_INPUTS,
    max_latency_ms: float = typer.Option(
        None,
        "--max-latency-ms",
        help="Latency budget; a free-size model's input size is chosen to fit it "
        "(default: the profile's budget).",
    ),
    min_fidelity: float = typer.Option(
        None,
        "--min-fidelity",
        help="Fidelity floor the plan is ranked for, 0..1 (as `compressor run` takes it).",
    ),
    max_size_mb: float = typer.Option(None, "--max-size-mb", help=".tflite size ceiling (MB)."),
    trust_model: bool = options.TRUST_MODEL,
) -> None:
    """Choose the best pipeline for a profile and explain why (predicted size/latency)."""
    from compressor.core.constraints import Budgets, resolve_constraints
    from compressor.core.errors import CompressorError

    options.check_limit("--max-latency-ms", max_latency_ms, positive=True)
    options.check_limit("--min-fidelity", min_fidelity)
    if min_fidelity is not None and min_fidelity > 1:
        raise CompressorError(f"--min-fidelity {min_fidelity}: expected a number in 0..1")
    options.check_limit("--max-size-mb", max_size_mb)
    if output is not None:
        check_plan_output(output, force)
    host = get_host()
    warn_failed_plugins(host)
    constraints = resolve_constraints(
        ("command line", Budgets(min_fidelity=min_fidelity, max_latency_ms=max_latency_ms,
                                 max_size_mb=max_size_mb)),  # fmt: skip
        (f"profile {profile}", host.profiles.resolve(profile).budgets),
    )
    # the plan is ranked for what was asked, as `compressor run` ranks it
    hardware = host.profiles.resolve(profile).constrained(constraints)
    info, model_name, size_why = _model_info(
        model, input_size, fixed_input, hardware, constraints.max_latency_ms, trust_model
    )
    result = plan_pipeline(hardware, info, host.strategies)
    print_planning(result, model_name)
    if size_why:
        console.print(f"[bold]{escape(size_why)}[/bold]")
    if output is not None:
        to_plan(result, str(model) if model else None).save(output)
        console.print(
            f"plan written to [bold]{escape(str(output))}[/bold] — edit it, then "
            f"`compressor run --plan {escape(str(output))}`"
        )


def check_plan_output(output: Path, force: bool) -> None:
    """Refuse a ``plan -o`` that is a folder, sits under a file, or exists (without
    ``--force``) before any work is done."""
    from compressor.core.errors import CompressorError

    if output.is_dir():
        raise CompressorError(f"--output {output} is a folder", "give a file name, e.g. plan.yaml")
    if output.exists() and not force:
        raise CompressorError(
            f"--output {output} already exists", "pass --force to overwrite it, or a new name"
        )
    blocking = next((p for p in output.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise CompressorError(f"--output {output}: {blocking} is a file, not a folder")
