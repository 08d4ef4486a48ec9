"""`compressor profiles`: the hardware profiles and what each supports."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from compressor.cli.render import Table, console
from compressor.core.errors import CompressorError
from compressor.engine.plugin_host import get_host

app = typer.Typer(help="List hardware profiles (shipped and from plugins).")


@app.callback(invoke_without_command=True)
def profiles(
    ctx: typer.Context,
    show: str = typer.Option(None, "--show", help="Print one profile (name or YAML path) in full."),
) -> None:
    """List hardware profiles: runtime/delegate, precisions, threads, memory, budgets."""
    if ctx.invoked_subcommand is not None:
        return
    host = get_host()
    if show:
        profile = host.profiles.resolve(show)
        console.print_json(profile.model_dump_json())
        return
    table = Table(title="Hardware profiles", title_justify="left")
    for column in (
        "name",
        "runtime / delegate",
        "precisions (GMAC/s)",
        "I/O",
        "threads",
        "memory",
        "budgets",
        "source",
    ):
        table.add_column(column, overflow="fold", no_wrap=column == "name")
    for loaded in host.profiles.all():
        p = loaded.profile
        precisions = "\n".join(f"{k} {v.gmacs_per_s:g}" for k, v in p.precisions.items())
        budgets = ", ".join(f"{k}={v}" for k, v in p.budgets.model_dump().items() if v) or "—"
        integer = " (int only)" if p.requires_full_integer else ""
        table.add_row(
            p.name,
            f"{p.runtime} / {p.delegate}{integer}",
            precisions,
            ",".join(p.io_types),
            str(p.threads),
            f"{p.memory_mb} MB",
            budgets,
            loaded.source.split("/")[-1],
        )
    console.print(table)
    for record in host.errors():
        console.print(f"[red]plugin {record.name}: {record.error}[/red]")


@app.command()
def calibrate(
    base: str = typer.Argument(..., help="Profile to calibrate (name or YAML path)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Where to write the calibrated profile YAML."
    ),
    name: str = typer.Option(None, "--name", help="Name of the new profile (BASE-calibrated)."),
    size: int = typer.Option(64, "--size", min=8, max=512, help="Workload feature-map size."),
    runs: int = typer.Option(20, "--runs", min=3, max=1000, help="Timed runs per workload."),
) -> None:
    """Measure this host's throughput per precision with LiteRT and write a user profile."""
    from compressor.litert.native_logs import import_tensorflow_quietly

    host = get_host()
    profile = host.profiles.resolve(base)
    if not profile.runs_on_this_host():
        from compressor.core.host import host_arch

        raise CompressorError(
            f"profile {profile.name} targets {profile.delegate} on {profile.arch or 'no stated'}"
            f" architecture, not this host's CPU ({host_arch()}): its rates cannot be measured"
            " here",
            "calibrate a CPU profile of this host's architecture (e.g. x86-cpu), or set "
            "`delegate: xnnpack` and `arch:` in your own profile",
        )
    name = name or f"{profile.name}-calibrated"
    output = output or Path(f"{name}.yaml")
    if output.exists():
        raise CompressorError(f"--output {output} already exists", "choose a new file name")
    import_tensorflow_quietly()
    from compressor.core.host import host_cpu
    from compressor.engine.calibration import fit_profile, measure_workloads

    precisions = list(profile.precisions)
    with console.status("calibrating") as status:
        measurements = measure_workloads(
            precisions, profile.threads, size, runs, lambda m: status.update(f"measuring {m}")
        )
    calibrated = fit_profile(profile, measurements, name, host_cpu())
    output.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Calibrated by `compressor profiles calibrate {base}` on {host_cpu()}\n"
        f"# ({profile.threads} threads, {size}x{size} workloads, median of {runs} runs).\n"
    )
    data = calibrated.model_dump(mode="json", exclude_defaults=False)
    output.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    table = Table(title=f"{name}: measured vs {profile.name}", title_justify="left")
    for column in ("precision", "GMAC/s", "elements G/s", "norm G/s", f"{profile.name} GMAC/s"):
        table.add_column(column)
    for precision in precisions:
        new, old = calibrated.precisions[precision], profile.precisions[precision]
        table.add_row(
            precision,
            f"{new.gmacs_per_s:g}",
            f"{new.gelems_per_s:g}",
            f"{new.norm_gelems_per_s:g}" if new.norm_gelems_per_s else "—",
            f"{old.gmacs_per_s:g}",
        )
    console.print(table)
    console.print(
        f"per-op overhead {calibrated.per_op_overhead_us:g} µs "
        f"(was {profile.per_op_overhead_us:g}); wrote [bold]{output}[/bold] — "
        f"use it with --profile {output}"
    )
