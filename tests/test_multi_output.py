"""Multi-output models: a 3-head Keras model (landmarks, class probabilities, a box) and
its SavedModel run on every built-in profile with every output named and scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, invoke_cli

PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")
HEADS = {"landmarks": "landmarks", "prob": "classification", "box": "regression"}


def build_three_head_model(size: int = 32):
    """A face-analysis-style model: 5 landmarks (x, y), 2 class probabilities, a box."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    landmarks = keras.layers.Dense(10, name="landmarks")(x)
    prob = keras.layers.Dense(2, activation="softmax", name="prob")(x)
    box = keras.layers.Dense(4, name="box")(x)
    return keras.Model(inputs, [landmarks, prob, box], name="three_heads")


@pytest.fixture(scope="module")
def three_head_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("three_heads")
    model = build_three_head_model()
    model.save(folder / "three_heads.keras")
    model.save(folder / "saved_model", save_format="tf")
    return {"keras": folder / "three_heads.keras", "saved_model": folder / "saved_model"}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("form", ["keras", "saved_model"])
def test_every_output_is_scored_on_every_profile(three_head_files, images_dir, tmp_path, form,
                                                 profile):  # fmt: skip
    out = tmp_path / "run"
    result = invoke_cli("run", "--profile", profile, "--model", str(three_head_files[form]),
                        "--data", str(images_dir), "--output", str(out), "--no-search")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    report = json.loads((out / "report.json").read_text())
    for which in ("baseline", "result"):
        measured = report[which]
        judged = measured["fidelity_outputs"]
        assert {name: o["task"] for name, o in judged.items()} == HEADS
        values = {name: o["scores"][o["primary"]] for name, o in judged.items()}
        worst = min(values, key=values.get)
        assert measured["fidelity_output"] == worst
        assert measured["fidelity"][measured["fidelity_metric"]] == values[worst]
    assert report["constraints"]["fidelity_metric"] == report["result"]["fidelity_metric"]
    assert "Fidelity by output" in result.stdout and "landmark-nme" in result.stdout
    assert (out / "report.html").is_file()


def test_a_task_for_one_output_replaces_its_guess(three_head_files, images_dir, tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", "--profile", "x86-cpu", "--model", str(three_head_files["keras"]),
                        "--data", str(images_dir), "--output", str(out), "--no-search",
                        "--task", "box=landmarks", "--metric", "prob=output-match")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    judged = report["result"]["fidelity_outputs"]
    assert (judged["box"]["task"], judged["box"]["task_reason"]) == ("landmarks", "--task")
    assert judged["prob"]["metric"] == "output-match"
    assert judged["landmarks"]["task_reason"] == "the word 'landmarks' in its name"
    job = json.loads((out / "job.json").read_text())
    assert job["judging"] == {"tasks": {"box": "landmarks"}, "metrics": {"prob": "output-match"}}


def test_a_task_for_an_output_the_model_lacks_is_one_line(three_head_files, tmp_path):
    result = invoke_cli("run", "--profile", "x86-cpu", "--model", str(three_head_files["keras"]),
                        "--output", str(tmp_path / "run"), "--task", "boxes=detection")  # fmt: skip
    assert_one_line_error(result, "--task boxes=", "no output 'boxes'", "landmarks, prob, box")
    assert not (tmp_path / "run").exists()
    unknown = invoke_cli("run", "--profile", "x86-cpu", "--metric", "mAP")
    assert_one_line_error(unknown, "no metric named 'mAP'", "detection-f1")


def test_fine_tuning_a_multi_output_model_weighs_each_head_by_its_spread():
    from compressor.api import self_distill

    model = build_three_head_model()
    images = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype(np.float32)
    targets = [np.asarray(t) for t in model.predict(images, verbose=0)]
    targets[2] = targets[2] * 1000.0  # a head in pixels
    losses = self_distill(model, images, targets, steps=3, batch_size=4, learning_rate=1e-3)
    assert len(losses) == 3 and all(np.isfinite(losses))
    # each head's MSE is divided by its variance: the pixel head alone does not set the loss
    assert losses[0] < 10.0


def test_the_html_report_names_every_output_and_its_task(three_head_files, images_dir,
                                                         tmp_path):  # fmt: skip
    out = tmp_path / "run"
    result = invoke_cli("run", "--profile", "x86-cpu", "--model", str(three_head_files["keras"]),
                        "--data", str(images_dir), "--output", str(out), "--no-search")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    page = (out / "report.html").read_text()
    assert "Fidelity by output" in page
    for name, task in HEADS.items():
        assert f"<th>{name}" in page and f"<td>{task}</td>" in page
    assert "(the model&#x27;s fidelity)" in page or "(the model's fidelity)" in page
