"""Shared helpers of the benchmark scripts: naive converter baselines, measurement on the
host, and writing results as JSON plus a Markdown table between markers in a doc."""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.builtin_metrics import compare_outputs
from compressor.litert.conversion import convert_keras
from compressor.litert.measurement import gzip_size, weight_zero_fraction
from compressor.litert.tflite_runtime import TFLiteModel, measure_latency

ROOT = Path(__file__).resolve().parent.parent


def convert_naive(model: Any, mode: str, samples: np.ndarray | None = None) -> bytes:
    """What a user gets from the plain TFLiteConverter: ``float32``, ``default``
    (``Optimize.DEFAULT``: dynamic-range int8) or ``full-int8`` (int8 builtins and I/O,
    calibrated on ``samples``)."""
    precision = {"float32": "float32", "default": "dynamic_int8", "full-int8": "int8"}[mode]
    io_type = "int8" if mode == "full-int8" else "float32"
    return convert_keras(model, precision, None if samples is None else samples[:16], io_type)


def measure(
    model: bytes,
    images: np.ndarray,
    reference: np.ndarray,
    threads: Sequence[int] = (2,),
    runs: int = 20,
) -> tuple[dict[str, Any], np.ndarray]:
    """Size, gzip size, zero fraction, median host latency per thread count, and
    fidelity vs ``reference``; also returns the outputs."""
    outputs = TFLiteModel(model, max(threads)).predict(images)
    row: dict[str, Any] = {
        "size_mb": round(len(model) / 1e6, 3),
        "gzip_mb": round(gzip_size(model) / 1e6, 3),
        "weight_zero_fraction": round(weight_zero_fraction(model), 4),
    }
    for count in threads:
        stats = measure_latency(model, images[0], count, runs=runs, warmup=3)
        row[f"latency_ms_{count}t"] = round(stats.median_ms, 2)
    row.update(compare_outputs(reference, outputs))
    return row, outputs


def host_facts() -> dict[str, Any]:
    """What the numbers were measured on."""
    import os

    from compressor.core.host import host_cpu, host_isa

    return {
        "cpu": host_cpu(),
        "isa": list(host_isa()),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("—" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_section(doc: Path, marker: str, text: str) -> None:
    """Replace the text between ``<!-- marker:start -->`` and ``<!-- marker:end -->``
    in ``doc`` (appending the section if the markers are missing)."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{text}\n{end}"
    current = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    doc.write_text(updated, encoding="utf-8")
