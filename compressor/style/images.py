"""Single images for style transfer: load (any mode, bomb-safe) and save PNG/JPEG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from compressor.core.datasets import UNREADABLE_IMAGE_ERRORS, open_image
from compressor.core.errors import DataError

OUTPUT_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
MIN_SIDE = 16


def load_rgb(path: Path, what: str) -> Image.Image:
    """Open ``path`` as RGB; a clear DataError for missing, corrupt, tiny or huge files."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist", "check the path")
    try:
        image = open_image(path, 3)
    except UNREADABLE_IMAGE_ERRORS as exc:
        raise DataError(
            f"{what} {path} cannot be read as an image ({type(exc).__name__})",
            "use a PNG or JPEG file under 100 megapixels",
        ) from exc
    if min(image.size) < MIN_SIDE:
        raise DataError(
            f"{what} {path} is {image.size[0]}x{image.size[1]} pixels",
            f"use an image at least {MIN_SIDE} pixels on each side",
        )
    return image


def to_array(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB image -> float32 (H, W, 3) in [0, 1], resized to (width, height) if given."""
    if size is not None:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def save_image(array: np.ndarray, path: Path) -> None:
    """Write a [0, 1] (H, W, 3) array as PNG or JPEG (by suffix)."""
    kind = OUTPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"output {path}: unsupported image type '{path.suffix}'", "use .png, .jpg or .jpeg"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    Image.fromarray(pixels).save(path, kind)
