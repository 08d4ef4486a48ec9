"""HARD_SWISH and PRELU of a frozen graph become plain arithmetic for the EdgeTPU: the
compiler lacks HARD_SWISH, and ai-edge-quantizer leaves PRELU in float; either cuts the
graph at its first occurrence."""

from __future__ import annotations

import numpy as np
import pytest

from compressor.litert.activation_rewrite import rewrite_activations
from compressor.litert.tflite_runtime import TFLiteModel, list_operators

IMAGES = np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype(np.float32)


def _graph_with_hard_swish_and_prelu() -> bytes:
    """A float .tflite with both ops, as the converter writes them."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.PReLU(shared_axes=[1, 2])(x)
    y = keras.layers.Conv2D(8, 3, padding="same")(x)
    shifted = keras.layers.ReLU(max_value=6.0)(keras.layers.Rescaling(1.0, offset=3.0)(y))
    x = keras.layers.Rescaling(1.0 / 6.0)(keras.layers.Multiply()([y, shifted]))  # hard swish
    x = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    model = keras.Model(inputs, x)
    prelu = model.layers[2]
    prelu.set_weights([np.linspace(-0.5, 0.5, 8, dtype=np.float32).reshape(1, 1, 8)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def graph() -> bytes:
    data = _graph_with_hard_swish_and_prelu()
    assert {"HARD_SWISH", "PRELU"} <= {op.name for op in list_operators(data)}
    return data


def test_both_ops_become_arithmetic_with_the_same_outputs(graph):
    result = rewrite_activations(graph)
    assert result.rewritten == {"PRELU": 1, "HARD_SWISH": 1}
    names = [op.name for op in list_operators(result.model)]
    assert "PRELU" not in names and "HARD_SWISH" not in names
    assert {"RELU", "SUB", "MUL", "ADD"} <= set(names)
    before, after = TFLiteModel(graph).predict(IMAGES), TFLiteModel(result.model).predict(IMAGES)
    assert np.max(np.abs(before - after)) < 1e-5
    assert rewrite_activations(result.model).rewritten == {}  # nothing left to do


def test_edgetpu_runs_the_whole_rewritten_graph(graph, images_dir, tmp_path, plugin_host):
    from compressor.engine.job import run_job

    path = tmp_path / "activations.tflite"
    path.write_bytes(graph)
    _, report = run_job(plugin_host, "edgetpu", None, path, images_dir, tmp_path / "run")
    candidates = {c["pipeline"]: c for c in report["search"]["candidates"]}
    plain = candidates["aeq-int8"]["measured"]["op_coverage"]
    lowered = candidates["lower-activations -> aeq-int8"]["measured"]["op_coverage"]
    assert plain["fraction"] < 0.5 and plain["cut_at"]  # cut at the PRELU / HARD_SWISH
    assert lowered["fraction"] == 1.0
    assert report["result"]["op_coverage"]["fraction"] == 1.0
    assert [s["strategy"] for s in report["stages"]][:2] == ["lower-activations", "aeq-int8"]
