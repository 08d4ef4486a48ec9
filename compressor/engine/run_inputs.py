"""Content hashes of what a run was given (model, data files, plan, profile), so a
resumed run can prove it continues with the same inputs, and refuse when it cannot."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

from compressor.core.errors import CompressorError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The SHA-256 of a regular file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(folder: Path) -> str:
    """One SHA-256 over every regular file under ``folder`` (relative names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode("utf-8", "surrogateescape"))
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def model_hash(path: Path | None) -> str | None:
    """The hash of a model file or SavedModel directory (None for the built-in demo)."""
    if path is None:
        return None
    return sha256_tree(path) if path.is_dir() else sha256_file(path)


def data_hashes(folder: Path | None, suffixes: set[str]) -> dict[str, str] | None:
    """File name -> SHA-256 of every regular image file in ``folder`` and in its class
    subfolders (``class/name``; None: built-in)."""
    if folder is None:
        return None
    hashes = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes and _is_regular(path):
            hashes[path.name] = sha256_file(path)
        elif path.is_dir() and not path.name.startswith("."):
            for inner in sorted(path.iterdir()):
                if inner.suffix.lower() in suffixes and _is_regular(inner):
                    hashes[f"{path.name}/{inner.name}"] = sha256_file(inner)
    return hashes


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def profile_hash(profile: Any) -> str:
    """The hash of the resolved profile's content (shipped, a YAML file, or ``host``)."""
    text = json.dumps(profile.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def input_hashes(
    model: Path | None, data: Path | None, profile: Any, suffixes: set[str]
) -> dict[str, Any]:
    """What job.json records of a run's inputs."""
    return {
        "model": model_hash(model),
        "data": data_hashes(data, suffixes),
        "profile": profile_hash(profile),
    }


def changed_inputs(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two ``input_hashes`` records, one phrase each."""
    changes = []
    if recorded.get("model") != current.get("model"):
        changes.append("the model file")
    if recorded.get("profile") != current.get("profile"):
        changes.append("the profile")
    old, new = recorded.get("data") or {}, current.get("data") or {}
    if old != new:
        names = sorted({n for n in old.keys() | new.keys() if old.get(n) != new.get(n)})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        changes.append(f"the data folder ({shown})")
    return changes


def check_unchanged(run_dir: Path, recorded: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse, in one line, to resume a run whose inputs changed since it started."""
    changes = changed_inputs(recorded, current)
    if changes:
        raise CompressorError(
            f"--resume {run_dir}: {' and '.join(changes)} changed since the run started",
            "a resumed run must continue with the inputs it started with: start a new run",
        )
