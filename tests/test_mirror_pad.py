"""MIRROR_PAD rewrite: reflection padding in a frozen graph becomes slices + concatenation,
bit-exact in float, and the EdgeTPU then runs the whole graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compressor.engine.job import SearchOptions, load_model, run_job
from compressor.litert.frozen_graph import MIRROR_PADS_KEY, model_info_from_tflite
from compressor.litert.mirror_pad_rewrite import rewrite_mirror_pads
from compressor.litert.tflite_runtime import TFLiteModel, list_operators
from compressor.planning.op_prediction import predict_coverage
from compressor.planning.planner import plan_pipeline


def build_reflect_padded_net():
    """A style-network front: reflection pad 2 -> conv 5x5 -> relu -> symmetric pad 1 on
    height only -> conv 3x3 -> sigmoid, as converters emit it (MIRROR_PAD ops)."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), batch_size=1)
    x = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [2, 2], [2, 2], [0, 0]], "REFLECT"))(
        inputs
    )
    x = keras.layers.Conv2D(8, 5, activation="relu")(x)
    x = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 1], [0, 0], [0, 0]], "SYMMETRIC"))(x)
    x = keras.layers.Conv2D(3, 3, padding="valid", activation="sigmoid")(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def padded_files(tmp_path_factory) -> dict[str, Path]:
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("mirror_pad")
    model = build_reflect_padded_net()
    tflite = folder / "padded.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    saved = folder / "padded_saved_model"
    model.export(str(saved))
    return {"tflite": tflite, "saved_model": saved}


def _op_names(model: bytes) -> list[str]:
    return [op.name for op in list_operators(model)]


def test_rewrite_is_bit_exact_and_leaves_no_mirror_pad(padded_files):
    original = padded_files["tflite"].read_bytes()
    assert _op_names(original).count("MIRROR_PAD") == 2
    result = rewrite_mirror_pads(original)
    assert result.rewritten == 2 and not result.skipped
    names = _op_names(result.model)
    assert "MIRROR_PAD" not in names
    # 4 + 4 rows and 2 concatenations for the first pad, 2 rows + 1 concat for the second
    assert names.count("SLICE") == 10 and names.count("CONCATENATION") == 3
    x = np.random.default_rng(1).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
    before, after = TFLiteModel(original).predict(x), TFLiteModel(result.model).predict(x)
    assert before.shape == after.shape == (3, 32, 30, 3)
    assert float(np.max(np.abs(before - after))) < 1e-5


def test_rewrite_matches_numpy_reflect_and_symmetric_padding(tmp_path):
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input((5, 6, 2), batch_size=1)
    reflect = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [3, 1], [2, 4], [0, 0]], "REFLECT"))(
        inputs
    )
    symmetric = keras.layers.Lambda(
        lambda t: tf.pad(t, [[0, 0], [2, 0], [1, 3], [0, 0]], "SYMMETRIC")
    )(inputs)
    model = keras.Model(inputs, [reflect, symmetric])
    rewritten = rewrite_mirror_pads(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    assert rewritten.rewritten == 2
    x = np.arange(60, dtype=np.float32).reshape(1, 5, 6, 2)
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=rewritten.model)
    outputs = runner.get_signature_runner()(
        **{runner.get_signature_list()["serving_default"]["inputs"][0]: x}
    )
    got = sorted(outputs.values(), key=lambda a: a.shape)
    expected = sorted(
        [
            np.pad(x, [(0, 0), (3, 1), (2, 4), (0, 0)], mode="reflect"),
            np.pad(x, [(0, 0), (2, 0), (1, 3), (0, 0)], mode="symmetric"),
        ],
        key=lambda a: a.shape,
    )
    for actual, wanted in zip(got, expected, strict=True):
        np.testing.assert_array_equal(actual, wanted)


def test_planner_rewrites_for_edgetpu_only(host, padded_files):
    loaded = load_model(padded_files["tflite"], host, None)
    assert len(loaded.info.extra[MIRROR_PADS_KEY]) == 2
    edgetpu = host.profiles.resolve("edgetpu")
    baseline = predict_coverage(loaded.info, edgetpu, "int8", "int8")
    assert baseline.fraction == 0 and baseline.cut_at == "0:MIRROR_PAD"
    result = plan_pipeline(edgetpu, loaded.info, host.strategies)
    assert result.chosen.step("fuse").strategy.name == "mirror-pad-to-slices"
    assert result.chosen.coverage.fraction == 1.0
    gpu = plan_pipeline(host.profiles.resolve("pixel-gpu"), loaded.info, host.strategies)
    assert gpu.chosen.step("fuse") is None
    reasons = [r.reason for r in gpu.rejections if r.strategy == "mirror-pad-to-slices"]
    assert reasons == ["not needed: pixel-gpu runs MIRROR_PAD"]


@pytest.mark.parametrize("kind", ["tflite", "saved_model"])
def test_edgetpu_run_reaches_full_coverage_after_the_rewrite(
    host, padded_files, images_dir, tmp_path, kind
):
    run_dir, report = run_job(
        host,
        "edgetpu",
        None,
        padded_files[kind],
        images_dir,
        tmp_path / "run",
        options=SearchOptions(search=False),
    )
    stages = [stage["strategy"] for stage in report["stages"]]
    assert stages[:2] == ["mirror-pad-to-slices", "aeq-int8"]
    assert report["plan"]["predicted"]["predicted_coverage"] == 1.0
    assert report["plan"]["predicted"]["baseline_predicted_coverage"] == 0.0
    coverage = report["result"]["op_coverage"]
    assert coverage["fraction"] == 1.0 and coverage["cut_at"] is None
    final = (run_dir / "model.tflite").read_bytes()
    assert "MIRROR_PAD" not in _op_names(final)
    fuse = next(stage for stage in report["stages"] if stage["name"] == "fuse")
    assert fuse["facts"]["rewrite_max_abs_diff"] < 1e-5
    info = model_info_from_tflite(final, "final", "float .tflite")
    assert MIRROR_PADS_KEY not in info.extra
