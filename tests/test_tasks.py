"""Each output is judged by its task: the guess from names and values, the task metrics,
the judge (worst output wins), --task/--metric choices and metric plugins."""

from __future__ import annotations

import numpy as np
import pytest

from compressor.api import Metric, ModelOutputs, hookimpl
from compressor.core import tasks
from compressor.core.builtin_metrics import builtin_judge
from compressor.core.errors import CompressorError, ModelError, PluginError
from compressor.core.metrics import FidelityJudge, MetricRegistry, parse_assignments
from compressor.core.task_metrics import (
    embedding_agreement,
    landmark_agreement,
    landmark_dims,
    mask_agreement,
)

pytestmark = pytest.mark.fast

RNG = np.random.default_rng(0)


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


@pytest.mark.parametrize(
    ("name", "values", "task"),
    [
        ("conv2d_3", RNG.uniform(size=(2, 16, 16, 3)), tasks.IMAGE),
        ("dense_1", _softmax(RNG.normal(size=(4, 5))), tasks.CLASSIFICATION),
        ("dense_1", RNG.normal(size=(4, 5)), tasks.CLASSIFICATION),  # logits
        ("head", RNG.uniform(size=(2, 9, 400)), tasks.DETECTION),
        ("out", _softmax(RNG.normal(size=(2, 8, 8, 4))), tasks.SEGMENTATION),
        ("out", (RNG.uniform(size=(2, 16, 16, 1)) > 0.7).astype(float), tasks.SEGMENTATION),
        ("face_landmarks", RNG.normal(size=(2, 10)), tasks.LANDMARKS),
        ("conv_faces", RNG.normal(size=(2, 1, 1, 1404)), tasks.LANDMARKS),
        ("Identity", RNG.uniform(0, 224, size=(2, 63)), tasks.LANDMARKS),
        ("Identity_1", RNG.uniform(size=(3, 1)), tasks.CLASSIFICATION),
        ("conv2d_31", RNG.normal(size=(3, 1, 1, 1)) * 5, tasks.CLASSIFICATION),
        ("imagenet", RNG.normal(size=(2, 1000)), tasks.CLASSIFICATION),
        ("bbox", RNG.normal(size=(2, 4)), tasks.REGRESSION),
        ("Identity:0", RNG.normal(size=(2, 3, 5)), tasks.REGRESSION),
        (
            "vec",
            (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True))(RNG.normal(size=(3, 32))),
            tasks.EMBEDDING,
        ),
        ("seg_mask", RNG.uniform(size=(2, 16, 16, 1)), tasks.SEGMENTATION),
        ("activation_10", RNG.uniform(0.0, 0.4, size=(2, 16, 16, 1)), tasks.SEGMENTATION),
        ("depth", RNG.uniform(0.0, 5.0, size=(2, 16, 16, 1)), tasks.REGRESSION),
        ("gray", RNG.uniform(-1, 1, size=(2, 16, 16, 1)), tasks.IMAGE),
    ],
)
def test_the_task_is_guessed_from_the_name_and_the_float_values(name, values, task):
    choice = tasks.guess_task(name, np.asarray(values, np.float32))
    assert choice.task == task, choice
    assert choice.reason


def test_segmentation_scores_mask_iou():
    mask = np.zeros((2, 16, 16, 1), np.float32)
    mask[:, 4:12, 4:12] = 0.9
    assert mask_agreement(mask, mask)["mask_miou"] == 1.0
    shifted = np.roll(mask, 4, axis=2)
    scores = mask_agreement(mask, shifted)
    # foreground IoU 32/96 per image, background IoU 160/224
    assert scores["mask_miou"] == pytest.approx((32 / 96 + 160 / 224) / 2, abs=1e-4)
    assert scores["float_mask_classes"] == 2
    classes = _softmax(RNG.normal(size=(2, 8, 8, 3)) * 5)
    assert mask_agreement(classes, classes[..., ::-1])["mask_miou"] < 0.6


def test_landmarks_score_error_relative_to_the_spread():
    points = RNG.uniform(0, 100, size=(3, 5, 2))
    flat = points.reshape(3, 10)
    assert landmark_agreement(flat, flat)["landmark_score"] == 1.0
    spread = np.sqrt(np.mean(np.sum((points - points.mean(1, keepdims=True)) ** 2, -1), 1))
    moved = points.copy()
    moved[..., 0] += 0.05 * spread[:, None]  # every point off by 5 % of the spread
    scores = landmark_agreement(flat, moved.reshape(3, 10))
    assert scores["landmark_nme"] == pytest.approx(0.05, abs=1e-4)
    assert scores["landmark_score"] == pytest.approx(0.95, abs=1e-4)
    # the same error in pixels of a 10x larger face is 10x smaller relative to it
    assert landmark_agreement(flat * 10, moved.reshape(3, 10) * 10)["landmark_nme"] == (
        pytest.approx(0.05, abs=1e-4)
    )
    assert [landmark_dims(n) for n in (10, 136, 1404, 63, 7)] == [2, 2, 3, 3, 1]


def test_embeddings_score_cosine_similarity():
    vectors = RNG.normal(size=(4, 32))
    assert embedding_agreement(vectors, vectors)["embedding_cosine"] == 1.0
    assert embedding_agreement(vectors, 3 * vectors)["embedding_cosine"] == pytest.approx(1.0)
    scores = embedding_agreement(vectors, RNG.normal(size=(4, 32)))
    assert scores["embedding_cosine"] < 0.5
    assert embedding_agreement(vectors, -vectors)["embedding_cosine"] == 0.0


def test_the_worst_output_is_the_models_fidelity():
    rng = np.random.default_rng(3)
    images = rng.uniform(size=(4, 16, 16, 3)).astype(np.float32)
    scores = _softmax(np.eye(5)[[0, 1, 2, 3]] * 4 + rng.normal(0, 0.1, (4, 5))).astype(np.float32)
    reference = ModelOutputs(("picture", "classes"), (images, scores))
    wrong = scores.copy()
    wrong[:2] = wrong[:2, ::-1]  # half the decisions flipped (class 0 -> 4, 1 -> 3)
    test = ModelOutputs(("classes", "picture"), (wrong, images))  # another order
    judgement = builtin_judge().judge(reference, test)
    by_name = {s.output: s for s in judgement.outputs}
    assert by_name["picture"].task == tasks.IMAGE and by_name["picture"].value == 1.0
    assert by_name["classes"].task == tasks.CLASSIFICATION
    assert judgement.worst.output == "classes"
    assert judgement.value == by_name["classes"].value <= 0.75
    numbers = judgement.numbers()
    assert numbers["fidelity_metric"] == "top1_agreement"
    assert set(numbers["fidelity_outputs"]) == {"picture", "classes"}


def test_outputs_pair_by_name_then_by_a_prefix_then_by_shape():
    a, b = np.zeros((1, 4), np.float32), np.ones((1, 2), np.float32)
    reference = ModelOutputs(("box", "prob"), (a, b))
    assert ModelOutputs(("quant_prob", "quant_box"), (b, a)).aligned_to(reference).arrays[0] is a
    assert ModelOutputs(("Identity_1", "Identity"), (b, a)).aligned_to(reference).arrays[1] is b
    with pytest.raises(ModelError, match="1 output"):
        ModelOutputs(("x",), (a,)).aligned_to(reference)


def test_task_and_metric_choices_are_checked_in_one_line():
    assert parse_assignments(["detection", "boxes=regression"], "--task") == {
        "*": "detection",
        "boxes": "regression",
    }
    with pytest.raises(CompressorError, match="expected NAME or OUTPUT=NAME"):
        parse_assignments(["boxes="], "--task")
    registry = builtin_judge().registry
    with pytest.raises(CompressorError, match="unknown task") as bad_task:
        FidelityJudge(registry, {"*": "ocr"})
    assert "segmentation" in bad_task.value.hint
    with pytest.raises(CompressorError, match="no metric named 'map'") as bad_metric:
        FidelityJudge(registry, metrics={"*": "map"})
    assert "mask-miou" in bad_metric.value.hint
    judge = FidelityJudge(registry, {"boxes": "regression"})
    with pytest.raises(CompressorError, match="no output 'boxes'"):
        judge.check_outputs(["prob", "landmarks"])


def test_a_task_given_replaces_the_guess_and_must_fit_the_output():
    logits = RNG.normal(size=(4, 6)).astype(np.float32)
    judged = FidelityJudge(builtin_judge().registry, {"*": "landmarks"}).judge(logits, logits)
    assert judged.worst.task == tasks.LANDMARKS and judged.worst.task_reason == "--task"
    with pytest.raises(ModelError, match="YOLO-style head"):
        FidelityJudge(builtin_judge().registry, {"*": "detection"}).judge(logits, logits)


def _within_tenth(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    return {"within_tenth": float(np.mean(np.abs(reference - test) <= 0.1))}


class WithinTenthMetric:
    """A third-party metric plugin: share of values within 0.1 of the float model's."""

    @hookimpl
    def register_metrics(self, registry):
        """Register ``within-tenth``."""
        registry.add(Metric("within-tenth", "regression", "within_tenth", _within_tenth))


def test_a_plugin_metric_is_registered_and_selected_by_metric(plugin_host):
    plugin_host.add_plugin(WithinTenthMetric(), "tenth-plugin")
    assert plugin_host.metrics.plugin_of("within-tenth") == "tenth-plugin"
    assert plugin_host.metrics.plugin_of("ssim") == "compressor.strategies.metrics"
    reference = RNG.normal(size=(4, 10)).astype(np.float32)
    test = reference + np.where(np.arange(10) < 3, 0.5, 0.0).astype(np.float32)
    judge = plugin_host.fidelity_judge(metrics={"*": "within-tenth"})
    judged = judge.judge(reference, test).worst
    assert (judged.metric, judged.primary, judged.value) == ("within-tenth", "within_tenth", 0.7)
    assert judged.task == "regression" and judged.task_reason == "--metric within-tenth"


def test_a_metric_name_clash_or_unknown_task_fails_the_plugin():
    registry = MetricRegistry()
    registry.add(Metric("m", "regression", "x", _within_tenth))
    registry.current_plugin = "other"
    with pytest.raises(PluginError, match="already registered by plugin 'compressor'"):
        registry.add(Metric("m", "regression", "x", _within_tenth))
    with pytest.raises(PluginError, match="expected one of image"):
        registry.add(Metric("n", "ocr", "x", _within_tenth))


def test_stray_mask_pixels_do_not_decide_the_iou_and_an_empty_split_is_warned():
    from compressor.core.builtin_metrics import builtin_judge

    empty = np.zeros((4, 32, 32, 1), np.float32)
    specks = empty.copy()
    specks[0, :3, :3] = 1.0  # 9 of 4096 pixels: a person segmenter's noise on a cat photo
    scores = mask_agreement(empty, specks)
    assert scores["mask_miou"] > 0.99 and scores["float_mask_classes"] == 1  # was 0.5
    (warning,) = builtin_judge().judge(empty + 0.01, specks).warnings()
    assert "one class only" in warning
    blob = empty.copy()
    blob[:, 8:24, 8:24] = 1.0  # a quarter of every image: the compressed model invents it
    assert mask_agreement(empty, blob)["mask_miou"] < 0.5
