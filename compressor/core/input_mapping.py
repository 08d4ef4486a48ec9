"""How photos become a model's input: the value range it expects ([0, 1], [-1, 1],
0–255, …) and channel order (RGB or BGR).

Images are read as RGB in [0, 1]; a mapping turns them into what the model was trained
on, once, before calibration, fine-tuning, fidelity and the int8 input scale see them
(the converter calibrates the input's scale on these values, so a [-1, 1] model gets a
scale covering [-1, 1]). ``to_display`` undoes it for the report's pictures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from compressor.core.errors import CompressorError

DEFAULT_SOURCE = "default ([0, 1], RGB)"


@dataclass(frozen=True)
class InputMapping:
    """Model input = (RGB or BGR image in [0, 1]) × (high − low) + low."""

    low: float = 0.0
    high: float = 1.0
    bgr: bool = False
    source: str = DEFAULT_SOURCE

    @property
    def is_identity(self) -> bool:
        """True for RGB in [0, 1], the images as read."""
        return self.low == 0.0 and self.high == 1.0 and not self.bgr

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Images (N, H, W, C) in [0, 1], RGB, as the model's input."""
        if self.is_identity:
            return images
        out = images[..., ::-1] if self.bgr and images.shape[-1] == 3 else images
        return (out * (self.high - self.low) + self.low).astype(np.float32)

    def to_display(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs back to RGB in [0, 1] (for pictures)."""
        if self.is_identity:
            return inputs
        out = (inputs - self.low) / (self.high - self.low)
        out = out[..., ::-1] if self.bgr and out.shape[-1] == 3 else out
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The mapping as report.json and job.json record it."""
        return {"low": self.low, "high": self.high, "bgr": self.bgr, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InputMapping:
        """Inverse of ``to_dict`` (None: the default)."""
        if not data:
            return cls()
        return cls(float(data["low"]), float(data["high"]), bool(data["bgr"]), str(data["source"]))


def parse_input_range(text: str, flag: str = "--input-range") -> tuple[float, float]:
    """``"LO,HI"`` (e.g. ``-1,1`` or ``0,255``) as two finite numbers with LO < HI."""
    parts = [p.strip() for p in text.split(",")]
    try:
        low, high = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise CompressorError(
            f"{flag} {text!r}: expected LO,HI with LO < HI (e.g. -1,1 or 0,255)",
            "the range of values the model was trained on for black and white",
        )
    return low, high


def input_mapping(
    range_text: str | None, bgr: bool, from_model: InputMapping | None
) -> InputMapping:
    """The mapping a run uses: ``--input-range``/``--bgr`` when given, else what the
    model states about itself (``from_model``), else RGB in [0, 1]."""
    if range_text is not None:
        low, high = parse_input_range(range_text)
        flags = f"--input-range {range_text}" + (" --bgr" if bgr else "")
        return InputMapping(low, high, bgr, flags)
    if from_model is not None:
        if bgr:
            low, high, source = from_model.low, from_model.high, from_model.source
            return InputMapping(low, high, True, f"{source}; --bgr")
        return from_model
    return InputMapping(bgr=True, source="--bgr") if bgr else InputMapping()
