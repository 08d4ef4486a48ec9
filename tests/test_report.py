"""report.html (checked in headless Chromium when installed) and `report A B`."""

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
        value = value[part]
    return value


def _embedded_images(page: str) -> list[Image.Image]:
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    return [Image.open(io.BytesIO(base64.b64decode(uri))) for uri in uris]


def test_every_run_writes_a_self_contained_html_report(two_runs):
    cpu, _ = two_runs
    page = (cpu / "report.html").read_text()
    report = json.loads((cpu / "report.json").read_text())
    images = _embedded_images(page)
    assert len(images) == 4 * 4  # four samples: input, float, compressed, difference
    assert all(image.size == (32, 32) for image in images)
    for stage in report["stages"][:-1]:
        assert "metrics" in stage and "fidelity" in stage["metrics"]
    assert "http" not in page.replace("http-equiv", "")  # nothing loaded from outside


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
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
        cells = re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', dom)
        keys = {key for key, _ in cells}
        assert {"result.size_bytes", "baseline.host_latency_ms", "ratios.size"} <= keys
        for key, value in cells:
            expected = _lookup(report, key)
            assert float(value) == pytest.approx(float(expected)), key
        assert report["profile"]["name"] in dom
        assert len(_embedded_images(dom)) == 16  # the rendered DOM still holds the images


def test_report_compares_two_runs_side_by_side(two_runs):
    cpu, tpu = two_runs
    result = run_cli("report", str(cpu), str(tpu))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "x86-cpu" in out and "edgetpu" in out and "B / A" in out
    assert "tflite-full-int8" in out and "delegate coverage" in out
    missing = run_cli("report", str(cpu), str(cpu.parent / "nope"))
    assert missing.returncode != 0 and "does not exist" in missing.stderr
