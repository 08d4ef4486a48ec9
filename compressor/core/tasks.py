"""What an output is for (its task), read from its name and from the float model's values
on the judging images, so it is scored by what matters for that task. ``--task``
overrides the guess; the guess and its reason are written in the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

IMAGE = "image"
CLASSIFICATION = "classification"
DETECTION = "detection"
SEGMENTATION = "segmentation"
LANDMARKS = "landmarks"
EMBEDDING = "embedding"
REGRESSION = "regression"
TASKS = (IMAGE, CLASSIFICATION, DETECTION, SEGMENTATION, LANDMARKS, EMBEDDING, REGRESSION)

# Words in an output's name that say its task (matched as whole words of the name split at
# "_", "-", "/", ":" and digits).
_NAME_HINTS = {
    LANDMARKS: ("landmark", "landmarks", "keypoint", "keypoints", "kpt", "kpts", "mesh"),
    EMBEDDING: ("embedding", "embeddings", "embed", "descriptor", "descriptors"),
    SEGMENTATION: ("mask", "masks", "seg", "segmentation", "segment"),
    REGRESSION: ("box", "boxes", "bbox", "bboxes", "regression", "depth"),
    CLASSIFICATION: ("prob", "probs", "probability", "probabilities", "class", "classes",
                     "logits", "softmax", "label", "labels"),
}  # fmt: skip
# A flat output of 3·k values in this range is read as k (x, y, z) landmarks (hands 21,
# pose 33-39, face meshes 468-478 points); class counts are rarely multiples of 3 here.
LANDMARK_VALUES = (30, 5000)


@dataclass(frozen=True)
class TaskChoice:
    """An output's task and why it was chosen."""

    task: str
    reason: str


def _name_words(name: str) -> set[str]:
    return {w for w in re.split(r"[^a-z]+", name.lower()) if w}


def _is_distribution(values: np.ndarray) -> bool:
    """Non-negative along the last axis and summing to 1 (softmax probabilities)."""
    sums = values.sum(axis=-1)
    return bool(np.all(values >= 0) and np.allclose(sums, 1.0, atol=1e-3))


def _in_unit_range(values: np.ndarray) -> bool:
    return bool(values.size and values.min() >= 0 and values.max() <= 1)


def _unit_norm_rows(flat: np.ndarray) -> bool:
    norms = np.linalg.norm(flat, axis=1)
    return flat.shape[1] >= 16 and bool(np.allclose(norms, 1.0, atol=1e-2))


def guess_task(name: str, reference: np.ndarray) -> TaskChoice:
    """The task of output ``name`` from its name, shape and the float model's values
    ``reference`` (batch first)."""
    from compressor.core.detection import yolo_layout, yolo_scores_in_unit_range

    shape = reference.shape
    spatial = reference.ndim == 4 and shape[1] * shape[2] > 1
    words = _name_words(name)
    for task, hints in _NAME_HINTS.items():
        hit = words.intersection(hints)
        if hit and (task != SEGMENTATION or spatial):
            return TaskChoice(task, f"the word '{sorted(hit)[0]}' in its name")
    layout = yolo_layout(shape)
    if layout is not None and yolo_scores_in_unit_range(reference, layout):
        return TaskChoice(
            DETECTION, f"shape {shape[1:]}: a YOLO-style head (4 box values + class scores)"
        )
    if spatial:
        channels = shape[-1]
        if channels >= 2 and _is_distribution(reference):
            return TaskChoice(SEGMENTATION, f"{channels} channels summing to 1 per pixel")
        if channels == 1 and _in_unit_range(reference):
            return TaskChoice(
                SEGMENTATION, "one channel in [0, 1]: a mask (--task image for a gray picture)"
            )
        if channels in (1, 3, 4):
            return TaskChoice(IMAGE, f"a {shape[1]}×{shape[2]}×{channels} image")
        return TaskChoice(REGRESSION, f"a {channels}-channel map, not an image")
    flat = reference.reshape(len(reference), -1)
    if flat.shape[1] == 1:
        kind = "probability" if flat.min() >= 0 and flat.max() <= 1 else "logit"
        return TaskChoice(
            CLASSIFICATION, f"one {kind} per example: a yes/no score (a flag, a confidence)"
        )
    if _is_distribution(flat):
        return TaskChoice(CLASSIFICATION, f"{flat.shape[1]} probabilities summing to 1")
    if _unit_norm_rows(flat):
        return TaskChoice(EMBEDDING, f"{flat.shape[1]} values of unit L2 norm")
    count = flat.shape[1]
    if count % 3 == 0 and LANDMARK_VALUES[0] <= count <= LANDMARK_VALUES[1]:
        return TaskChoice(LANDMARKS, f"{count} values: {count // 3} points × (x, y, z)")
    if reference.ndim == 2:
        return TaskChoice(CLASSIFICATION, f"{flat.shape[1]} scores per example (logits)")
    return TaskChoice(REGRESSION, f"shape {shape[1:]}: no task reads it; raw values compared")
