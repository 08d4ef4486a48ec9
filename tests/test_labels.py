"""Labels: a --data folder with one subfolder per class gives each held-out image its
class, and the report shows the float and the compressed model's true accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compressor.core.datasets import class_indices, load_image_folder
from compressor.core.errors import DataError
from compressor.core.labels import label_accuracy
from compressor.core.outputs import ModelOutputs
from tests.conftest import run_plan, save_quantize_plan

_CHANNEL = {"red": 0, "green": 1, "blue": 2}


def _colour_folders(root: Path, names: dict[str, str], per_class: int = 4) -> Path:
    """Noisy images dominated by one colour, in the subfolder ``names[colour]``."""
    rng = np.random.default_rng(0)
    for colour, folder in names.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.uniform(0, 90, (20, 24, 3))
            pixels[..., _CHANNEL[colour]] += 150
            name = f"{colour}{index}.png"
            Image.fromarray(pixels.astype(np.uint8)).save(root / folder / name)
    return root


def _true_classes(folder_images: np.ndarray) -> np.ndarray:
    return np.argmax(folder_images.mean(axis=(1, 2)), axis=1)


@pytest.mark.fast
def test_class_folders_label_the_held_out_images(tmp_path):
    folder = _colour_folders(tmp_path / "data", {c: c for c in _CHANNEL})
    images = load_image_folder(folder, (16, 16, 3))
    assert images.classes == ("blue", "green", "red")  # sorted, as Keras numbers them
    assert len(images.evaluation_labels) == len(images.evaluation_files) >= 3
    # each held-out image is labelled with its own folder's class
    by_index = {0: "red", 1: "green", 2: "blue"}
    truth = [images.classes.index(by_index[c]) for c in _true_classes(images.evaluation)]
    assert images.evaluation_labels.tolist() == truth
    assert images.splits()["held_out"]["classes"] == ["blue", "green", "red"]
    assert class_indices(["10", "2", "0"]) == {"10": 10, "2": 2, "0": 0}


@pytest.mark.fast
def test_one_class_folder_is_not_labels(tmp_path):
    _colour_folders(tmp_path / "data", {"red": "red"})
    with pytest.raises(DataError, match="one class folder only: red"):
        load_image_folder(tmp_path / "data", (16, 16, 3))


@pytest.mark.fast
def test_label_accuracy_reads_argmax_and_a_single_score():
    labels = np.array([0, 2, 1, 2])
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    single = np.array([[0.2], [0.9], [0.7], [0.1]])
    outputs = ModelOutputs(("probs", "flag", "boxes"), (scores, single, np.zeros((4, 2))))
    assert label_accuracy(outputs, labels, ["probs", "boxes"]) == {"probs": 0.75}
    # one value per image: above 0.5 is class 1
    assert label_accuracy(outputs, np.array([0, 1, 1, 0]), ["flag"]) == {"flag": 1.0}
    assert label_accuracy(outputs, labels, ["flag"]) == {}  # 3 classes, one value


def _colour_classifier(path: Path) -> Path:
    """Softmax over the mean of each channel, ordered blue, green, red (the sorted folder
    names): right on every image of the colour folders."""
    import tf_keras as keras

    x_in = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(x_in)
    dense = keras.layers.Dense(3, activation="softmax", name="probs")
    model = keras.Model(x_in, dense(x))
    dense.set_weights([np.eye(3, dtype=np.float32)[:, ::-1] * 20, np.zeros(3, np.float32)])
    model.save(path)
    return path


def test_a_run_reports_accuracy_against_the_class_folders(tmp_path):
    model = _colour_classifier(tmp_path / "colours.keras")
    plan = save_quantize_plan(tmp_path / "plan.yaml", "tflite-full-int8", "edgetpu")
    right = _colour_folders(tmp_path / "right", {c: c for c in _CHANNEL}, per_class=4)
    result = run_plan(model, plan, right, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["baseline"]["label_accuracy"] == {"probs": 1.0}
    assert report["result"]["label_accuracy"] == {"probs": 1.0}
    assert "accuracy vs labels" in result.stdout
    assert "Accuracy against the labels" in (tmp_path / "run" / "report.html").read_text()
    # the same images under swapped folder names: every label is wrong, and it shows
    swapped = {"red": "green", "green": "blue", "blue": "red"}
    wrong = _colour_folders(tmp_path / "wrong", swapped, per_class=4)
    result = run_plan(model, plan, wrong, tmp_path / "run-wrong")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "run-wrong" / "report.json").read_text())
    assert report["baseline"]["label_accuracy"] == {"probs": 0.0}
