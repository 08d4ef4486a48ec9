"""`compressor report`: print a finished run's tables again, its JSON, rebuild its HTML,
or compare two runs side by side."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from compressor.cli.render import Table, console, fidelity_text, mb, ms, print_report
from compressor.core.errors import CompressorError
from compressor.engine.run_store import read_report
from compressor.reports.report_model import Measurement, Report, report_schema


def _pipeline(report: Report) -> str:
    return " → ".join(s.strategy for s in report.stages if s.name != "evaluate")


def _coverage(result: Measurement) -> str:
    coverage = result.op_coverage
    if coverage is None:
        return "—"
    text = f"{coverage.delegated_ops}/{coverage.total_ops} ({coverage.fraction:.0%})"
    return f"{text}, cut at {coverage.cut_at}" if coverage.cut_at else text


def _change(a: float | None, b: float | None) -> str:
    if not a or b is None:
        return "—"
    return f"{b / a:.2f}×"


def comparison_table(a: Report, b: Report, names: tuple[str, str]) -> Table:
    """Two runs' results side by side, with B relative to A."""
    table = Table(title=f"{names[0]}  vs  {names[1]}", title_justify="left")
    for column in ("", "A", "B", "B / A"):
        table.add_column(column, overflow="fold")
    ra, rb = a.result, b.result
    rows = [
        ("profile", a.profile.name, b.profile.name, ""),
        ("model", a.model.source, b.model.source, ""),
        ("pipeline", _pipeline(a), _pipeline(b), ""),
        ("precision", ra.precision, rb.precision, ""),
        ("size", mb(ra.size_bytes), mb(rb.size_bytes), _change(ra.size_bytes, rb.size_bytes)),
        ("gzip", mb(ra.gzip_bytes), mb(rb.gzip_bytes), _change(ra.gzip_bytes, rb.gzip_bytes)),
        (
            "host latency (measured)",
            f"{ms(ra.host_latency_ms)} ({ra.host_threads} thr)",
            f"{ms(rb.host_latency_ms)} ({rb.host_threads} thr)",
            _change(ra.host_latency_ms, rb.host_latency_ms),
        ),
        (
            "target latency (estimated)",
            ms(ra.estimated_latency_ms),
            ms(rb.estimated_latency_ms),
            _change(ra.estimated_latency_ms, rb.estimated_latency_ms),
        ),
        (
            "fidelity vs float (measured)",
            fidelity_text(ra.fidelity),
            fidelity_text(rb.fidelity),
            "",
        ),
        ("delegate coverage", _coverage(ra), _coverage(rb), ""),
        (
            "zero weights",
            f"{ra.weight_zero_fraction:.1%}",
            f"{rb.weight_zero_fraction:.1%}",
            "",
        ),
    ]
    for row in rows:
        table.add_row(*[str(v) for v in row])
    return table


def show_search_so_far(run_dir: Path, as_json: bool) -> None:
    """For a run stopped during its search: the candidates it measured so far (a table,
    or JSON with ``--json``); nothing for other runs."""
    from compressor.engine.run_store import read_status
    from compressor.engine.search_store import SearchStore

    if not run_dir.is_dir():
        return
    records = SearchStore(run_dir).measured_so_far()
    if not records:
        return
    if as_json:
        typer.echo(json.dumps({"status": read_status(run_dir), "search_so_far": records}, indent=2))
        return
    table = Table(title=f"search so far ({len(records)} candidate(s) recorded)")
    for column in ("#", "candidate", "status", "latency", "fidelity", "size"):
        table.add_column(column)
    for number, record in enumerate(records, start=1):
        numbers = record.get("numbers") or {}
        fidelity = record.get("fidelity")
        table.add_row(
            str(number),
            escape(str(record.get("label"))),
            escape(str(record.get("status"))),
            ms(numbers.get("host_latency_ms")) if numbers else "—",
            f"{record.get('fidelity_metric')} {fidelity:.4f}" if fidelity is not None else "—",
            mb(numbers.get("size_bytes")) if numbers else "—",
        )
    console.print(table)


def report(
    run_dir: Path = typer.Argument(
        None, help="A run directory made by `compressor run` (not with --schema)."
    ),
    other: Path = typer.Argument(None, help="A second run directory to compare with."),
    as_json: bool = typer.Option(False, "--json", help="Print report.json instead of tables."),
    html: bool = typer.Option(False, "--html", help="Rebuild report.html and print its path."),
    schema: bool = typer.Option(False, "--schema", help="Print report.json's JSON Schema."),
) -> None:
    """Show the result of a run, or compare two runs side by side."""
    if schema:
        typer.echo(json.dumps(report_schema(), indent=2))
        return
    if run_dir is None:
        raise CompressorError("no run directory given", "compressor report RUN_DIR")
    try:
        data = read_report(run_dir)
    except CompressorError:
        show_search_so_far(run_dir, as_json)  # then the one-line reason, exit 2
        raise
    if other is not None:
        second = read_report(other)
        if as_json:
            both = {"a": data.to_json_dict(), "b": second.to_json_dict()}
            typer.echo(json.dumps(both, indent=2))
            return
        console.print(comparison_table(data, second, (str(run_dir), str(other))))
        return
    if html:
        from compressor.reports.html_report import write_html_report

        console.print(str(write_html_report(run_dir, data)))
        return
    if as_json:
        typer.echo(json.dumps(data.to_json_dict(), indent=2))
        return
    print_report(data, str(run_dir))
