"""Inputs as the model expects them: --input-range/--bgr/--mean/--std, or what the model
states (a Keras Rescaling or Normalization input layer), used for calibration, fidelity
and the int8 input scale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compressor.core.errors import CompressorError
from compressor.core.input_mapping import (
    InputFlags,
    InputMapping,
    input_mapping,
    parse_channel_values,
    parse_input_range,
)
from tests.conftest import (
    assert_one_line_error,
    invoke_cli,
    run_plan,
    save_quantize_plan,
    write_images,
)


def test_a_mapping_applies_and_undoes_range_and_channel_order():
    images = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 3)).astype(np.float32)
    mapping = InputMapping(-1.0, 1.0, bgr=True, source="test")
    mapped = mapping.apply(images)
    assert mapped.min() >= -1.0 and mapped.max() <= 1.0 and mapped.min() < -0.9
    np.testing.assert_allclose(mapped[..., 0], images[..., 2] * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(mapping.to_display(mapped), images, atol=1e-6)
    assert InputMapping().apply(images) is images
    assert InputMapping.from_dict(mapping.to_dict()) == mapping


def test_a_mean_and_std_normalise_per_channel_and_are_undone():
    images = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 3)).astype(np.float32)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    mapping = input_mapping(InputFlags(mean="0.485,0.456,0.406", std="0.229,0.224,0.225"), None)
    assert (mapping.mean, mapping.std) == (mean, std)
    mapped = mapping.apply(images)
    np.testing.assert_allclose(mapped[..., 1], (images[..., 1] - 0.456) / 0.224, rtol=1e-5)
    np.testing.assert_allclose(mapping.to_display(mapped), images, atol=1e-6)
    assert InputMapping.from_dict(mapping.to_dict()) == mapping
    assert mapping.source == "--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225"
    # caffe style: 0-255, BGR, mean in the model's (BGR) channel order
    caffe = input_mapping(InputFlags("0,255", True, "103.9,116.8,123.7"), None)
    np.testing.assert_allclose(caffe.apply(images)[..., 0], images[..., 2] * 255 - 103.9,
                               rtol=1e-5)  # fmt: skip
    with pytest.raises(CompressorError, match="3 values, but the model's input has 1"):
        mapping.check_channels(1)
    input_mapping(InputFlags(mean="0.5", std="0.5"), None).check_channels(1)


@pytest.mark.parametrize(("flag", "text"), [("--mean", "a,b"), ("--std", "0"),
                                            ("--std", "1,-1"), ("--mean", "nan")])  # fmt: skip
def test_a_bad_mean_or_std_is_refused(flag, text):
    with pytest.raises(CompressorError, match=f"{flag} '") as caught:
        parse_channel_values(text, flag)
    assert "\n" not in caught.value.message


def test_a_normalization_layer_adapted_to_pixels_states_0_255():
    import tf_keras as keras

    from compressor.ingest.keras_io import input_mapping_from_keras

    x_in = keras.Input((8, 8, 3))
    norm = keras.layers.Normalization(mean=[124.0, 117.0, 104.0], variance=[3e3] * 3,
                                      name="pixels")  # fmt: skip
    model = keras.Model(x_in, keras.layers.Conv2D(2, 1)(norm(x_in)))
    stated = input_mapping_from_keras(model)
    assert stated is not None and stated.high == 255.0 and "pixels" in stated.source
    unit = keras.layers.Normalization(mean=[0.5] * 3, variance=[0.08] * 3)
    assert input_mapping_from_keras(keras.Model(x_in, unit(x_in))) is None


@pytest.mark.parametrize("text", ["1,-1", "0", "a,b", "nan,1", "0,inf", "1,1"])
def test_a_bad_range_is_refused(text):
    with pytest.raises(CompressorError, match="expected LO,HI"):
        parse_input_range(text)


def test_flags_win_over_the_model_and_the_model_over_the_default():
    stated = InputMapping(0.0, 255.0, False, "model: Rescaling")
    assert input_mapping(InputFlags("-1,1"), stated).low == -1.0
    assert input_mapping(InputFlags(), stated) == stated
    assert input_mapping(InputFlags(bgr=True), stated).bgr
    centred = input_mapping(InputFlags(mean="127.5"), stated)
    assert centred.source == "model: Rescaling; --mean 127.5"
    assert input_mapping(InputFlags(), None).is_identity


def _int8_input_range(tflite: bytes) -> tuple[float, float]:
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_content=tflite).get_input_details()[0]
    assert detail["dtype"] == np.int8
    scale, zero_point = detail["quantization"]
    return scale * (-128 - zero_point), scale * (127 - zero_point)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranges")
    plan = save_quantize_plan(root / "plan.yaml", "tflite-full-int8", "edgetpu")
    return root, plan, write_images(root / "images", count=4)


def test_a_minus_one_to_one_model_gets_an_input_scale_covering_it(inputs, tmp_path):
    import tf_keras as keras

    root, plan, images = inputs
    keras.utils.set_random_seed(0)
    x_in = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x_in)
    model = keras.Model(x_in, keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(x))
    model.save(tmp_path / "signed.keras")
    ranges = {}
    imagenet = ("--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225")
    for name, extra in (("default", ()), ("signed", ("--input-range", "-1,1")),
                        ("imagenet", imagenet)):  # fmt: skip
        out = tmp_path / name
        result = run_plan(tmp_path / "signed.keras", plan, images, out, *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        ranges[name] = _int8_input_range((out / "model.tflite").read_bytes())
        report = json.loads((out / "report.json").read_text())
        ranges[name + "-mapping"] = report["data"]["input_mapping"]
    low, high = ranges["signed"]
    assert low <= -0.99 and high >= 0.99  # every value the model takes is representable
    assert ranges["default"][0] > -0.05  # without the flag: [0, 1], negatives clipped
    assert ranges["signed-mapping"]["low"] == -1.0
    assert ranges["signed-mapping"]["source"] == "--input-range -1,1"
    # ImageNet normalisation: black red is (0 - 0.485) / 0.229 = -2.12; the brightest
    # value these photos hold maps above 1.5 (a [0, 1] scale would clip both)
    low, high = ranges["imagenet"]
    assert low <= -2.0 and high >= 1.5
    assert ranges["imagenet-mapping"]["std"] == [0.229, 0.224, 0.225]


def test_a_rescaling_input_layer_states_the_range(inputs, tmp_path):
    import tf_keras as keras

    root, plan, images = inputs
    x_in = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="to_signed")(x_in)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    keras.Model(x_in, x).save(tmp_path / "pixels.keras")
    out = tmp_path / "run"
    result = run_plan(tmp_path / "pixels.keras", plan, images, out)
    assert result.returncode == 0, result.stderr[-2000:]
    mapping = json.loads((out / "report.json").read_text())["data"]["input_mapping"]
    assert mapping["high"] == 255.0 and "to_signed" in mapping["source"]
    low, high = _int8_input_range((out / "model.tflite").read_bytes())
    assert low <= 1.0 and high >= 250.0


def test_a_bad_range_on_the_command_line_is_one_line(tmp_path):
    result = invoke_cli("run", "--profile", "x86-cpu", "--input-range", "1,0",
                        "--output", str(tmp_path / "run"))  # fmt: skip
    assert_one_line_error(result, "--input-range '1,0'")
    assert not (tmp_path / "run").exists()
