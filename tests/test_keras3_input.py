"""Models saved by Keras 3 (what `pip install tensorflow` gives) and `.hdf5` files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from compressor.core.errors import ModelError
from compressor.engine.job import SearchOptions, run_job
from compressor.ingest.keras_io import is_keras3_file, load_user_model
from compressor.litert.tflite_runtime import list_operators
from compressor.planning.plan import Plan, StageSpec
from tests.conftest import assert_integer_only, build_tiny_cnn


def build_keras3_model(size: int = 32):
    """A Keras 3 functional model with the layers users' models have and tf_keras lacks
    or computes differently: Rescaling, BatchNorm, separable conv, ``hard_silu``."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("hard_silu")(x)
    y = keras.layers.SeparableConv2D(8, 3, padding="same", activation="hard_silu")(x)
    x = keras.layers.Add()([x, y])
    outputs = keras.layers.Conv2D(3, 1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name="keras3_net")
    # Non-trivial batch-norm statistics, so a wrong translation shows in the outputs.
    bn = model.get_layer(index=3)
    rng = np.random.default_rng(1)
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.2, 8), rng.normal(0, 0.3, 8),
                    rng.uniform(0.5, 2.0, 8)])  # fmt: skip
    return model


@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keras3")
    model = build_keras3_model()
    paths = {"keras": folder / "net.keras", "h5": folder / "net.h5"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    paths["hdf5"] = folder / "net.hdf5"
    shutil.copy(paths["h5"], paths["hdf5"])
    return paths


@pytest.mark.parametrize("kind", ["keras", "h5", "hdf5"])
def test_keras3_files_are_translated_to_tf_keras_and_checked(keras3_files, kind):
    import tf_keras

    path = keras3_files[kind]
    assert is_keras3_file(path)
    loaded = load_user_model(path, {})
    assert isinstance(loaded.model, tf_keras.Model)
    translation = loaded.origin["translation"]
    assert loaded.origin["format"] == f"Keras 3 .{kind}"
    assert translation["max_abs_diff"] < 1e-5
    # hard_silu keeps Keras 3's maths, not tf_keras's different hard_sigmoid.
    import keras

    original = keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        loaded.model.predict(x, verbose=0), original.predict(x, verbose=0), atol=1e-5
    )


def test_tf_keras_hdf5_file_loads(tmp_path):
    path = tmp_path / "checkpoint.hdf5"
    build_tiny_cnn().save(path, save_format="h5")
    loaded = load_user_model(path, {})
    assert loaded.origin == {"format": "tf_keras .hdf5"}
    assert not is_keras3_file(path)


def test_keras3_file_runs_on_edgetpu_as_int8_end_to_end(host, keras3_files, images_dir, tmp_path):
    run_dir, report = run_job(
        host,
        "edgetpu",
        None,
        keras3_files["keras"],
        images_dir,
        tmp_path / "run",
        options=SearchOptions(search=False),
    )
    assert report["model"]["origin"]["format"] == "Keras 3 .keras"
    assert report["result"]["precision"] == "int8"
    assert_integer_only(list_operators((run_dir / "model.tflite").read_bytes()))
    assert report["result"]["fidelity"]["ssim"] > 0.8


def test_qat_applies_to_a_translated_keras3_model(host, keras3_files, images_dir, tmp_path):
    plan = Plan(
        profile="edgetpu",
        stages=[
            StageSpec(stage="qat", strategy="tfmot-qat", params={"fine_tune_steps": 3}),
            StageSpec(stage="quantize", strategy="tflite-full-int8"),
            StageSpec(stage="evaluate", strategy="litert-evaluate", params={"runs": 2}),
        ],
    )
    plan_path = tmp_path / "plan.yaml"
    plan.save(plan_path)
    _, report = run_job(host, None, plan_path, keras3_files["h5"], images_dir, tmp_path / "run")
    qat = next(s for s in report["stages"] if s["name"] == "qat")
    assert qat["strategy"] == "tfmot-qat" and qat["facts"]["qat"] is True, qat
    assert report["result"]["precision"] == "int8"


def test_keras3_lambda_layer_is_named_in_a_one_line_error(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="double_it")(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelError) as caught:
        load_user_model(path, {})
    assert "Lambda" in caught.value.message or "lambda" in caught.value.hint.lower()
    assert "\n" not in caught.value.message
    assert "register" not in caught.value.hint


def test_unknown_format_lists_every_accepted_one(tmp_path):
    path = tmp_path / "model.pb"
    path.write_bytes(b"\0")
    with pytest.raises(ModelError) as caught:
        load_user_model(path, {})
    for suffix in (".keras", ".h5", ".hdf5", "Keras 3"):
        assert suffix in caught.value.hint
