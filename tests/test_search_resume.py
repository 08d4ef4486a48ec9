"""A run killed during its plan search (SIGKILL: nothing gets to clean up) keeps the
candidates it measured; `report` lists them and `--resume` re-uses them and ships the
artifact an uninterrupted run ships."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap

import pytest

from compressor.engine.job import run_job
from compressor.engine.plugin_host import PluginHost
from compressor.engine.resume import resume_job
from compressor.engine.run_store import read_status
from tests.conftest import REPO, build_tiny_cnn, invoke_cli, write_images

# Latency is estimated for a phone profile (the host is not the target), so the choice
# depends on measured fidelity and sizes only: deterministic, as resume must be.
PROFILE = "pixel-cpu"

_KILLED_IN_SEARCH = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    from compressor.engine.job import run_job
    from compressor.engine.plugin_host import PluginHost

    def on_event(hook, **kwargs):
        if hook == "on_candidate_started" and kwargs["number"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    model, data, out, profile = sys.argv[1:5]
    run_job(PluginHost(load_entrypoints=False), profile, None, Path(model), Path(data),
            Path(out), on_event=on_event)
    """
)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_run_killed_in_the_search_resumes_to_the_same_artifact(tmp_path):
    model = tmp_path / "model.keras"
    build_tiny_cnn().save(model)
    data = write_images(tmp_path / "images")
    whole_dir, whole = run_job(PluginHost(load_entrypoints=False), PROFILE, None, model, data,
                               tmp_path / "whole")  # fmt: skip

    cut = tmp_path / "cut"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_SEARCH, str(model), str(data), str(cut), PROFILE],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(p.name for p in (cut / "search").glob("*.json")) == ["01.json", "02.json"]
    status = read_status(cut)
    assert status["state"] == "died" and status["running_stage"] == "search"

    report = invoke_cli("report", str(cut))
    assert report.returncode == 2
    assert "search so far (2 candidate(s) recorded)" in report.stdout
    assert "died in stage search" in report.stderr

    run_dir, resumed = resume_job(PluginHost(load_entrypoints=False), cut)
    assert _digest(run_dir / "model.tflite") == _digest(whole_dir / "model.tflite")
    assert resumed["search"]["chosen"] == whole["search"]["chosen"]
    reused = [c["pipeline"] for c in resumed["search"]["candidates"] if c["restored"]]
    assert reused == [c["pipeline"] for c in whole["search"]["candidates"][:2]]
    assert any("2 candidate(s) measured before the interrupt" in n for n in resumed["notes"])
    assert json.loads((cut / "status.json").read_text())["state"] == "finished"
