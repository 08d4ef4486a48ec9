"""How photos become a model's input: the value range it expects ([0, 1], [-1, 1],
0–255, …), channel order (RGB or BGR) and a per-channel mean and std (ImageNet-style
normalisation, ``(x − mean) / std`` on the values in that range).

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
    """Model input = ((RGB or BGR image in [0, 1]) × (high − low) + low − mean) / std.

    ``mean``/``std`` hold one value, or one per channel in the model's channel order
    (after the BGR swap); empty means none."""

    low: float = 0.0
    high: float = 1.0
    bgr: bool = False
    source: str = DEFAULT_SOURCE
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def is_identity(self) -> bool:
        """True for RGB in [0, 1], the images as read."""
        plain = not self.mean and not self.std
        return self.low == 0.0 and self.high == 1.0 and not self.bgr and plain

    def _centre_scale(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean or (0.0,), np.float32)
        std = np.asarray(self.std or (1.0,), np.float32)
        return mean, std

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Images (N, H, W, C) in [0, 1], RGB, as the model's input."""
        if self.is_identity:
            return images
        out = images[..., ::-1] if self.bgr and images.shape[-1] == 3 else images
        mean, std = self._centre_scale()
        return ((out * (self.high - self.low) + self.low - mean) / std).astype(np.float32)

    def to_display(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs back to RGB in [0, 1] (for pictures)."""
        if self.is_identity:
            return inputs
        mean, std = self._centre_scale()
        out = (inputs * std + mean - self.low) / (self.high - self.low)
        out = out[..., ::-1] if self.bgr and out.shape[-1] == 3 else out
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def check_channels(self, channels: int) -> None:
        """A one-line error when ``mean``/``std`` name a channel count the model's input
        does not have (one value always fits)."""
        for flag, values in (("--mean", self.mean), ("--std", self.std)):
            if len(values) > 1 and len(values) != channels:
                raise CompressorError(
                    f"{flag} {','.join(f'{v:g}' for v in values)}: {len(values)} values, but "
                    f"the model's input has {channels} channels",
                    f"give one value, or {channels} (one per channel, in the model's order)",
                )

    def to_dict(self) -> dict[str, Any]:
        """The mapping as report.json and job.json record it."""
        data: dict[str, Any] = {"low": self.low, "high": self.high, "bgr": self.bgr}
        data["source"] = self.source
        if self.mean or self.std:
            data.update(mean=list(self.mean), std=list(self.std))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InputMapping:
        """Inverse of ``to_dict`` (None: the default)."""
        if not data:
            return cls()
        mean = tuple(float(v) for v in data.get("mean") or ())
        std = tuple(float(v) for v in data.get("std") or ())
        low, high = float(data["low"]), float(data["high"])
        return cls(low, high, bool(data["bgr"]), str(data["source"]), mean, std)


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


def parse_channel_values(text: str, flag: str) -> tuple[float, ...]:
    """``"V"`` or ``"V1,V2,V3"`` (``--mean``/``--std``) as finite numbers; a std must be
    positive."""
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        values = ()
    valid = bool(values) and all(math.isfinite(v) for v in values)
    if flag == "--std":
        valid = valid and all(v > 0 for v in values)
    if not valid:
        kind = "positive numbers" if flag == "--std" else "numbers"
        raise CompressorError(
            f"{flag} {text!r}: expected one or one per channel comma-separated {kind}",
            "e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 (on [0, 1] inputs)",
        )
    return values


@dataclass(frozen=True)
class InputFlags:
    """What the user said about the model's inputs: ``--input-range``, ``--bgr``,
    ``--mean``, ``--std`` (None: not given)."""

    input_range: str | None = None
    bgr: bool = False
    mean: str | None = None
    std: str | None = None

    def check(self) -> None:
        """One-line errors for a bad value, before any model is loaded."""
        if self.input_range is not None:
            parse_input_range(self.input_range)
        if self.mean is not None:
            parse_channel_values(self.mean, "--mean")
        if self.std is not None:
            parse_channel_values(self.std, "--std")

    def as_text(self) -> str:
        """The flags as given, for the report's ``source``."""
        parts = [f"--input-range {self.input_range}"] if self.input_range is not None else []
        parts += ["--bgr"] if self.bgr else []
        parts += [f"--mean {self.mean}"] if self.mean is not None else []
        parts += [f"--std {self.std}"] if self.std is not None else []
        return " ".join(parts)


def input_mapping(flags: InputFlags, from_model: InputMapping | None) -> InputMapping:
    """The mapping a run uses: the range from ``--input-range`` when given, else what
    the model states about itself (``from_model``), else [0, 1]; ``--bgr``, ``--mean``
    and ``--std`` apply on top of either."""
    flags.check()
    if flags.input_range is not None:
        low, high = parse_input_range(flags.input_range)
        base = InputMapping(low, high, source="")
    else:
        base = from_model or InputMapping()
    mean = parse_channel_values(flags.mean, "--mean") if flags.mean is not None else base.mean
    std = parse_channel_values(flags.std, "--std") if flags.std is not None else base.std
    given = flags.as_text()
    if flags.input_range is not None or from_model is None:
        source = given or DEFAULT_SOURCE
    else:
        source = f"{from_model.source}; {given}" if given else from_model.source
    return InputMapping(base.low, base.high, flags.bgr or base.bgr, source, mean, std)
