"""A run directory is a record a resume can trust: inputs, plan and stage outputs are
hashed and re-checked, loaded only by the run's own names and through the untrusted-model
checks, and one process at a time writes it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from compressor.engine.job import SearchOptions, run_job
from compressor.engine.plugin_host import PluginHost
from compressor.planning.plan import Plan, StageSpec
from tests.conftest import (
    StopBeforeQuantize,
    assert_one_line_error,
    build_lambda_model,
    build_tiny_cnn,
    invoke_cli,
    write_images,
)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """(run directory stopped before quantize with prune completed, model path, data)."""
    root = tmp_path_factory.mktemp("record")
    model = root / "model.keras"
    build_tiny_cnn().save(model)
    data = write_images(root / "images")
    plan = Plan(
        profile="x86-cpu",
        stages=[StageSpec(stage="prune", strategy="magnitude-prune",
                          params={"fine_tune_steps": 2, "target_sparsity": 0.5}),
                StageSpec(stage="quantize", strategy="tflite-float16"),
                StageSpec(stage="evaluate", strategy="litert-evaluate", params={"runs": 2})],
    )  # fmt: skip
    plan.save(root / "plan.yaml")
    host = PluginHost(load_entrypoints=False)
    host.add_plugin(StopBeforeQuantize(), "stopper")
    with pytest.raises(KeyboardInterrupt):
        run_job(host, None, root / "plan.yaml", model, data, root / "cut",
                options=SearchOptions(search=False))  # fmt: skip
    return root / "cut", model, data


@pytest.fixture
def cut(interrupted, tmp_path):
    """A fresh copy of the interrupted run to tamper with."""
    copy = tmp_path / "cut"
    shutil.copytree(interrupted[0], copy)
    return copy


def _status(run_dir):
    return json.loads((run_dir / "status.json").read_text())


def _set_status(run_dir, status):
    (run_dir / "status.json").write_text(json.dumps(status))


def test_an_edited_plan_is_refused(cut):
    plan = cut / "plan.yaml"
    plan.write_text(plan.read_text().replace("0.5", "0.9"))
    assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "plan.yaml was edited")


def test_a_replaced_model_or_changed_data_is_refused(interrupted, cut):
    _, model, data = interrupted
    original = model.read_bytes()
    try:
        build_tiny_cnn(seed=1).save(model)  # same path, other weights
        assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "the model", "changed")
    finally:
        model.write_bytes(original)
    extra = data / "img0.png"
    saved = extra.read_bytes()
    try:
        extra.write_bytes(saved[:-1] + b"\0")
        assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "data folder", "img0.png")
    finally:
        extra.write_bytes(saved)


def test_a_missing_stage_output_or_folder_is_refused(cut, tmp_path):
    output = cut / _status(cut)["completed_stages"][0]["output"]
    other = tmp_path / "other"
    shutil.copytree(cut, other)
    output.unlink()
    assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "is missing")
    shutil.rmtree(other / output.parent.relative_to(cut))
    assert_one_line_error(invoke_cli("run", "--resume", str(other)), "is missing")


def test_a_truncated_or_rewritten_status_is_refused(cut):
    status_file = cut / "status.json"
    text = status_file.read_text()
    status_file.write_text(text[: len(text) // 2])
    assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "status.json")
    status = json.loads(text)
    status["completed_stages"][0]["output"] = "../../elsewhere/model.keras"
    _set_status(cut, status)
    assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "not a file this run writes")
    status["completed_stages"][0]["output"] = json.loads(text)["completed_stages"][0]["output"]
    status["completed_stages"][0]["params"]["target_sparsity"] = 0.9
    _set_status(cut, status)
    assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "other params")


def test_a_stage_output_swapped_for_code_is_not_loaded(cut):
    """A stage model.keras replaced by an HDF5 file with a Lambda (hash updated too, as a
    careful attacker would): read as HDF5 from its bytes and refused; its code never runs."""
    import hashlib

    marker = cut.parent / "code-ran.txt"
    status = _status(cut)
    output = cut / status["completed_stages"][0]["output"]
    build_lambda_model(marker).save(output.with_suffix(".h5"), save_format="h5")
    output.with_suffix(".h5").replace(output)
    status["completed_stages"][0]["sha256"] = hashlib.sha256(output.read_bytes()).hexdigest()
    _set_status(cut, status)
    assert_one_line_error(invoke_cli("run", "--resume", str(cut)), "carries code")
    assert not marker.exists()


def test_a_live_lock_is_refused_and_a_stale_one_taken_over(cut):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        stat = Path(f"/proc/{holder.pid}/stat").read_text()
        start = stat.rsplit(")", 1)[-1].split()[19]
        lock = {"pid": holder.pid, "host": socket.gethostname(), "process_start": start,
                "since": "2026-01-01T00:00:00"}  # fmt: skip
        (cut / "run.lock").write_text(json.dumps(lock))
        assert_one_line_error(invoke_cli("run", "--resume", str(cut)),
                              f"in use by process {holder.pid}")  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    result = invoke_cli("run", "--resume", str(cut))  # the holder is gone now
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((cut / "report.json").read_text())
    assert any(f"stale lock of process {holder.pid}" in n for n in report["notes"])
    assert report["resumed_after"] == ["prune"]
    assert not (cut / "run.lock").exists()
