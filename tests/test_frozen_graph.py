"""Frozen graphs in: one Keras 3 model as a SavedModel directory, a float32 .tflite and an
ONNX file (through onnx2tf) runs on every profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compressor.core.errors import CompressorError, ModelError
from compressor.engine.job import SearchOptions, load_model, run_job
from compressor.ingest.onnx_import import convert_onnx
from compressor.litert.frozen_graph import load_frozen_graph, model_info_from_tflite
from compressor.litert.tflite_runtime import TFLiteModel, list_operators
from compressor.planning.planner import plan_pipeline
from tests.conftest import build_tiny_cnn
from tests.onnx_export import erf_gelu_onnx, export_keras3_to_onnx, yolo_style_head_onnx
from tests.test_keras3_input import build_keras3_model

PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")


@pytest.fixture(scope="module")
def frozen_files(tmp_path_factory) -> dict[str, Path]:
    """The Keras 3 model of test_keras3_input as SavedModel, float .tflite and ONNX."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("frozen")
    model = build_keras3_model()
    saved = folder / "saved_model"
    model.export(str(saved), verbose=False)
    tflite = folder / "model.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    onnx_path = export_keras3_to_onnx(model, folder / "model.onnx")
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    np.save(folder / "inputs.npy", x)
    np.save(folder / "expected.npy", model.predict(x, verbose=0))
    return {"saved_model": saved, "tflite": tflite, "onnx": onnx_path, "folder": folder}


def test_onnx_export_is_the_same_model(frozen_files):
    import onnxruntime

    x = np.load(frozen_files["folder"] / "inputs.npy")
    session = onnxruntime.InferenceSession(str(frozen_files["onnx"]))
    name = session.get_inputs()[0].name
    nchw = np.concatenate([session.run(None, {name: i[None].transpose(0, 3, 1, 2)})[0] for i in x])
    expected = np.load(frozen_files["folder"] / "expected.npy")
    np.testing.assert_allclose(nchw.transpose(0, 2, 3, 1), expected, atol=1e-5)


def _load(frozen_files, kind):
    if kind == "onnx":
        before = frozen_files["onnx"].read_bytes()
        saved = convert_onnx(frozen_files["onnx"]).saved_model
        assert frozen_files["onnx"].read_bytes() == before  # the user's file is untouched
        assert convert_onnx(frozen_files["onnx"]).saved_model == saved  # once per process
        return load_frozen_graph(saved)
    return load_frozen_graph(frozen_files[kind])


@pytest.mark.parametrize("kind", ["saved_model", "tflite", "onnx"])
def test_frozen_graph_loads_as_the_float_model(frozen_files, kind):
    graph = _load(frozen_files, kind)
    x = np.load(frozen_files["folder"] / "inputs.npy")
    expected = np.load(frozen_files["folder"] / "expected.npy")
    np.testing.assert_allclose(graph.predict(x), expected, atol=1e-4)
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
@pytest.mark.parametrize("kind", ["saved_model", "tflite", "onnx"])
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
    if kind == "onnx":
        assert report["model"]["origin"]["format"] == "ONNX"
        assert report["model"]["origin"]["converted_by"].startswith("onnx2tf ")
    result = TFLiteModel((run_dir / "model.tflite").read_bytes())
    assert result.input_shape[1:] == (32, 32, 3)
    assert report["result"]["fidelity"]["ssim"] > 0.8
    if profile == "edgetpu":
        assert report["result"]["precision"] == "int8"


def test_already_quantized_tflite_is_refused_in_one_line(tmp_path):
    from compressor.litert.conversion import convert_keras

    samples = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
    path = tmp_path / "quantized.tflite"
    path.write_bytes(convert_keras(build_tiny_cnn(), "int8", samples, "float32"))
    with pytest.raises(ModelError) as caught:
        load_frozen_graph(path)
    assert "already quantized" in caught.value.message
    assert "\n" not in caught.value.message


def test_broken_onnx_and_plain_folders_get_a_clear_error(host, tmp_path, monkeypatch):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\0")
    with pytest.raises(CompressorError) as caught:
        load_model(onnx, host, None)
    assert "is not a readable ONNX model" in caught.value.message
    assert "\n" not in caught.value.message
    monkeypatch.setattr("compressor.ingest.onnx_import.onnx2tf_version", lambda: None)
    with pytest.raises(CompressorError) as caught:
        load_model(onnx, host, None)
    assert "compressor[onnx]" in caught.value.hint
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    with pytest.raises(CompressorError) as caught:
        load_model(folder, host, None)
    assert "saved_model.pb" in caught.value.message


def test_float_tflite_gets_float16_weights_from_ai_edge_quantizer(host, frozen_files, tmp_path):
    from compressor.core.artifact import Artifact
    from compressor.core.context import RunContext

    graph = load_frozen_graph(frozen_files["tflite"])
    context = RunContext(
        profile=host.profiles.resolve("pixel-gpu"),
        run_dir=tmp_path,
        float_model=graph,
        model_info=model_info_from_tflite(graph.tflite, graph.name, graph.source_format),
        images=None,
    )
    strategy = host.strategies.get("aeq-float16")
    out = strategy.apply(Artifact.of_model(graph), context, strategy.parse_params({}, "t"))
    ops = list_operators(out.tflite_bytes)
    assert out.facts["precision"] == "float16"
    assert any(op.name == "DEQUANTIZE" and op.input_types == ["float16"] for op in ops)
    from compressor.litert.tflite_runtime import constant_tensors

    def weight_bytes(model: bytes) -> int:
        return sum(t.nbytes for t in constant_tensors(model) if t.dtype.kind == "f")

    # (the file itself is mostly flatbuffer overhead at this size)
    assert weight_bytes(out.tflite_bytes) < 0.7 * weight_bytes(graph.tflite)
    x = np.load(frozen_files["folder"] / "inputs.npy")
    np.testing.assert_allclose(
        TFLiteModel(out.tflite_bytes).predict(x), graph.predict(x), atol=2e-3
    )


def test_a_tflite_without_signature_is_quantized_by_ai_edge_quantizer(tmp_path):
    """MediaPipe-style files carry no SignatureDef; ai-edge-quantizer's calibration needs
    one. The ingest adds `serving_default` and says so; static int8 then works."""
    import json

    import tensorflow as tf

    from compressor.litert.tflite_signature import strip_signatures
    from tests.conftest import run_plan, save_quantize_plan, write_images

    plain = tf.lite.TFLiteConverter.from_keras_model(build_tiny_cnn()).convert()
    bare = strip_signatures(plain)
    assert TFLiteModel(plain).interpreter.get_signature_list()
    assert not TFLiteModel(bare).interpreter.get_signature_list()
    model = tmp_path / "bare.tflite"
    model.write_bytes(bare)
    plan = save_quantize_plan(tmp_path / "plan.yaml", "aeq-int8")
    out = tmp_path / "run"
    result = run_plan(model, plan, write_images(tmp_path / "images", count=4), out)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["origin"]["added_signature"] == "serving_default"
    assert report["result"]["precision"] == "int8"
    assert report["result"]["fidelity"]["ssim"] > 0.9
    shipped = TFLiteModel((out / "model.tflite").read_bytes())
    assert list(shipped.interpreter.get_signature_list()) == ["serving_default"]


def test_a_dynamic_size_onnx_is_fixed_by_input_size(host, frozen_files, tmp_path):
    """The normal ONNX export has symbolic height and width: --input-size fixes them
    before onnx2tf; without it the error says what to pass."""
    import onnx

    model = onnx.load(str(frozen_files["onnx"]))
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        for index, name in ((0, "N"), (2, "H"), (3, "W")):
            dims[index].ClearField("dim_value")
            dims[index].dim_param = name
    dynamic = tmp_path / "dynamic.onnx"
    onnx.save(model, str(dynamic))

    with pytest.raises(ModelError, match="dynamic size") as caught:
        load_model(dynamic, host, None)
    assert "--input-size" in caught.value.hint
    loaded = load_model(dynamic, host, 32)
    assert loaded.info.input_image_shape == (32, 32, 3)
    assert loaded.origin["input_size_fixed"].endswith(":1,3,32,32")
    x = np.load(frozen_files["folder"] / "inputs.npy")
    expected = np.load(frozen_files["folder"] / "expected.npy")
    np.testing.assert_allclose(loaded.model.predict(x), expected, atol=1e-4)
    with pytest.raises(ModelError, match="fixed input size"):
        load_model(frozen_files["onnx"], host, 32)
    with pytest.raises(CompressorError, match="fixed input size"):
        load_model(frozen_files["tflite"], host, 40)


def test_a_dynamic_yolo_style_onnx_is_made_static_before_onnx2tf(host, tmp_path):
    """onnx2tf 1.28.8 fixes an input size only through the onnxsim command; without it
    the graph stayed dynamic and a run-time Reshape target was converted wrongly. The
    size is written into a copy, the Shape chain folded away, and the converted model
    matches onnxruntime."""
    import onnx
    import onnxruntime

    from compressor.ingest.onnx_import import static_graph

    dynamic = yolo_style_head_onnx(tmp_path / "head.onnx")
    assert static_graph(dynamic, "images:1,3,32,32", tmp_path / "static.onnx") == {}
    static = onnx.load(str(tmp_path / "static.onnx"))
    assert [d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 32, 32]
    assert "Shape" not in {n.op_type for n in static.graph.node}
    before = dynamic.read_bytes()
    loaded = load_model(dynamic, host, 32)
    assert dynamic.read_bytes() == before
    x = np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(dynamic))
    expected = session.run(None, {"images": x.transpose(0, 3, 1, 2)})[0]
    assert expected.shape == (2, 6, 16 * 16 + 8 * 8)
    np.testing.assert_allclose(loaded.model.predict(x), expected, atol=1e-5)


def test_gelu_written_as_erf_becomes_the_builtin_gelu(host, tmp_path):
    """PP-OCR's exporter writes GELU as 0.5·x·(1 + erf(x/√2)); TFLite has no builtin
    Erf, so the converter refused the graph. Each chain (three operand orders here)
    becomes one GELU, and the result matches onnxruntime."""
    from collections import Counter

    import onnxruntime

    from compressor.litert.tflite_runtime import list_operators

    path = erf_gelu_onnx(tmp_path / "gelu.onnx")
    loaded = load_model(path, host, 16)
    assert loaded.origin["graph_rewrites"] == {"0.5·x·(1 + erf(x/√2)) as GELU": 3}
    ops = Counter(op.name for op in list_operators(loaded.model.tflite))
    assert ops.get("GELU") == 3 and not any("Erf" in op or "Flex" in op for op in ops), ops
    x = np.random.default_rng(2).normal(0, 1, (2, 16, 16, 3)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path))
    expected = session.run(None, {"images": x.transpose(0, 3, 1, 2)})[0].transpose(0, 2, 3, 1)
    np.testing.assert_allclose(loaded.model.predict(x), expected, atol=1e-5)


def _fully_convolutional():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
    return keras.Model(inputs, keras.layers.Activation("sigmoid")(x))


def test_a_dynamic_size_savedmodel_and_tflite_are_fixed_by_input_size(host, tmp_path):
    import tensorflow as tf

    model = _fully_convolutional()
    saved = tmp_path / "saved_model"
    model.save(saved, save_format="tf")
    dynamic = tmp_path / "dynamic.tflite"
    dynamic.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    assert TFLiteModel(dynamic.read_bytes()).input_detail["shape_signature"].tolist() == [
        -1, -1, -1, 3]  # fmt: skip
    x = np.random.default_rng(0).uniform(size=(2, 24, 24, 3)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    for path in (saved, dynamic):
        with pytest.raises(CompressorError, match="dynamic") as caught:
            load_model(path, host, None)
        assert "--input-size" in caught.value.hint
        loaded = load_model(path, host, 24)
        assert loaded.info.input_image_shape == (24, 24, 3)
        assert loaded.origin["input_size_fixed"] == "1×24×24"
        np.testing.assert_allclose(loaded.model.predict(x), expected, atol=1e-5)
