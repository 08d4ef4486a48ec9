"""Per-op mixed precision (ai-edge-quantizer): the accuracy-control loop keeps exactly the
sensitive op above int8 and reaches the fidelity floor int8 misses."""

from __future__ import annotations

from compressor.core.artifact import Artifact
from compressor.core.fidelity import ssim
from compressor.core.model_info import model_info_from_keras
from compressor.core.strategy import PipelineView
from compressor.litert.tflite_runtime import TFLiteModel, list_operators
from tests.conftest import build_sensitive_cnn, make_context


def _held_out_ssim(context, model: bytes) -> float:
    images = context.images.evaluation
    return ssim(context.float_outputs("evaluation").first, TFLiteModel(model).predict(images))


def test_loop_keeps_the_one_sensitive_op_float_and_meets_the_floor(host, tmp_path, images_dir):
    model = build_sensitive_cnn()
    context = make_context(tmp_path, model, images_dir)
    full = host.strategies.get("tflite-full-int8")
    int8 = full.apply(Artifact(keras_model=model), context, full.Config(io_type="float32"))
    assert _held_out_ssim(context, int8.tflite_bytes) < 0.99  # full int8 misses the floor

    mixed = host.strategies.get("aeq-mixed-precision")
    out = mixed.apply(Artifact(keras_model=model), context, mixed.Config(min_fidelity=0.99))
    kept = [regex for regex, precision in out.facts["mixed_recipe"].items() if precision == "float"]
    assert len(kept) == 1 and "sensitive" in kept[0]
    assert out.facts["mixed_sensitivity"][0][0] == kept[0]  # ranked most sensitive
    assert _held_out_ssim(context, out.tflite_bytes) >= 0.99  # on images the loop never saw
    float_convs = [
        op for op in list_operators(out.tflite_bytes)
        if op.name == "CONV_2D" and op.output_types == ["float32"]
    ]  # fmt: skip
    assert len(float_convs) == 1 and out.facts["mixed_float_ops"] == 1


def test_a_hand_written_recipe_is_applied_as_written(host, tmp_path, images_dir):
    model = build_sensitive_cnn()
    context = make_context(tmp_path, model, images_dir)
    mixed = host.strategies.get("aeq-mixed-precision")
    recipe = {".*/c3/.*": "int16x8", ".*/sensitive/.*": "float"}
    config = mixed.Config(recipe=recipe, auto=False)
    out = mixed.apply(Artifact(keras_model=model), context, config)
    ops = {op.name + ":" + ",".join(op.output_types) for op in list_operators(out.tflite_bytes)}
    assert {"CONV_2D:int8", "CONV_2D:float32", "CONV_2D:int16"} <= ops  # c1, sensitive, c3
    assert out.facts["mixed_recipe"] == recipe


def test_integer_only_targets_get_no_float_fallback(host):
    mixed = host.strategies.get("aeq-mixed-precision")
    info = model_info_from_keras(build_sensitive_cnn())
    support = mixed.supports(host.profiles.resolve("edgetpu"), info, PipelineView())
    assert not support.ok and "QAT and norm swap" in support.reason
    assert mixed.supports(host.profiles.resolve("x86-cpu"), info, PipelineView()).ok
