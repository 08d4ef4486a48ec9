"""`compressor profiles`: the hardware profiles and what each supports."""

from __future__ import annotations

import typer
from rich.table import Table

from compressor.cli.render import console
from compressor.plugins.manager import get_host

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
