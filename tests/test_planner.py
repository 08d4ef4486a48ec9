"""The planner reaches DESIGN.md §4–5's answers, explains them, and writes editable plans."""

from __future__ import annotations

import pytest
import yaml

from compressor.core.errors import PlanError
from compressor.core.model_info import model_info_from_keras
from compressor.core.plan import load_plan, resolve_plan_steps
from compressor.core.planner import plan_pipeline, to_plan
from compressor.core.profiles import builtin_profile_paths, load_profile_file
from compressor.models.default import default_model_info
from tests.conftest import build_tiny_cnn


def _plan(host, profile_name, info=None):
    info = info or default_model_info()
    return plan_pipeline(host.profiles.resolve(profile_name), info, host.strategies)


def _names(result):
    return [s.strategy.name for s in result.chosen.steps]


def test_pixel_gpu_chooses_float16_and_no_int8_activations(host):
    result = _plan(host, "pixel-gpu")
    assert "tflite-float16" in _names(result)
    assert result.chosen.precision == "float16"
    reasons = {r.strategy: r.reason for r in result.rejections}
    assert "does not execute int8" in reasons["tflite-full-int8"]
    assert "does not execute dynamic_int8" in reasons["tflite-dynamic-int8"]


def test_edgetpu_swaps_instance_norm_for_batch_norm_in_a_generator(host):
    info = default_model_info()
    assert info.has_instance_norm
    result = _plan(host, "edgetpu", info)
    assert _names(result)[:3] == ["norm-swap", "fold-batchnorm", "tflite-full-int8"]
    reasons = {r.strategy: r.reason for r in result.rejections}
    assert "only full-integer int8" in reasons["tflite-float16"]
    assert "instance norm breaks full int8" in result.reasons["distill"]
    # a target that keeps float does not need it
    gpu = {r.strategy: r.reason for r in _plan(host, "pixel-gpu", info).rejections}
    assert gpu["norm-swap"].startswith("not needed")


def test_edgetpu_chooses_qat_for_an_instance_norm_model_it_cannot_rebuild(host):
    info = default_model_info()
    info.name = "someone_elses_model"  # not a compressor generator: no norm swap
    for layer in info.layers:
        layer.name = f"x_{layer.name}"
    info.extra = {}
    result = _plan(host, "edgetpu", info)
    assert _names(result)[:2] == ["tfmot-qat", "tflite-full-int8"]
    assert "QAT" in result.reasons["qat"] or "risk" in result.reasons["qat"]


def test_edgetpu_skips_qat_when_model_is_not_at_risk(host):
    info = model_info_from_keras(build_tiny_cnn())
    result = _plan(host, "edgetpu", info)
    assert "tflite-full-int8" in _names(result) and "tfmot-qat" not in _names(result)
    reasons = {r.strategy: r.reason for r in result.rejections}
    assert reasons["tfmot-qat"].startswith("not needed")


@pytest.mark.parametrize("profile", ["x86-cpu", "pixel-cpu"])
def test_cpu_profiles_choose_int8_never_int16x8(host, profile):
    for info in (default_model_info(), model_info_from_keras(build_tiny_cnn())):
        result = _plan(host, profile, info)
        assert result.chosen.precision in ("int8", "dynamic_int8")
        assert all(c.precision != "int16x8" for c in result.ranked[:5])


def test_batch_norm_model_gets_full_int8_and_folding_on_cpu(host):
    result = _plan(host, "x86-cpu", model_info_from_keras(build_tiny_cnn()))
    assert result.chosen.precision == "int8"
    assert "fold-batchnorm" in _names(result)


def test_gzip_budget_makes_the_planner_prune(host, tmp_path):
    data = yaml.safe_load(
        next(p for p in builtin_profile_paths() if p.stem == "pixel-cpu").read_text()
    )
    data["name"] = "tight-phone"
    data["budgets"] = {"max_gzip_mb": 0.3}  # the demo is ~0.38 MB after int8
    path = tmp_path / "tight.yaml"
    path.write_text(yaml.safe_dump(data))
    profile = load_profile_file(path)
    result = plan_pipeline(profile, default_model_info(), host.strategies)
    assert result.chosen.step("prune") is not None
    assert not result.chosen.budget_misses and result.chosen.gzip_bytes <= 0.3e6


def test_plan_yaml_round_trips_and_edits_are_validated(host, tmp_path):
    info = default_model_info()
    profile = host.profiles.resolve("x86-cpu")
    plan = to_plan(plan_pipeline(profile, info, host.strategies), None)
    path = tmp_path / "plan.yaml"
    plan.save(path)
    assert path.read_text().startswith("# compressor plan")
    loaded = load_plan(path)
    steps = resolve_plan_steps(loaded, host.strategies, profile, info, str(path))
    assert [s[1].name for s in steps] == [s.strategy for s in plan.stages]

    data = yaml.safe_load(path.read_text())
    data["stages"] = [
        {"stage": "prune", "strategy": "magnitude-prune", "params": {"target_sparsity": 0.3}},
        {"stage": "quantize", "strategy": "tflite-float32"},
        {"stage": "evaluate", "strategy": "litert-evaluate", "params": {"runs": 5}},
    ]
    path.write_text(yaml.safe_dump(data))
    steps = resolve_plan_steps(load_plan(path), host.strategies, profile, info, "edited")
    assert steps[0][2].target_sparsity == 0.3 and steps[2][2].runs == 5


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            [
                {"stage": "quantize", "strategy": "tflite-float32", "params": {"bits": 4}},
                {"stage": "evaluate", "strategy": "litert-evaluate"},
            ],
            "stages[0].params.bits: unknown key",
        ),
        (
            [
                {"stage": "evaluate", "strategy": "litert-evaluate"},
                {"stage": "quantize", "strategy": "tflite-float32"},
            ],
            "out of order",
        ),
        (
            [
                {"stage": "quantize", "strategy": "magnitude-prune"},
                {"stage": "evaluate", "strategy": "litert-evaluate"},
            ],
            "belongs to stage 'prune'",
        ),
        ([{"stage": "evaluate", "strategy": "litert-evaluate"}], "has no 'quantize' stage"),
        (
            [
                {"stage": "quantize", "strategy": "nosuch"},
                {"stage": "evaluate", "strategy": "litert-evaluate"},
            ],
            "unknown strategy 'nosuch'",
        ),
        (
            [
                {"stage": "qat", "strategy": "tfmot-qat"},
                {"stage": "quantize", "strategy": "tflite-float16"},
                {"stage": "evaluate", "strategy": "litert-evaluate"},
            ],
            "QAT trains for int8",
        ),
        (
            [
                {"stage": "prune", "strategy": "magnitude-prune", "params": {"target_sparsity": 2}},
                {"stage": "quantize", "strategy": "tflite-float32"},
                {"stage": "evaluate", "strategy": "litert-evaluate"},
            ],
            "stages[0].params.target_sparsity",
        ),
    ],
)
def test_invalid_plans_name_the_field(host, tmp_path, stages, message):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({"profile": "x86-cpu", "stages": stages}))
    with pytest.raises(PlanError) as error:
        resolve_plan_steps(
            load_plan(path),
            host.strategies,
            host.profiles.resolve("x86-cpu"),
            default_model_info(),
            str(path),
        )
    assert message in error.value.message


def test_plan_file_errors(tmp_path):
    with pytest.raises(PlanError, match="does not exist"):
        load_plan(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: x86-cpu\nstages: []\nextra: 1\n")
    with pytest.raises(PlanError, match="extra: unknown key"):
        load_plan(bad)
