"""Real trained models from PyPI wheels (tests/real_models.py), run as a user would:
each output judged by its task, every candidate of the search measured, and what each
file needed recorded in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli
from real_models import CORPUS, CorpusModel

pytestmark = pytest.mark.slow

_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "camera", "coins", "text")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Real photos from scikit-image's wheel (faces, animals, objects, text)."""
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for name in _PHOTOS:
        Image.fromarray(np.asarray(getattr(skimage.data, name)())).save(folder / f"{name}.png")
    return folder


def _model(key: str) -> tuple[CorpusModel, Path]:
    model = next(m for m in CORPUS if m.key == key)
    path = model.path()
    if path is None:
        pytest.skip(f"{model.distribution}=={model.version} is not installed (the corpus)")
    return model, path


def _run(path: Path, photos: Path, out: Path, *options: str) -> dict:
    result = invoke_cli("run", "--model", str(path), "--data", str(photos), "--output",
                        str(out), *options)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-3000:]
    return json.loads((out / "report.json").read_text())


def _tasks(measured: dict) -> dict[str, str]:
    return {name: judged["task"] for name, judged in measured["fidelity_outputs"].items()}


@pytest.mark.parametrize("key", ["selfie-segmentation", "face-landmark", "hand-landmark",
                                 "blazeface"])  # fmt: skip
def test_a_mediapipe_file_is_judged_by_its_tasks_and_every_candidate_runs(key, photos,
                                                                          tmp_path):  # fmt: skip
    model, path = _model(key)
    report = _run(path, photos, tmp_path / "run", "--profile", "x86-cpu", *model.options)
    assert _tasks(report["result"]) == model.tasks
    candidates = {c["pipeline"]: c for c in report["search"]["candidates"]}
    # before: ai-edge-quantizer failed on float16 weights and read pre-2.4 files as ADDs
    for label in ("aeq-int8", "aeq-dynamic-int8", "aeq-float16"):
        assert not candidates[label]["status"].startswith("failed"), candidates[label]
    assert "added_signature" in json.dumps(report["model"]["origin"])
    rewrites = report["model"]["origin"].get("graph_rewrites", {})
    assert rewrites.get("DEQUANTIZE of float16 weights", 0) > 0
    if key == "selfie-segmentation":
        assert rewrites["Convolution2DTransposeBias"] == 1
    if key == "face-landmark":
        assert rewrites["operator codes in deprecated_builtin_code only"] > 0


def test_the_blazeface_pair_catches_a_wiped_score_output(photos, tmp_path):
    _, path = _model("blazeface")
    report = _run(path, photos, tmp_path / "run", "--profile", "edgetpu")
    judged = report["result"]["fidelity_outputs"]["regressors+classificators"]
    assert judged["metric"] == "anchor-f1"
    assert report["result"]["fidelity_metric"] == "detection_f1"


def test_a_real_keras_classifier_on_edgetpu_and_its_savedmodel(photos, tmp_path):
    model, path = _model("fer-emotion")
    report = _run(path, photos, tmp_path / "keras", "--profile", "edgetpu")
    assert _tasks(report["result"]) == model.tasks
    assert report["result"]["precision"] == "int8"
    import tf_keras as keras

    saved = tmp_path / "saved_model"
    keras.models.load_model(path, compile=False).save(saved, save_format="tf")
    again = _run(saved, photos, tmp_path / "saved", "--profile", "edgetpu")
    assert again["model"]["origin"]["format"] == "SavedModel"
    assert again["result"]["fidelity_metric"] == "top1_agreement"
