"""`compressor train` and `compressor stylize` end to end on tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli, write_images


def _train_tiny(root, photos, output, *extra):
    """`compressor train` at test size with a random loss network."""
    return run_cli(
        "train",
        "--style",
        str(root / "style.png"),
        "--data",
        str(photos),
        "--output",
        str(output),
        "--size",
        "32",
        "--width",
        "0.25",
        "--blocks",
        "1",
        "--batch-size",
        "2",
        "--vgg-weights",
        "random",
        *extra,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("style")
    photos = write_images(root / "photos")
    style = root / "style.png"
    stripes = (np.sin(np.arange(64) / 3.0) > 0).astype(np.uint8) * 255
    Image.fromarray(np.stack([np.tile(stripes, (64, 1))] * 3, -1)).convert("L").save(style)
    output = root / "gen.keras"
    result = _train_tiny(root, photos, output, "--steps", "3", "--stage2-steps", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    return root, output, photos


def test_train_saves_generator_summary_and_logs(trained):
    root, output, _ = trained
    summary = json.loads((root / "gen.keras.json").read_text())
    assert summary["loss_network"] == "VGG19 random (seed 0, He-normal)"
    assert summary["stage2_ran"] is False and summary["final_losses"]["step"] == 3
    assert any((root / "gen.keras.logs").iterdir())
    assert (root / "gen.keras.ckpt" / "checkpoint").is_file()


def test_stylize_keras_and_tflite_at_any_size(trained, tmp_path):
    import tensorflow as tf
    import tf_keras as keras

    from compressor.models.generator import InstanceNormalization

    _, output, photos = trained
    out = tmp_path / "out.png"
    photo = photos / "img2.png"  # RGBA, 56x52
    result = run_cli("stylize", "--model", str(output), "--input", str(photo), "--output", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(out).size == Image.open(photo).size
    model = keras.models.load_model(
        output, custom_objects={"InstanceNormalization": InstanceNormalization}
    )
    tflite = tmp_path / "gen.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    jpg = tmp_path / "out.jpg"
    result = run_cli("stylize", "-m", str(tflite), "-i", str(photos / "img1.png"), "-o", str(jpg))
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(jpg).format == "JPEG"


@pytest.mark.parametrize("case", ["missing-style", "tiny-style", "bad-output"])
def test_bad_style_inputs_are_clear_errors(trained, tmp_path, case):
    root, _, photos = trained
    style = root / "style.png"
    args = [
        "train",
        "--data",
        str(photos),
        "--size",
        "32",
        "--vgg-weights",
        "random",
        "--steps",
        "1",
        "--output",
        str(tmp_path / "g.keras"),
    ]
    needle = ""
    if case == "missing-style":
        args += ["--style", str(tmp_path / "none.png")]
        needle = "does not exist"
    elif case == "tiny-style":
        tiny = tmp_path / "tiny.png"
        Image.new("RGB", (4, 4)).save(tiny)
        args += ["--style", str(tiny)]
        needle = "4x4 pixels"
    else:
        args = [*args[:-1], str(tmp_path / "g.h5"), "--style", str(style)]
        needle = "expected a .keras"
    result = run_cli(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:") and needle in result.stderr


@pytest.mark.slow
def test_train_with_search_weights_shows_the_grid(trained, tmp_path):
    root, _, photos = trained
    output = tmp_path / "searched.keras"
    result = _train_tiny(
        root,
        photos,
        output,
        "--steps",
        "2",
        "--stage2-steps",
        "0",
        "--search-weights",
        "--search-steps",
        "2",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Weight search" in result.stdout and "chosen" in result.stdout
    summary = json.loads((tmp_path / "searched.keras.json").read_text())
    assert len(summary["weight_search"]["grid"]) == 3
    assert summary["loss_weights"] == summary["weight_search"]["chosen"]


@pytest.mark.slow
def test_train_on_two_logical_devices(trained, tmp_path):
    root, _, photos = trained
    output = tmp_path / "mirrored.keras"
    result = _train_tiny(
        root, photos, output, "--steps", "2", "--stage2-steps", "0", "--devices", "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(output.with_name(output.name + ".json").read_text())
    assert summary["replicas"] == 2 and len(summary["devices"]) == 2  # MirroredStrategy ran
    assert np.isfinite(summary["final_losses"]["total"])
