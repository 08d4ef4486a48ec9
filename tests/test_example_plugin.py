"""A third-party plugin installed with pip shows up in `plugins` and can be chosen in a plan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli, run_ok

PLUGIN_SOURCE = REPO / "examples" / "compressor-clustering-plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """pip-install the example plugin (no deps, no network) into a private folder."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PLUGIN_SOURCE),
        ],
        capture_output=True,
        text=True,
        cwd=build,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(target.glob("compressor_clustering-*.dist-info"))
    return target


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, "COMPRESSOR_NO_ENTRYPOINTS": ""}


def test_installed_plugin_is_listed_and_planned(plugin_site):
    listed = run_cli("plugins", env_extra=_env(plugin_site))
    assert listed.returncode == 0, listed.stderr
    assert "clustering" in listed.stdout and "weight-clustering" in listed.stdout
    assert "compressor-clustering 0.1.0" in listed.stdout
    planned = run_cli("plan", "--profile", "pixel-cpu", env_extra=_env(plugin_site))
    assert planned.returncode == 0 and "weight-clustering" in planned.stdout
    blocked = run_cli(
        "plugins", env_extra={**_env(plugin_site), "COMPRESSOR_BLOCK_PLUGINS": "clustering"}
    )
    assert "weight-clustering" not in blocked.stdout


@pytest.mark.slow
def test_plan_can_choose_the_plugin_strategy(plugin_site, tmp_path, tiny_cnn_path, images_dir):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "profile": "pixel-cpu",
                "stages": [
                    {
                        "stage": "prune",
                        "strategy": "weight-clustering",
                        "params": {"clusters": 8, "fine_tune_steps": 3, "batch_size": 2},
                    },
                    {"stage": "quantize", "strategy": "tflite-float32"},
                    {"stage": "evaluate", "strategy": "litert-evaluate", "params": {"runs": 2}},
                ],
            }
        )
    )
    out = tmp_path / "run"
    report = run_ok(
        out,
        "--plan",
        str(plan),
        "--model",
        str(tiny_cnn_path),
        "--data",
        str(images_dir),
        env_extra=_env(plugin_site),
    )
    stage = report["stages"][0]
    assert stage["strategy"] == "weight-clustering" and stage["plugin"] == "clustering"
    assert stage["facts"]["max_distinct_weights"] <= 8
    assert report["result"]["gzip_bytes"] < report["baseline"]["gzip_bytes"]
