"""report.json and report.html: numbers tagged against the JSON, measured vs estimated,
the held-out split; rendering in headless Chromium when installed; `report A B`."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import run_cli, run_ok


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny BN CNN compressed for a CPU and for the EdgeTPU."""
    from tests.conftest import build_tiny_cnn, write_images

    root = tmp_path_factory.mktemp("runs")
    model = root / "tiny.keras"
    build_tiny_cnn().save(model)
    images = write_images(root / "images", count=4)
    cpu, tpu = root / "cpu", root / "tpu"
    run_ok(cpu, "--profile", "x86-cpu", "--model", str(model), "--data", str(images))
    run_ok(tpu, "--profile", "edgetpu", "--model", str(model), "--data", str(images))
    return cpu, tpu


def _lookup(report: dict, key: str):
    value = report
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _embedded_images(page: str) -> list[Image.Image]:
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    return [Image.open(io.BytesIO(base64.b64decode(uri))) for uri in uris]


def _tagged_cells(page: str) -> list[tuple[str, str]]:
    return re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', page)


@pytest.mark.slow
def test_every_run_writes_a_self_contained_html_report(two_runs):
    cpu, _ = two_runs
    page = (cpu / "report.html").read_text()
    report = json.loads((cpu / "report.json").read_text())
    held_out = report["data"]["splits"]["held_out"]["images"]
    images = _embedded_images(page)
    assert len(images) == 4 * held_out  # per sample: input, float, compressed, difference
    assert all(image.size == (32, 32) for image in images)
    for stage in report["stages"][:-1]:
        metrics = stage["metrics"]
        assert set(metrics["measured"]["fidelity"]) == {"psnr_db", "ssim"}
        assert metrics["measured"]["fidelity_images"] == held_out
        assert "latency_ms" in metrics["estimated"] and "latency_ms" not in metrics["measured"]
    assert "http" not in page.replace("http-equiv", "")  # nothing loaded from outside


@pytest.mark.slow
def test_static_html_numbers_match_report_json(two_runs):
    for run in two_runs:
        page = (run / "report.html").read_text()
        report = json.loads((run / "report.json").read_text())
        cells = _tagged_cells(page)
        keys = {key for key, _ in cells}
        assert {"result.size_bytes", "baseline.host_latency_ms", "ratios.size"} <= keys
        assert {"result.fidelity.ssim", "result.op_coverage.delegated_ops"} <= keys
        for key, value in cells:
            assert float(value) == pytest.approx(float(_lookup(report, key))), key


@pytest.mark.slow
def test_report_marks_measured_and_estimated_numbers(two_runs):
    cpu, tpu = two_runs
    for run in (cpu, tpu):
        report = json.loads((run / "report.json").read_text())
        provenance = report["provenance"]
        assert "result.host_latency_ms" in provenance["measured"]
        assert "result.estimated_latency_ms" in provenance["estimated"]
        assert "held-out" in provenance["fidelity"]
        page = (run / "report.html").read_text()
        assert "size of each .tflite (measured)" in page and "(estimated)" in page
    # The EdgeTPU estimate is never compared with this host's CPU latency.
    tpu_page = (tpu / "report.html").read_text()
    assert "host is not the target" in tpu_page
    assert not json.loads((tpu / "report.json").read_text())["profile"]["runs_on_this_host"]


@pytest.mark.slow
def test_report_names_disjoint_calibration_and_held_out_splits(two_runs):
    report = json.loads((two_runs[0] / "report.json").read_text())
    splits = report["data"]["splits"]
    calibration, held_out = splits["calibration"], splits["held_out"]
    selection = splits["selection"]
    assert held_out["disjoint"] is True
    # 4 images: 30 % held out (1); of the other 3, one chooses between variants
    assert calibration["images"] == 2 and selection["images"] == 1 and held_out["images"] == 1
    assert not set(calibration["files"]) & set(held_out["files"])
    assert not set(selection["files"]) & (set(calibration["files"]) | set(held_out["files"]))
    assert report["result"]["fidelity_images"] == 1
    assert report["result"]["fidelity_split"] == "held_out"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
@pytest.mark.slow
def test_html_report_renders_in_chromium_and_matches_report_json(two_runs, tmp_path):
    for run in two_runs:
        dom = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                (run / "report.html").resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        report = json.loads((run / "report.json").read_text())
        cells = _tagged_cells(dom)
        keys = {key for key, _ in cells}
        assert {"result.size_bytes", "baseline.host_latency_ms", "ratios.size"} <= keys
        for key, value in cells:
            expected = _lookup(report, key)
            assert float(value) == pytest.approx(float(expected)), key
        assert report["profile"]["name"] in dom
        held_out = report["data"]["splits"]["held_out"]["images"]
        assert len(_embedded_images(dom)) == 4 * held_out  # the rendered DOM holds the images


@pytest.mark.slow
def test_report_compares_two_runs_side_by_side(two_runs):
    cpu, tpu = two_runs
    result = run_cli("report", str(cpu), str(tpu))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "x86-cpu" in out and "edgetpu" in out and "B / A" in out
    assert "tflite-full-int8" in out and "delegate coverage" in out
    missing = run_cli("report", str(cpu), str(cpu.parent / "nope"))
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_report_schema_is_printed_and_a_drifted_report_is_a_clear_error(two_runs):
    import json

    from compressor.core.errors import CompressorError
    from compressor.reports.report_model import validate_report
    from tests.conftest import invoke_cli

    printed = invoke_cli("report", "--schema")
    assert printed.returncode == 0
    schema = json.loads(printed.stdout)
    assert {"baseline", "result", "stages", "search"} <= set(schema["properties"])
    assert "OpCoverage" in schema["$defs"] and "Measurement" in schema["$defs"]
    report = json.loads((two_runs[0] / "report.json").read_text())
    validate_report(report, "ok")
    report["result"]["size_bytes"] = "big"
    report["surprise"] = 1
    with pytest.raises(CompressorError, match="field 'result.size_bytes'"):
        validate_report(report, "drifted")
    (two_runs[0] / "broken").mkdir()
    (two_runs[0] / "broken" / "report.json").write_text(json.dumps(report))
    shown = invoke_cli("report", str(two_runs[0] / "broken"))
    assert shown.returncode != 0 and "result.size_bytes" in shown.stdout + shown.stderr
    (two_runs[0] / "broken" / "report.json").unlink()


def test_identical_outputs_render_psnr_infinity_everywhere(tmp_path):
    """A float .tflite run through float32 gives the baseline's outputs exactly: PSNR ∞
    in the terminal, "Infinity" in report.json (standard JSON, read back as inf), ∞ in
    report.html — and `compressor report` reads the run again."""
    import tensorflow as tf

    from tests.conftest import (
        build_tiny_cnn,
        invoke_cli,
        run_plan,
        save_quantize_plan,
        write_images,
    )

    model = tmp_path / "model.tflite"
    model.write_bytes(tf.lite.TFLiteConverter.from_keras_model(build_tiny_cnn()).convert())
    plan = save_quantize_plan(tmp_path / "plan.yaml", "tflite-float32")
    out = tmp_path / "run"
    result = run_plan(model, plan, write_images(tmp_path / "images", count=4), out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PSNR ∞" in result.stdout

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    text = (out / "report.json").read_text()
    report = json.loads(text, parse_constant=refuse)
    assert report["result"]["fidelity"]["psnr_db"] == "Infinity"
    again = invoke_cli("report", str(out))
    assert again.returncode == 0 and "PSNR ∞" in again.stdout, again.stderr
    assert invoke_cli("report", str(out), "--html").returncode == 0
    assert "∞" in (out / "report.html").read_text()
