"""Frozen graphs in: a SavedModel directory and a float32 .tflite run on every profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compressor.core.errors import CompressorError, ModelError
from compressor.core.frozen_graph import load_frozen_graph, model_info_from_tflite
from compressor.core.job import SearchOptions, load_model, run_job
from compressor.core.planner import plan_pipeline
from compressor.core.tflite_runtime import TFLiteModel
from tests.conftest import build_tiny_cnn

PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")


@pytest.fixture(scope="module")
def frozen_files(tmp_path_factory) -> dict[str, Path]:
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("frozen")
    model = build_tiny_cnn()
    saved = folder / "saved_model"
    model.export(str(saved))
    tflite = folder / "model.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    np.save(folder / "inputs.npy", x)
    np.save(folder / "expected.npy", model.predict(x, verbose=0))
    return {"saved_model": saved, "tflite": tflite, "folder": folder}


@pytest.mark.parametrize("kind", ["saved_model", "tflite"])
def test_frozen_graph_loads_as_the_float_model(frozen_files, kind):
    graph = load_frozen_graph(frozen_files[kind])
    x = np.load(frozen_files["folder"] / "inputs.npy")
    expected = np.load(frozen_files["folder"] / "expected.npy")
    np.testing.assert_allclose(graph.predict(x), expected, atol=1e-5)
    info = model_info_from_tflite(graph.tflite, graph.name, graph.source_format)
    assert info.input_image_shape == (32, 32, 3)
    assert info.count("conv") >= 2 and info.macs > 0 and info.params > 0


def test_plan_for_a_float_tflite_names_what_does_not_apply(host, frozen_files):
    loaded = load_model(frozen_files["tflite"], host, None)
    result = plan_pipeline(host.profiles.resolve("pixel-cpu"), loaded.info, host.strategies)
    chosen = {step.strategy.name for step in result.chosen.steps}
    assert chosen & {"aeq-int8", "aeq-dynamic-int8", "aeq-mixed-precision", "tflite-float32"}
    for name in ("magnitude-prune", "tfmot-qat", "tflite-full-int8"):
        reasons = [r.reason for r in result.rejections if r.strategy.startswith(name)]
        assert reasons, name
        wanted = "cannot re-convert" if name.startswith("tflite") else "frozen graph"
        assert all(wanted in reason for reason in reasons), (name, reasons)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", ["saved_model", "tflite"])
def test_frozen_graph_runs_on_every_profile(
    host, frozen_files, images_dir, tmp_path, kind, profile
):
    run_dir, report = run_job(
        host,
        profile,
        None,
        frozen_files[kind],
        images_dir,
        tmp_path / "run",
        options=SearchOptions(search=False),
    )
    assert report["model"]["origin"]["frozen_graph"] is True
    result = TFLiteModel((run_dir / "model.tflite").read_bytes())
    assert result.input_shape[1:] == (32, 32, 3)
    assert report["result"]["fidelity"]["ssim"] > 0.8
    if profile == "edgetpu":
        assert report["result"]["precision"] == "int8"


def test_already_quantized_tflite_is_refused_in_one_line(tmp_path):
    from compressor.core.conversion import convert_keras

    samples = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
    path = tmp_path / "quantized.tflite"
    path.write_bytes(convert_keras(build_tiny_cnn(), "int8", samples, "float32"))
    with pytest.raises(ModelError) as caught:
        load_frozen_graph(path)
    assert "already quantized" in caught.value.message
    assert "\n" not in caught.value.message


def test_onnx_and_plain_folders_get_a_clear_error(host, tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\0")
    with pytest.raises(CompressorError) as caught:
        load_model(onnx, host, None)
    assert "onnx2tf" in caught.value.hint
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    with pytest.raises(CompressorError) as caught:
        load_model(folder, host, None)
    assert "saved_model.pb" in caught.value.message
