"""`compressor plugins`: every plugin, its distribution, and the strategies and fidelity
metrics it registers."""

from __future__ import annotations

from compressor.cli.render import Table, console
from compressor.engine.plugin_host import get_host


def plugins() -> None:
    """List plugins (built-in and installed) with their strategies and stages."""
    host = get_host()
    registry = host.strategies
    _ = host.profiles  # registration errors from profile hooks show up too
    metrics = host.metrics
    by_plugin: dict[str, list[str]] = {}
    for entry in registry.entries():
        by_plugin.setdefault(entry.plugin, []).append(
            f"{entry.strategy.name} [dim]({entry.strategy.stage})[/dim]"
        )
    for metric in metrics:
        by_plugin.setdefault(metrics.plugin_of(metric.name), []).append(
            f"{metric.name} [dim](metric: {metric.task})[/dim]"
        )
    table = Table(title="Plugins", title_justify="left")
    for column in ("plugin", "distribution", "strategies (stage), metrics (task)", "status"):
        table.add_column(column, overflow="fold")
    for record in host.records:
        kind = " (built-in)" if record.builtin else ""
        status = f"[red]{record.error}[/red]" if record.error else "[green]ok[/green]"
        table.add_row(
            record.name,
            f"{record.distribution} {record.version}{kind}",
            "\n".join(by_plugin.get(record.name, [])) or "—",
            status,
        )
    console.print(table)
    detail = Table(title="Strategies", title_justify="left")
    for column in ("strategy", "stage", "plugin", "what it does", "parameters"):
        detail.add_column(column, overflow="fold")
    for entry in registry.entries():
        fields = entry.strategy.Config.model_fields
        params = ", ".join(
            f"{n}={f.get_default(call_default_factory=True)!r}"
            if not f.is_required()
            else f"{n} (required)"
            for n, f in fields.items()
        )
        detail.add_row(
            entry.strategy.name,
            entry.strategy.stage,
            entry.plugin,
            entry.strategy.summary,
            params or "—",
        )
    console.print(detail)
    table = Table(title="Fidelity metrics (--metric NAME)", title_justify="left")
    for column in ("metric", "task", "primary score", "plugin", "what it measures"):
        table.add_column(column, overflow="fold")
    for metric in metrics:
        table.add_row(
            metric.name, metric.task, metric.primary, metrics.plugin_of(metric.name), metric.summary
        )
    console.print(table)
