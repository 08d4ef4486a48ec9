"""Stylize a folder with decoding, inference and encoding on separate threads.

A reader thread decodes photos into a bounded queue, the calling thread runs the model
(one interpreter, never shared between threads), and a writer thread encodes results
from a second bounded queue, so disk and codec work overlap with inference while memory
stays bounded. Every photo goes through ``stylize_image``, the function the one-photo
path uses, so results are byte-identical to stylizing the photos one by one. A photo
that cannot be read or written is recorded and skipped; the others are still written.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compressor.core.errors import CompressorError
from compressor.style.images import OUTPUT_SUFFIXES, encode, load_rgb
from compressor.style.stylize import DEFAULT_OVERLAP, Generator, stylize_image

QUEUE_DEPTH = 4
INPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_DONE = object()


@dataclass
class FolderResult:
    """What a folder run wrote, what it skipped (path, one-line reason), and how fast."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    targets: dict[Path, Path] = field(default_factory=dict)  # photo -> its result file

    @property
    def images_per_second(self) -> float:
        """Written images per wall-clock second."""
        return len(self.written) / self.seconds if self.seconds else 0.0


def folder_photos(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)


def output_path_for(photo: Path, output_dir: Path) -> Path:
    """Where a photo's result goes on its own: same stem, its own suffix if PNG/JPEG,
    else .png (``output_paths`` keeps a folder's names apart)."""
    suffix = photo.suffix if photo.suffix.lower() in OUTPUT_SUFFIXES else ".png"
    return output_dir / f"{photo.stem}{suffix}"


def output_paths(photos: list[Path], output_dir: Path) -> dict[Path, Path]:
    """A distinct result path per photo. A photo whose plain name (``output_path_for``)
    another photo also gets keeps its own suffix in the name (``photo.gif`` →
    ``photo-gif.png``) unless its suffix is already the output's; a name still taken is
    numbered (``photo-gif-2.png``). Names are compared case-insensitively."""
    plain = {photo: output_path_for(photo, output_dir) for photo in photos}
    counts: dict[str, int] = {}
    for target in plain.values():
        counts[target.name.lower()] = counts.get(target.name.lower(), 0) + 1
    taken: set[str] = set()
    chosen: dict[Path, Path] = {}
    # photos that keep the plain name first, so the others never take it
    ordered = sorted(photos, key=lambda p: (p.suffix.lower() not in OUTPUT_SUFFIXES, p.name))
    for photo in ordered:
        target = plain[photo]
        if counts[target.name.lower()] > 1 and photo.suffix.lower() not in OUTPUT_SUFFIXES:
            target = output_dir / f"{photo.stem}-{photo.suffix.lstrip('.').lower()}.png"
        number = 1
        base = target
        while target.name.lower() in taken:
            number += 1
            target = base.with_name(f"{base.stem}-{number}{base.suffix}")
        taken.add(target.name.lower())
        chosen[photo] = target
    return chosen


def stylize_folder(
    generator: Generator,
    photos: list[Path],
    output_dir: Path,
    tile: bool = False,
    overlap: int = DEFAULT_OVERLAP,
    progress: Callable[[Path], None] | None = None,
) -> FolderResult:
    """Stylize ``photos`` into ``output_dir`` with a reader and a writer thread; each
    photo gets its own result file (``output_paths``)."""
    targets = output_paths(photos, output_dir)
    result = FolderResult(targets=targets)
    lock = threading.Lock()
    decoded: queue.Queue = queue.Queue(QUEUE_DEPTH)
    finished: queue.Queue = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()

    def fail(path: Path, exc: Exception) -> None:
        message = exc.message if isinstance(exc, CompressorError) else str(exc).splitlines()[0]
        with lock:
            result.failed.append((path, message or type(exc).__name__))

    def read() -> None:
        for photo in photos:
            if stop.is_set():
                break
            try:
                decoded.put((photo, load_rgb(photo, "input image")))
            except (CompressorError, OSError) as exc:
                fail(photo, exc)
                if progress:
                    progress(photo)
        decoded.put(_DONE)

    def write() -> None:
        while (item := finished.get()) is not _DONE:
            photo, pixels = item
            target = targets[photo]
            try:
                encode(pixels, target)
                with lock:
                    result.written.append(target)
            except (CompressorError, OSError) as exc:
                fail(photo, exc)
            if progress:
                progress(photo)

    start = time.perf_counter()
    reader = threading.Thread(target=read, name="stylize-reader", daemon=True)
    writer = threading.Thread(target=write, name="stylize-writer", daemon=True)
    reader.start()
    writer.start()
    try:
        while (item := decoded.get()) is not _DONE:
            photo, image = item
            pixels: np.ndarray = stylize_image(generator, image, tile, overlap)
            finished.put((photo, pixels))
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                decoded.get(timeout=0.05)
        finished.put(_DONE)
        writer.join()
    result.seconds = time.perf_counter() - start
    result.written.sort()
    return result
