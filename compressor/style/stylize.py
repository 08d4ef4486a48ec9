"""Apply a generator (.keras or .tflite) to one photo of any size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from compressor.core.errors import ModelError
from compressor.style.images import load_rgb, save_image, to_array


def _keras_runner(path: Path, custom_objects: dict[str, Any]):
    from compressor.core.keras_io import load_user_model

    model = load_user_model(path, custom_objects).model
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ModelError(f"model {path}: input {tuple(shape)} is not an RGB image")
    size = None if shape[1] is None else (int(shape[2]), int(shape[1]))
    return (lambda batch: np.asarray(model.predict(batch, verbose=0))), size


def _tflite_runner(path: Path):
    from compressor.core.tflite_runtime import TFLiteModel

    if not path.is_file():
        raise ModelError(f"model file {path} does not exist", "check the --model path")
    runner = TFLiteModel(path.read_bytes())
    _, height, width, channels = runner.input_shape
    if channels != 3:
        raise ModelError(f"model {path}: input has {channels} channels, expected 3")
    return runner.predict, (width, height)


def stylize_file(
    model_path: Path, input_path: Path, output_path: Path, custom_objects: dict[str, Any]
) -> tuple[int, int]:
    """Stylize ``input_path`` into ``output_path`` at the photo's own size; return it.

    The photo is resized to the model's fixed input (or to a multiple of 4 for
    fully convolutional models) and the result resized back.
    """
    image = load_rgb(input_path, "input image")
    if model_path.suffix == ".tflite":
        run, size = _tflite_runner(model_path)
    else:
        run, size = _keras_runner(model_path, custom_objects)
    if size is None:
        size = (max(4, image.size[0] // 4 * 4), max(4, image.size[1] // 4 * 4))
    output = run(to_array(image, size)[None, ...])[0]
    if output.ndim != 3 or output.shape[-1] != 3:
        raise ModelError(f"model {model_path}: output shape {output.shape} is not an RGB image")
    result = Image.fromarray((np.clip(output, 0, 1) * 255 + 0.5).astype(np.uint8))
    result = result.resize(image.size, Image.Resampling.BILINEAR)
    save_image(np.asarray(result, dtype=np.float32) / 255.0, output_path)
    return image.size
