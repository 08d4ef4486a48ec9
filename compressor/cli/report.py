"""`compressor report`: print a finished run's tables again, or its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from compressor.cli.render import print_report
from compressor.core.run_store import read_report


def report(
    run_dir: Path = typer.Argument(..., help="A run directory made by `compressor run`."),
    as_json: bool = typer.Option(False, "--json", help="Print report.json instead of tables."),
) -> None:
    """Show the result of a run."""
    data = read_report(run_dir)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    print_report(data, str(run_dir))
