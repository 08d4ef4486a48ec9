"""A model that crashes the LiteRT interpreter (here SIGFPE: an integer FLOOR_MOD of
INT_MIN by -1, which x86 traps) is caught in a child process: a crashing float model is
a one-line error, a crashing candidate is a failed candidate and the search goes on."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, build_tiny_cnn, invoke_cli

from compressor.api import Estimate, Strategy, StrategyConfig, Support, hookimpl
from compressor.litert.crash_guard import crash_of

INT_MIN = -(2**31)


def crashing_tflite(size: int = 32) -> bytes:
    """An image-to-image float .tflite whose FLOOR_MOD(INT_MIN, -1) traps (SIGFPE)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32)])
    def crash(x):
        minus_one = tf.cast(tf.round(x * 0.0 - 1.0), tf.int32)
        big = tf.fill(tf.shape(minus_one), tf.constant(INT_MIN, tf.int32))
        return tf.cast(tf.math.floormod(big, minus_one), tf.float32) * 1e-9 + x

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [crash.get_concrete_function()], crash
    )
    return converter.convert()


@pytest.fixture(scope="module")
def crash_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "crashes.tflite"
    path.write_bytes(crashing_tflite())
    return path


def test_the_child_names_the_signal(crash_model):
    inputs = np.ones((1, 32, 32, 3), np.float32)
    assert crash_of(crash_model.read_bytes(), inputs) == (
        f"SIGFPE (signal {int(signal.SIGFPE)})"
    )


def test_a_float_model_that_crashes_litert_is_a_one_line_error(crash_model, images_dir, tmp_path):
    result = invoke_cli("run", "--profile", "x86-cpu", "--model", str(crash_model),
                        "--data", str(images_dir), "--output", str(tmp_path / "run"))  # fmt: skip
    assert_one_line_error(result, f"model {crash_model.stem}", "LiteRT crashed", "SIGFPE")


class CrashingInt8(Strategy):
    """A quantizer whose output crashes LiteRT (what a broken kernel does to a user)."""

    name = "crashing-int8"
    stage = "quantize"
    summary = "writes a .tflite that crashes the interpreter"
    Config = StrategyConfig
    accepts_frozen_graph = True
    model_bytes = b""

    def supports(self, profile, info, pipeline) -> Support:
        """Everywhere."""
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        """Claims a lossless int8 model, so the planner tries it first."""
        return Estimate(precision="int8", ssim_loss=0.0)

    def apply(self, artifact, context, config):
        """The crashing model, as if it were the quantized one."""
        return artifact.with_tflite(self.model_bytes, precision="int8")


class CrashingPlugin:
    @hookimpl
    def register_strategies(self, registry):
        """Register ``crashing-int8``."""
        registry.add(CrashingInt8)


def test_a_candidate_that_crashes_litert_fails_and_the_search_goes_on(
    plugin_host, crash_model, images_dir, tmp_path
):
    from compressor.engine.job import run_job
    from compressor.litert.conversion import convert_keras

    CrashingInt8.model_bytes = crash_model.read_bytes()
    plugin_host.add_plugin(CrashingPlugin(), "crashing-plugin")
    model = tmp_path / "cnn.tflite"
    model.write_bytes(convert_keras(build_tiny_cnn(), "float32"))
    run_dir, report = run_job(
        plugin_host, "x86-cpu", None, model, images_dir, tmp_path / "run"
    )
    candidates = {c["pipeline"]: c for c in report["search"]["candidates"]}
    crashed = candidates["crashing-int8"]
    assert crashed["status"].startswith("failed:"), crashed["status"]
    assert "LiteRT crashed running it: SIGFPE" in crashed["status"]
    assert report["stages"][0]["strategy"] != "crashing-int8"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
