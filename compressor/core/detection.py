"""Detection fidelity: decode the float and the compressed model's outputs the same way,
then score how many of the float model's detections the compressed one reproduces.

A raw-tensor metric hides what matters here: a YOLO head's output holds boxes in pixels
(0–640) and class scores (0–1) in one tensor, so one int8 output scale can round every
score to 0 while the raw-output cosine stays at 0.998.

Layout handled: the YOLOv5u/v8/v11-style single output ``(batch, 4 + C, anchors)`` —
``cx, cy, w, h`` then ``C`` class scores per anchor, no objectness column (also accepted
transposed, ``(batch, anchors, 4 + C)``).
"""

from __future__ import annotations

import numpy as np

SCORE_THRESHOLD = 0.25  # the usual YOLO confidence threshold
NMS_IOU = 0.45
MATCH_IOU = 0.5  # a compressed detection matches a float one at IoU >= 0.5, same class
MAX_DETECTIONS = 300


def yolo_layout(shape: tuple[int | None, ...]) -> str | None:
    """``"channels_first"`` for ``(B, 4 + C, N)``, ``"channels_last"`` for ``(B, N, 4 + C)``
    (anchors outnumber channels), None when ``shape`` is not a YOLO-style head."""
    if len(shape) != 3 or shape[1] is None or shape[2] is None:
        return None
    rows, cols = int(shape[1]), int(shape[2])
    if rows >= 5 and cols > 4 * rows:
        return "channels_first"
    if cols >= 5 and rows > 4 * cols:
        return "channels_last"
    return None


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (K, 4) with every box in ``b`` (M, 4), both x1 y1 x2 y2."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    return inter / np.maximum(_areas(a)[:, None] + _areas(b)[None, :] - inter, 1e-12)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < MAX_DETECTIONS:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        overlaps = iou_matrix(boxes[best : best + 1], boxes[order[1:]])[0]
        order = order[1:][overlaps < iou]
    return np.asarray(keep, dtype=np.int64)


def decode_yolo(head: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's head as (boxes x1 y1 x2 y2, classes, scores) after the score
    threshold and per-class NMS."""
    rows = head if layout == "channels_first" else head.T  # (4 + C, N)
    rows = np.nan_to_num(rows.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    cx, cy, w, h = rows[0], rows[1], rows[2], rows[3]
    class_scores = rows[4:]
    classes = np.argmax(class_scores, axis=0)
    scores = class_scores[classes, np.arange(class_scores.shape[1])]
    keep = scores >= SCORE_THRESHOLD
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)[keep]
    classes, scores = classes[keep], scores[keep]
    # per-class NMS: shift each class's boxes apart so they never overlap another's
    offset = classes[:, None] * (np.abs(boxes).max(initial=1.0) * 4.0 + 1.0)
    kept = non_max_suppression(boxes + offset, scores, NMS_IOU)
    return boxes[kept], classes[kept], scores[kept]


def match_count(
    reference: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> int:
    """Detections of ``test`` matched one-to-one to ``reference`` ones of the same class
    at IoU >= ``MATCH_IOU`` (greedy, highest IoU first)."""
    ref_boxes, ref_classes, _ = reference
    test_boxes, test_classes, _ = test
    if not len(ref_boxes) or not len(test_boxes):
        return 0
    overlaps = iou_matrix(ref_boxes, test_boxes)
    overlaps[ref_classes[:, None] != test_classes[None, :]] = 0.0
    pairs = np.argwhere(overlaps >= MATCH_IOU)
    pairs = pairs[np.argsort(-overlaps[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_ref, used_test = set(), set()
    for r, t in pairs:
        if r not in used_ref and t not in used_test:
            used_ref.add(int(r))
            used_test.add(int(t))
    return len(used_ref)


def detection_scores(matched: int, found: int, expected: int, informative: int) -> dict:
    """F1, precision and recall of ``matched`` detections out of ``found`` (compressed)
    and ``expected`` (float); both empty is a perfect score. ``informative``: images
    on which the float model detected anything."""
    if expected == 0 and found == 0:
        precision = recall = 1.0
    else:
        precision = matched / found if found else 0.0
        recall = matched / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "detection_f1": round(f1, 5),
        "detection_precision": round(precision, 5),
        "detection_recall": round(recall, 5),
        "float_detections": int(expected),
        "images_with_detections": int(informative),
    }


def detection_agreement(reference: np.ndarray, test: np.ndarray, layout: str) -> dict[str, float]:
    """F1, precision and recall of the compressed model's detections against the float
    model's over a batch, plus how many images gave the float model anything to detect
    (a split without detections cannot tell the models apart)."""
    matched = found = expected = informative = 0
    for ref_head, test_head in zip(reference, test, strict=True):
        ref = decode_yolo(ref_head, layout)
        out = decode_yolo(test_head, layout)
        matched += match_count(ref, out)
        found += len(out[0])
        expected += len(ref[0])
        informative += bool(len(ref[0]))
    return detection_scores(matched, found, expected, informative)


def yolo_agreement(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """``detection_agreement`` of a YOLO-style head, its layout read from the shape."""
    layout = yolo_layout(reference.shape)
    if layout is None:
        raise ValueError(f"shape {reference.shape[1:]} is not a YOLO-style head")
    return detection_agreement(reference, test, layout)


# -- box + score output pairs (SSD-style heads without a post-processing op) -----------

PAIR_SCORE_THRESHOLD = 0.5  # SSD / BlazeFace default minimum score


def yolo_scores_in_unit_range(values: np.ndarray, layout: str) -> bool:
    """A YOLO head's class scores are sigmoid outputs in [0, 1]; offsets or logits are
    not (a box-regression output can have a YOLO-like shape)."""
    scores = values[:, 4:, :] if layout == "channels_first" else values[:, :, 4:]
    return bool(scores.size and np.nanmin(scores) >= 0.0 and np.nanmax(scores) <= 1.0)


def pair_roles(shapes: dict[str, tuple[int, ...]]) -> list[tuple[str, str]]:
    """(boxes, scores) output pairs: two (batch, anchors, k) outputs with the same anchor
    count (≥ 16), the boxes one with ≥ 4 values per anchor (the first 4 a box, e.g.
    MediaPipe's 16 = box + 6 keypoints), the scores one with fewer or exactly the class
    count of an SSD head (4 box values against 1 + classes scores)."""
    three_d = {n: s for n, s in shapes.items() if len(s) == 3 and s[1] >= 16}
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    for boxes, box_shape in three_d.items():
        if boxes in used or box_shape[2] < 4:
            continue
        for scores, score_shape in three_d.items():
            if scores in used or scores == boxes or score_shape[1] != box_shape[1]:
                continue
            if score_shape[2] < box_shape[2] or (box_shape[2] == 4 and score_shape[2] != 4):
                pairs.append((boxes, scores))
                used |= {boxes, scores}
                break
    return pairs


def _as_probabilities(scores: np.ndarray) -> np.ndarray:
    scores = np.nan_to_num(scores.astype(np.float64), nan=0.0)
    if scores.min() >= 0.0 and scores.max() <= 1.0:
        return scores
    return 1.0 / (1.0 + np.exp(-np.clip(scores, -60, 60)))  # logits


def _areas(corners: np.ndarray) -> np.ndarray:
    return np.prod(np.clip(corners[..., 2:] - corners[..., :2], 0, None), axis=-1)


def _corners(boxes: np.ndarray) -> np.ndarray:
    cx, cy, w, h = (boxes[..., i] for i in range(4))
    w, h = np.abs(w), np.abs(h)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def anchor_pair_agreement(
    reference: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> dict[str, float]:
    """F1 of a box + score head, anchor by anchor: an anchor is a float detection when its
    best score (sigmoid of logits) is ≥ ``PAIR_SCORE_THRESHOLD``; the compressed model
    reproduces it when the same anchor passes the threshold with the same class and its
    box (the first 4 values read as centre, size) overlaps the float one at IoU ≥ 0.5.
    Boxes are compared as the head writes them, relative to their anchor: IoU does not
    change when both boxes move by the anchor's centre, so no anchor table is needed."""
    (ref_boxes, ref_scores), (test_boxes, test_scores) = reference, test
    ref_p, test_p = _as_probabilities(ref_scores), _as_probabilities(test_scores)
    ref_hit = ref_p.max(-1) >= PAIR_SCORE_THRESHOLD
    test_hit = test_p.max(-1) >= PAIR_SCORE_THRESHOLD
    same_class = np.argmax(ref_p, -1) == np.argmax(test_p, -1)
    a = _corners(np.nan_to_num(ref_boxes.astype(np.float64)))
    b = _corners(np.nan_to_num(test_boxes.astype(np.float64)))
    inter = np.prod(np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2],
                    b[..., :2]), 0, None), axis=-1)  # fmt: skip
    iou = inter / np.maximum(_areas(a) + _areas(b) - inter, 1e-12)
    matched = int(np.count_nonzero(ref_hit & test_hit & same_class & (iou >= MATCH_IOU)))
    expected, found = int(np.count_nonzero(ref_hit)), int(np.count_nonzero(test_hit))
    return detection_scores(matched, found, expected, int(np.count_nonzero(ref_hit.any(-1))))
