"""Detectors are judged by their detections: a YOLO-style head whose int8 output scale
wipes the class scores is caught, and the search ships a candidate that keeps them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compressor.core.builtin_metrics import compare_outputs
from compressor.core.constraints import primary_fidelity
from compressor.core.detection import (
    decode_yolo,
    detection_agreement,
    iou_matrix,
    non_max_suppression,
    yolo_layout,
)
from tests.conftest import invoke_cli, write_images

CLASSES = 3


def build_tiny_yolo(size: int = 32, frame: float = 320.0):
    """A YOLOv8-style single-output head ``(1, 4 + C, anchors)``: boxes in pixels of a
    ``frame``-px image, class scores in 0–1, one tensor — as ultralytics exports it."""
    import tf_keras as keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    boxes = keras.layers.Conv2D(4, 1, activation="sigmoid")(x)
    boxes = keras.layers.Rescaling(frame)(boxes)
    scores = keras.layers.Conv2D(CLASSES, 1, activation="sigmoid")(x)
    head = keras.layers.Concatenate()([boxes, scores])  # (h, w, 4 + C)
    anchors = (size // 4) ** 2
    head = keras.layers.Reshape((anchors, 4 + CLASSES))(head)
    head = keras.layers.Permute((2, 1))(head)  # (4 + C, anchors)
    return keras.Model(inputs, head, name="tiny_yolo")


def _head(boxes, scores):
    """A (4 + C, N) head from boxes (N, 4 as cx cy w h) and scores (N, C)."""
    return np.concatenate([np.asarray(boxes, float).T, np.asarray(scores, float).T])


def test_layout_decode_nms_and_matching():
    assert yolo_layout((1, 84, 8400)) == "channels_first"
    assert yolo_layout((1, 8400, 84)) == "channels_last"
    assert yolo_layout((1, 10, 12)) is None and yolo_layout((1, 32, 32, 3)) is None
    boxes = [[50, 50, 20, 20], [51, 50, 20, 20], [150, 150, 30, 30], [10, 10, 4, 4]]
    scores = [[0.6, 0, 0], [0.5, 0, 0], [0, 0.55, 0], [0.1, 0, 0]]
    found_boxes, classes, kept = decode_yolo(_head(boxes, scores), "channels_first")
    assert classes.tolist() == [0, 1] and kept.tolist() == [0.6, 0.55]  # NMS and threshold
    assert np.allclose(found_boxes[0], [40, 40, 60, 60])
    assert iou_matrix(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]]))[0, 0] == pytest.approx(
        1 / 7
    )
    assert non_max_suppression(
        np.array([[0, 0, 2, 2], [0, 0, 2, 2]]), np.array([0.5, 0.6]), 0.45
    ).tolist() == [1]
    reference = _head(boxes, scores)[None]
    same = detection_agreement(reference, reference, "channels_first")
    assert same["detection_f1"] == 1.0 and same["float_detections"] == 2
    wiped = reference.copy()
    wiped[:, 4:] = np.round(wiped[:, 4:] / 1.25) * 1.25  # one int8 scale over pixels and scores
    lost = detection_agreement(reference, wiped, "channels_first")
    assert lost["detection_recall"] < 0.6 and lost["detection_f1"] < 0.7


def test_a_detector_output_gets_a_detection_metric_not_none():
    rng = np.random.default_rng(0)
    reference = np.concatenate(
        [rng.uniform(0, 320, (2, 4, 64)), rng.uniform(0, 1, (2, CLASSES, 64))], axis=1
    )
    metrics = compare_outputs(reference, reference)
    assert primary_fidelity(metrics) == ("detection_f1", 1.0)
    other = compare_outputs(rng.normal(size=(2, 5, 7)), rng.normal(size=(2, 5, 7)))
    metric, value = primary_fidelity(other)
    assert metric == "output_match" and 0.0 <= value <= 1.0  # never "no metric"


@pytest.mark.slow
def test_the_search_catches_wiped_scores_and_ships_a_detector_that_keeps_them(tmp_path):
    model = tmp_path / "yolo.keras"
    build_tiny_yolo().save(model)
    images = write_images(tmp_path / "images", count=8)
    out = tmp_path / "run"
    result = invoke_cli("run", "--model", str(model), "--profile", "x86-cpu", "--data",
                        str(images), "--output", str(out), "--min-fidelity", "0.95")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    candidates = {c["pipeline"]: c for c in report["search"]["candidates"]}
    full_int8 = next(c for label, c in candidates.items() if label.endswith("tflite-full-int8"))
    assert full_int8["fidelity_metric"] == "detection_f1"
    assert full_int8["fidelity_value"] < 0.95 and full_int8["misses"]  # the wipe is caught
    assert report["result"]["fidelity"]["detection_f1"] >= 0.95
    assert report["result"]["fidelity"]["float_detections"] > 0
    assert report["constraints"]["met"]


def test_a_split_without_detections_is_warned_about():
    from compressor.core.builtin_metrics import builtin_judge

    nothing = np.zeros((2, 4 + CLASSES, 64), np.float32)
    metrics = compare_outputs(nothing, nothing)
    assert metrics["detection_f1"] == 1.0 and metrics["images_with_detections"] == 0
    (warning,) = builtin_judge().judge(nothing, nothing).warnings()
    assert "detects nothing" in warning
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    assert builtin_judge().judge(images, images).warnings() == []


def _blazeface_like(rng, batch: int = 3, anchors: int = 64):
    """MediaPipe-style raw head: per anchor 4 box values (centre offset, size, in pixels)
    + 6 keypoints × 2, and one score logit; a few anchors fire per image."""
    boxes = rng.normal(0, 3, size=(batch, anchors, 16)).astype(np.float32)
    boxes[..., 2:4] = rng.uniform(20, 40, size=(batch, anchors, 2))
    logits = rng.uniform(-80, -20, size=(batch, anchors, 1)).astype(np.float32)
    logits[:, :5] = rng.uniform(2, 8, size=(batch, 5, 1))
    return boxes, logits


def test_a_box_and_score_output_pair_is_judged_as_one_detection_head():
    from compressor.api import ModelOutputs
    from compressor.core.builtin_metrics import builtin_judge
    from compressor.core.metrics import FidelityJudge

    rng = np.random.default_rng(0)
    boxes, logits = _blazeface_like(rng)
    reference = ModelOutputs(("regressors", "classificators"), (boxes, logits))
    same = builtin_judge().judge(reference, reference)
    (head,) = same.outputs
    assert head.output == "regressors+classificators" and head.metric == "anchor-f1"
    assert head.scores["detection_f1"] == 1.0 and head.scores["float_detections"] == 15
    # one int8 scale over logits spanning -80..8: every score rounds to the same value
    wiped = ModelOutputs(reference.names, (boxes, np.full_like(logits, -1.0)))
    assert builtin_judge().judge(reference, wiped).value == 0.0
    moved = boxes.copy()
    moved[:, :5, 0] += moved[:, :5, 2]  # the firing boxes shifted by their width
    shifted = builtin_judge().judge(reference, ModelOutputs(reference.names, (moved, logits)))
    assert shifted.value == 0.0
    # naming a task for one of them judges each on its own
    apart = FidelityJudge(builtin_judge().registry, {"classificators": "classification"})
    assert {s.output for s in apart.judge(reference, reference).outputs} == set(reference.names)


def test_a_regression_head_of_yolo_shape_is_not_taken_for_a_detector():
    from compressor.core.tasks import guess_task

    boxes, _ = _blazeface_like(np.random.default_rng(1), anchors=896)
    assert yolo_layout(boxes.shape) == "channels_last"  # the shape alone would say YOLO
    assert guess_task("regressors", boxes).task != "detection"
