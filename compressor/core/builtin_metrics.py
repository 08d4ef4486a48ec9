"""The built-in fidelity metrics, one per task (registered as a plugin by
``compressor.strategies.metrics``, like any third-party metric)."""

from __future__ import annotations

import numpy as np

from compressor.core import detection, fidelity, task_metrics, tasks
from compressor.core.metrics import FidelityJudge, Metric, MetricRegistry, Scores


def _needs_image(shape: tuple[int, ...]) -> str | None:
    if len(shape) != 4 or shape[1] < 2 or shape[2] < 2:
        return "expected (batch, height, width, channels)"
    return None


def _needs_yolo_head(shape: tuple[int, ...]) -> str | None:
    if detection.yolo_layout(shape) is None:
        return "expected a YOLO-style head (batch, 4 + classes, anchors) or its transpose"
    return None


def _empty_masks(scores: Scores) -> str | None:
    if scores.get("float_mask_classes", 2) > 1:
        return None
    return (
        "the float model's masks hold one class only (others under 1 % of the pixels) on "
        "the judging images: mask IoU cannot tell the models apart; add images with the "
        "things it segments"
    )


def _no_detections(scores: Scores) -> str | None:
    if scores.get("images_with_detections", 1) > 0:
        return None
    return (
        "the float model detects nothing on the judging images (no score above its "
        "threshold): detection fidelity cannot tell the models apart; add images with "
        "the objects it detects"
    )


BUILTIN_METRICS: tuple[Metric, ...] = (
    Metric(
        "ssim",
        tasks.IMAGE,
        "ssim",
        fidelity.image_agreement,
        "SSIM (Gaussian window) and PSNR of image outputs",
        accepts=_needs_image,
    ),
    Metric(
        "top1",
        tasks.CLASSIFICATION,
        "top1_agreement",
        fidelity.class_agreement,
        "top-1 agreement with the float model's class, and KL divergence",
    ),
    Metric(
        "detection-f1",
        tasks.DETECTION,
        "detection_f1",
        detection.yolo_agreement,
        "YOLO-style heads decoded alike (score 0.25, NMS 0.45), F1 at IoU 0.5 vs float",
        accepts=_needs_yolo_head,
        uninformative=_no_detections,
    ),
    Metric(
        "anchor-f1",
        tasks.DETECTION,
        "detection_f1",
        detection.anchor_pair_agreement,
        "box + score head, anchor by anchor: score 0.5, same class, IoU 0.5 vs float",
        uninformative=_no_detections,
        arity=2,
    ),
    Metric(
        "mask-miou",
        tasks.SEGMENTATION,
        "mask_miou",
        task_metrics.mask_agreement,
        "mean IoU of argmax (or > 0.5) masks vs the float model's",
        uninformative=_empty_masks,
    ),
    Metric(
        "landmark-nme",
        tasks.LANDMARKS,
        "landmark_score",
        task_metrics.landmark_agreement,
        "1 − landmark error normalised by the float landmarks' spread",
    ),
    Metric(
        "cosine",
        tasks.EMBEDDING,
        "embedding_cosine",
        task_metrics.embedding_agreement,
        "mean cosine similarity of float and compressed embeddings",
    ),
    Metric(
        "output-match",
        tasks.REGRESSION,
        "output_match",
        fidelity.output_match,
        "1 − RMSE / σ(float output), clipped to [0, 1]",
    ),
)


def builtin_judge() -> FidelityJudge:
    """A judge with the built-in metrics and guessed tasks (for code that runs without a
    plugin host, e.g. a ``RunContext`` built by hand)."""
    registry = MetricRegistry()
    for metric in BUILTIN_METRICS:
        registry.add(metric)
    return FidelityJudge(registry)


def compare_outputs(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Scores of one output by the built-in metric of its guessed task (``core.tasks``):
    images get PSNR/SSIM, class scores top-1/KL, YOLO heads detection F1, masks mIoU,
    others ``output_match``."""
    return dict(builtin_judge().judge(reference, test).worst.scores)
