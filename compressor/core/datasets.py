"""Images for calibration, fine-tuning and evaluation, from a folder or built in.

Any size or mode is accepted: images are converted to the model's channels,
resized to its input size and scaled to [0, 1].

The source images are split, by file, into three disjoint sets: the *calibration*
split (quantization ranges and fine-tuning), the *selection* split (every choice
between variants: it is never fine-tuned on, so a candidate fitted to its training
images gains nothing there) and the *held-out* split (used only for the fidelity a
report states). Crops are taken from calibration images only, so no pixel of a
selection or held-out photo is ever trained on. With fewer than three non-held-out
files there is no selection split and choices use the calibration images.
"""

from __future__ import annotations

import stat
import warnings
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from compressor.core.errors import DataError
from compressor.core.input_mapping import InputMapping

# Images smaller than this on a side are skipped (too small to crop or to measure on).
MIN_IMAGE_SIDE = 8
# Pillow modes of more than 8 bits per sample, scaled by ``to_8bit``.
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
MAX_IMAGE_PIXELS = 100_000_000  # refuse decompression bombs
# What opening a bad, truncated or oversized image file raises.
UNREADABLE_IMAGE_ERRORS = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
# Share of the source images held out for reported fidelity (at least one).
HELD_OUT_FRACTION = 0.3
# Share of the remaining images kept out of fine-tuning to choose between variants.
SELECTION_FRACTION = 0.25
BUILTIN_SAMPLE_FILES = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
)


@dataclass
class ImageSet:
    """Images as float32 arrays (N, H, W, C) in [0, 1], plus what was skipped.

    ``calibration`` holds the calibration split's whole images and ``train`` the same
    plus their random crops; ``evaluation`` holds the held-out split. Without a split
    (``held_out_fraction=0``) ``evaluation`` and ``calibration`` are the same images.
    """

    train: np.ndarray
    evaluation: np.ndarray
    source: str
    skipped: list[str] = field(default_factory=list)
    calibration: np.ndarray | None = None
    calibration_files: list[str] = field(default_factory=list)
    evaluation_files: list[str] = field(default_factory=list)
    selection: np.ndarray | None = None
    selection_files: list[str] = field(default_factory=list)
    mapping: InputMapping = field(default_factory=InputMapping)  # how photos became inputs
    # a folder per class: the class names (index order) and each evaluation image's class
    classes: tuple[str, ...] = ()
    evaluation_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.calibration is None:
            self.calibration = self.evaluation

    def mapped(self, mapping: InputMapping) -> ImageSet:
        """The same images as the model's inputs under ``mapping`` (from RGB in [0, 1])."""
        if mapping.is_identity and self.mapping.is_identity:
            return replace(self, mapping=mapping)
        if not self.mapping.is_identity:
            raise ValueError("images are already mapped")
        return replace(
            self,
            train=mapping.apply(self.train),
            evaluation=mapping.apply(self.evaluation),
            calibration=mapping.apply(self.calibration),
            selection=None if self.selection is None else mapping.apply(self.selection),
            mapping=mapping,
        )

    @property
    def choice(self) -> np.ndarray:
        """Images every choice between variants is made on: the selection split, or the
        calibration images when there is none."""
        return self.selection if self.selection is not None else self.calibration

    @property
    def choice_split(self) -> str:
        """Name of the split ``choice`` holds."""
        return "selection" if self.selection is not None else "calibration"

    @property
    def held_out(self) -> bool:
        """True when evaluation images are disjoint from calibration and training."""
        return bool(self.evaluation_files) and not (
            set(self.evaluation_files) & set(self.calibration_files)
        )

    def splits(self) -> dict[str, dict[str, object]]:
        """Names and counts of both splits, as report.json records them."""
        return {
            "calibration": {
                "files": self.calibration_files,
                "images": len(self.calibration_files),
                "with_crops": int(len(self.train)),
                "used_for": "calibration and fine-tuning"
                + ("" if self.selection is not None else " and choices between variants"),
            },
            "selection": {
                "files": self.selection_files,
                "images": len(self.selection_files),
                "used_for": "choices between variants (never fine-tuned on)",
            },
            "held_out": {
                "files": self.evaluation_files,
                "images": len(self.evaluation_files),
                "disjoint": self.held_out,
                "used_for": "reported fidelity"
                + (" and accuracy against the class folders" if self.classes else ""),
                **({"classes": list(self.classes)} if self.classes else {}),
            },
        }


def open_image(path: Path, channels: int) -> Image.Image:
    """Open an image safely (decompression bombs refused) with ``channels`` channels;
    16-bit and float images are scaled by their real range (``to_8bit``), not clipped."""
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(path)
        image.load()
    image = to_8bit(image)
    if channels == 4:
        return image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("L" if channels == 1 else "RGB")


def to_8bit(image: Image.Image) -> Image.Image:
    """An 8-bit grey image for a 16-bit, 32-bit integer or float single-channel one, by
    its real range: 16-bit over 0..65535 (Pillow's ``convert`` would clip it to 255, all
    white); 32-bit integers over 0..65535 unless they exceed it (then 0..max); floats
    as they are when in [0, 1], else over their min..max. Other modes pass unchanged."""
    if image.mode not in HIGH_DEPTH_MODES:
        return image
    values = np.asarray(image, dtype=np.float64)
    low, high = 0.0, 65535.0
    if image.mode == "F":
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        low, high = (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)
    elif image.mode == "I" and values.size and values.max() > high:
        high = float(values.max())
    scaled = (np.nan_to_num(values, nan=low) - low) / max(high - low, 1e-12)
    return Image.fromarray(np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8), "L")


def regular_file_problem(path: Path) -> str | None:
    """Why ``path`` is not read (a FIFO, a device, a folder, gone), without opening it;
    None for a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if stat.S_ISREG(mode):
        return None
    kind = {
        stat.S_ISFIFO(mode): "a FIFO",
        stat.S_ISDIR(mode): "a folder",
        stat.S_ISCHR(mode) or stat.S_ISBLK(mode): "a device",
        stat.S_ISSOCK(mode): "a socket",
    }.get(True, "not a regular file")
    return f"{kind}, not a regular file"


def read_whole_image(path: Path, channels: int) -> tuple[Image.Image | None, str]:
    """The image at ``path``, or None and why it is skipped (not a regular file,
    unreadable, or under ``MIN_IMAGE_SIDE`` pixels on a side)."""
    problem = regular_file_problem(path)
    if problem:
        return None, problem
    try:
        image = open_image(path, channels)
    except UNREADABLE_IMAGE_ERRORS as exc:
        return None, f"unreadable ({type(exc).__name__})"
    if min(image.size) < MIN_IMAGE_SIDE:
        width, height = image.size
        return None, f"{width}x{height} px, under {MIN_IMAGE_SIDE} px on a side"
    return image, ""


def _to_array(image: Image.Image, height: int, width: int) -> np.ndarray:
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def _random_crops(image: Image.Image, count: int, rng: np.random.Generator) -> list[Image.Image]:
    crops = []
    w, h = image.size
    for _ in range(count):
        scale = rng.uniform(0.5, 0.9)
        cw, ch = max(8, int(w * scale)), max(8, int(h * scale))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = image.crop((left, top, left + cw, top + ch))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crops.append(crop)
    return crops


def held_out_indices(count: int, fraction: float, seed: int) -> set[int]:
    """Which of ``count`` source images are held out (seeded, at least one)."""
    if fraction <= 0:
        return set()
    held = max(1, round(count * fraction))
    return {int(i) for i in np.random.default_rng(seed).permutation(count)[:held]}


def images_from_paths(
    paths: list[Path],
    input_shape: tuple[int, int, int],
    source: str,
    crops_per_image: int = 4,
    seed: int = 0,
    held_out_fraction: float = HELD_OUT_FRACTION,
    labels: dict[Path, int] | None = None,
    classes: tuple[str, ...] = (),
) -> ImageSet:
    """Load ``paths`` and split them by file into calibration (whole images plus crops)
    and held-out evaluation images; ``held_out_fraction=0`` keeps all in both. Files
    are read first and the splits drawn over the readable ones, so skipped files (each
    listed with its reason) never leave a split empty by chance. ``labels`` (a class
    index per path, of ``classes``) gives each evaluation image its class."""
    height, width, channels = input_shape
    rng = np.random.default_rng(seed)
    readable: list[tuple[Path, np.ndarray]] = []
    skipped: list[str] = []
    for path in paths:
        image, reason = read_whole_image(path, channels)
        if image is None:
            skipped.append(f"{path.name}: {reason}")
            continue
        readable.append((path, _to_array(image, height, width)))
    if not readable:
        detail = f" (skipped: {', '.join(skipped[:3])})" if skipped else ""
        raise DataError(
            f"no readable image in {source}{detail}",
            f"put PNG or JPEG files ({', '.join(sorted(IMAGE_SUFFIXES))}) of at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px in the folder",
        )
    held = held_out_indices(len(readable), held_out_fraction, seed)
    if held and len(readable) < 2:
        raise DataError(
            f"{source} has {len(readable)} readable image(s); at least 2 are needed",
            "fidelity is measured on held-out images that calibration and fine-tuning "
            "never see: add images",
        )
    remaining = [i for i in range(len(readable)) if i not in held]
    chosen = set()
    if held and len(remaining) >= 3:
        picks = held_out_indices(len(remaining), SELECTION_FRACTION, seed + 1)
        chosen = {remaining[i] for i in picks}
    calibration, evaluation, train = [], [], []
    calibration_files, evaluation_files = [], []
    selection, selection_files = [], []
    held_labels, calibration_labels = [], []
    for index, (path, whole) in enumerate(readable):
        label = (labels or {}).get(path, -1)
        if index in held:
            evaluation.append(whole)
            evaluation_files.append(path.name)
            held_labels.append(label)
        elif index in chosen:
            selection.append(whole)
            selection_files.append(path.name)
        else:
            calibration.append(whole)
            calibration_files.append(path.name)
            calibration_labels.append(label)
            train.append(whole)
            if crops_per_image:
                image, _ = read_whole_image(path, channels)  # decoded again: crops need it
                if image is not None:
                    crops = _random_crops(image, crops_per_image, rng)
                    train.extend(_to_array(c, height, width) for c in crops)
    if not held:
        evaluation, evaluation_files = calibration, calibration_files
        held_labels = calibration_labels
    return ImageSet(
        train=np.stack(train),
        evaluation=np.stack(evaluation),
        source=source,
        skipped=skipped,
        calibration=np.stack(calibration),
        calibration_files=calibration_files,
        evaluation_files=list(evaluation_files),
        selection=np.stack(selection) if selection else None,
        selection_files=selection_files,
        classes=classes if labels else (),
        evaluation_labels=np.asarray(held_labels, np.int64) if labels else None,
    )


def class_folders(folder: Path) -> dict[str, list[Path]]:
    """A folder's subfolders that hold image files (not hidden), by name: a folder per
    class when the folder itself holds no image."""
    found = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found[sub.name] = images
    return found


def class_indices(names: list[str]) -> dict[str, int]:
    """Class folder name → the model's class index: the number itself when every name
    is one (``0``, ``3``, ``17``), else the position in sorted order (as Keras'
    ``image_dataset_from_directory`` numbers them)."""
    if all(name.isdigit() for name in names):
        return {name: int(name) for name in names}
    return {name: index for index, name in enumerate(sorted(names))}


def load_image_folder(
    folder: Path,
    input_shape: tuple[int, int, int],
    crops_per_image: int = 4,
    seed: int = 0,
    held_out_fraction: float = HELD_OUT_FRACTION,
) -> ImageSet:
    """Read every image file in ``folder`` (not recursive), split as ``images_from_paths``."""
    if not folder.exists():
        raise DataError(f"data folder {folder} does not exist", "check the --data path")
    if not folder.is_dir():
        raise DataError(f"--data {folder} is not a folder", "pass a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    labels: dict[Path, int] = {}
    classes: tuple[str, ...] = ()
    if not paths:
        per_class = class_folders(folder)
        if len(per_class) < 2:
            raise DataError(
                f"data folder {folder} has no image files"
                + (f" (one class folder only: {next(iter(per_class))})" if per_class else ""),
                f"add images with suffix {', '.join(sorted(IMAGE_SUFFIXES))}, or one "
                "subfolder of images per class (at least two)",
            )
        index = class_indices(list(per_class))
        classes = tuple(sorted(per_class, key=index.__getitem__))
        labels = {path: index[name] for name, files in per_class.items() for path in files}
        paths = sorted(labels)
    return images_from_paths(
        paths, input_shape, str(folder), crops_per_image, seed, held_out_fraction,
        labels, classes,
    )  # fmt: skip


def builtin_sample_paths() -> list[Path]:
    """Real photos and a texture bundled in scikit-image's wheel (no download)."""
    folder = resources.files("skimage") / "data"
    return [Path(str(folder / name)) for name in BUILTIN_SAMPLE_FILES]


def load_builtin_samples(
    input_shape: tuple[int, int, int], crops_per_image: int = 4, seed: int = 0
) -> ImageSet:
    """The built-in sample images, resized to ``input_shape``."""
    return images_from_paths(
        builtin_sample_paths(),
        input_shape,
        "built-in samples (scikit-image)",
        crops_per_image,
        seed,
    )
