"""Constants of the planner's estimates, as measured by ``benchmarks/planner_constants.py``.

The values live in ``planner_constants.json`` beside this module, with the host, the date
and how each was measured; re-running the script on another host rewrites them. Nothing
here is typed in by hand.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

CONSTANTS_FILE = Path(__file__).with_name("planner_constants.json")


@functools.cache
def _document() -> dict[str, Any]:
    return json.loads(CONSTANTS_FILE.read_text(encoding="utf-8"))


def measured(name: str) -> float:
    """The measured value of constant ``name`` (e.g. ``ssim_loss.dynamic_int8``)."""
    values = _document()["values"]
    if name not in values:
        raise KeyError(f"{name} not in {CONSTANTS_FILE.name}: run benchmarks/planner_constants.py")
    return float(values[name]["value"])


def is_measured(name: str) -> bool:
    """True when constant ``name`` has been measured (is in the constants file)."""
    return name in _document()["values"]


def measured_curve(name: str, x: float, anchor: tuple[float, float]) -> float:
    """Linear interpolation of the points ``name@x`` measured, plus ``anchor`` (the value
    at no compression); clamped to the nearest point outside them."""
    prefix = f"{name}@"
    points = sorted(
        [
            (float(key[len(prefix) :]), float(entry["value"]))
            for key, entry in _document()["values"].items()
            if key.startswith(prefix)
        ]
        + [anchor]
    )
    xs, ys = zip(*points, strict=True)
    return float(np.interp(x, xs, ys))


def provenance() -> dict[str, Any]:
    """Where the constants come from: command, host, date."""
    document = _document()
    return {key: document[key] for key in ("measured_by", "date", "host") if key in document}
