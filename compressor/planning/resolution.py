"""Choose the input size of a fully convolutional model from a latency budget.

A model whose spatial input size is free (the built-in generator, a user's model with
``None`` height/width) can run at any size; compute grows with the pixel count, and
fidelity to a full-resolution result grows with the size. So under a latency budget
the best size is the largest whose fastest planned pipeline fits. Latencies are the
cost model's predictions for the target; the run then measures the result at that size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from compressor.core.model_info import ModelInfo
from compressor.core.profiles import HardwareProfile
from compressor.core.strategy import StrategyRegistry
from compressor.planning.planner import plan_pipeline

# Sizes tried, from below the demo's default (128) up: under a budget no size fits, the
# smallest is planned, so a budget never plans a slower model than no budget does.
RESOLUTIONS = (96, 128, 160, 192, 256, 320, 384, 448, 512)


@dataclass
class ResolutionOption:
    """One input size with its fastest planned pipeline and whether that fits."""

    size: int
    latency_ms: float
    pipeline: str
    fits: bool


@dataclass
class ResolutionChoice:
    """The chosen size, every size tried, and the budget they were held to."""

    size: int
    options: list[ResolutionOption]
    max_latency_ms: float

    def why(self) -> str:
        """One line: which size, why, and what the next larger size would cost."""
        chosen = next(o for o in self.options if o.size == self.size)
        low, high = self.options[0].size, self.options[-1].size
        head = (
            f"input {self.size}x{self.size} chosen from {low}–{high}: "
            f"{chosen.latency_ms:.1f} ms predicted ({chosen.pipeline})"
        )
        if not chosen.fits:
            return f"{head}; no size fits {self.max_latency_ms:g} ms, so the smallest"
        larger = [o for o in self.options if o.size > self.size]
        after = (
            f"; {larger[0].size}x{larger[0].size} would take {larger[0].latency_ms:.1f} ms"
            if larger
            else ""
        )
        return f"{head}, the largest within {self.max_latency_ms:g} ms{after}"

    def to_dict(self) -> dict:
        """JSON-ready form for report.json."""
        return {
            "size": self.size,
            "max_latency_ms": self.max_latency_ms,
            "why": self.why(),
            "options": [asdict(o) for o in self.options],
        }


def choose_resolution(
    profile: HardwareProfile,
    info_at: Callable[[int], ModelInfo],
    registry: StrategyRegistry,
    max_latency_ms: float,
    sizes: tuple[int, ...] = RESOLUTIONS,
) -> ResolutionChoice:
    """The largest of ``sizes`` whose fastest planned pipeline on ``profile`` is
    predicted within ``max_latency_ms`` (the smallest when none is)."""
    options = []
    for size in sorted(sizes):
        planned = plan_pipeline(profile, info_at(size), registry)
        fastest = min(planned.ranked, key=lambda candidate: candidate.latency_ms)
        options.append(
            ResolutionOption(
                size,
                round(fastest.latency_ms, 3),
                fastest.label,
                fastest.latency_ms <= max_latency_ms,
            )
        )
    fitting = [o.size for o in options if o.fits]
    size = max(fitting) if fitting else options[0].size
    return ResolutionChoice(size, options, max_latency_ms)
