"""Plugins observe a run through the lifecycle hooks; a failing observer does not stop it."""

from __future__ import annotations

import yaml

from compressor.engine.job import run_job
from compressor.engine.plugin_host import PluginHost
from compressor.plugins import hookimpl


class Observer:
    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    def on_run_started(self, context):
        self.events.append(f"run:{context.profile.name}")

    @hookimpl
    def on_stage_started(self, stage, strategy):
        self.events.append(f"start:{stage}:{strategy.name}")

    @hookimpl
    def on_stage_finished(self, stage, seconds, output_path):
        assert seconds >= 0 and output_path
        self.events.append(f"end:{stage}")

    @hookimpl
    def on_run_finished(self, report):
        self.events.append(f"done:{report['result']['precision']}")


class Broken:
    @hookimpl
    def on_stage_started(self, stage):
        raise RuntimeError("observer bug")


def test_observer_sees_every_stage_and_broken_observer_is_a_warning(
    tmp_path, tiny_cnn_path, images_dir
):
    host = PluginHost(load_entrypoints=False)
    observer = Observer()
    host._register(observer, "observer", "obs", "1", False)
    host._register(Broken(), "broken-observer", "obs", "1", False)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "profile": "x86-cpu",
                "stages": [
                    {"stage": "quantize", "strategy": "tflite-float16"},
                    {"stage": "evaluate", "strategy": "litert-evaluate", "params": {"runs": 2}},
                ],
            }
        )
    )
    run_dir, report = run_job(host, None, plan, tiny_cnn_path, images_dir, tmp_path / "run")
    assert observer.events == [
        "run:x86-cpu",
        "start:quantize:tflite-float16",
        "end:quantize",
        "start:evaluate:litert-evaluate",
        "end:evaluate",
        "done:float16",
    ]
    assert any("observer bug" in w for w in report["warnings"])
    assert (run_dir / "report.json").is_file()
