"""Shared fixtures: tiny real models and images built here (no downloads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ["COMPRESSOR_NO_ENTRYPOINTS"] = "1"  # installed third-party plugins stay out
os.environ["COMPRESSOR_OFFLINE"] = "1"  # nothing downloads weights during tests
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import compressor  # noqa: E402,F401  (sets the Keras 2 switch before TF loads)
from compressor.api import hookimpl  # noqa: E402
from compressor.engine.plugin_host import PluginHost, reset_host  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


pytest_plugins = ["compressor.testing"]  # the plugin_host fixture plugin authors use


@pytest.fixture(scope="session", autouse=True)
def every_report_json_validates(tmp_path_factory):
    """After the whole session: every report.json any test wrote (in-process or through
    the CLI) is re-read and checked against the report schema."""
    import json

    from compressor.reports.report_model import validate_report

    yield
    reports = sorted(tmp_path_factory.getbasetemp().rglob("report.json"))
    for path in reports:
        validate_report(json.loads(path.read_text(encoding="utf-8")), str(path))


FAST_MARK = "pytest.mark.fast"


def pytest_ignore_collect(collection_path, config):
    """Under ``-m fast`` only modules with fast tests are imported: the others import
    TensorFlow at module level, which the tier must not pay for."""
    if config.getoption("markexpr", "") != "fast" or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    return FAST_MARK not in collection_path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def fast_tier_stays_tensorflow_free(request):
    """Under ``-m fast`` every test must leave TensorFlow unimported: the tier is the
    one-minute check of what needs no model (a test that loads TensorFlow belongs in
    the default tier)."""
    already = "tensorflow" in sys.modules
    yield
    if request.config.getoption("markexpr", "") == "fast" and not already:
        assert "tensorflow" not in sys.modules, (
            f"{request.node.nodeid} imported TensorFlow: drop its fast mark"
        )


@pytest.fixture
def host() -> PluginHost:
    """A fresh plugin host with only the built-in plugins."""
    reset_host()
    return PluginHost(load_entrypoints=False)


def write_images(folder: Path, count: int = 6, seed: int = 0) -> Path:
    """Write small synthetic photos-like images (gradients, shapes, noise; mixed modes)."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = 40 + 4 * i, 48 + 2 * i
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * 200
        base += rng.normal(0, 10, base.shape)
        image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        draw.ellipse((5 + i, 6, 25 + i, 30), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw.rectangle((w - 20, h - 18, w - 4, h - 3), fill=(20 * i, 200, 90))
        if i % 3 == 1:
            image = image.convert("L")
        elif i % 3 == 2:
            image = image.convert("RGBA")
        image.save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    """A folder of six small images in RGB, L and RGBA."""
    return write_images(tmp_path / "images")


def build_tiny_cnn(size: int = 32, seed: int = 0, width: int = 8):
    """A small image-to-image CNN with Conv+BN pairs (EdgeTPU-friendly ops)."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.Conv2D(3, 3, padding="same")(x)
    outputs = keras.layers.Activation("sigmoid")(x)
    model = keras.Model(inputs, outputs, name="tiny_cnn")
    _randomise_batch_norm(model, seed)
    return model


def _randomise_batch_norm(model, seed: int) -> None:
    """Give BN layers non-trivial statistics, as a trained model would have."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 2.0, var.shape).astype("float32"),
                ]
            )


def build_wide_range_cnn(size: int = 32, seed: int = 0, spread: float = 100.0):
    """A BN CNN whose first activation has one channel ``spread``× wider than the rest
    (the next conv compensates, so the float function is ordinary): per-tensor int8
    activations leave the narrow channels a few levels, and post-training int8 loses."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(3, 3, padding="same")(x)
    outputs = keras.layers.Activation("sigmoid")(x)
    model = keras.Model(inputs, outputs, name="wide_range_cnn")
    _randomise_batch_norm(model, seed)
    first_norm = next(layer for layer in model.layers if "batch_normalization" in layer.name)
    gamma, beta, mean, variance = first_norm.get_weights()
    gamma[0] *= spread
    beta[0] *= spread
    first_norm.set_weights([gamma, beta, mean, variance])
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    kernel = convs[1].get_weights()[0]
    kernel[:, :, 0, :] /= spread
    convs[1].set_weights([kernel])
    kernel, bias = convs[2].get_weights()
    convs[2].set_weights([kernel * 5.0, bias])  # outputs span the sigmoid, not ~0.5
    return model


def build_sensitive_cnn(size: int = 32, outlier: float = 100.0):
    """A CNN with one deliberately sensitive layer, ``sensitive``: each of its filters has
    one weight ``outlier``× the layer's largest, on an input channel that is always zero
    (so the float function is ordinary). Per-channel int8 weights then leave the other
    weights a few levels; keeping that one op float restores the model."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="sensitive")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="c3")(x)
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(x), name="sensitive_cnn")
    kernel, bias = model.get_layer("c1").get_weights()
    bias[0] = -100.0  # channel 0 is dead after ReLU
    model.get_layer("c1").set_weights([kernel, bias])
    kernel, bias = model.get_layer("sensitive").get_weights()
    kernel[1, 1, 0, :] = np.sign(kernel[1, 1, 0, :] + 1e-9) * np.abs(kernel).max() * outlier
    model.get_layer("sensitive").set_weights([kernel, bias])
    kernel, bias = model.get_layer("c3").get_weights()
    model.get_layer("c3").set_weights([kernel * 3.0, bias])
    return model


def build_tiny_classifier(size: int = 32, classes: int = 5, seed: int = 0):
    """A small image classifier ending in softmax."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny_classifier")


def build_tiny_generator(norm: str = "instance", size: int = 32):
    """The project's generator at test size: ¼ width, one residual block."""
    from compressor.models.generator import GeneratorConfig, build_generator

    return build_generator(
        GeneratorConfig(width=0.25, residual_blocks=1, norm=norm, input_size=size), seed=0
    )


@pytest.fixture
def tiny_cnn_path(tmp_path: Path) -> Path:
    """A saved tiny BN CNN (.keras)."""
    path = tmp_path / "tiny_cnn.keras"
    build_tiny_cnn().save(path)
    return path


def run_cli(
    *args: str, env_extra: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run the real `compressor` console script in a subprocess."""
    env = {**os.environ, **(env_extra or {})}
    command = [sys.executable, "-c", "from compressor.cli.app import main; main()", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def invoke_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the console script's ``main()`` in this process, with its exit code and both
    streams captured. For error paths, where a subprocess would mostly pay for importing
    TensorFlow again; end-to-end runs keep ``run_cli``."""
    import contextlib
    import io

    from compressor.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    argv = sys.argv
    sys.argv = ["compressor", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["compressor", *args], code, out.getvalue(), err.getvalue())


def make_context(tmp_path: Path, model, images_dir: Path, profile_name: str = "x86-cpu"):
    """A RunContext around ``model`` with images from ``images_dir``."""
    from compressor.core.datasets import load_image_folder
    from compressor.core.model_info import model_info_from_keras

    host = PluginHost(load_entrypoints=False)
    info = model_info_from_keras(model)
    images = load_image_folder(images_dir, info.input_image_shape, crops_per_image=3)
    return host.run_context(
        profile=host.profiles.resolve(profile_name),
        run_dir=tmp_path,
        float_model=model,
        model_info=info,
        images=images,
    )


def assert_integer_only(ops) -> None:
    """Every operator's tensors are int8/uint8, except int32 biases and shape/axis params."""
    for op in ops:
        for dtype, role in zip(op.input_types, op.input_roles, strict=True):
            assert dtype in ("int8", "uint8") or (role in ("bias", "param") and dtype == "int32"), (
                op
            )
        assert set(op.output_types) <= {"int8", "uint8"}, op


def run_ok(out: Path, *args: str, env_extra: dict[str, str] | None = None) -> dict:
    """Run `compressor run ... --output out`, assert success, return report.json."""
    import json

    result = run_cli("run", *args, "--output", str(out), env_extra=env_extra)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "report.json").read_text())


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed as a user error: exit 2, one ``error:`` line on stderr holding
    every fragment, no traceback. Returns that line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def build_lambda_model(marker: Path, size: int = 32):
    """A tf_keras image model whose ``Lambda`` layer creates ``marker`` whenever it is
    called: loading it with its code run would rebuild the graph and create the file."""
    import tf_keras as keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    touch = keras.layers.Lambda(
        lambda t, where=str(marker): (__import__("pathlib").Path(where).touch(), t)[1],
        name="touches_a_file",
    )
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(touch(x)), name="lambda_cnn")
    marker.unlink(missing_ok=True)  # building called it once
    return model


def save_quantize_plan(path: Path, strategy: str, profile: str = "x86-cpu") -> Path:
    """A plan at ``path``: quantize with ``strategy``, then evaluate (2 timed runs)."""
    from compressor.planning.plan import Plan, StageSpec

    stages = [
        StageSpec(stage="quantize", strategy=strategy),
        StageSpec(stage="evaluate", strategy="litert-evaluate", params={"runs": 2}),
    ]
    Plan(profile=profile, stages=stages).save(path)
    return path


def run_plan(
    model: Path, plan: Path, data: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess:
    """`compressor run --model --plan --data --output` in this process (``invoke_cli``)."""
    return invoke_cli("run", "--model", str(model), "--plan", str(plan), "--data", str(data),
                      "--output", str(out), *extra)  # fmt: skip


class StopBeforeQuantize:
    """A plugin that interrupts a run as its quantize stage starts (what Ctrl-C raises)."""

    @hookimpl
    def on_stage_started(self, stage):
        """Raise KeyboardInterrupt when the quantize stage starts."""
        if stage == "quantize":
            raise KeyboardInterrupt
