"""Run an image-to-image model on a photo larger than its input, in overlapping tiles.

Each tile's output is weighted by a separable window that is 0 for ``halo`` pixels at
every inner edge (where zero padding changes the model's output) and then ramps up
linearly, so the weights of overlapping tiles sum to exactly 1. When ``halo`` covers
the model's receptive-field radius, the tiled result equals the untiled one up to float
rounding; for models with image-wide statistics (instance norm) the ramp spreads the
tiles' differences over the overlap instead of leaving a hard seam.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with ``overlap``."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _window(size: int, overlap: int, halo: int, inner_start: bool, inner_end: bool) -> np.ndarray:
    """1-D weights of one tile: 0 on ``halo`` pixels at inner edges, then a linear ramp."""
    positions = np.arange(size, dtype=np.float64)
    ramp = max(overlap - 2 * halo, 1)
    weights = np.ones(size)
    if inner_start:
        weights = np.minimum(weights, np.clip((positions - halo + 0.5) / ramp, 0.0, 1.0))
    if inner_end:
        distance = size - 1 - positions
        weights = np.minimum(weights, np.clip((distance - halo + 0.5) / ramp, 0.0, 1.0))
    return weights


def run_tiled(
    run: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile: tuple[int, int],
    overlap: int,
    halo: int | None = None,
) -> np.ndarray:
    """``run`` (a batch of (tile_h, tile_w, C) images → outputs of the same size) applied
    to ``image`` (H, W, C) in overlapping tiles, blended; H and W must be ≥ the tile's."""
    tile_h, tile_w = tile
    height, width = image.shape[:2]
    if height < tile_h or width < tile_w:
        raise ValueError(f"image {width}x{height} is smaller than the tile {tile_w}x{tile_h}")
    if not 0 <= overlap < min(tile_h, tile_w):
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile_w}x{tile_h}")
    halo = overlap // 4 if halo is None else halo
    result: np.ndarray | None = None
    total = np.zeros((height, width, 1))
    rows, columns = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    for top in rows:
        window_y = _window(tile_h, overlap, halo, top > 0, top + tile_h < height)
        for left in columns:
            window_x = _window(tile_w, overlap, halo, left > 0, left + tile_w < width)
            weights = (window_y[:, None] * window_x[None, :])[..., None]
            patch = image[top : top + tile_h, left : left + tile_w]
            output = np.asarray(run(patch[None, ...])[0], dtype=np.float64)
            if result is None:
                result = np.zeros((height, width, output.shape[-1]))
            result[top : top + tile_h, left : left + tile_w] += output * weights
            total[top : top + tile_h, left : left + tile_w] += weights
    assert result is not None
    return (result / np.maximum(total, 1e-12)).astype(np.float32)
