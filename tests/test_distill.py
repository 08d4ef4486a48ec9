"""Distillation: norm swap beats a fresh student; students appear under latency budgets."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from compressor.core.artifact import Artifact
from compressor.core.fidelity import psnr_db
from compressor.core.model_info import model_info_from_keras
from compressor.core.profiles import builtin_profile_paths, load_profile_file
from compressor.models.default import default_model_info
from compressor.models.generator import GeneratorConfig, build_generator
from compressor.planning.planner import plan_pipeline
from compressor.style.distill import distill, recalibrate_batch_norm
from tests.conftest import build_tiny_generator, make_context

TEACHER = GeneratorConfig(width=0.25, residual_blocks=1, norm="instance", input_size=32)


def test_norm_swap_student_matches_teacher_better_than_a_fresh_student(host, tmp_path, images_dir):
    teacher = build_generator(TEACHER, seed=0)
    context = make_context(tmp_path, teacher, images_dir, "edgetpu")
    swap = host.strategies.get("norm-swap")
    config = swap.Config(steps=30, batch_size=4, vgg_weights="none", learning_rate=1e-3)
    swapped = swap.apply(Artifact(keras_model=teacher), context, config).keras_model
    assert not any(layer.__class__.__name__ == "InstanceNormalization" for layer in swapped.layers)
    fresh = build_generator(
        GeneratorConfig(width=0.25, residual_blocks=1, norm="batch", input_size=32), seed=1
    )
    distill(teacher, fresh, context.images.train, 30, 4, 1e-3, seed=0)
    images = context.images.evaluation
    reference = teacher.predict(images, verbose=0)
    swapped_psnr = psnr_db(reference, swapped.predict(images, verbose=0))
    fresh_psnr = psnr_db(reference, fresh.predict(images, verbose=0))
    assert swapped_psnr > fresh_psnr
    assert context.model_info.count("batch_norm") > 0 and not context.model_info.has_instance_norm


def test_batch_norm_recalibration_sets_moving_statistics():
    model = build_generator(
        GeneratorConfig(width=0.25, residual_blocks=1, norm="batch", input_size=16), seed=0
    )
    images = np.random.default_rng(0).random((6, 16, 16, 3)).astype("float32")
    assert recalibrate_batch_norm(model, images) == model_info_from_keras(model).count("batch_norm")
    first = model.get_layer("enc1_norm")
    import tf_keras as keras

    act = keras.Model(model.inputs, first.input)(images).numpy()
    np.testing.assert_allclose(
        first.get_weights()[2], act.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5
    )


def test_student_distill_shrinks_the_generator(host, tmp_path, images_dir):
    teacher = build_tiny_generator("instance")
    context = make_context(tmp_path, teacher, images_dir)
    strategy = host.strategies.get("distill-student")
    config = strategy.Config(
        width=0.25, residual_blocks=0, depthwise=True, steps=5, batch_size=2, vgg_weights="random"
    )
    out = strategy.apply(Artifact(keras_model=teacher), context, config)
    assert out.keras_model.count_params() < teacher.count_params()
    assert out.facts["distill_loss_network"] == "VGG19 random (seed 0, He-normal)"
    assert context.original_model_info.params == teacher.count_params()
    # fewer MACs is what buys latency: the student's work, counted from the Keras model
    student_macs = model_info_from_keras(out.keras_model).macs
    assert student_macs < 0.9 * model_info_from_keras(teacher).macs


def test_student_trains_on_crops_and_is_returned_at_full_size(host, tmp_path, images_dir):
    teacher = build_tiny_generator("instance")  # 32x32
    context = make_context(tmp_path, teacher, images_dir)
    strategy = host.strategies.get("distill-student")
    config = strategy.Config(
        width=0.25,
        residual_blocks=1,
        steps=30,
        batch_size=2,
        crop_size=16,
        vgg_weights="none",
        learning_rate=3e-3,
    )
    out = strategy.apply(Artifact(keras_model=teacher), context, config)
    assert out.keras_model.input_shape == teacher.input_shape  # rebuilt at full size
    assert np.isfinite(out.facts["distill_final_loss"])
    # Fidelity recovered on held-out images (never trained on): the distilled student
    # matches the teacher far better than the same student before distillation.
    assert context.images.held_out
    held_out, reference = context.images.evaluation, context.float_outputs("evaluation").first
    before = strategy.apply(
        Artifact(keras_model=teacher), context, config.model_copy(update={"steps": 1})
    )
    # PSNR: the random tiny teacher's outputs are noise-like, where SSIM says little
    student_psnr = psnr_db(reference, out.keras_model.predict(held_out, verbose=0))
    before_psnr = psnr_db(reference, before.keras_model.predict(held_out, verbose=0))
    assert student_psnr > before_psnr + 1.0, (student_psnr, before_psnr)


def _budget_profile(tmp_path, latency_ms: float):
    data = yaml.safe_load(
        next(p for p in builtin_profile_paths() if p.stem == "x86-cpu").read_text()
    )
    data["name"] = "x86-tight"
    data["budgets"] = {"max_latency_ms": latency_ms}
    path = tmp_path / "tight.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_profile_file(path)


def test_distill_appears_in_plans_for_a_tight_latency_budget(host, tmp_path):
    info = default_model_info()
    relaxed = plan_pipeline(host.profiles.resolve("x86-cpu"), info, host.strategies)
    assert relaxed.chosen.step("distill") is None
    tight = plan_pipeline(_budget_profile(tmp_path, 3.0), info, host.strategies)
    step = tight.chosen.step("distill")
    assert step is not None and step.strategy.name in ("distill-student", "cut-student")
    assert tight.chosen.latency_ms <= 3.0 and not tight.chosen.budget_misses
    assert "width" in tight.reasons["distill"]


def test_cut_student_starts_from_the_teacher_and_learns_its_features(host, tmp_path, images_dir):
    """Cut from the teacher, the student is already close before any step (unlike a
    fresh one), keeps the most active blocks, and distillation brings it closer still."""
    from compressor.style.student_cut import residual_contributions

    teacher = build_generator(
        GeneratorConfig(width=0.25, residual_blocks=3, norm="instance", input_size=32), seed=0
    )
    context = make_context(tmp_path, teacher, images_dir)
    strategy = host.strategies.get("cut-student")
    config = strategy.Config(keep=0.5, trunk_keep=0.5, residual_blocks=2, steps=0, crop_size=16)
    cut = strategy.apply(Artifact(keras_model=teacher), context, config)
    contributions = residual_contributions(teacher, 3, context.images.train)
    weakest = int(np.argmin(contributions)) + 1
    assert weakest not in cut.facts["kept_blocks"] and len(cut.facts["kept_blocks"]) == 2
    assert model_info_from_keras(cut.keras_model).macs < 0.5 * context.original_model_info.macs
    images, reference = context.images.evaluation, context.float_outputs("evaluation").first
    fresh = build_generator(
        GeneratorConfig(width=0.125, residual_blocks=2, norm="instance", input_size=32), seed=1
    )
    cut_psnr = psnr_db(reference, cut.keras_model.predict(images, verbose=0))
    assert cut_psnr > psnr_db(reference, fresh.predict(images, verbose=0))
    context.model_info = context.original_model_info  # the stage runs on the teacher again
    trained = strategy.apply(
        Artifact(keras_model=teacher), context, config.model_copy(update={"steps": 60})
    )
    from compressor.core.fidelity import ssim

    cut_ssim = ssim(reference, cut.keras_model.predict(images, verbose=0))
    trained_ssim = ssim(reference, trained.keras_model.predict(images, verbose=0))
    assert trained_ssim > cut_ssim + 0.05, (trained_ssim, cut_ssim)
    assert trained.keras_model.input_shape == teacher.input_shape


def test_cut_student_with_a_full_trunk_keeps_more_of_the_teacher(host, tmp_path, images_dir):
    """Halving only the full-resolution layers keeps the residual trunk's channels and
    starts closer to the teacher than halving everything."""
    from compressor.core.fidelity import ssim
    from compressor.models.default import build_default_model

    teacher = build_default_model(32)  # trained: a random teacher has no trunk to keep
    context = make_context(tmp_path, teacher, images_dir)
    strategy = host.strategies.get("cut-student")
    images, reference = context.images.evaluation, context.float_outputs("evaluation").first
    scores, students = {}, {}
    for trunk in (0.5, 1.0):
        config = strategy.Config(keep=0.5, trunk_keep=trunk, residual_blocks=2, steps=0)
        context.model_info = context.original_model_info
        students[trunk] = strategy.apply(Artifact(keras_model=teacher), context, config)
        scores[trunk] = ssim(reference, students[trunk].keras_model.predict(images, verbose=0))
    full = students[1.0].keras_model
    assert full.get_layer("enc3_conv").filters == teacher.get_layer("enc3_conv").filters
    assert full.get_layer("enc1_conv").filters == teacher.get_layer("enc1_conv").filters // 2
    # 0.26 vs 0.22 here (synthetic 32x32 images); 0.49 vs 0.29 on photos at 256x256
    assert scores[1.0] > scores[0.5] + 0.02, scores


def test_cut_student_ssim_term_brings_the_student_closer_in_ssim(tmp_path, images_dir):
    """The (1 - SSIM) term aims distillation at the fidelity metric: after the same steps
    from the same cut, the student trained with it is closer to the teacher in SSIM than
    one trained on MSE and features alone."""
    from compressor.core.fidelity import ssim
    from compressor.style.student_cut import TRUNK_ENTRY, cut_student, distill_on_crops

    config = GeneratorConfig(width=0.25, residual_blocks=3, norm="instance", input_size=32)
    teacher = build_generator(config, seed=0)
    context = make_context(tmp_path, teacher, images_dir)
    images, reference = context.images.evaluation, context.float_outputs("evaluation").first
    scores = {}
    for weight in (0.0, 3.0):
        student, cut = cut_student(teacher, config, 0.5, 2, context.images.train, 0, 5)
        pairs = [(TRUNK_ENTRY, TRUNK_ENTRY, cut["trunk_channels"])]
        distill_on_crops(teacher, student, context.images.train, pairs, 60, 4, 1e-3, 24,
                         ssim_weight=weight)  # fmt: skip
        scores[weight] = ssim(reference, student.predict(images, verbose=0))
    assert scores[3.0] > scores[0.0] + 0.01, scores


def test_cut_student_estimate_uses_the_shape_measurement_when_there_is_one(monkeypatch):
    """Shapes of the same width repair differently: a shape measured on its own is
    estimated by its measurement, others by the width curve."""
    from compressor.planning import measured_constants
    from compressor.strategies.distill import cut_shape_constant, cut_student_loss

    document = {
        "values": {
            "ssim_loss.cut_student@0.5": {"value": 0.2, "how": "t"},
            cut_shape_constant(0.5, 3, 3): {"value": 0.25, "how": "t"},
        }
    }
    monkeypatch.setattr(measured_constants, "_document", lambda: document)
    assert cut_student_loss(0.5, 3, 3) == 0.25
    assert cut_student_loss(0.5, 5, 9) == 0.2
    assert cut_student_loss(0.75, 5, 5) == pytest.approx(0.1)  # halfway to no loss at 1.0
