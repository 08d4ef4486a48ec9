"""Apply a generator (.keras or .tflite) to photos of any size: resized to the model's
input and back, or run in overlapping tiles at the photo's own resolution."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from compressor.core.errors import DataError, ModelError
from compressor.style.images import encode, load_rgb, output_kind, to_array, to_pixels
from compressor.style.tiling import run_tiled

DEFAULT_TILE = 256  # tile side for models that take any size
DEFAULT_OVERLAP = 32


@dataclass
class Generator:
    """A loaded image-to-image model: ``run`` maps a (1, H, W, 3) batch in [0, 1] to its
    output; ``size`` is the fixed (width, height) input, or None for any size."""

    run: Callable[[np.ndarray], np.ndarray]
    size: tuple[int, int] | None
    path: Path


def _keras_generator(path: Path, custom_objects: dict[str, Any], trust: bool) -> Generator:
    from compressor.ingest.keras_io import load_user_model

    model = load_user_model(path, custom_objects, trust).model
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ModelError(f"model {path}: input {tuple(shape)} is not an RGB image")
    size = None if shape[1] is None else (int(shape[2]), int(shape[1]))

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch, training=False))

    return Generator(run, size, path)


def _tflite_generator(path: Path, threads: int | None) -> Generator:
    from compressor.litert.tflite_runtime import TFLiteModel

    if not path.is_file():
        raise ModelError(f"model file {path} does not exist", "check the --model path")
    runner = TFLiteModel(path.read_bytes(), threads)
    _, height, width, channels = runner.input_shape
    if channels != 3:
        raise ModelError(f"model {path}: input has {channels} channels, expected 3")
    return Generator(runner.predict, (width, height), path)


def load_generator(
    path: Path, custom_objects: dict[str, Any], threads: int | None = None, trust: bool = False
) -> Generator:
    """The generator at ``path``: a ``.tflite`` (by its bytes) through LiteRT, else a
    Keras model (code in the file refused unless ``trust``)."""
    from compressor.ingest.model_trust import TFLITE_BYTES, sniff_format

    if path.is_file() and sniff_format(path) == TFLITE_BYTES:
        return _tflite_generator(path, threads)
    if path.suffix == ".tflite" and not path.is_file():
        return _tflite_generator(path, threads)
    return _keras_generator(path, custom_objects, trust)


def _checked(output: np.ndarray, generator: Generator) -> np.ndarray:
    if output.ndim != 3 or output.shape[-1] != 3:
        raise ModelError(f"model {generator.path}: output shape {output.shape} is not an RGB image")
    return output


def stylize_image(
    generator: Generator,
    image: Image.Image,
    tile: bool = False,
    overlap: int = DEFAULT_OVERLAP,
) -> np.ndarray:
    """``image`` stylized at its own size, as uint8 (H, W, 3).

    Without ``tile`` the photo is resized to the model's input (or to a multiple of 4
    for any-size models) and the result resized back. With ``tile`` a photo larger than
    the model's input (``DEFAULT_TILE`` for any-size models) is run in overlapping,
    blended tiles at full resolution; a smaller one is resized up to one tile.
    """
    width, height = image.size
    if tile:
        tile_w, tile_h = generator.size or (DEFAULT_TILE, DEFAULT_TILE)
        if generator.size is None:
            tile_w, tile_h = min(tile_w, width // 4 * 4), min(tile_h, height // 4 * 4)
        if overlap >= min(tile_w, tile_h):
            raise DataError(
                f"--overlap {overlap}: must be smaller than the tile ({tile_w}x{tile_h} px)",
                f"use an overlap under {min(tile_w, tile_h)} px",
            )
        work = (max(width, tile_w), max(height, tile_h))
        pixels = to_array(image, None if work == image.size else work)
        output = run_tiled(
            lambda batch: _checked(generator.run(batch)[0], generator)[None, ...],
            pixels,
            (tile_h, tile_w),
            overlap,
        )
    else:
        size = generator.size or (max(4, width // 4 * 4), max(4, height // 4 * 4))
        output = _checked(generator.run(to_array(image, size)[None, ...])[0], generator)
    result = Image.fromarray(to_pixels(output))
    if result.size != image.size:
        result = result.resize(image.size, Image.Resampling.BILINEAR)
    return np.asarray(result)


def stylize_file(
    model_path: Path,
    input_path: Path,
    output_path: Path,
    custom_objects: dict[str, Any],
    tile: bool = False,
    overlap: int = DEFAULT_OVERLAP,
    threads: int | None = None,
    trust: bool = False,
) -> tuple[int, int]:
    """Stylize ``input_path`` into ``output_path`` at the photo's own size; return it."""
    image = load_rgb(input_path, "input image")
    output_kind(output_path)
    generator = load_generator(model_path, custom_objects, threads, trust)
    encode(stylize_image(generator, image, tile, overlap), output_path)
    return image.size
