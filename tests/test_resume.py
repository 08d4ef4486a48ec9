"""Runs survive: an interrupted run says where it stopped, and --resume finishes it with
the result an uninterrupted run gives."""

from __future__ import annotations

import hashlib
import json

import pytest

from compressor.core.errors import CompressorError
from compressor.engine.job import SearchOptions, run_job
from compressor.engine.resume import resume_job
from compressor.engine.run_store import read_report
from compressor.planning.plan import Plan, StageSpec
from tests.conftest import StopBeforeQuantize, invoke_cli


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def prune_plan(tmp_path):
    plan = Plan(
        profile="x86-cpu",
        stages=[
            StageSpec(stage="prune", strategy="magnitude-prune",
                      params={"fine_tune_steps": 2, "target_sparsity": 0.5}),
            StageSpec(stage="quantize", strategy="tflite-full-int8"),
            StageSpec(stage="evaluate", strategy="litert-evaluate", params={"runs": 2}),
        ],
    )  # fmt: skip
    path = tmp_path / "plan.yaml"
    plan.save(path)
    return path


def test_an_interrupted_run_resumes_to_the_same_artifact(
    plugin_host, tiny_cnn_path, images_dir, prune_plan, tmp_path
):
    options = SearchOptions(search=False)
    whole_dir, whole = run_job(plugin_host, None, prune_plan, tiny_cnn_path, images_dir,
                               tmp_path / "whole", options=options)  # fmt: skip
    assert json.loads((whole_dir / "status.json").read_text())["state"] == "finished"

    from compressor.engine.plugin_host import PluginHost

    stopping = PluginHost(load_entrypoints=False)
    stopping.add_plugin(StopBeforeQuantize(), "stopper")
    with pytest.raises(KeyboardInterrupt):
        run_job(stopping, None, prune_plan, tiny_cnn_path, images_dir, tmp_path / "cut",
                options=options)  # fmt: skip
    cut = tmp_path / "cut"
    status = json.loads((cut / "status.json").read_text())
    assert status["state"] == "interrupted" and status["running_stage"] == "quantize"
    assert [s["name"] for s in status["completed_stages"]] == ["prune"]
    with pytest.raises(CompressorError) as caught:
        read_report(cut)  # `compressor report` on it says what completed
    assert "interrupted in stage quantize; completed stages: prune" in caught.value.message
    assert f"compressor run --resume {cut}" in caught.value.hint

    run_dir, report = resume_job(plugin_host, cut)
    assert report["resumed_after"] == ["prune"]
    assert [s["name"] for s in report["stages"]] == ["prune", "quantize", "evaluate"]
    assert _digest(run_dir / "model.tflite") == _digest(whole_dir / "model.tflite")
    assert report["result"]["fidelity"] == whole["result"]["fidelity"]
    with pytest.raises(CompressorError, match="finished"):
        resume_job(plugin_host, cut)


def test_resume_refuses_other_settings_and_non_runs(tmp_path):
    result = invoke_cli("run", "--resume", str(tmp_path), "--profile", "edgetpu")
    assert result.returncode == 2 and "drop --profile" in result.stderr
    result = invoke_cli("run", "--resume", str(tmp_path))
    assert result.returncode == 2 and "not a run directory" in result.stderr
