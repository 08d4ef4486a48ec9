"""Run directories: one per run, never overwritten; report.json is written last."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from compressor.core.errors import CompressorError
from compressor.reports.report_model import Report, validate_report

REPORT_FILE = "report.json"
ERROR_FILE = "error.txt"
STATUS_FILE = "status.json"  # where a run is: running / interrupted / failed / finished
JOB_FILE = "job.json"  # what the run was asked to do (enough to resume it)
DEFAULT_RUNS_DIR = Path("runs")


def ensure_new_output(output: Path | None) -> None:
    """Refuse an ``--output`` that already holds something (checked before any work)."""
    if output is not None and output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise CompressorError(
            f"output {output} already exists and is not empty",
            "runs never overwrite each other: choose a new --output",
        )


def create_run_dir(output: Path | None, profile_name: str) -> Path:
    """Make a fresh run directory: ``output`` if given (must not hold a run), else runs/<time>."""
    if output is not None:
        ensure_new_output(output)
        output.mkdir(parents=True, exist_ok=True)
        return output
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = DEFAULT_RUNS_DIR / f"{stamp}-{profile_name}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file and rename it, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def read_report(run_dir: Path) -> Report:
    """Load a finished run's report, checked against its schema; clear errors for
    missing, failed or unfinished runs."""
    if not run_dir.is_dir():
        raise CompressorError(f"run directory {run_dir} does not exist", "pass a run directory")
    report = run_dir / REPORT_FILE
    if not report.is_file():
        status = read_status(run_dir)
        if status is not None and status["state"] in ("running", "interrupted"):
            done = ", ".join(s["name"] for s in status["completed_stages"]) or "none"
            raise CompressorError(
                f"run {run_dir} is {status['state']}"
                + (f" in stage {status['running_stage']}" if status["running_stage"] else "")
                + f"; completed stages: {done}",
                f"continue it with: compressor run --resume {run_dir}",
            )
        error = run_dir / ERROR_FILE
        if error.is_file():
            first = error.read_text(encoding="utf-8").strip().splitlines()[0]
            raise CompressorError(f"run {run_dir} failed: {first}", "see error.txt in the run")
        raise CompressorError(f"run {run_dir} has no {REPORT_FILE} (unfinished or not a run)")
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CompressorError(f"{report} is not valid JSON") from exc
    return validate_report(data, str(report))


def write_status(
    run_dir: Path, state: str, completed: list[dict[str, Any]], running: str | None = None
) -> None:
    """Record where the run is: ``state`` (running, interrupted, failed, finished), the
    stage records of the stages whose outputs are saved, and the stage in progress."""
    write_json_atomic(
        run_dir / STATUS_FILE,
        {
            "state": state,
            "completed_stages": completed,
            "running_stage": running,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """A run's status, or None for runs made before status files (or not runs)."""
    path = run_dir / STATUS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
