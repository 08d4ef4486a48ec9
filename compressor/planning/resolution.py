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
    misses: str = ""  # what its best pipeline misses, when it does not fit


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
            budget = f"{self.max_latency_ms:g} ms"
            return f"{head}; no size meets every budget within {budget}, so the smallest"
        larger = [o for o in self.options if o.size > self.size]
        after = ""
        if larger:
            nxt = larger[0]
            after = f"; {nxt.size}x{nxt.size} would take {nxt.latency_ms:.1f} ms" + (
                f" and miss: {nxt.misses}" if nxt.misses else ""
            )
        return f"{head}, the largest that meets every budget{after}"

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
    """The largest of ``sizes`` whose fastest pipeline among those predicted to meet every
    other budget of ``profile`` (the fidelity floor: a student that is fast but far from
    the model does not buy a larger input) is within ``max_latency_ms``; the smallest when
    no size has one. Each size shows that pipeline (or, when none meets the others, the
    best-ranked one and what it misses)."""
    options = []
    for size in sorted(sizes):
        planned = plan_pipeline(profile, info_at(size), registry)
        meeting = [c for c in planned.ranked if not c.budget_misses]
        fastest = min(meeting or planned.ranked, key=lambda candidate: candidate.latency_ms)
        fits = bool(meeting) and fastest.latency_ms <= max_latency_ms
        best = fastest if fits or not meeting else planned.ranked[0]
        options.append(
            ResolutionOption(size, round(best.latency_ms, 3), best.label, fits,
                             "; ".join(best.budget_misses))
        )  # fmt: skip
    fitting = [o.size for o in options if o.fits]
    size = max(fitting) if fitting else options[0].size
    return ResolutionChoice(size, options, max_latency_ms)
