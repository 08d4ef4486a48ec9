"""Fidelity on float16-computing targets (pixel-gpu) is measured in float16."""

from __future__ import annotations

import numpy as np

from compressor.litert.float16_arithmetic import float16_outputs
from compressor.litert.measurement import measure_tflite
from tests.conftest import build_tiny_generator, make_context


def _overflowing_model(size: int = 32):
    """Float32-ordinary, but in float16 the instance norm's variance (~1e8 for a 1x1
    conv that sums the channels times 3e4) overflows past 65504: rsqrt(inf) = 0 leaves
    no usable pixel (0 · inf is NaN)."""
    import tf_keras as keras

    from compressor.models.generator import InstanceNormalization

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(1, 1, kernel_initializer=keras.initializers.Constant(3e4))(inputs)
    x = InstanceNormalization()(x)
    x = keras.layers.Conv2D(3, 1, kernel_initializer="ones")(x)
    outputs = keras.layers.Activation("sigmoid")(x)
    return keras.Model(inputs, outputs)


def test_float16_emulation_overflows_where_float32_does_not():
    model = _overflowing_model()
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    as_float32 = model.predict(images, verbose=0)
    as_float16 = float16_outputs(model, images).first
    assert np.all(np.isfinite(as_float32)) and as_float32.std() > 0.1
    wrong = ~np.isfinite(as_float16) | (np.abs(as_float16 - as_float32) > 0.1)
    assert wrong.mean() > 0.5
    generator = build_tiny_generator()
    close = float16_outputs(generator, images).first
    assert np.abs(close - generator.predict(images, verbose=0)).max() < 2e-2


def test_pixel_gpu_fidelity_is_measured_in_float16(tmp_path, images_dir):
    from compressor.litert.conversion import convert_keras

    model = _overflowing_model()
    tflite = convert_keras(model, "float32")
    for profile, emulated in (("pixel-gpu", True), ("x86-cpu", False)):
        context = make_context(tmp_path / profile, model, images_dir, profile)
        images = context.images.evaluation
        reference = context.float_outputs("evaluation")
        numbers, _ = measure_tflite(
            tflite,
            context,
            "float32",
            reference,
            images,
            context.model_info,
            runs=1,
            warmup=0,
            source_model=model,
        )
        if emulated:
            assert numbers["fidelity_arithmetic"].startswith("float16 emulated")
            assert numbers["fidelity_host_float32"]["ssim"] > 0.99
            assert numbers["fidelity"]["ssim"] < 0.5
        else:
            assert "fidelity_host_float32" not in numbers
            assert numbers["fidelity"]["ssim"] > 0.99
            assert numbers["fidelity_arithmetic"] == "float32 as LiteRT computes it on this host"
