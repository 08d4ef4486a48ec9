"""What the user needs from a compressed model, and how far a measured candidate is from it.

Fidelity is the task's own measure (``primary_fidelity``): SSIM for image-to-image models,
top-1 agreement for classifiers. Latency is the target's: measured host latency where the
host is the target, the cost model's estimate elsewhere (the candidate says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Applied when neither the command line, the plan nor the profile sets a fidelity floor.
DEFAULT_MIN_FIDELITY = 0.99


class Budgets(BaseModel):
    """Hard limits a result must meet (profile ``budgets``, plan ``budgets`` or CLI flags)."""

    # 0 is a value (a floor of 0 is no floor; a ceiling of 0 nothing meets), not "unset";
    # NaN and infinities are refused.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    max_size_mb: float | None = Field(default=None, ge=0, description="Max .tflite size (MB)")
    max_gzip_mb: float | None = Field(default=None, ge=0, description="Max gzip size (MB)")
    max_latency_ms: float | None = Field(default=None, ge=0, description="Max target latency")
    min_fidelity: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Min fidelity vs the float model on held-out images (SSIM or top-1)",
    )
    min_ssim: float | None = Field(
        default=None, ge=0, le=1, description="Min SSIM (older name of min_fidelity)"
    )

    @property
    def fidelity_floor(self) -> float | None:
        """``min_fidelity``, or the older ``min_ssim``."""
        return self.min_fidelity if self.min_fidelity is not None else self.min_ssim


@dataclass(frozen=True)
class Miss:
    """One constraint a candidate does not meet, and by how much (relative)."""

    constraint: str
    value: float
    limit: float

    @property
    def relative(self) -> float:
        """How far past the limit, as a fraction of the limit."""
        return abs(self.value - self.limit) / max(abs(self.limit), 1e-9)

    def text(self) -> str:
        """e.g. ``fidelity 0.9620 < 0.99 (short by 0.0280)``."""
        if self.constraint == "min_fidelity":
            short = self.limit - self.value
            return f"fidelity {self.value:.4f} < {self.limit:g} (short by {short:.4f})"
        unit = {"max_latency_ms": "ms", "max_size_mb": "MB", "max_gzip_mb": "MB"}[self.constraint]
        name = self.constraint.removeprefix("max_").removesuffix("_ms").removesuffix("_mb")
        return (
            f"{name} {self.value:.3g} {unit} > {self.limit:g} {unit} "
            f"(over by {self.value - self.limit:.3g} {unit})"
        )


@dataclass(frozen=True)
class Constraints:
    """The resolved constraints of one run, and where each came from."""

    min_fidelity: float | None = None
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    max_gzip_mb: float | None = None
    sources: tuple[tuple[str, str], ...] = ()

    def as_budgets(self) -> Budgets:
        """The constraints as a profile's ``budgets`` (what the planner and strategies
        read), so a plan is made for what the user asked, not only for the profile."""
        return Budgets(
            min_fidelity=self.min_fidelity,
            max_latency_ms=self.max_latency_ms,
            max_size_mb=self.max_size_mb,
            max_gzip_mb=self.max_gzip_mb,
        )

    def misses(self, fidelity: float | None, latency_ms: float | None, size: int, gzip: int):
        """Every constraint the numbers miss."""
        misses = []
        floor = self.min_fidelity
        if floor is not None and floor > 0 and (fidelity is None or fidelity < floor):
            misses.append(Miss("min_fidelity", fidelity or 0.0, self.min_fidelity))
        if self.max_latency_ms is not None and (latency_ms or 0.0) > self.max_latency_ms:
            misses.append(Miss("max_latency_ms", latency_ms or 0.0, self.max_latency_ms))
        if self.max_size_mb is not None and size / 1e6 > self.max_size_mb:
            misses.append(Miss("max_size_mb", size / 1e6, self.max_size_mb))
        if self.max_gzip_mb is not None and gzip / 1e6 > self.max_gzip_mb:
            misses.append(Miss("max_gzip_mb", gzip / 1e6, self.max_gzip_mb))
        return misses

    def to_dict(self) -> dict[str, Any]:
        """The constraints and their sources, for report.json."""
        values = {
            "min_fidelity": self.min_fidelity,
            "max_latency_ms": self.max_latency_ms,
            "max_size_mb": self.max_size_mb,
            "max_gzip_mb": self.max_gzip_mb,
        }
        return {**{k: v for k, v in values.items() if v is not None}, "sources": dict(self.sources)}


def resolve_constraints(*layers: tuple[str, Budgets | None]) -> Constraints:
    """Merge budgets, earlier layers winning (e.g. command line, plan, profile); a fidelity
    floor of ``DEFAULT_MIN_FIDELITY`` applies when no layer sets one."""
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for source, budgets in layers:
        if budgets is None:
            continue
        found = {
            "min_fidelity": budgets.fidelity_floor,
            "max_latency_ms": budgets.max_latency_ms,
            "max_size_mb": budgets.max_size_mb,
            "max_gzip_mb": budgets.max_gzip_mb,
        }
        for key, value in found.items():
            if value is not None and key not in values:
                values[key], sources[key] = value, source
    if "min_fidelity" not in values:
        values["min_fidelity"], sources["min_fidelity"] = DEFAULT_MIN_FIDELITY, "default"
    return Constraints(**values, sources=tuple(sources.items()))


# Primary scores of the built-in metrics, for scores written without their key.
PRIMARY_SCORES = (
    "ssim",
    "top1_agreement",
    "detection_f1",
    "mask_miou",
    "landmark_score",
    "embedding_cosine",
    "output_match",
)


def primary_fidelity(metrics: dict[str, float], key: str | None = None) -> tuple[str, float | None]:
    """The task's own fidelity measure among ``metrics``: ``key`` when given (a
    measurement's ``fidelity_metric``), else the first built-in primary score present."""
    for name in (key,) if key else PRIMARY_SCORES:
        if name in metrics:
            return name, float(metrics[name])
    return "", None


def measured_fidelity(numbers: dict[str, Any]) -> tuple[str, float | None]:
    """(metric, value) of a measurement: the worst output's primary score."""
    return primary_fidelity(numbers.get("fidelity") or {}, numbers.get("fidelity_metric"))
