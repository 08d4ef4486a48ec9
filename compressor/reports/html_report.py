"""report.html: one self-contained page per run (no scripts, no external files).

Plan, result tables, a size / latency / fidelity chart of baseline vs each stage, the
delegate op coverage, and for image-to-image models a grid of sample outputs (input,
float, compressed, amplified difference) embedded as PNG data URIs. Every number shown
carries a ``data-key`` naming its place in report.json, so tests can check the page
against the JSON.
"""

from __future__ import annotations

import base64
import html
import io
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from compressor.core.errors import CompressorError
from compressor.core.files import write_bytes_atomic, write_text_atomic
from compressor.core.ratios import RATIO_WORDS, describe_ratio
from compressor.reports.report_model import (
    Measurement,
    Outcome,
    Report,
    candidate_outcome,
    json_number,
)

HTML_FILE = "report.html"
SAMPLES_FILE = "samples.npz"
DIFF_GAIN = 8.0

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.num{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b00}.ok{color:#070}
.grid img{width:160px;height:auto;image-rendering:pixelated;margin:2px}
.chart{display:inline-block;margin-right:2em;vertical-align:top}small{color:#666}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, key: str, digits: int = 3) -> str:
    number = json_number(value) if isinstance(value, str | float | int) else None
    if number is None:
        return '<td class="num">—</td>'
    if math.isinf(number):
        text = "∞" if number > 0 else "−∞"
    elif math.isnan(number):
        text = "NaN"
    else:
        text = f"{number:.{digits}f}" if isinstance(value, float | str) else str(value)
    return f'<td class="num" data-key="{_esc(key)}" data-value="{_esc(value)}">{text}</td>'


def _png_data_uri(image: np.ndarray) -> str:
    array = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    Image.fromarray((array * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _fidelity_cells(fidelity: dict[str, Any], prefix: str) -> str:
    return "".join(
        f"<td>{_esc(k)}</td>{_num(v, f'{prefix}.fidelity.{k}', 4)}" for k, v in fidelity.items()
    )


def _score_cell(value: Any) -> str:
    """A score without a data-key (output names may hold dots, which key paths split on)."""
    number = json_number(value) if isinstance(value, str | float | int) else None
    if number is None:
        return '<td class="num">—</td>'
    return f'<td class="num">{"∞" if math.isinf(number) else f"{number:.4f}"}</td>'


def _outputs(report: Report) -> str:
    """Each output's task, why, metric and primary score (baseline and result)."""
    judged = report.result.fidelity_outputs or {}
    if not judged:
        return ""
    base = report.baseline.fidelity_outputs or {}
    rows = []
    for name, output in judged.items():
        before = base.get(name)
        worst = " (the model's fidelity)" if name == report.result.fidelity_output else ""
        rows.append(
            f"<tr><th>{_esc(name)}{worst}</th><td>{_esc(output.task)}</td>"
            f"<td>{_esc(output.task_reason)}</td><td>{_esc(output.metric)}</td>"
            f"<td>{_esc(output.primary)}</td>"
            + _score_cell(before.scores.get(output.primary) if before else None)
            + _score_cell(output.scores.get(output.primary))
            + "</tr>"
        )
    headers = ["output", "task", "why", "metric", "score", "baseline", "result"]
    return "<h3>Fidelity by output</h3>" + _table(headers, rows)


def _labels(report: Report) -> str:
    """Accuracy against the class folders, baseline and result, by output."""
    accuracy = report.result.label_accuracy or {}
    if not accuracy:
        return ""
    base = report.baseline.label_accuracy or {}
    rows = [
        f"<tr><th>{_esc(name)}</th>{_score_cell(base.get(name))}{_score_cell(value)}</tr>"
        for name, value in accuracy.items()
    ]
    title = "<h3>Accuracy against the labels (class folders, held-out images)</h3>"
    return title + _table(["output", "baseline", "result"], rows)


def _summary(report: Report) -> str:
    rows = []
    # An estimate is compared with host latency only where the host is the target.
    host_is_target = report.profile.runs_on_this_host
    for which in ("baseline", "result"):
        m: Measurement = getattr(report, which)
        estimate, host = m.estimated_latency_ms, m.host_latency_ms
        error = (estimate - host) / host * 100 if estimate and host and host_is_target else None
        rows.append(
            f"<tr><th>{which}</th><td>{_esc(m.precision)}</td>"
            + _num(m.size_bytes, f"{which}.size_bytes")
            + _num(m.gzip_bytes, f"{which}.gzip_bytes")
            + _num(m.weight_zero_fraction, f"{which}.weight_zero_fraction", 4)
            + _num(host, f"{which}.host_latency_ms")
            + _num(estimate, f"{which}.estimated_latency_ms")
            + (
                f'<td class="num">{error:+.0f}%</td>'
                if error is not None
                else "<td><small>host is not the target</small></td>"
                if not host_is_target
                else "<td>—</td>"
            )
            + _fidelity_cells(m.fidelity, which)
            + "</tr>"
        )
    headers = [
        "",
        "precision",
        "size (bytes)",
        "gzip (bytes)",
        "zero weights",
        f"host latency ms, measured ({report.baseline.host_threads} thr)",
        f"latency ms on {report.profile.name}, estimated",
        "estimate vs host",
        "metric (measured)",
        "value",
        "metric (measured)",
        "value",
    ]
    ratios = report.ratios.model_dump()
    ratio_text = ", ".join(
        f'{k.replace("_", " ")} <b data-key="ratios.{k}" data-value="{v}">'
        f"{describe_ratio(v, *RATIO_WORDS.get(k, ('better', 'worse')))}</b>"
        for k, v in ratios.items()
    )
    provenance = report.provenance
    facts = " ".join(
        f"{_esc(provenance[key])}." for key in ("host_latency", "fidelity") if key in provenance
    )
    return (
        _table(headers, rows)
        + f"<p>Result against the baseline (measured): {ratio_text}</p>"
        + (f"<p><small>{facts}</small></p>" if facts else "")
    )


def _plan(report: Report) -> str:
    rows = []
    for stage in report.plan.stages if report.plan else []:
        params = ", ".join(f"{k}={v}" for k, v in stage.params.items())
        rows.append(
            f"<tr><td>{_esc(stage.stage)}</td><td>{_esc(stage.strategy)}</td>"
            f"<td><small>{_esc(params)}</small></td><td>{_esc(stage.why or '')}</td></tr>"
        )
    return _table(["stage", "strategy", "params", "why"], rows)


def _stage_points(report: Report) -> list[tuple[str, dict[str, Any]]]:
    """Baseline then each stage, as ``{"measured": {...}, "estimated": {...}}``."""
    base = report.baseline
    points = [
        (
            "baseline (float32)",
            {
                "measured": {"size_bytes": base.size_bytes, "fidelity": base.fidelity},
                "estimated": {"latency_ms": base.estimated_latency_ms},
            },
        )
    ]
    for stage in report.stages:
        if stage.metrics:
            points.append((f"{stage.name}: {stage.strategy}", stage.metrics))
    return points


def _fidelity_value(fidelity: dict[str, Any]) -> tuple[str, float | None]:
    from compressor.core.constraints import primary_fidelity

    return primary_fidelity({k: v for k, v in fidelity.items() if isinstance(v, int | float)})


def _bar_chart(title: str, labels: list[str], values: list[float | None], unit: str) -> str:
    width, bar_h, label_w = 420, 18, 210
    known = [v for v in values if v is not None]
    top = max(known) if known else 1.0
    height = bar_h * len(labels) + 10
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = i * bar_h + 4
        parts.append(f'<text x="0" y="{y + 12}" font-size="11">{_esc(label[:34])}</text>')
        if value is None:
            parts.append(f'<text x="{label_w}" y="{y + 12}" font-size="11">n/a</text>')
            continue
        length = 0 if top <= 0 else (width - label_w - 60) * value / top
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h - 4}" '
            f'fill="#4a7bd0"/><text x="{label_w + length + 4:.1f}" y="{y + 12}" '
            f'font-size="11">{value:.3g} {_esc(unit)}</text>'
        )
    parts.append("</svg>")
    return f'<div class="chart"><b>{_esc(title)}</b><br>{"".join(parts)}</div>'


def _charts(report: Report) -> str:
    """Measured and estimated numbers never share a chart: sizes of ``.tflite`` files are
    measured (a Keras stage's size is an estimate, listed in the table only), latency
    per stage is the cost model's estimate, fidelity is measured."""
    points = _stage_points(report)
    labels = [label for label, _ in points]
    measured_sizes = [
        (label, m["measured"]["size_bytes"] / 1e6)
        for label, m in points
        if "size_bytes" in m.get("measured", {})
    ]
    latency = [m.get("estimated", {}).get("latency_ms") for _, m in points]
    fidelities = [m.get("measured", {}).get("fidelity") or {} for _, m in points]
    metric, _ = _fidelity_value(fidelities[0])
    fidelity = [_fidelity_value(f)[1] for f in fidelities]
    rows = []
    for (label, m), score in zip(points, fidelity, strict=True):
        if "size_bytes" in m.get("measured", {}):
            size = f"{m['measured']['size_bytes'] / 1e6:.3f} MB (measured)"
        elif "size_bytes" in m.get("estimated", {}):
            size = f"{m['estimated']['size_bytes'] / 1e6:.3f} MB (estimated)"
        else:
            size = "—"
        estimate = m.get("estimated", {}).get("latency_ms")
        rows.append(
            f"<tr><td>{_esc(label)}</td><td class='num'>{size}</td>"
            f"<td class='num'>{'—' if estimate is None else f'{estimate:.3g}'}</td>"
            f"<td class='num'>{'—' if score is None else score}</td></tr>"
        )
    return (
        _bar_chart(
            "size of each .tflite (measured)",
            [label for label, _ in measured_sizes],
            [size for _, size in measured_sizes],
            "MB",
        )
        + _bar_chart(f"latency on {report.profile.name} (estimated)", labels, latency, "ms")
        + _bar_chart(f"fidelity ({metric or 'n/a'}, measured)", labels, fidelity, "")
        + _table(
            ["after", "size", "latency ms (estimated)", f"{metric or 'fidelity'} (measured)"],
            rows,
        )
    )


def _tradeoff_chart(search: dict[str, Any]) -> str:
    """Measured candidates as points: latency (x) against fidelity (y), size as the radius;
    the chosen one filled green, misses hollow."""
    points = [
        c
        for c in search["candidates"]
        if c.get("objective_latency_ms") is not None and c.get("fidelity_value") is not None
    ]
    if not points:
        return ""
    width, height, pad = 460, 260, 40
    xs = [c["objective_latency_ms"] for c in points]
    ys = [c["fidelity_value"] for c in points]
    x_lo, x_hi = min(xs) * 0.9, max(xs) * 1.1
    y_lo, y_hi = min(min(ys), search["constraints"].get("min_fidelity", 1.0)) - 0.01, 1.0
    sizes = [c["measured"]["size_bytes"] for c in points]

    def px(x: float) -> float:
        return pad + (x - x_lo) / max(x_hi - x_lo, 1e-9) * (width - 2 * pad)

    def py(y: float) -> float:
        return height - pad - (y - y_lo) / max(y_hi - y_lo, 1e-9) * (height - 2 * pad)

    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="trade-off">']
    parts.append(
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#888"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>'
        f'<text x="{width / 2 - 60}" y="{height - 8}" font-size="11">latency ms '
        f"({_esc(search['latency'])[:40]})</text>"
        f'<text x="2" y="{pad - 10}" font-size="11">fidelity (measured)</text>'
    )
    floor = search["constraints"].get("min_fidelity")
    if floor is not None:
        parts.append(
            f'<line x1="{pad}" y1="{py(floor):.1f}" x2="{width - pad}" y2="{py(floor):.1f}" '
            f'stroke="#b00" stroke-dasharray="4"/><text x="{width - pad - 70}" '
            f'y="{py(floor) - 4:.1f}" font-size="10" fill="#b00">floor {floor:g}</text>'
        )
    for c, x, y, size in zip(points, xs, ys, sizes, strict=True):
        chosen = candidate_outcome(c) is Outcome.CHOSEN
        radius = 4 + 8 * size / max(sizes)
        fill = "#2a2" if chosen else ("none" if c["misses"] else "#4a7bd0")
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{radius:.1f}" fill="{fill}" '
            f'stroke="#333"><title>{_esc(c["pipeline"])}: {x:.3g} ms, {y:.4f}, '
            f"{size / 1e6:.2f} MB</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _candidates(report: Report) -> str:
    search = report.search
    if not search:
        return "<p>No plan search ran (the plan was given).</p>"
    rows = []
    for i, c in enumerate(search["candidates"]):
        m = c["measured"]
        fidelity = c.get("fidelity_value")
        rows.append(
            f"<tr><td>{_esc(c['pipeline'])}</td>"
            + _num(m.get("size_bytes"), f"search.candidates.{i}.measured.size_bytes")
            + _num(c.get("objective_latency_ms"), f"search.candidates.{i}.objective_latency_ms")
            + _num(fidelity, f"search.candidates.{i}.fidelity_value", 4)
            + f"<td>{_esc(c['status'])}</td></tr>"
        )
    constraints = ", ".join(
        f"{_esc(k)} {v:g} ({_esc(search['constraints']['sources'][k])})"
        for k, v in search["constraints"].items()
        if k != "sources"
    )
    split = str(search.get("fidelity_split", "calibration")).split(" ")[0]
    return (
        f"<p>Constraints: {constraints}. Latency: {_esc(search['latency'])}. "
        f"The choice measures fidelity on the {_esc(split)} split; the result above is "
        "measured on the held-out split. "
        f"Search took {search['seconds']:g} s.</p>"
        + _table(
            [
                "pipeline",
                "size bytes (measured)",
                "latency ms",
                f"fidelity (measured, {_esc(split)} split)",
                "outcome",
            ],
            rows,
        )
        + _tradeoff_chart(search)
    )


def _coverage(report: Report) -> str:
    coverage = report.result.op_coverage
    if coverage is None:
        return "<p>No op coverage recorded.</p>"
    fallback = "".join(f"<li>{_esc(f)}</li>" for f in coverage.fallback) or "<li>none</li>"
    return (
        _table(
            ["delegated ops", "total ops", "fraction", "graph cut at"],
            [
                "<tr>"
                + _num(coverage.delegated_ops, "result.op_coverage.delegated_ops")
                + _num(coverage.total_ops, "result.op_coverage.total_ops")
                + _num(coverage.fraction, "result.op_coverage.fraction", 4)
                + f"<td>{_esc(coverage.cut_at or 'not cut')}</td></tr>"
            ],
        )
        + f"<p>Ops falling back to the CPU:</p><ul>{fallback}</ul>"
    )


def _samples(samples: dict[str, np.ndarray] | None) -> str:
    if not samples or samples.get("float") is None or samples["float"].ndim != 4:
        return "<p>No image samples (the model's output is not an image).</p>"
    rows = []
    for i in range(len(samples["float"])):
        diff = np.abs(samples["float"][i] - samples["compressed"][i]) * DIFF_GAIN
        cells = [samples["inputs"][i], samples["float"][i], samples["compressed"][i], diff]
        images = "".join(f'<img class="sample" src="{_png_data_uri(c)}" alt="">' for c in cells)
        rows.append(f'<div class="grid">{images}</div>')
    return (
        f"<p><small>input · float model · compressed · |difference| × {DIFF_GAIN:g}</small></p>"
        + "".join(rows)
    )


def render_html(report: Report, samples: dict[str, np.ndarray] | None) -> str:
    """The whole page for ``report`` and its sample images."""
    model, profile = report.model, report.profile
    notes = "".join(f"<li>{_esc(n)}</li>" for n in report.notes) or "<li>none</li>"
    warnings = "".join(f"<li class='bad'>{_esc(w)}</li>" for w in report.warnings)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>compressor report — {_esc(profile.name)}</title><style>{_STYLE}</style>"
        "</head><body>"
        f"<h1>compressor run for <span data-key='profile.name'>{_esc(profile.name)}</span>"
        f"</h1><p>Model {_esc(model.source)} ({_esc(model.name)}, "
        f"{model.params:,} params) · delegate {_esc(profile.delegate)} · "
        f"{_esc(report.created)} · compressor {_esc(report.compressor_version)}</p>"
        f"<h2>Result</h2>{_summary(report)}{_outputs(report)}{_labels(report)}"
        f"<h2>Plan</h2>{_plan(report)}"
        f"<h2>Candidates measured</h2>{_candidates(report)}"
        f"<h2>Baseline and each stage</h2>{_charts(report)}"
        f"<h2>Delegate op coverage on {_esc(profile.name)}</h2>{_coverage(report)}"
        f"<h2>Sample outputs</h2>{_samples(samples)}"
        f"<h2>Notes</h2><ul>{notes}{warnings}</ul>"
        "</body></html>"
    )


def save_samples(run_dir: Path, samples: dict[str, np.ndarray]) -> None:
    """Keep the sample arrays next to report.json (so the page can be rebuilt)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **samples)
    write_bytes_atomic(run_dir / SAMPLES_FILE, buffer.getvalue())


def load_samples(run_dir: Path) -> dict[str, np.ndarray] | None:
    """Sample arrays saved by ``save_samples`` (None when absent)."""
    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CompressorError(
            f"{path} is unreadable or truncated ({type(exc).__name__})",
            "report.json is intact: `compressor report` without --html still works",
        ) from exc


def write_html_report(run_dir: Path, report: Report) -> Path:
    """Write report.html for a finished run directory."""
    path = run_dir / HTML_FILE
    write_text_atomic(path, render_html(report, load_samples(run_dir)))
    return path
