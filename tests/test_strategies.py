"""Built-in strategies on tiny real models: TF, tfmot and LiteRT, no mocks."""

from __future__ import annotations

import numpy as np
import pytest

from compressor.core.artifact import Artifact
from compressor.core.fidelity import psnr_db, ssim
from compressor.litert.tflite_runtime import TFLiteModel, io_types, list_operators
from tests.conftest import (
    assert_integer_only,
    build_tiny_classifier,
    build_tiny_cnn,
    build_tiny_generator,
    build_wide_range_cnn,
    make_context,
    write_images,
)


def _strategy(host, name):
    strategy = host.strategies.get(name)
    return strategy, strategy.Config()


def test_fold_batchnorm_matches_unfused_model(host, tmp_path, images_dir):
    model = build_tiny_cnn()
    context = make_context(tmp_path, model, images_dir)
    strategy, config = _strategy(host, "fold-batchnorm")
    out = strategy.apply(Artifact(keras_model=model), context, config)
    folded = out.keras_model
    assert out.facts["folded_batch_norms"] == 3
    assert not any(layer.__class__.__name__ == "BatchNormalization" for layer in folded.layers)
    images = context.images.evaluation
    assert (
        np.max(np.abs(model.predict(images, verbose=0) - folded.predict(images, verbose=0))) < 1e-4
    )


def test_magnitude_prune_works_around_custom_layers(host, tmp_path, images_dir):
    model = build_tiny_generator("instance")
    context = make_context(tmp_path, model, images_dir)
    strategy = host.strategies.get("magnitude-prune")
    untuned = strategy.apply(
        Artifact(keras_model=model),
        context,
        strategy.Config(target_sparsity=0.5, fine_tune_steps=0),
    )
    config = strategy.Config(target_sparsity=0.5, fine_tune_steps=30, batch_size=4)
    out = strategy.apply(Artifact(keras_model=model), context, config)
    pruned = out.keras_model
    assert 0.45 <= out.facts["sparsity"] <= 0.55
    assert not any("prune" in layer.__class__.__name__.lower() for layer in pruned.layers)
    norms = [
        layer for layer in pruned.layers if layer.__class__.__name__ == "InstanceNormalization"
    ]
    assert norms, "the custom layer stays in the pruned model"
    images = context.images.evaluation
    reference = model.predict(images, verbose=0)
    tuned_psnr = psnr_db(reference, pruned.predict(images, verbose=0))
    untuned_psnr = psnr_db(reference, untuned.keras_model.predict(images, verbose=0))
    assert untuned.facts["sparsity"] >= 0.49
    assert tuned_psnr > untuned_psnr + 1.0  # self-distillation recovers quality


def test_prune_2x4_gives_two_zeros_in_every_four(host, tmp_path, images_dir):
    model = build_tiny_cnn()
    context = make_context(tmp_path, model, images_dir)
    strategy = host.strategies.get("prune-2x4")
    out = strategy.apply(
        Artifact(keras_model=model), context, strategy.Config(fine_tune_steps=3, batch_size=2)
    )
    convs = [layer for layer in out.keras_model.layers if layer.__class__.__name__ == "Conv2D"]
    for conv in convs:
        kernel = conv.get_weights()[0]
        if kernel.shape[2] % 4:
            continue  # tfmot leaves layers whose input channels are not a multiple of 4
        groups = np.moveaxis(kernel, 2, -1).reshape(-1, 4)
        assert np.all(np.count_nonzero(groups == 0, axis=1) >= 2), conv.name
    assert out.facts["sparsity_pattern"] == "2:4"


def test_qat_on_instance_norm_model_then_full_int8(host, tmp_path, images_dir):
    model = build_tiny_generator("instance")
    context = make_context(tmp_path, model, images_dir, "edgetpu")
    qat = host.strategies.get("tfmot-qat")
    out = qat.apply(
        Artifact(keras_model=model), context, qat.Config(fine_tune_steps=3, batch_size=2)
    )
    assert out.facts["qat"] is True and out.pre_qat_model is model
    assert out.facts["qat_calibrated_ranges"] > 0
    assert any("output-only" in note for note in context.notes)
    quantize, config = _strategy(host, "tflite-full-int8")
    converted = quantize.apply(out, context, config)
    assert io_types(converted.tflite_bytes) == ("int8", "int8")
    result = TFLiteModel(converted.tflite_bytes).predict(context.images.evaluation[:2])
    assert result.shape == (2, 32, 32, 3) and np.all(np.isfinite(result))
    # Both conversions were scored and the note says which was kept, by how much.
    facts = converted.facts
    assert facts["qat_kept"] == (facts["qat_match"] >= facts["ptq_match"])
    assert any(f"{facts['ptq_match']:.4f}" in note for note in context.notes)


def test_qat_beats_post_training_int8_on_held_out_images(host, tmp_path, images_dir):
    """Step budget: 600 QAT steps, batch 8, Adam 1e-3 (about 15 s on 2 cores)."""
    model = build_wide_range_cnn()
    context = make_context(tmp_path, model, images_dir, "edgetpu")
    assert context.images.held_out
    quantize, config = _strategy(host, "tflite-full-int8")
    ptq = quantize.apply(Artifact(keras_model=model), context, config)
    qat = host.strategies.get("tfmot-qat")
    trained = qat.apply(
        Artifact(keras_model=model), context, qat.Config(fine_tune_steps=600, batch_size=8)
    )
    converted = quantize.apply(trained, context, config)
    assert converted.facts["qat_kept"] is True
    held_out = context.images.evaluation
    reference = model.predict(held_out, verbose=0)
    ptq_ssim = ssim(reference, TFLiteModel(ptq.tflite_bytes).predict(held_out))
    qat_ssim = ssim(reference, TFLiteModel(converted.tflite_bytes).predict(held_out))
    assert qat_ssim > ptq_ssim + 0.01, (qat_ssim, ptq_ssim)


def test_qat_after_prune_preserves_sparsity(host, tmp_path, images_dir):
    model = build_tiny_cnn()
    context = make_context(tmp_path, model, images_dir, "edgetpu")
    prune = host.strategies.get("magnitude-prune")
    pruned = prune.apply(
        Artifact(keras_model=model),
        context,
        prune.Config(target_sparsity=0.5, fine_tune_steps=4, batch_size=2),
    )
    qat = host.strategies.get("tfmot-qat")
    out = qat.apply(pruned, context, qat.Config(fine_tune_steps=3, batch_size=2))
    assert out.facts["qat_scheme"] == "prune-preserve"
    kernels = [
        w.numpy()
        for w in out.keras_model.weights
        if w.name.endswith("kernel:0") and "conv2d" in w.name and w.shape[-1] == 8
    ]
    assert kernels and all(np.mean(k == 0) >= 0.4 for k in kernels)


def _tensor_types(ops) -> set[str]:
    return {t for op in ops for t in (*op.input_types, *op.output_types)}


def _weights_of(ops, name: str) -> list[str]:
    """Weight-tensor dtypes (second input) of every ``name`` op."""
    return [op.input_types[1] for op in ops if op.name == name]


def _check_float32(ops) -> None:
    assert _tensor_types(ops) <= {"float32", "int32"}


def _check_float16(ops) -> None:
    # weights stored as float16 and dequantized once; every computing op is float32
    assert {op.input_types[0] for op in ops if op.name == "DEQUANTIZE"} == {"float16"}
    assert set(_weights_of(ops, "CONV_2D")) == {"float32"}
    assert "int8" not in _tensor_types(ops)


def _check_dynamic_int8(ops) -> None:
    # hybrid kernels: int8 weights, float activations in and out; no int activations
    hybrid = [op for op in ops if op.name == "CONV_2D" and op.input_types[1] == "int8"]
    assert hybrid and all(
        op.input_types[0] == "float32" and op.output_types == ["float32"] for op in hybrid
    )
    assert "int16" not in _tensor_types(ops) and "DEQUANTIZE" not in {op.name for op in ops}


def _check_int16x8(ops) -> None:
    # int16 activations, int8 weights, int64 biases inside a float-I/O shell
    for op in ops:
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert op.input_types == ["int16", "int8", "int64"] and op.output_types == ["int16"]
    assert [ops[0].name, ops[-1].name] == ["QUANTIZE", "DEQUANTIZE"]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("tflite-float32", _check_float32),
        ("tflite-float16", _check_float16),
        ("tflite-dynamic-int8", _check_dynamic_int8),
        ("tflite-int16x8", _check_int16x8),
    ],
)
def test_quantize_modes_produce_their_types(host, tmp_path, images_dir, name, check):
    model = build_tiny_cnn(width=16)  # kernels ≥ 1024 weights, or the converter skips them
    context = make_context(tmp_path, model, images_dir)
    strategy, config = _strategy(host, name)
    out = strategy.apply(Artifact(keras_model=model), context, config)
    check(list_operators(out.tflite_bytes))
    assert io_types(out.tflite_bytes) == ("float32", "float32")
    assert out.facts["precision"] == strategy.produces_precision


def test_full_int8_every_operator_is_integer(host, tmp_path, images_dir):
    model = build_tiny_cnn()
    context = make_context(tmp_path, model, images_dir, "edgetpu")
    strategy, config = _strategy(host, "tflite-full-int8")
    out = strategy.apply(Artifact(keras_model=model), context, config)
    assert_integer_only(list_operators(out.tflite_bytes))


def test_evaluate_measures_baseline_and_result(host, tmp_path, images_dir):
    model = build_tiny_cnn(width=16)
    context = make_context(tmp_path, model, images_dir)
    quantize, qconfig = _strategy(host, "tflite-dynamic-int8")
    converted = quantize.apply(Artifact(keras_model=model), context, qconfig)
    evaluate = host.strategies.get("litert-evaluate")
    evaluate.apply(converted, context, evaluate.Config(runs=5, warmup=1, max_images=3))
    baseline, result = context.results["baseline"], context.results["result"]
    assert result["size_bytes"] < baseline["size_bytes"]
    assert result["gzip_bytes"] <= result["size_bytes"]
    assert (
        result["host_latency_ms"] > 0 and result["host_latency_p90_ms"] >= result["host_latency_ms"]
    )
    assert baseline["fidelity"]["ssim"] > 0.999
    assert 0.5 < result["fidelity"]["ssim"] <= 1.0 and result["fidelity"]["psnr_db"] > 20
    assert result["estimated_latency_ms"] > 0


def test_evaluate_scores_every_held_out_image_by_default(host, tmp_path):
    """A classifier's top-1 agreement on 8 images moves in steps of 1/8: the reported
    fidelity uses the whole held-out split (here 12 of 40 files)."""
    model = build_tiny_classifier()
    images = write_images(tmp_path / "many", count=40)
    context = make_context(tmp_path, model, images)
    quantize, qconfig = _strategy(host, "tflite-dynamic-int8")
    converted = quantize.apply(Artifact(keras_model=model), context, qconfig)
    evaluate = host.strategies.get("litert-evaluate")
    evaluate.apply(converted, context, evaluate.Config(runs=2, warmup=0))
    held_out = len(context.images.evaluation)
    assert held_out == 12
    assert context.results["result"]["fidelity_images"] == held_out
    assert "top1_agreement" in context.results["result"]["fidelity"]


def test_paired_finetune_lowers_the_loss(host, tmp_path, images_dir):
    from PIL import Image, ImageOps

    targets = tmp_path / "targets"
    targets.mkdir()
    for path in images_dir.iterdir():
        ImageOps.invert(Image.open(path).convert("RGB")).save(targets / path.name)
    model = build_tiny_cnn()
    context = make_context(tmp_path, model, images_dir)
    strategy = host.strategies.get("paired-finetune")
    config = strategy.Config(
        inputs_dir=str(images_dir),
        targets_dir=str(targets),
        steps=30,
        batch_size=2,
        learning_rate=1e-2,
    )
    out = strategy.apply(Artifact(keras_model=model), context, config)
    assert out.facts["train_mse_after"] < out.facts["train_mse_before"]


def test_evaluate_uses_classifier_metrics_for_classifiers(host, tmp_path, images_dir):
    from tests.conftest import build_tiny_classifier

    model = build_tiny_classifier()
    context = make_context(tmp_path, model, images_dir)
    quantize, qconfig = _strategy(host, "tflite-full-int8")
    converted = quantize.apply(Artifact(keras_model=model), context, qconfig)
    evaluate = host.strategies.get("litert-evaluate")
    evaluate.apply(converted, context, evaluate.Config(runs=2, warmup=0))
    fidelity = context.results["result"]["fidelity"]
    assert set(fidelity) == {"top1_agreement", "kl_divergence"}
    assert 0.0 <= fidelity["top1_agreement"] <= 1.0 and fidelity["kl_divergence"] >= 0.0
    assert context.results["baseline"]["fidelity"]["top1_agreement"] == 1.0


def test_qat_annotates_batch_norm_after_convs_so_tfmot_folds_them():
    # Regression: BatchNorm is not in tfmot's registry, so layer-wise annotation used to
    # leave it float and QAT never simulated the Conv+BN fold (seen on norm-swapped twins).
    import tensorflow_model_optimization as tfmot

    from compressor.strategies.qat import annotate_for_qat

    model = build_tiny_generator("batch")
    annotated, groups, scope = annotate_for_qat(model)
    batch_norms = [layer.name for layer in model.layers if "norm" in layer.name]
    assert batch_norms and set(batch_norms) <= set(groups["quantized"])
    assert groups["float"] == []
    with tfmot.quantization.keras.quantize_scope(scope):
        quantized = tfmot.quantization.keras.quantize_apply(annotated)
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    simulated = quantized.predict(images, verbose=0)
    assert np.abs(simulated - model.predict(images, verbose=0)).max() < 0.1
