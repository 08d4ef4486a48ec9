"""How a baseline / result ratio is said, the same in the terminal and in report.html."""

from __future__ import annotations

# report.json "ratios" key -> (word when the result is better, word when it is worse)
RATIO_WORDS = {
    "size": ("smaller", "larger"),
    "gzip": ("smaller", "larger"),
    "host_latency": ("faster", "slower"),
}


def describe_ratio(ratio: float, better: str, worse: str) -> str:
    """``2.10× smaller`` when ratio ≥ 1, else ``1.50× larger`` (never '0.67× smaller')."""
    if ratio >= 1.0:
        return f"{ratio:.2f}× {better}"
    return f"{1.0 / ratio:.2f}× {worse}"
