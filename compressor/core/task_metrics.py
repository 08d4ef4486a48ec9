"""Fidelity of outputs that are not images, class scores or detections: segmentation
masks, landmarks and embeddings. Each score is in [0, 1], 1 meaning "as the float model".
"""

from __future__ import annotations

import numpy as np

MASK_THRESHOLD = 0.5  # a one-channel mask is foreground where the probability is above this
MIN_CLASS_SHARE = 0.01  # a class counts in mIoU when it covers 1 % of either model's pixels


def mask_labels(values: np.ndarray) -> np.ndarray:
    """Per-pixel labels of a segmentation output (N, H, W, C): the argmax class when
    C ≥ 2, foreground (1) where the one channel exceeds ``MASK_THRESHOLD`` otherwise."""
    if values.ndim == 4 and values.shape[-1] >= 2:
        return np.argmax(values, axis=-1)
    return (
        (np.nan_to_num(values, nan=0.0) > MASK_THRESHOLD)
        .astype(np.int64)
        .reshape(values.shape[0], -1)
    )


def mask_agreement(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Mean IoU (the float model's masks as truth) over the classes that cover at least
    ``MIN_CLASS_SHARE`` of the pixels in either model's masks, the share of pixels
    labelled alike, and how many classes cover that much of the float masks (one: the
    split gave the segmenter nothing to separate). Specks below the share are ignored: on
    a photo with no person a person segmenter's few stray pixels would otherwise decide
    the score."""
    ref, out = mask_labels(reference), mask_labels(test)
    labels, ref_counts = np.unique(ref, return_counts=True)
    ref_share = dict(zip(labels.tolist(), (ref_counts / ref.size).tolist(), strict=True))
    labels, out_counts = np.unique(out, return_counts=True)
    out_share = dict(zip(labels.tolist(), (out_counts / out.size).tolist(), strict=True))
    classes = [
        label
        for label in sorted(set(ref_share) | set(out_share))
        if max(ref_share.get(label, 0.0), out_share.get(label, 0.0)) >= MIN_CLASS_SHARE
    ]
    ious = []
    for label in classes:
        in_ref, in_out = ref == label, out == label
        union = np.count_nonzero(in_ref | in_out)
        ious.append(np.count_nonzero(in_ref & in_out) / union if union else 1.0)
    return {
        "mask_miou": round(float(np.mean(ious)) if ious else 1.0, 5),
        "mask_pixel_agreement": round(float(np.mean(ref == out)), 5),
        "float_mask_classes": int(sum(share >= MIN_CLASS_SHARE for share in ref_share.values())),
    }


def landmark_dims(size: int) -> int:
    """Coordinates per landmark of a flat landmark vector: 3 when ``size`` divides by 3
    (x, y, z as face and hand meshes give), else 2 (x, y), else 1."""
    if size % 3 == 0:
        return 3
    return 2 if size % 2 == 0 else 1


def landmark_agreement(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Mean distance between the two models' landmarks, normalised by the spread of the
    float model's landmarks (RMS distance from their centroid) per example: ``landmark_nme``
    (0: identical), and ``landmark_score`` = max(0, 1 − NME)."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = np.nan_to_num(test.reshape(len(test), -1).astype(np.float64), nan=np.inf)
    dims = landmark_dims(ref.shape[1])
    ref = ref.reshape(len(ref), -1, dims)
    out = out.reshape(len(out), -1, dims)
    centred = ref - ref.mean(axis=1, keepdims=True)
    spread = np.sqrt(np.mean(np.sum(centred**2, axis=-1), axis=1))
    error = np.mean(np.sqrt(np.sum((ref - out) ** 2, axis=-1)), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        nme = np.where(spread > 0, error / np.where(spread > 0, spread, 1.0), np.where(
            error == 0, 0.0, np.inf))  # fmt: skip
    mean_nme = float(np.mean(nme))
    return {
        "landmark_score": round(max(0.0, 1.0 - mean_nme), 5),
        "landmark_nme": round(mean_nme, 6) if np.isfinite(mean_nme) else float("inf"),
        "landmark_dims": int(dims),
    }


def embedding_agreement(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Cosine similarity of each example's float and compressed embedding: the mean
    (``embedding_cosine``, clipped at 0) and the worst example's."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = np.nan_to_num(test.reshape(len(test), -1).astype(np.float64), nan=0.0)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    same = np.all(ref == out, axis=1)
    cosine = np.where(same, 1.0, np.sum(ref * out, axis=1) / np.where(norms > 0, norms, 1.0))
    return {
        "embedding_cosine": round(max(0.0, float(np.mean(cosine))), 5),
        "embedding_cosine_min": round(float(np.min(cosine)), 5),
    }
