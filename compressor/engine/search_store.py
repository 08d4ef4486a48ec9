"""The plan search's measured candidates, written to the run directory as each finishes,
so a run interrupted (or killed) during the search resumes without re-measuring them.

Each candidate is ``search/NN.json`` (its pipeline, numbers and status) plus, when it was
built, ``search/NN.tflite`` (the file that was measured, with its SHA-256 in the JSON).
A record is re-used only for the same pipeline (stages, strategies, params) at the same
place in the shortlist, and only while the file still has its hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from compressor.core.artifact import Artifact
from compressor.core.files import write_bytes_atomic
from compressor.engine.run_store import write_json_atomic
from compressor.reports.report_model import candidate_outcome

SEARCH_DIR = "search"


def _reason(record: dict[str, Any]) -> str:
    """A record's reason (older records: the status line after its outcome)."""
    if "reason" in record:
        return str(record["reason"])
    status = str(record.get("status", ""))
    return status.split(": ", 1)[1] if ": " in status else ""


def _steps_key(candidate: Any) -> list[dict[str, Any]]:
    return [
        {"stage": spec.stage, "strategy": strategy.name, "params": config.model_dump()}
        for spec, strategy, config in candidate.steps
    ]


def _plain(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if isinstance(v, str | int | float | bool | None)}


class SearchStore:
    """Where a run's search keeps its measured candidates (``run_dir/search``)."""

    def __init__(self, run_dir: Path) -> None:
        self.folder = run_dir / SEARCH_DIR

    def _paths(self, number: int) -> tuple[Path, Path]:
        return self.folder / f"{number:02d}.json", self.folder / f"{number:02d}.tflite"

    def save(self, number: int, candidate: Any) -> None:
        """Record candidate ``number`` (1-based) once it is measured or has failed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        record_path, model_path = self._paths(number)
        record: dict[str, Any] = {
            "label": candidate.label,
            "steps": _steps_key(candidate),
            "outcome": candidate.outcome.value,
            "reason": candidate.reason,
            "status": candidate.status,
            "seconds": candidate.seconds,
            "numbers": candidate.numbers,
            "fidelity_metric": candidate.fidelity_metric,
            "fidelity": candidate.fidelity,
            "latency_ms": candidate.latency_ms,
        }
        if candidate.artifact is not None and candidate.artifact.tflite_bytes is not None:
            data = candidate.artifact.tflite_bytes
            write_bytes_atomic(model_path, data)
            record["tflite_sha256"] = hashlib.sha256(data).hexdigest()
            record["facts"] = _plain(candidate.artifact.facts)
        write_json_atomic(record_path, record)  # last: a record always has its file

    def restore(self, number: int, candidate: Any) -> bool:
        """Fill candidate ``number`` from its record; False when there is none, or it is
        another pipeline's, or its file changed (then it is measured again)."""
        record_path, model_path = self._paths(number)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if record.get("label") != candidate.label or record.get("steps") != json.loads(
            json.dumps(_steps_key(candidate))
        ):
            return False
        artifact = None
        if "tflite_sha256" in record:
            try:
                data = model_path.read_bytes()
            except OSError:
                return False
            if hashlib.sha256(data).hexdigest() != record["tflite_sha256"]:
                return False
            artifact = Artifact(tflite_bytes=data, facts=record.get("facts") or {})
        candidate.decide(candidate_outcome(record), _reason(record))
        candidate.seconds = float(record.get("seconds") or 0.0)
        candidate.numbers = record.get("numbers")
        candidate.fidelity_metric = record.get("fidelity_metric") or ""
        candidate.fidelity = record.get("fidelity")
        candidate.latency_ms = record.get("latency_ms")
        candidate.artifact = artifact
        candidate.restored = True
        return True

    def measured_so_far(self) -> list[dict[str, Any]]:
        """The candidates recorded so far (for ``compressor report`` on an unfinished run)."""
        records = []
        for path in sorted(self.folder.glob("[0-9][0-9].json")):
            try:
                records.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return records
