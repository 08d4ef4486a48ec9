"""`--input NAME=VALUE`: a style-conditioned model's second input becomes a constant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compressor.core.errors import CompressorError, ModelError
from compressor.engine.job import SearchOptions, load_model, run_job
from compressor.ingest.fixed_inputs import fix_keras_inputs, fix_tflite_inputs, parse_fixed_inputs
from compressor.litert.tflite_runtime import TFLiteModel, list_operators
from tests.conftest import assert_integer_only, invoke_cli

STYLE = [0.2, -0.4, 0.9, 0.1]


def build_conditioned_net():
    """Image (32x32x3) and a style vector (4) -> image: the vector scales the features."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3), name="image")
    style = keras.Input((4,), name="style")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    scale = keras.layers.Dense(4, activation="sigmoid")(style)
    scale = keras.layers.Reshape((1, 1, 4))(scale)
    x = keras.layers.Multiply()([x, scale])
    outputs = keras.layers.Conv2D(3, 1, activation="sigmoid")(x)
    return keras.Model([image, style], outputs, name="conditioned")


@pytest.fixture(scope="module")
def conditioned_files(tmp_path_factory) -> dict[str, Path]:
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("conditioned")
    model = build_conditioned_net()
    keras_path = folder / "conditioned.keras"
    model.save(keras_path)
    tflite = folder / "conditioned.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    np.save(folder / "style.npy", np.asarray(STYLE, np.float32))
    return {"keras": keras_path, "tflite": tflite, "npy": folder / "style.npy"}


def test_values_parse_as_numbers_lists_and_npy(conditioned_files):
    values = parse_fixed_inputs(["a=0.5", "b=[1, 2]", "c=1,2,3", f"d={conditioned_files['npy']}"])
    assert values["a"].shape == () and float(values["a"]) == 0.5
    assert values["b"].tolist() == [1, 2] and values["c"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(values["d"], STYLE)
    for bad in ("style", "style=", "style=abc", "a=1 a=2"):
        with pytest.raises(CompressorError) as caught:
            parse_fixed_inputs(bad.split(" "))
        assert "\n" not in caught.value.message


def test_keras_model_keeps_its_layers_and_matches_the_original():
    model = build_conditioned_net()
    fixed, record = fix_keras_inputs(model, {"style": np.asarray(STYLE, np.float32)})
    assert len(fixed.inputs) == 1 and record["max_abs_diff"] < 1e-6
    weighted = {layer.name for layer in model.layers if layer.weights}
    assert weighted == {layer.name for layer in fixed.layers if layer.weights}
    image = np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    expected = model.predict([image, np.tile(STYLE, (2, 1))], verbose=0)
    np.testing.assert_allclose(fixed.predict(image, verbose=0), expected, atol=1e-6)


def test_unknown_or_missing_inputs_are_one_line_errors(host, conditioned_files):
    for kind in ("keras", "tflite"):
        with pytest.raises(ModelError) as caught:
            load_model(conditioned_files[kind], host, None, {"colour": np.zeros(4)})
        assert "no input of that name" in caught.value.message and "style" in caught.value.hint
    with pytest.raises(ModelError) as caught:
        load_model(conditioned_files["keras"], host, None, {"style": np.zeros(3)})
    assert "3 values given" in caught.value.message
    with pytest.raises(CompressorError):
        load_model(conditioned_files["keras"], host, None)  # two inputs, none fixed


def test_tflite_input_becomes_a_constant(conditioned_files):
    original = conditioned_files["tflite"].read_bytes()
    fixed, record = fix_tflite_inputs(original, {"style": np.asarray(STYLE, np.float32)})
    assert record["max_abs_diff"] < 1e-6
    runner = TFLiteModel(fixed)
    assert runner.input_shape[1:] == (32, 32, 3)


@pytest.mark.parametrize("kind", ["keras", "tflite"])
def test_conditioned_model_runs_on_edgetpu_fully_delegated(
    host, conditioned_files, images_dir, tmp_path, kind
):
    run_dir, report = run_job(
        host,
        "edgetpu",
        None,
        conditioned_files[kind],
        images_dir,
        tmp_path / "run",
        options=SearchOptions(search=False),
        fixed_inputs={"style": np.asarray(STYLE, np.float32)},
    )
    fixed = report["model"]["origin"]["fixed_inputs"]
    assert fixed["inputs"]["style"]["shape"] == [4] and fixed["max_abs_diff"] < 1e-6
    assert report["result"]["precision"] == "int8"
    assert report["result"]["op_coverage"]["fraction"] == 1.0
    assert_integer_only(list_operators((run_dir / "model.tflite").read_bytes()))


def test_cli_input_error_is_one_line(conditioned_files, tmp_path):
    result = invoke_cli(
        "plan", "--profile", "edgetpu", "--model", str(conditioned_files["keras"]),
        "--input", "style",
    )  # fmt: skip
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: --input style: expected NAME=VALUE")
