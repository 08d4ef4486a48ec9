"""Rich tables shared by the commands."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich import table as rich_table
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from compressor.core.ratios import describe_ratio
from compressor.reports.report_model import Outcome, Report, candidate_outcome, json_number


class Table(rich_table.Table):
    """A rich Table that never breaks a word in two. When its natural width exceeds the
    console, columns are given fixed widths: each at least its longest word, the space
    left shared in proportion to how much longer each column's longest line is. So
    pipeline labels such as ``prune-channels(0.75,4)`` wrap at spaces, not mid-token. If
    even the longest words cannot fit, rich's own folding is kept (a folded word beats a
    cropped column)."""

    def __rich_console__(self, console, options):
        words, lines = [], []
        for column in self.columns:
            texts = [_plain(text) for text in (column.header, *column.cells)]
            words.append(max((len(w) for t in texts for w in t.split()), default=1))
            lines.append(max((len(line) for t in texts for line in t.splitlines()), default=1))
        room = options.max_width - (3 * len(self.columns) + 1)  # padding and borders
        if sum(lines) > room >= sum(words):
            spare = room - sum(words)
            wanted = [line - word for line, word in zip(lines, words, strict=True)]
            total = sum(wanted) or 1
            for column, word, want in zip(self.columns, words, wanted, strict=True):
                column.width = word + int(spare * want / total)
        yield from super().__rich_console__(console, options)


def _plain(text: Any) -> str:
    """The visible characters of a cell (markup removed)."""
    return text.plain if isinstance(text, Text) else Text.from_markup(str(text)).plain


# Piped output (CI logs, grep) gets wide tables instead of rich's 80-column default,
# unless COLUMNS says how wide (rich reads it when no width is forced).
_PIPE_WIDTH = 160


def _width(stream: Any) -> int | None:
    return None if stream.isatty() or os.environ.get("COLUMNS") else _PIPE_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def mb(value: float | int | None) -> str:
    """Bytes as MB with two decimals."""
    return "—" if value is None else f"{value / 1e6:.2f} MB"


def ms(value: float | None) -> str:
    """Milliseconds with one decimal."""
    return "—" if value is None else f"{value:.1f} ms"


def ratio_text(ratio: float, better: str, worse: str) -> str:
    """``describe_ratio``'s words, in yellow when the result is worse."""
    text = describe_ratio(ratio, better, worse)
    return text if ratio >= 1.0 else f"[yellow]{text}[/yellow]"


def compact_params(params: dict[str, Any]) -> str:
    """``k=v`` pairs on one line."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "—"


def fidelity_text(fidelity: dict[str, float] | None) -> str:
    """Fidelity metrics as one short string."""
    if not fidelity:
        return "—"
    parts = []
    for key, raw in fidelity.items():
        value = json_number(raw)
        if value is None:
            parts.append(f"{key} —")
        elif key == "psnr_db":
            parts.append("PSNR ∞" if value == float("inf") else f"PSNR {value:.1f} dB")
        elif key == "ssim":
            parts.append(f"SSIM {value:.4f}")
        elif key == "top1_agreement":
            parts.append(f"top-1 {value:.1%}")
        elif key == "kl_divergence":
            parts.append(f"KL {value:.4f}")
        else:
            parts.append(f"{key} {value:.4g}")
    return ", ".join(parts)


def worst_output_text(fidelity: dict[str, float] | None, output: str | None, count: int) -> str:
    """``fidelity_text``, naming the worst output when the model has several."""
    text = fidelity_text(fidelity)
    return f"{output}: {text}" if output and count > 1 and fidelity else text


def outputs_table(report: Report) -> Table | None:
    """Each output's task (and why), metric and score, baseline and result."""
    result, baseline = report.result, report.baseline
    if not result.fidelity_outputs:
        return None
    table = Table(title="Fidelity by output (the worst one is the model's)", title_justify="left")
    for column in ("output", "task", "why", "metric", "baseline", "result"):
        table.add_column(column, overflow="fold")
    base = baseline.fidelity_outputs or {}
    for name, judged in result.fidelity_outputs.items():
        before = base.get(name)
        worst = name == result.fidelity_output and len(result.fidelity_outputs) > 1
        table.add_row(
            name,
            judged.task,
            judged.task_reason,
            judged.metric,
            fidelity_text({judged.primary: before.scores[judged.primary]})
            if before and judged.primary in before.scores
            else "—",
            fidelity_text({judged.primary: judged.scores[judged.primary]}),
            style="bold" if worst else "",
        )
    return table


def report_tables(report: Report) -> list[Table]:
    """The tables `run` and `report` print for one run."""
    stages = Table(title=f"Stages — profile {report.profile.name}", title_justify="left")
    for column in ("stage", "strategy", "plugin", "params", "seconds"):
        stages.add_column(column, overflow="fold")
    for stage in report.stages:
        stages.add_row(
            stage.name,
            stage.strategy,
            stage.plugin,
            compact_params(stage.params),
            f"{stage.seconds:.1f}",
        )
    baseline, result, ratios = report.baseline, report.result, report.ratios
    profile = report.profile
    results = Table(
        title=f"Result vs float32 baseline — {report.model.source}", title_justify="left"
    )
    for column in ("metric", "baseline (float32)", f"result ({result.precision})", "ratio"):
        results.add_column(column)
    results.add_column("how", style="dim")
    host_how = (
        "measured (this host is the target)"
        if profile.runs_on_this_host
        else f"measured on this host, not on {profile.name}"
    )
    results.add_row(
        "size",
        mb(baseline.size_bytes),
        mb(result.size_bytes),
        ratio_text(ratios.size, "smaller", "larger"),
        "measured",
    )
    results.add_row(
        "gzip size",
        mb(baseline.gzip_bytes),
        mb(result.gzip_bytes),
        ratio_text(ratios.gzip, "smaller", "larger"),
        "measured",
    )
    results.add_row(
        "weight zeros",
        f"{baseline.weight_zero_fraction:.1%}",
        f"{result.weight_zero_fraction:.1%}",
        "",
        "measured",
    )
    results.add_row(
        f"host latency (median, {result.host_threads} threads)",
        ms(baseline.host_latency_ms),
        ms(result.host_latency_ms),
        ratio_text(ratios.host_latency, "faster", "slower"),
        host_how,
    )
    results.add_row(
        "host latency p90",
        ms(baseline.host_latency_p90_ms),
        ms(result.host_latency_p90_ms),
        "",
        host_how,
    )
    results.add_row(
        f"latency on {profile.name}",
        ms(baseline.estimated_latency_ms),
        ms(result.estimated_latency_ms),
        "",
        "estimated (cost model)",
    )
    coverage = result.op_coverage
    if coverage is not None:
        results.add_row(
            f"delegate op coverage on {profile.name}",
            "",
            f"{coverage.delegated_ops}/{coverage.total_ops} ops ({coverage.fraction:.0%})",
            f"cut at {coverage.cut_at}" if coverage.cut_at else "full",
            "checked on the .tflite's ops",
        )
    split = "held-out" if result.fidelity_split == "held_out" else "calibration"
    how = f"measured, {result.fidelity_images} {split} images"
    if result.fidelity_arithmetic and result.fidelity_host_float32 is not None:
        how += f"; {result.fidelity_arithmetic}"
    count = len(result.fidelity_outputs or {})
    results.add_row(
        "fidelity vs float model",
        worst_output_text(baseline.fidelity, baseline.fidelity_output, count),
        worst_output_text(result.fidelity, result.fidelity_output, count),
        "",
        how,
    )
    for output, accuracy in (result.label_accuracy or {}).items():
        float_accuracy = (baseline.label_accuracy or {}).get(output)
        results.add_row(
            "accuracy vs labels" + (f" ({output})" if count > 1 else ""),
            "—" if float_accuracy is None else f"{float_accuracy:.1%}",
            f"{accuracy:.1%}",
            "",
            f"measured, {result.fidelity_images} {split} images in class folders",
        )
    tables = [stages, results]
    by_output = outputs_table(report)
    if by_output is not None:
        tables.append(by_output)
    if report.search:
        tables.append(candidates_table(report.search))
    return tables


def candidates_table(search: dict[str, Any]) -> Table:
    """Every candidate the search considered: measured numbers and why it won or lost."""
    constraints = search["constraints"]
    wanted = ", ".join(
        f"{key} {value:g} ({constraints['sources'][key]})"
        for key, value in constraints.items()
        if key != "sources"
    )
    table = Table(
        title=f"Candidates measured — constraints: {wanted}; latency {search['latency']}",
        title_justify="left",
    )
    split = str(search.get("fidelity_split", "calibration")).split(" ")[0]
    for column in ("pipeline", "size", "gzip", "latency", f"fidelity ({split})", "outcome"):
        table.add_column(column, overflow="fold")
    for candidate in search["candidates"]:
        measured = candidate["measured"]
        outcome = candidate_outcome(candidate)
        style = {Outcome.CHOSEN: "bold green", Outcome.NOT_TRIED: "dim"}.get(outcome, "")
        table.add_row(
            candidate["pipeline"],
            mb(measured.get("size_bytes")),
            mb(measured.get("gzip_bytes")),
            ms(candidate.get("objective_latency_ms")),
            worst_output_text(
                measured.get("fidelity"),
                measured.get("fidelity_output"),
                len(measured.get("fidelity_outputs") or {}),
            ),
            candidate["status"],
            style=style,
        )
    return table


def print_report(report: Report, run_dir: str) -> None:
    """Print a run's tables, notes and where its files are."""
    for table in report_tables(report):
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]note:[/dim] {escape(note)}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if report.data.skipped:
        console.print(f"[yellow]data:[/yellow] {escape(skipped_line(report.data))}")
    console.print(
        f"run: [bold]{escape(run_dir)}[/bold]  model: {escape(f'{run_dir}/{report.artifact}')}"
    )


def skipped_line(data: Any, shown: int = 4) -> str:
    """The data files a run skipped, and why, in one line."""
    skipped = [str(item) for item in data.skipped]
    extra = len(skipped) - shown
    more = f"; and {extra} more (report.json lists all)" if extra > 0 else ""
    return f"skipped {len(skipped)} file(s) in {data.source}: " + "; ".join(skipped[:shown]) + more


def warn_failed_plugins(host: Any) -> None:
    """One warning line (stderr) per plugin that failed to load or register."""
    host.strategies  # noqa: B018 - registration failures show up once it is built
    for record in host.errors():
        err_console.print(
            f"[yellow]warning:[/yellow] plugin '{escape(record.name)}' "
            f"({escape(str(record.distribution))}) failed to load: {escape(str(record.error))}",
            soft_wrap=True,
        )
