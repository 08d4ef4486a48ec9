"""Images in any mode/size, clear data errors, fidelity metrics and model facts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from compressor.core.builtin_metrics import compare_outputs
from compressor.core.datasets import load_builtin_samples, load_image_folder
from compressor.core.errors import DataError
from compressor.core.fidelity import kl_divergence, psnr_db, ssim, top1_agreement
from compressor.core.model_info import model_info_from_keras
from compressor.models.default import build_default_model, default_model_info
from tests.conftest import build_tiny_classifier, build_tiny_cnn


def test_folder_images_of_any_mode_are_resized_and_scaled(images_dir):
    images = load_image_folder(images_dir, (32, 32, 3), crops_per_image=2)
    assert images.evaluation.shape == (2, 32, 32, 3)  # 30 % of 6 held out
    assert images.selection.shape == (1, 32, 32, 3)  # 25 % of the other 4, for choices
    assert images.calibration.shape == (3, 32, 32, 3)
    assert images.train.shape == (9, 32, 32, 3)  # 3 calibration images + 2 crops each
    assert images.train.dtype == np.float32
    assert images.train.min() >= 0.0 and images.train.max() <= 1.0
    gray = load_image_folder(images_dir, (16, 20, 1), crops_per_image=0)
    assert gray.evaluation.shape == (2, 16, 20, 1)


def test_held_out_split_never_overlaps_calibration_or_training(images_dir):
    images = load_image_folder(images_dir, (32, 32, 3), crops_per_image=3, seed=7)
    assert images.held_out
    assert not set(images.evaluation_files) & set(images.calibration_files)
    files = images.evaluation_files + images.calibration_files + images.selection_files
    assert sorted(files) == sorted(p.name for p in images_dir.iterdir())
    # no training image (whole or crop) equals a held-out image
    for held in images.evaluation:
        assert min(np.abs(images.train - held).max(axis=(1, 2, 3))) > 0.05
    # choices are made on files that neither fine-tuning nor calibration sees
    assert images.selection_files and images.choice_split == "selection"
    assert not set(images.selection_files) & set(images.calibration_files)
    assert not set(images.selection_files) & set(images.evaluation_files)
    for chosen in images.selection:
        assert min(np.abs(images.train - chosen).max(axis=(1, 2, 3))) > 0.05
    # the same seed gives the same split; the split is recorded for report.json
    again = load_image_folder(images_dir, (32, 32, 3), crops_per_image=3, seed=7)
    assert again.evaluation_files == images.evaluation_files
    splits = images.splits()
    assert splits["held_out"]["files"] == images.evaluation_files
    assert splits["calibration"]["with_crops"] == len(images.train)


def test_one_image_cannot_be_split_and_says_so(tmp_path, images_dir):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "img0.png").write_bytes((images_dir / "img0.png").read_bytes())
    with pytest.raises(DataError, match="at least 2 are needed"):
        load_image_folder(folder, (8, 8, 3))


def test_unreadable_files_are_skipped_and_named(images_dir):
    (images_dir / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    images = load_image_folder(images_dir, (32, 32, 3), crops_per_image=0)
    assert len(images.evaluation) + len(images.calibration) + len(images.selection) == 6
    assert images.skipped[0].startswith("broken.jpg")


def test_data_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope", (8, 8, 3))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no image files"):
        load_image_folder(tmp_path / "empty", (8, 8, 3))


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    import compressor.core.datasets as datasets

    folder = tmp_path / "bomb"
    folder.mkdir()
    Image.new("RGB", (200, 200)).save(folder / "big.png")
    monkeypatch.setattr(datasets, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match="no readable image"):
        load_image_folder(folder, (8, 8, 3))


def test_builtin_samples_are_real_photos():
    images = load_builtin_samples((24, 24, 3), crops_per_image=1)
    assert len(images.evaluation) == 2 and len(images.selection) == 1
    assert len(images.calibration) == 3
    assert images.evaluation.std() > 0.1 and images.held_out


def test_psnr_and_ssim_behave():
    rng = np.random.default_rng(0)
    clean = rng.random((2, 32, 32, 3)).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
    very_noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1).astype(np.float32)
    assert psnr_db(clean, clean) == float("inf") and ssim(clean, clean) == pytest.approx(1.0)
    mse = np.mean((clean.astype(np.float64) - noisy) ** 2)
    assert psnr_db(clean, noisy) == pytest.approx(10 * np.log10(1 / mse))
    assert 1.0 > ssim(clean, noisy) > ssim(clean, very_noisy)


def test_classifier_metrics():
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    test = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    assert top1_agreement(reference, test) == 0.5
    expected = np.mean([np.sum(p * np.log(p / q)) for p, q in zip(reference, test, strict=True)])
    assert kl_divergence(reference, test) == pytest.approx(expected)
    assert set(compare_outputs(reference, test)) == {"top1_agreement", "kl_divergence"}


def test_model_info_counts_macs_and_kinds():
    info = model_info_from_keras(build_tiny_cnn())
    first = info.layers[0]
    assert first.kind == "conv" and first.macs == 32 * 32 * 8 * 3 * 3 * 3
    assert info.count("batch_norm") == 3 and info.is_image_to_image
    classifier = model_info_from_keras(build_tiny_classifier())
    assert classifier.is_classifier and not classifier.is_image_to_image


def test_default_model_is_the_trained_demo_at_any_input_size():
    from compressor.ingest.keras_io import load_keras_model
    from compressor.models.default import demo_path, demo_record
    from compressor.models.generator import InstanceNormalization

    for size in (None, 64):
        shipped = default_model_info(size)
        real = model_info_from_keras(build_default_model(size))
        assert shipped.to_dict() == real.to_dict()
        assert shipped.has_instance_norm and shipped.custom_layers
    assert default_model_info(64).input_image_shape == (64, 64, 3)
    trained = load_keras_model(demo_path(), {"InstanceNormalization": InstanceNormalization})
    rebuilt = build_default_model(64)
    for mine, theirs in zip(rebuilt.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert demo_record()["command"].startswith("compressor train ")


def test_dynamic_input_model_is_fixed_flat_with_input_size(tmp_path, host):
    import tf_keras as keras

    from compressor.core.errors import ModelError
    from compressor.engine.job import load_model

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
    path = tmp_path / "dynamic.keras"
    model.save(path)
    with pytest.raises(ModelError, match="--input-size"):
        load_model(path, host, None)
    loaded = load_model(path, host, 24)
    assert loaded.info.input_image_shape == (24, 24, 3)
    assert [layer.kind for layer in loaded.info.layers] == ["conv", "conv"]
    image = np.random.default_rng(0).random((1, 24, 24, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.model.predict(image, verbose=0), model.predict(image, verbose=0), atol=1e-6
    )


def test_four_channel_models_get_rgba_images(images_dir):
    images = load_image_folder(images_dir, (16, 16, 4), crops_per_image=0)
    assert images.evaluation.shape == (2, 16, 16, 4)
