"""Ordinary-but-awkward inputs and faults: images read as they are, constraints mean what
they say, and every user-caused failure is one escaped line with exit code 2 (never an
"internal error", never lost state)."""

from __future__ import annotations

import errno
import json
import os
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from compressor.api import Strategy, StrategyConfig, Support, hookimpl
from compressor.core.datasets import load_image_folder
from tests.conftest import (
    assert_one_line_error,
    build_tiny_cnn,
    build_tiny_generator,
    invoke_cli,
    run_plan,
    save_quantize_plan,
    write_images,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model.keras, a float16 plan, a folder of images) shared by the runs here."""
    root = tmp_path_factory.mktemp("hostile")
    model = root / "tiny.keras"
    build_tiny_cnn().save(model)
    plan = save_quantize_plan(root / "plan.yaml", "tflite-float16")
    return model, plan, write_images(root / "images")


@pytest.fixture(scope="module")
def finished(tiny, tmp_path_factory):
    """A finished run directory (float16, no search)."""
    model, plan, images = tiny
    out = tmp_path_factory.mktemp("finished") / "run"
    result = run_plan(model, plan, images, out)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


# -- images read as they are -----------------------------------------------------------


def test_a_16_bit_png_reads_as_its_8_bit_twin(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 48)).astype(np.uint8)
    eight, sixteen = tmp_path / "eight", tmp_path / "sixteen"
    eight.mkdir()
    sixteen.mkdir()
    Image.fromarray(grey, "L").save(eight / "a.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(sixteen / "a.png")
    assert Image.open(sixteen / "a.png").mode.startswith("I")
    shape = (32, 32, 3)
    a = load_image_folder(eight, shape, crops_per_image=0, held_out_fraction=0).calibration
    b = load_image_folder(sixteen, shape, crops_per_image=0, held_out_fraction=0).calibration
    assert a.shape == b.shape and 0.2 < a.mean() < 0.8
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6


def test_a_folder_with_a_tiny_image_a_fifo_and_four_good_files_runs(tiny, tmp_path):
    model, plan, _ = tiny
    data = write_images(tmp_path / "data", count=4)
    Image.new("RGB", (1, 1), (9, 9, 9)).save(data / "dot.png")
    os.mkfifo(data / "pipe.png")  # opening it would block forever
    out = tmp_path / "run"
    result = run_plan(model, plan, data, out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped 2 file(s)" in result.stdout
    skipped = json.loads((out / "report.json").read_text())["data"]["skipped"]
    assert any("dot.png: 1x1 px" in s for s in skipped)
    assert any("pipe.png: a FIFO" in s for s in skipped)


# -- constraints mean what they say ----------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [("--min-fidelity", "nan", "expected a number"), ("--max-latency-ms", "-1", "≥ 0"),
     ("--max-size-mb", "inf", "expected a number"), ("--search-budget", "nan", "positive"),
     ("--input-size", "-5", "at least 1 pixel")],
)  # fmt: skip
def test_nan_and_negative_limits_are_refused(tiny, tmp_path, flag, value, expected):
    model, _, images = tiny
    result = invoke_cli("run", "--model", str(model), "--profile", "x86-cpu", "--data",
                        str(images), "--output", str(tmp_path / "run"), flag, value)  # fmt: skip
    assert_one_line_error(result, flag, expected)
    assert not (tmp_path / "run").exists()


def test_zero_is_a_limit_not_unset(tiny, tmp_path):
    model, plan, images = tiny
    out = tmp_path / "run"
    result = run_plan(model, plan, images, out, "--max-latency-ms", "0", "--strict")
    assert result.returncode == 3, result.stderr[-2000:]  # no model runs in 0 ms
    constraints = json.loads((out / "report.json").read_text())["constraints"]
    assert constraints["max_latency_ms"] == 0 and constraints["met"] is False


def test_a_model_returning_a_dict_is_refused_before_the_run_directory(images_dir, tmp_path):
    import tf_keras as keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    keras.Model(inputs, {"a": x, "b": keras.layers.ReLU()(x)}).save(tmp_path / "two.keras")
    out = tmp_path / "run"
    result = invoke_cli("run", "--model", str(tmp_path / "two.keras"), "--profile", "x86-cpu",
                        "--data", str(images_dir), "--output", str(out))  # fmt: skip
    assert_one_line_error(result, "returns a dict of outputs")
    assert not out.exists()


# -- user errors are one line, exit 2 ----------------------------------------------------


def test_output_under_a_file_and_plan_output_problems(tiny, tmp_path):
    model, _, images = tiny
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = invoke_cli("run", "--model", str(model), "--profile", "x86-cpu", "--data",
                        str(images), "--output", str(blocker / "run"))  # fmt: skip
    assert_one_line_error(result, "file.txt")
    assert_one_line_error(invoke_cli("plan", "--profile", "x86-cpu", "-o", str(tmp_path)),
                          "is a folder")  # fmt: skip
    assert_one_line_error(invoke_cli("plan", "--profile", "x86-cpu", "-o", str(blocker)),
                          "--force")  # fmt: skip
    assert blocker.read_text() == "x"
    result = invoke_cli("plan", "--profile", "x86-cpu", "-o", str(blocker), "--force")
    assert result.returncode == 0 and "stages" in blocker.read_text()


def test_a_keras_file_with_a_corrupt_metadata_json(tiny, tmp_path):
    model, _, _ = tiny
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"{not json" if item.filename == "metadata.json" else data)
    result = invoke_cli("plan", "--model", str(broken), "--profile", "x86-cpu")
    assert_one_line_error(result, "broken.keras")


def test_a_tile_overlap_not_under_the_tile(tmp_path):
    generator = tmp_path / "gen.keras"
    build_tiny_generator(size=32).save(generator)
    Image.new("RGB", (80, 60), (100, 150, 200)).save(tmp_path / "photo.png")
    photo, out = tmp_path / "photo.png", tmp_path / "out.png"
    result = invoke_cli("stylize", "--model", str(generator), "--input", str(photo),
                        "--output", str(out), "--tile", "--overlap", "32")  # fmt: skip
    assert_one_line_error(result, "--overlap 32")
    assert not (tmp_path / "out.png").exists()


def test_a_tflite_with_non_utf8_names(finished, tmp_path):
    data = bytearray((finished / "model.tflite").read_bytes())
    found = 0
    for name in (b"serving_default", b"StatefulPartitionedCall"):
        at = data.find(name)
        while at >= 0:
            data[at] = 0xFF  # an invalid UTF-8 lead byte in the tensor name
            found += 1
            at = data.find(name, at + 1)
    assert found
    bad = tmp_path / "bad-names.tflite"
    bad.write_bytes(bytes(data))
    result = invoke_cli("plan", "--model", str(bad), "--profile", "x86-cpu")
    assert_one_line_error(result, "bad-names.tflite", "not UTF-8")


def test_report_html_on_truncated_samples(finished, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    samples = run / "samples.npz"
    samples.write_bytes(samples.read_bytes()[:100])
    assert_one_line_error(invoke_cli("report", str(run), "--html"), "samples.npz")


def test_markup_in_paths_is_printed_as_it_is(tmp_path):
    for name in ("a[/]b.keras", "[red]x[/red].keras"):
        result = invoke_cli("plan", "--model", str(tmp_path / name), "--profile", "x86-cpu")
        assert_one_line_error(result, name)


def test_a_full_disk_fails_the_run_with_the_reason(tiny, tmp_path, monkeypatch):
    from compressor.engine import runner

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runner, "write_bytes_atomic", full)
    model, plan, images = tiny
    out = tmp_path / "run"
    result = run_plan(model, plan, images, out)
    assert_one_line_error(result, "no space left", f"--resume {out}")
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "space" in status["error"].lower()
    assert "No space left" in (out / "error.txt").read_text()
    assert not (out / "report.json").exists()


# -- a plugin cannot make a failed run look finished ----------------------------------


class _Exits(Strategy):
    name = "exiting-int8"
    stage = "quantize"
    summary = "calls sys.exit(0) in apply"
    Config = StrategyConfig
    produces_precision = "int8"

    def supports(self, profile, info, pipeline):
        return Support.yes()

    def apply(self, artifact, context, config):
        sys.exit(0)


class _ExitingPlugin:
    @hookimpl
    def register_strategies(self, registry):
        registry.add(_Exits)


def test_a_plugin_calling_sys_exit_fails_the_run(plugin_host, tiny, tmp_path, monkeypatch):
    plugin_host.add_plugin(_ExitingPlugin(), "exiting-plugin")
    monkeypatch.setattr("compressor.engine.plugin_host._HOST", plugin_host)
    model, _, images = tiny
    plan = save_quantize_plan(tmp_path / "plan.yaml", "exiting-int8")
    out = tmp_path / "run"
    result = run_plan(model, plan, images, out)
    assert_one_line_error(result, "exiting-int8", "exiting-plugin")
    assert json.loads((out / "status.json").read_text())["state"] == "failed"
