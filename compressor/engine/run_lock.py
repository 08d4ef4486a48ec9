"""One writer per run directory: a lock file naming the process (pid, host, start time).

A second ``compressor run --resume`` on a live run is refused; the lock of a process that
is gone (killed, crashed, aborted) is stale and taken over, with a note saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compressor.core.errors import CompressorError

LOCK_FILE = "run.lock"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux /proc), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22: starttime


def _this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "process_start": _process_start(pid),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def read_lock(run_dir: Path) -> dict[str, Any] | None:
    """The lock's holder, or None without a lock (an unreadable lock counts as stale)."""
    path = run_dir / LOCK_FILE
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": None, "host": None, "unreadable": True}
    return holder if isinstance(holder, dict) else {"pid": None, "host": None}


def holder_alive(holder: dict[str, Any]) -> bool | None:
    """True when the lock's process still runs, False when it is gone, None when that
    cannot be told from here (another host)."""
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int):
        return False
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    started = holder.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def acquire_lock(run_dir: Path) -> str | None:
    """Take the run's lock; returns a note when a stale lock was taken over. Raises a
    CompressorError naming the holder when another live process has it."""
    path = run_dir / LOCK_FILE
    mine = json.dumps(_this_process())
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w") as out:
            out.write(mine)
        return None
    except FileExistsError:
        pass
    holder = read_lock(run_dir) or {}
    if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        return None
    alive = holder_alive(holder)
    if alive is None:
        raise CompressorError(
            f"run {run_dir} is locked by process {holder.get('pid')} on host {holder.get('host')}",
            f"if that process is gone, delete {path} and retry",
        )
    if alive:
        raise CompressorError(
            f"run {run_dir} is in use by process {holder.get('pid')} (since "
            f"{holder.get('since', '?')})",
            "wait for it to finish, or stop it first: one writer per run directory",
        )
    tmp = path.with_name(LOCK_FILE + f".{os.getpid()}.tmp")
    tmp.write_text(mine, encoding="utf-8")
    os.replace(tmp, path)
    return f"took over the stale lock of process {holder.get('pid')}, which is gone"


def release_lock(run_dir: Path) -> None:
    """Drop the run's lock if this process holds it."""
    holder = read_lock(run_dir)
    if holder and holder.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            (run_dir / LOCK_FILE).unlink()


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[str | None]:
    """Hold the run's lock for the block (yields the stale-lock note, if any)."""
    note = acquire_lock(run_dir)
    try:
        yield note
    finally:
        release_lock(run_dir)
