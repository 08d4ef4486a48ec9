"""Run directories: one per run, never overwritten; report.json is written last."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from compressor.core.errors import CompressorError
from compressor.core.files import write_text_atomic
from compressor.reports.report_model import Report, validate_report

REPORT_FILE = "report.json"
ERROR_FILE = "error.txt"
STATUS_FILE = "status.json"  # where a run is: running / interrupted / failed / finished
JOB_FILE = "job.json"  # what the run was asked to do (enough to resume it)
DEFAULT_RUNS_DIR = Path("runs")


def ensure_new_output(output: Path | None) -> None:
    """Refuse an ``--output`` that already holds something, or that sits under a file
    (checked before any work)."""
    if output is None:
        return
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise CompressorError(
            f"output {output} already exists and is not empty",
            "runs never overwrite each other: choose a new --output",
        )
    blocking = next((p for p in output.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise CompressorError(
            f"--output {output}: {blocking} is a file, not a folder", "choose another --output"
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
    """Write JSON atomically (``write_bytes_atomic``)."""
    write_text_atomic(path, json.dumps(data, indent=2, default=_json_default))


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
        if status is not None and status["state"] in ("running", "interrupted", "died"):
            done = ", ".join(s["name"] for s in status["completed_stages"]) or "none"
            state = "died" if status["state"] == "died" else f"is {status['state']}"
            raise CompressorError(
                f"run {run_dir} {state}"
                + (f" in stage {status['running_stage']}" if status["running_stage"] else "")
                + f"; completed stages: {done}",
                f"continue it with: compressor run --resume {run_dir}",
            )
        error = run_dir / ERROR_FILE
        if error.is_file():
            first = (error.read_text(encoding="utf-8").strip().splitlines() or ["?"])[0]
            raise CompressorError(f"run {run_dir} failed: {first}", "see error.txt in the run")
        raise CompressorError(f"run {run_dir} has no {REPORT_FILE} (unfinished or not a run)")
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CompressorError(f"{report} is not valid JSON") from exc
    return validate_report(data, str(report))


def write_status(
    run_dir: Path,
    state: str,
    completed: list[dict[str, Any]],
    running: str | None = None,
    error: str | None = None,
) -> None:
    """Record where the run is: ``state`` (running, interrupted, failed, finished), the
    stage records of the stages whose outputs are saved, the stage in progress, and why
    it stopped (``error``)."""
    write_json_atomic(
        run_dir / STATUS_FILE,
        {
            "state": state,
            "completed_stages": completed,
            "running_stage": running,
            **({"error": error} if error else {}),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """A run's status, or None for runs made before status files (or not runs). A run
    left "running" by a process that is gone (killed, aborted) reads as "died"."""
    from compressor.engine.run_lock import holder_alive, read_lock

    path = run_dir / STATUS_FILE
    if not path.is_file():
        return None
    status = read_json_file(path, "the run's status")
    if not isinstance(status.get("completed_stages"), list) or "state" not in status:
        raise CompressorError(f"{path}: not a run status (no state or completed_stages)")
    if status["state"] == "running":
        holder = read_lock(run_dir)
        if holder is None or holder_alive(holder) is False:
            status["state"] = "died"
            status.setdefault(
                "error", "the run's process ended without recording why (killed or aborted)"
            )
    return status


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; a one-line error when it is unreadable or truncated."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CompressorError(f"{path} ({what}) is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompressorError(
            f"{path} ({what}) is unreadable or truncated ({type(exc).__name__})",
            "the run directory is damaged: start a new run",
        ) from exc
    if not isinstance(data, dict):
        raise CompressorError(f"{path} ({what}) is not a JSON object")
    return data
