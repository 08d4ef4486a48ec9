"""ONNX models in: converted to a SavedModel (and its float ``.tflite``) by onnx2tf.

onnx2tf is an optional extra (``pip install 'compressor[onnx]'``). It transposes the
graph to channels-last (NHWC), which is what TFLite delegates run. Two things make it
safe to call here:

- **Offline.** Before converting, onnx2tf runs the ONNX and TensorFlow graphs on sample
  images and compares them. It downloads those images from GitHub unless the file
  ``calibration_image_sample_data_20x128x128x3_float32.npy`` is in its working
  directory (``onnx2tf/utils/common_functions.py: download_test_image_data``). We write
  that file ourselves, from the photos scikit-image bundles in its wheel, into a fresh
  working directory, so nothing is fetched.
- **Contained.** onnx2tf calls ``sys.exit`` on unsupported graphs and prints colourful
  logs; it runs in a child process, and its last error line becomes a one-line error.
- **Static before it converts.** onnx2tf 1.28.8 applies ``overwrite_input_shape`` only
  through the ``onnxsim`` command, when one is on PATH; without it a dynamic input stays
  dynamic, and the shape arithmetic of a normal export (YOLOv8's ``Shape → Gather →
  Reshape`` per scale, then a ``Concat`` of the scales) is converted on the wrong axis.
  So we write the fixed dims into a copy of the graph ourselves, infer its shapes and
  constant-fold it with onnxslim (``static_graph``), and call onnx2tf with its own
  simplifier off: the same steps on every machine.
- **Exact rewrites** (``onnx_rewrite``): GELU written as its erf formula becomes one
  GELU node, which TFLite runs as a builtin (its ``Erf`` is not one).
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compressor.core.errors import ModelError

ONNX_SUFFIX = ".onnx"
ONNX_EXTRA = "pip install 'compressor[onnx]'"
# onnx2tf reads this file from its working directory instead of downloading it.
SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
_SAMPLE_COUNT, _SAMPLE_SIZE = 20, 128
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CONVERT = (
    "import sys, onnx2tf\n"
    "onnx2tf.convert(input_onnx_file_path=sys.argv[1], output_folder_path=sys.argv[2], "
    "not_use_onnxsim=True, non_verbose=True)\n"
)


def onnx_input_shape(path: Path) -> tuple[str, list[int | None]]:
    """The first graph input's name and dims (None for a symbolic or unknown dim), read
    from the file without running it."""
    try:
        import onnx
    except ImportError as exc:
        raise ModelError(
            f"model file {path}: ONNX input needs onnx, which is not installed", ONNX_EXTRA
        ) from exc
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # a protobuf parse error has no common base class
        raise ModelError(f"model file {path} is not a readable ONNX model ({exc})") from exc
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        raise ModelError(f"model file {path}: the ONNX graph has no input")
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, [d.dim_value if d.HasField("dim_value") else None for d in dims]


def fixed_input_shape(path: Path, input_size: int | None) -> str | None:
    """onnx2tf's ``overwrite_input_shape`` for an NCHW image input whose height or width
    is dynamic: ``NAME:1,C,SIZE,SIZE`` with ``input_size``; None for a static input.
    One-line errors for a dynamic input without a size, or a size for a static one."""
    name, dims = onnx_input_shape(path)
    if len(dims) != 4:
        if input_size:
            raise ModelError(f"--input-size: model {path}'s input {name} is not an image {dims}")
        return None
    channels = dims[1] or 3
    if dims[2] is not None and dims[3] is not None:
        if input_size:
            raise ModelError(
                f"--input-size: model {path} has a fixed input size {dims}", "drop --input-size"
            )
        return None
    if not input_size:
        shown = ["?" if d is None else d for d in dims]
        raise ModelError(
            f"model {path}: input {name} has a dynamic size {shown}",
            "pass --input-size N to convert it at N×N",
        )
    return f"{name}:1,{channels},{input_size},{input_size}"


def onnx2tf_version() -> str | None:
    """The installed onnx2tf version, or None when the extra is not installed."""
    if importlib.util.find_spec("onnx2tf") is None:
        return None
    return importlib.metadata.version("onnx2tf")


def sample_images() -> np.ndarray:
    """20 real photos (scikit-image's samples and their mirror images) at 128×128 RGB in
    [0, 1]: the images onnx2tf checks its conversion on."""
    from PIL import Image

    from compressor.core.datasets import builtin_sample_paths

    photos = []
    for path in builtin_sample_paths():
        with Image.open(path) as image:
            photos.append(image.convert("RGB").resize((_SAMPLE_SIZE, _SAMPLE_SIZE)))
    images = []
    for index in range(_SAMPLE_COUNT):
        photo = photos[index % len(photos)]
        if (index // len(photos)) % 2:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        images.append(np.asarray(photo, dtype=np.float32) / 255.0)
    return np.stack(images)


def _last_error_line(text: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("I0000", "W0000"))]
    errors = [line for line in lines if "ERROR" in line or "Error" in line]
    return (errors or lines or ["no output"])[-1][:300]


_CONVERTED: dict[tuple[str, int, int, str | None], OnnxConversion] = {}  # (file, mtime, size)


def convert_onnx(path: Path, input_shape: str | None = None) -> OnnxConversion:
    """Convert ``path`` with onnx2tf (a dynamic input fixed to ``input_shape``,
    ``fixed_input_shape``'s form); returns the SavedModel directory (kept until the
    process exits; the same unchanged file is converted once per process and shape) and
    the rewrites made. One-line errors for a missing extra or a failed conversion."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist", "check the --model path")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, input_shape)
    if key in _CONVERTED and (_CONVERTED[key].saved_model / "saved_model.pb").is_file():
        return _CONVERTED[key]
    converted = _convert(path, input_shape)
    _CONVERTED[key] = converted
    return converted


def require_onnx2tf(path: Path) -> None:
    """A one-line error naming the extra when onnx2tf or onnxslim is not installed."""
    missing = "onnx2tf" if onnx2tf_version() is None else None
    if missing is None and importlib.util.find_spec("onnxslim") is None:
        missing = "onnxslim"
    if missing:
        raise ModelError(
            f"model file {path}: ONNX input needs {missing}, which is not installed",
            ONNX_EXTRA,
        )


@dataclass(frozen=True)
class OnnxConversion:
    """What onnx2tf wrote for an ONNX file, and the exact rewrites made before."""

    saved_model: Path
    rewrites: dict[str, int] = field(default_factory=dict)


def static_graph(path: Path, input_shape: str | None, out: Path) -> dict[str, int]:
    """Write ``path``'s graph to ``out`` with its first input fixed to ``input_shape``
    (``fixed_input_shape``'s ``NAME:D0,D1,...`` form; None keeps the dims), its shapes
    inferred (value propagation on), constant-folded by onnxslim (every ``Shape`` chain
    of a static graph becomes a constant) and rewritten exactly (``onnx_rewrite``);
    returns the rewrites made. The user's file is only read."""
    import onnx
    import onnxslim

    from compressor.ingest.onnx_rewrite import ERF_GELU, fuse_erf_gelu

    model = onnx.load(str(path))
    if input_shape:
        dims = [int(d) for d in input_shape.rsplit(":", 1)[1].split(",")]
        initializers = {i.name for i in model.graph.initializer}
        first = next(i for i in model.graph.input if i.name not in initializers)
        for dim, value in zip(first.type.tensor_type.shape.dim, dims, strict=True):
            dim.ClearField("dim_param")
            dim.dim_value = value
        # shapes computed for the symbolic dims are stale now: inferred again below
        for output in model.graph.output:
            output.type.tensor_type.ClearField("shape")
        del model.graph.value_info[:]
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        model = onnxslim.slim(model)
        model, gelus = fuse_erf_gelu(model)
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx and onnxslim raise many kinds on odd graphs
        raise ModelError(
            f"model file {path}: its graph cannot be made static for onnx2tf "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    onnx.save(model, str(out))
    return {ERF_GELU: gelus} if gelus else {}


def _convert(path: Path, input_shape: str | None) -> OnnxConversion:
    require_onnx2tf(path)
    work = Path(tempfile.mkdtemp(prefix="compressor-onnx-"))
    atexit.register(shutil.rmtree, work, True)
    np.save(work / SAMPLE_FILE, sample_images())
    # onnx2tf names unnamed ops and writes the model back to its input path: it gets a
    # static copy, so the user's file is never modified
    copy = work / path.name
    rewrites = static_graph(path, input_shape, copy)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CONVERT,
            str(copy),
            "saved_model",
        ],  # fmt: skip
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    saved = work / "saved_model"
    if done.returncode != 0 or not (saved / "saved_model.pb").is_file():
        raise ModelError(
            f"model file {path}: onnx2tf cannot convert it: "
            f"{_last_error_line(done.stdout + done.stderr)}",
            "try onnx2tf -i MODEL.onnx by hand; a model it converts can be passed as the "
            "SavedModel directory it writes",
        )
    return OnnxConversion(saved, rewrites)
