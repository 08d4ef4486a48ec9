"""Single images for style transfer: load (any mode, bomb-safe) and write PNG/JPEG."""

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


def output_kind(path: Path) -> str:
    """PIL format for an output path (PNG or JPEG); a clear DataError for other suffixes."""
    kind = OUTPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"output {path}: unsupported image type '{path.suffix}'", "use .png, .jpg or .jpeg"
        )
    return kind


def to_pixels(array: np.ndarray) -> np.ndarray:
    """[0, 1] float (H, W, 3) → uint8 pixels, rounded."""
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode(pixels: np.ndarray, path: Path) -> None:
    """Write uint8 RGB ``pixels`` as PNG or JPEG (by the suffix of ``path``)."""
    kind = output_kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, kind)
