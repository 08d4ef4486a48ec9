"""Prove the plan: build and measure the planner's shortlist, ship the best candidate that
meets the user's constraints.

The planner ranks every feasible pipeline by the cost model; estimates miss on real
models and hosts, so the search takes the top of that ranking and measures it: cheap
post-training candidates first (seconds each), costly ones (fine-tuning, the
mixed-precision loop) only when none of those meets the constraints, shared prefixes
built once (``StageCache``). The choice measures fidelity on the selection split, which
fine-tuning never sees (the calibration images when there is no selection split; the
report states the result's fidelity on the held-out split); latency is measured on
this host when the host is the target and estimated otherwise. Among
candidates that meet every constraint the measured score decides (the profile's
objective weights); where the host is the target, a candidate slower than the float32
baseline is shipped only when no faster one meets the constraints. If none meets them,
the closest ships and its misses are named.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from compressor.core.artifact import Artifact
from compressor.core.constraints import Constraints, Miss, measured_fidelity
from compressor.core.context import RunContext
from compressor.core.errors import CompressorError
from compressor.core.strategy import Strategy, StrategyConfig
from compressor.engine.runner import StageCache, apply_step
from compressor.litert.measurement import measure_tflite
from compressor.litert.tflite_coverage import model_coverage
from compressor.planning.plan import StageSpec
from compressor.planning.planner import Candidate, PlanningResult
from compressor.reports.report_model import Outcome, outcome_text

# Host latencies within this fraction of each other are the same speed, at least; the
# search measures the host's timing noise and uses it where it is larger.
LATENCY_NOISE = 0.03
BASELINE = "float32 baseline"  # the baseline's label among latency tiers
# Rounds of the side-by-side timing that decides between candidates: one candidate is
# faster than another only when it is faster, by more than LATENCY_NOISE, in 7 of the 9
# rounds (two equally fast models pass that test in under 1 of 10 comparisons; a real
# 2x difference fails it only when three rounds are disturbed).
SIDE_BY_SIDE_ROUNDS = 9
SHORTLIST_CHEAP = 6
SHORTLIST_COSTLY = 3

Step = tuple[StageSpec, Strategy, StrategyConfig]


@dataclass
class MeasuredCandidate:
    """One candidate pipeline and what building and measuring it showed."""

    label: str
    steps: list[Step]
    fine_tune_stages: int
    predicted: dict[str, Any]
    cheap: bool = True
    numbers: dict[str, Any] | None = None
    fidelity_metric: str = ""
    fidelity: float | None = None
    latency_ms: float | None = None
    misses: list[Miss] = field(default_factory=list)
    seconds: float = 0.0
    outcome: Outcome = Outcome.NOT_TRIED
    reason: str = ""  # why: the misses, the failure, what it lost to
    score: float | None = None
    artifact: Artifact | None = None
    restored: bool = False  # measured before an interrupt, read back from the run directory
    latency_tier_ms: float | None = None  # the latency it was ranked at (``latency_tiers``)

    @property
    def measured(self) -> bool:
        """True when the candidate was built and measured."""
        return self.numbers is not None

    @property
    def status(self) -> str:
        """The outcome and its reason as one line ("chosen: meets every constraint")."""
        return outcome_text(self.outcome, self.reason)

    def decide(self, outcome: Outcome, reason: str = "") -> None:
        """Record what happened to this candidate, and why."""
        self.outcome, self.reason = outcome, reason

    @property
    def fully_delegated(self) -> bool:
        """True when the target's delegate runs every op of the measured ``.tflite``."""
        coverage = (self.numbers or {}).get("op_coverage") or {}
        return coverage.get("delegated_ops") == coverage.get("total_ops")

    @property
    def meets_constraints(self) -> bool:
        """True when measured and every constraint holds."""
        return self.measured and not self.misses

    def to_dict(self) -> dict[str, Any]:
        """The candidate as report.json lists it."""
        numbers = self.numbers or {}
        return {
            "pipeline": self.label,
            "stages": [
                {"stage": spec.stage, "strategy": strategy.name, "params": config.model_dump()}
                for spec, strategy, config in self.steps
            ],
            "fine_tune_stages": self.fine_tune_stages,
            "outcome": self.outcome.value,
            "status": self.status,
            "predicted": self.predicted,
            "measured": {
                key: numbers[key]
                for key in (
                    "precision",
                    "size_bytes",
                    "gzip_bytes",
                    "host_latency_ms",
                    "fidelity",
                    "fidelity_metric",
                    "fidelity_output",
                    "fidelity_outputs",
                    "op_coverage",
                )
                if key in numbers
            },
            "estimated_latency_ms": numbers.get("estimated_latency_ms"),
            "objective_latency_ms": self.latency_ms,
            "fidelity_metric": self.fidelity_metric,
            "fidelity_value": self.fidelity,
            "misses": [miss.text() for miss in self.misses],
            "score": None if self.score is None else round(self.score, 4),
            "seconds": round(self.seconds, 2),
            "restored": self.restored,
            "latency_tier_ms": self.latency_tier_ms,
        }


@dataclass
class SearchResult:
    """The chosen candidate, every candidate considered, and how the choice was made."""

    chosen: MeasuredCandidate
    candidates: list[MeasuredCandidate]
    baseline: dict[str, Any]
    constraints: Constraints
    latency_kind: str
    seconds: float
    budget_seconds: float | None
    fidelity_split: str = "calibration"
    timing_noise: float | None = None
    baseline_tier_ms: float | None = None  # the float32 baseline's latency tier

    @property
    def met(self) -> bool:
        """True when the chosen candidate meets every constraint."""
        return self.chosen.meets_constraints

    def to_dict(self) -> dict[str, Any]:
        """The search as report.json records it."""
        return {
            "constraints": self.constraints.to_dict(),
            "met": self.met,
            "chosen": self.chosen.label,
            "misses": [miss.text() for miss in self.chosen.misses],
            "latency": self.latency_kind,
            "fidelity_split": f"{self.fidelity_split} (the report's result fidelity is on "
            "the held-out split)",
            "baseline": {
                key: self.baseline[key]
                for key in ("size_bytes", "gzip_bytes", "host_latency_ms", "estimated_latency_ms")
            },
            "seconds": round(self.seconds, 1),
            "budget_seconds": self.budget_seconds,
            "timing_noise": self.timing_noise,
            "baseline_latency_tier_ms": self.baseline_tier_ms,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def candidate_steps(candidate: Candidate) -> list[Step]:
    """A planner candidate as runnable steps (strategy configs with defaults filled in)."""
    steps = []
    for step in candidate.steps:
        config = step.strategy.Config.model_validate(step.params)
        spec = StageSpec(stage=step.stage, strategy=step.strategy.name, params=config.model_dump())
        steps.append((spec, step.strategy, config))
    return steps


def is_cheap(candidate: Candidate) -> bool:
    """Post-training and one conversion per stage (seconds): measured first, always.
    Fine-tuning and search-heavy stages (the mixed-precision loop) are costly."""
    return candidate.fine_tune_stages == 0 and candidate.conversions <= len(candidate.steps)


def shortlist(ranked: list[Candidate]) -> list[Candidate]:
    """The best-ranked cheap candidates, then the best costly ones."""
    cheap = [c for c in ranked if is_cheap(c)][:SHORTLIST_CHEAP]
    costly = [c for c in ranked if not is_cheap(c)][:SHORTLIST_COSTLY]
    return cheap + costly


def latency_tiers(
    latencies: dict[str, float],
    noise: float,
    rounds: dict[str, tuple[float, ...]] | None = None,
) -> dict[str, float]:
    """Each label's latency for ranking. Going from the fastest, a label joins the current
    tier (and is ranked at its fastest's latency) unless it is measurably slower than
    that fastest: with per-round timings taken side by side (``rounds``), slower by more
    than ``LATENCY_NOISE`` in all rounds but a quarter of them; otherwise
    slower by more than ``noise`` (a fraction). Timing noise then cannot reorder models
    that run equally fast."""
    rounds = rounds or {}
    tiers: dict[str, float] = {}
    anchor: str | None = None
    for label, _latency in sorted(latencies.items(), key=lambda item: (item[1], item[0])):
        if anchor is None or _measurably_slower(label, anchor, latencies, rounds, noise):
            anchor = label
        tiers[label] = latencies[anchor]
    return tiers


def _measurably_slower(
    label: str,
    than: str,
    latencies: dict[str, float],
    rounds: dict[str, tuple[float, ...]],
    noise: float,
) -> bool:
    mine, theirs = rounds.get(label, ()), rounds.get(than, ())
    if len(mine) > 1 and len(mine) == len(theirs):
        slower = sum(a > b * (1 + LATENCY_NOISE) for a, b in zip(mine, theirs, strict=True))
        # a quarter of the rounds may be disturbed (a busy core doubles a multi-threaded
        # invoke for a while)
        return slower >= len(mine) - len(mine) // 4
    return latencies[label] > latencies[than] * (1 + noise)


def _score(
    candidate: MeasuredCandidate,
    baseline: dict[str, Any],
    context: RunContext,
    ranked_latency: float | None = None,
) -> float:
    """The planner's score, on measured numbers (lower is better); ``ranked_latency`` is
    the candidate's latency tier (``latency_tiers``) where latencies were timed."""
    weights = context.profile.objective
    numbers = candidate.numbers or {}
    base_latency = _objective_latency(baseline, context) or 1.0
    latency = ranked_latency if ranked_latency is not None else candidate.latency_ms
    ratio = (latency or base_latency) / base_latency
    return (
        weights.latency * ratio
        + weights.size * numbers["gzip_bytes"] / baseline["gzip_bytes"]
        + weights.fidelity * (1.0 - (candidate.fidelity or 0.0))
        + weights.effort * candidate.fine_tune_stages
    )


def _objective_latency(numbers: dict[str, Any], context: RunContext) -> float | None:
    """Host latency where the host is the target, else the cost model's estimate."""
    if context.profile.runs_on_this_host():
        return numbers["host_latency_ms"]
    return numbers.get("estimated_latency_ms")


def measure_candidate(
    candidate: MeasuredCandidate,
    context: RunContext,
    cache: StageCache,
    reference: Any,
    images: Any,
    constraints: Constraints,
    runs: int,
) -> None:
    """Build ``candidate`` (re-using cached prefixes) and measure it on held-out images."""
    local = replace(
        context, model_info=context.original_model_info, notes=[], results={}, samples={}
    )
    start = time.perf_counter()
    artifact = Artifact.of_model(context.float_model)
    build = [step for step in candidate.steps if step[0].stage != "evaluate"]
    try:
        for index in range(len(build)):
            artifact, _seconds, _reused = apply_step(build, index, artifact, local, cache)
        if not artifact.is_tflite:
            raise CompressorError("the pipeline does not end in a .tflite")
        # LiteRT may refuse what a converter wrote (e.g. an int8 scale overflow): the
        # candidate fails, the search goes on.
        numbers, _outputs = measure_tflite(
            artifact.tflite_bytes,
            local,
            artifact.facts.get("precision", "float32"),
            reference,
            images,
            local.model_info,
            runs,
            split=context.images.choice_split,
            source_model=artifact.source_model,
        )
        coverage = model_coverage(artifact.tflite_bytes, context.profile)
    except CompressorError as exc:
        candidate.decide(Outcome.FAILED, exc.message)
        candidate.seconds = time.perf_counter() - start
        return
    numbers["op_coverage"] = coverage.to_dict()
    candidate.numbers = numbers
    candidate.artifact = artifact
    candidate.fidelity_metric, candidate.fidelity = measured_fidelity(numbers)
    candidate.latency_ms = _objective_latency(numbers, context)
    candidate.seconds = time.perf_counter() - start
    check_constraints(candidate, constraints)


def check_constraints(candidate: MeasuredCandidate, constraints: Constraints) -> None:
    """Set the candidate's misses and status from its measured numbers."""
    numbers = candidate.numbers or {}
    candidate.misses = constraints.misses(
        candidate.fidelity, candidate.latency_ms, numbers["size_bytes"], numbers["gzip_bytes"]
    )
    if candidate.misses:
        candidate.decide(Outcome.MISSES, "; ".join(miss.text() for miss in candidate.misses))
    else:
        candidate.decide(Outcome.MEETS)


def search_plans(
    planning: PlanningResult,
    context: RunContext,
    constraints: Constraints,
    cache: StageCache,
    budget_seconds: float | None = None,
    max_images: int = 64,
    runs: int = 10,
    on_candidate: Callable[[str, int, int], None] | None = None,
    store: Any = None,
) -> SearchResult:
    """Measure the shortlist cheapest first and choose on measurements. With ``store``
    (a ``SearchStore``) each candidate is recorded as it finishes, and candidates it
    already holds (measured before an interrupt) are read back, not measured again."""
    start = time.perf_counter()
    # Choosing between candidates is part of fitting the result: it uses the calibration
    # split, so the held-out fidelity the report states is never the selection's.
    images = context.images.choice[:max_images]
    reference = context.float_outputs("choice")[:max_images]
    split = context.images.choice_split
    baseline, _ = measure_tflite(
        context.float_tflite(),
        context,
        "float32",
        reference,
        images,
        context.original_model_info,
        runs,
        split=split,
        source_model=context.float_model,
    )
    candidates = [
        MeasuredCandidate(
            label=c.label,
            steps=candidate_steps(c),
            fine_tune_stages=c.fine_tune_stages,
            cheap=is_cheap(c),
            predicted={
                "estimated_latency_ms": round(c.latency_ms, 3),
                "estimated_ssim": round(c.ssim, 4),
                "estimated_gzip_bytes": c.gzip_bytes,
                **({"predicted_coverage": round(c.coverage.fraction, 4)} if c.coverage else {}),
            },
        )
        for c in shortlist(planning.ranked)
    ]
    total = len(candidates)
    for number, candidate in enumerate(candidates, start=1):
        if store is not None and store.restore(number, candidate):
            continue
        spent = time.perf_counter() - start
        if not candidate.cheap and any(c.meets_constraints for c in candidates):
            candidate.decide(Outcome.NOT_TRIED, "a cheaper candidate meets every constraint")
            continue
        if (
            budget_seconds is not None
            and spent > budget_seconds
            and any(c.measured for c in candidates)
        ):
            candidate.decide(Outcome.NOT_TRIED, f"search budget ({budget_seconds:g} s) spent")
            continue
        if on_candidate:
            on_candidate(candidate.label, number, total)
        measure_candidate(candidate, context, cache, reference, images, constraints, runs)
        if store is not None:
            store.save(number, candidate)
    measured = [c for c in candidates if c.measured]
    if not measured:
        reasons = "; ".join(f"{c.label}: {c.status}" for c in candidates)
        raise CompressorError(
            "no candidate pipeline could be built", reasons[:400] or "no candidates"
        )
    noise = None
    tiers: dict[str, float] = {}
    if context.profile.runs_on_this_host():
        noise, rounds = _retime_side_by_side(measured, baseline, context, images[0])
        for candidate in measured:
            check_constraints(candidate, constraints)
        timed = {c.label: c.latency_ms for c in measured if c.latency_ms is not None}
        tiers = latency_tiers({**timed, BASELINE: baseline["host_latency_ms"]}, noise, rounds)
    for candidate in measured:
        candidate.latency_tier_ms = tiers.get(candidate.label)
        candidate.score = _score(candidate, baseline, context, candidate.latency_tier_ms)
    chosen = _choose(measured, baseline, context, tiers)
    _explain_losers(measured, chosen, baseline, context, tiers)
    return SearchResult(
        chosen=chosen,
        candidates=candidates,
        baseline=baseline,
        constraints=constraints,
        latency_kind=(
            "measured on this host (the target)"
            if context.profile.runs_on_this_host()
            else f"estimated for {context.profile.name} (the host is not the target)"
        ),
        seconds=time.perf_counter() - start,
        budget_seconds=budget_seconds,
        fidelity_split=split,
        timing_noise=None if noise is None else round(noise, 4),
        baseline_tier_ms=tiers.get(BASELINE),
    )


def _retime_side_by_side(
    measured: list[MeasuredCandidate],
    baseline: dict[str, Any],
    context: RunContext,
    example: Any,
) -> tuple[float, dict[str, tuple[float, ...]]]:
    """Time the baseline and every candidate that meets the constraints round-robin, so the
    latency comparison that decides between them is fair on a noisy host; returns the
    timing noise this measured (``timing_noise``) and each label's per-round medians
    (the baseline's under ``BASELINE``)."""
    from compressor.litert.tflite_runtime import interleaved_stats

    contenders = [c for c in measured if c.meets_constraints]
    if not contenders:
        return LATENCY_NOISE, {}
    models = {BASELINE: context.float_tflite()}
    # a candidate whose file is the baseline's (plain float32) shares its timing
    same = {c.label for c in contenders if c.artifact.tflite_bytes == models[BASELINE]}
    models.update({c.label: c.artifact.tflite_bytes for c in contenders if c.label not in same})
    stats = interleaved_stats(
        models, example, context.profile.threads, rounds=SIDE_BY_SIDE_ROUNDS, runs=3
    )
    baseline["host_latency_ms"] = round(stats[BASELINE].median_ms, 3)
    rounds = {BASELINE: stats[BASELINE].round_medians_ms}
    for candidate in contenders:
        timed = stats[BASELINE if candidate.label in same else candidate.label]
        candidate.numbers["host_latency_ms"] = round(timed.median_ms, 3)
        candidate.latency_ms = candidate.numbers["host_latency_ms"]
        rounds[candidate.label] = timed.round_medians_ms
    return timing_noise(list(stats.values())), rounds


def timing_noise(stats: list[Any]) -> float:
    """How far apart repeated timings of one model fall on this host now: the median,
    over the models timed, of the spread of their per-round medians relative to their
    median (at least ``LATENCY_NOISE``). Latencies closer than this are the same speed."""
    spreads = [
        (max(s.round_medians_ms) - min(s.round_medians_ms)) / s.median_ms
        for s in stats
        if len(s.round_medians_ms) > 1 and s.median_ms > 0
    ]
    measured = float(sorted(spreads)[len(spreads) // 2]) if spreads else 0.0
    return max(LATENCY_NOISE, measured)


def _not_slower(
    candidate: MeasuredCandidate, baseline: dict[str, Any], tiers: dict[str, float]
) -> bool:
    """True when the candidate's latency tier is not slower than the baseline's."""
    if tiers:
        return tiers.get(candidate.label, candidate.latency_ms) <= tiers[BASELINE]
    return candidate.numbers["host_latency_ms"] <= baseline["host_latency_ms"] * (1 + LATENCY_NOISE)


def _choose(
    measured: list[MeasuredCandidate],
    baseline: dict[str, Any],
    context: RunContext,
    tiers: dict[str, float],
) -> MeasuredCandidate:
    # A graph cut sends the rest of the model to the CPU, which no estimate accounts
    # for: fully delegated candidates come first, as in the planner.
    feasible = [c for c in measured if c.meets_constraints]
    if not feasible:
        # the closest: smallest summed relative miss, then score
        return min(
            measured,
            key=lambda c: (not c.fully_delegated, sum(m.relative for m in c.misses), c.score),
        )
    pool = [c for c in feasible if c.fully_delegated] or feasible
    if context.profile.runs_on_this_host():
        pool = [c for c in feasible if _not_slower(c, baseline, tiers)] or feasible
    # equal scores: the smaller file, then the higher fidelity, then the simpler pipeline
    return min(
        pool,
        key=lambda c: (
            round(c.score, 9),
            c.numbers["gzip_bytes"],
            -(c.fidelity or 0.0),
            c.fine_tune_stages,
            len(c.steps),
            c.label,
        ),
    )


def _explain_losers(
    measured: list[MeasuredCandidate],
    chosen: MeasuredCandidate,
    baseline: dict[str, Any],
    context: RunContext,
    tiers: dict[str, float],
) -> None:
    host_target = context.profile.runs_on_this_host()
    for candidate in measured:
        if candidate is chosen:
            candidate.decide(
                Outcome.CHOSEN,
                "meets every constraint"
                if candidate.meets_constraints
                else "closest to the constraints",
            )
            continue
        if not candidate.meets_constraints:
            continue  # its status already names the misses
        if chosen.fully_delegated and not candidate.fully_delegated:
            coverage = candidate.numbers["op_coverage"]
            candidate.decide(
                Outcome.LOST, f"the graph is cut at {coverage['cut_at']} on {context.profile.name}"
            )
        elif (
            host_target
            and not _not_slower(candidate, baseline, tiers)
            and _not_slower(chosen, baseline, tiers)
        ):
            candidate.decide(
                Outcome.LOST,
                f"slower than float32 on this host ({candidate.latency_ms:.3g} vs "
                f"{baseline['host_latency_ms']:.3g} ms)",
            )
        else:
            candidate.decide(
                Outcome.LOST,
                f"meets every constraint, scores worse "
                f"({candidate.score:.3f} vs {chosen.score:.3f})",
            )
