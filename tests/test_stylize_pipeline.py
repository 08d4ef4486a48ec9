"""Pipelined folder stylize and tiled stylize on tiny real models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from compressor.style.pipeline import folder_photos, output_path_for, stylize_folder
from compressor.style.stylize import Generator, load_generator, stylize_file, stylize_image
from compressor.style.tiling import _window, run_tiled, tile_starts
from tests.conftest import build_tiny_generator, invoke_cli, write_images


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """The project's generator at 32x32 as a float .tflite."""
    import tensorflow as tf

    path = tmp_path_factory.mktemp("gen") / "gen.tflite"
    model = build_tiny_generator("instance", 32)
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_folder_pipeline_is_byte_identical_to_one_by_one(tiny_tflite, tmp_path):
    photos_dir = write_images(tmp_path / "photos", count=5)
    (photos_dir / "broken.png").write_bytes(b"not an image")
    photos = folder_photos(photos_dir)
    generator = load_generator(tiny_tflite, {})
    result = stylize_folder(generator, photos, tmp_path / "piped")
    assert len(result.written) == 5
    assert [p.name for p, _ in result.failed] == ["broken.png"]
    for photo in photos:
        if photo.name == "broken.png":
            continue
        single = output_path_for(photo, tmp_path / "single")
        stylize_file(tiny_tflite, photo, single, {})
        piped = output_path_for(photo, tmp_path / "piped")
        assert piped.read_bytes() == single.read_bytes(), photo.name


def test_stylize_cli_on_a_folder_reports_throughput_and_skipped_files(tiny_tflite, tmp_path):
    photos = write_images(tmp_path / "photos", count=3)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    result = invoke_cli(
        "stylize", "-m", str(tiny_tflite), "-i", str(photos), "-o", str(tmp_path / "out")
    )
    assert result.returncode == 1
    assert "wrote 3 of 4 photos" in result.stdout and "images/s" in result.stdout
    assert "skipped" in result.stdout and "broken.jpg" in result.stdout
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_tile_windows_sum_to_one_over_every_overlap():
    length, tile, overlap, halo = 150, 32, 12, 3
    total = np.zeros(length)
    starts = tile_starts(length, tile, overlap)
    for start in starts:
        total[start : start + tile] += _window(
            tile, overlap, halo, start > 0, start + tile < length
        )
    assert starts[0] == 0 and starts[-1] == length - tile
    np.testing.assert_allclose(total[: starts[-1]], 1.0, atol=1e-12)
    assert np.all(total > 0)


def _local_conv_model(size):
    """Two 3x3 convs: receptive-field radius 2, no image-wide statistics."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def test_tiling_leaves_no_seam_when_the_halo_covers_the_receptive_field(tmp_path):
    """Bound: every tile pixel that gets weight is at least ``halo`` (= 4) ≥ the receptive
    radius (2) from the tile's inner edges, so it equals the untiled output and only
    float rounding is left: within 1e-5, far below one 8-bit level (1/255)."""
    tiled_model = _local_conv_model(32)
    whole_model = _local_conv_model(None)
    whole_model.set_weights(tiled_model.get_weights())
    rng = np.random.default_rng(0)
    image = rng.random((70, 90, 3)).astype(np.float32)
    whole = whole_model(image[None], training=False).numpy()[0]
    tiled = run_tiled(lambda b: tiled_model(b, training=False).numpy(), image, (32, 32), 16)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_stylize_tile_keeps_full_resolution(tmp_path):
    """A 100x80 photo through a 32x32 model: tiles give a full-size result computed at
    the photo's resolution, not the resized one."""
    model = _local_conv_model(32)
    generator = Generator(lambda b: model(b, training=False).numpy(), (32, 32), tmp_path)
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.normal(size=(80, 100, 3)), axis=1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    photo = Image.fromarray((smooth * 255).astype(np.uint8))
    pixels = stylize_image(generator, photo, tile=True, overlap=16)
    assert pixels.shape == (80, 100, 3) and pixels.dtype == np.uint8
    resized = stylize_image(generator, photo, tile=False)
    assert resized.shape == pixels.shape and not np.array_equal(resized, pixels)
