"""The planner: enumerate pipelines from registered strategies, reject what cannot run,
estimate each with the cost model, and pick the lowest score within the budgets."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from compressor.core.constraints import Constraints, Miss
from compressor.core.errors import PlanError
from compressor.core.model_info import ModelInfo
from compressor.core.profiles import HardwareProfile
from compressor.core.strategy import (
    REQUIRED_STAGES,
    STAGES,
    Estimate,
    GuardedRegistry,
    PipelineView,
    Strategy,
    StrategyFault,
    StrategyRegistry,
    check_support,
)
from compressor.planning.cost_model import (
    estimate_gzip_bytes,
    estimate_latency_ms,
    estimate_size_bytes,
)
from compressor.planning.coverage import Coverage
from compressor.planning.op_prediction import predict_coverage
from compressor.planning.plan import Plan, StageSpec


@dataclass
class Step:
    """A chosen strategy and parameters for one stage of a candidate."""

    stage: str
    strategy: Strategy
    params: dict[str, Any]
    estimate: Estimate

    @property
    def label(self) -> str:
        """Strategy name with its planner-chosen params, e.g. magnitude-prune(0.5)."""
        if not self.params:
            return self.strategy.name
        values = ",".join(f"{v}" for v in self.params.values())
        return f"{self.strategy.name}({values})"


@dataclass
class Candidate:
    """One feasible pipeline with its predicted effect and score."""

    steps: list[Step]
    precision: str
    size_bytes: int
    gzip_bytes: int
    latency_ms: float
    ssim: float
    fine_tune_stages: int
    coverage: Coverage | None = None  # predicted delegate coverage of the converted model
    conversions: int = 0  # conversions the pipeline may run (a tie-breaker: cheaper first)
    score: float = 0.0
    budget_misses: list[str] = field(default_factory=list)
    miss_total: float = 0.0  # summed relative miss of the budgets (0 within budget)

    @property
    def fully_delegated(self) -> bool:
        """True when every predicted op runs on the target's delegate."""
        return self.coverage is None or self.coverage.delegated_ops == self.coverage.total_ops

    def step(self, stage: str) -> Step | None:
        """The step filling ``stage``, if any."""
        return next((s for s in self.steps if s.stage == stage), None)

    @property
    def label(self) -> str:
        """Readable pipeline, e.g. ``tfmot-qat -> tflite-full-int8``."""
        return " -> ".join(s.label for s in self.steps if s.stage != "evaluate")

    @property
    def length(self) -> int:
        """Number of stages that act on the model (evaluate not counted)."""
        return sum(1 for s in self.steps if s.stage != "evaluate")


@dataclass
class Rejection:
    """A strategy the planner could not or would not use, with the reason."""

    stage: str
    strategy: str
    reason: str


@dataclass
class PlanningResult:
    """Everything `compressor plan` shows: the choice, the runners-up and the rejections."""

    profile: HardwareProfile
    info: ModelInfo
    chosen: Candidate
    ranked: list[Candidate]
    baseline: Candidate
    rejections: list[Rejection]
    reasons: dict[str, str]
    warnings: list[str]


def _stage_options(
    registry: StrategyRegistry, profile: HardwareProfile, info: ModelInfo
) -> list[list[tuple[Strategy, dict[str, Any]] | None]]:
    options = []
    for stage in STAGES:
        choices: list[tuple[Strategy, dict[str, Any]] | None] = []
        if stage not in REQUIRED_STAGES:
            choices.append(None)
        for strategy in registry.for_stage(stage):
            if not strategy.auto_plan:
                continue
            for params in strategy.candidate_params(profile, info):
                choices.append((strategy, params))
        options.append(choices)
    return options


def _evaluate_candidate(profile: HardwareProfile, info: ModelInfo, view: PipelineView) -> Candidate:
    seen, final_info = view.infos(info)
    steps = [
        Step(stage, strategy, params, strategy.estimate(profile, seen[stage], params, view))
        for stage, (strategy, params) in view.steps.items()
    ]
    quantize = next(s for s in steps if s.stage == "quantize")
    precision = quantize.estimate.precision or "float32"
    mac_factor = gzip_factor = quant_scale = 1.0
    other_loss = 0.0
    for step in steps:
        mac_factor *= step.estimate.mac_factor
        gzip_factor *= step.estimate.gzip_factor
        quant_scale *= step.estimate.quant_loss_scale
        if step.stage != "quantize":
            other_loss += step.estimate.ssim_loss
    loss = other_loss + quantize.estimate.ssim_loss * quant_scale
    size = estimate_size_bytes(final_info, precision)
    return Candidate(
        steps=steps,
        precision=precision,
        size_bytes=size,
        gzip_bytes=estimate_gzip_bytes(size, precision, gzip_factor),
        latency_ms=estimate_latency_ms(profile, final_info, precision, mac_factor),
        ssim=max(0.0, 1.0 - loss),
        fine_tune_stages=sum(1 for s in steps if s.estimate.fine_tunes),
        coverage=predict_coverage(final_info, profile, precision, _io_type(profile, precision)),
        conversions=sum(s.estimate.conversions for s in steps),
    )


def _io_type(profile: HardwareProfile, precision: str) -> str:
    """I/O type of the converted model (tflite-full-int8's io_type=auto rule)."""
    return profile.int8_io_type() if precision == "int8" else "float32"


def _coverage_fields(chosen: Candidate, baseline: Candidate) -> dict[str, Any]:
    """Predicted delegate coverage of the chosen pipeline and of the float baseline."""
    fields: dict[str, Any] = {}
    if chosen.coverage:
        fields["predicted_coverage"] = round(chosen.coverage.fraction, 4)
    if baseline.coverage:
        fields["baseline_predicted_coverage"] = round(baseline.coverage.fraction, 4)
    return fields


def _score(candidate: Candidate, baseline: Candidate, profile: HardwareProfile) -> float:
    weights = profile.objective
    return (
        weights.latency * candidate.latency_ms / baseline.latency_ms
        + weights.size * candidate.gzip_bytes / baseline.gzip_bytes
        + weights.fidelity * (1.0 - candidate.ssim)
        + weights.effort * candidate.fine_tune_stages
    )


def _budget_misses(candidate: Candidate, profile: HardwareProfile) -> list[Miss]:
    """The profile's budgets the estimates miss — the same check (``Constraints.misses``)
    the search applies to measured candidates, so both agree on what "closest" means."""
    budgets = profile.budgets
    constraints = Constraints(
        min_fidelity=budgets.fidelity_floor,
        max_latency_ms=budgets.max_latency_ms,
        max_size_mb=budgets.max_size_mb,
        max_gzip_mb=budgets.max_gzip_mb,
    )
    return constraints.misses(
        candidate.ssim, candidate.latency_ms, candidate.size_bytes, candidate.gzip_bytes
    )


def _ms(value: float) -> str:
    return f"{value:.3g}"


def _mb(value: int) -> str:
    return f"{value / 1e6:.3g}"


def _shown_numbers(candidate: Candidate) -> tuple[str, ...]:
    """The estimates as the plan prints them (equal tuples read as equal numbers)."""
    coverage = f"{candidate.coverage.fraction:.0%}" if candidate.coverage else "-"
    return (_ms(candidate.latency_ms), _mb(candidate.gzip_bytes), f"{candidate.ssim:.4f}", coverage)


def _delta(chosen: Candidate, other: Candidate) -> str:
    text = (
        f"est. {_ms(chosen.latency_ms)} vs {_ms(other.latency_ms)} ms, "
        f"est. gzip {_mb(chosen.gzip_bytes)} vs {_mb(other.gzip_bytes)} MB, "
        f"est. SSIM {chosen.ssim:.4f} vs {other.ssim:.4f}"
    )
    if chosen.coverage and other.coverage and chosen.fully_delegated != other.fully_delegated:
        text += (
            f", delegate coverage {chosen.coverage.fraction:.0%} vs {other.coverage.fraction:.0%}"
        )
    return text


def _comparison(chosen: Candidate, rival: Candidate, rival_label: str) -> str:
    """Why ``chosen`` ranks above ``rival``; a tie is called a tie, never 'beats X vs X'."""
    if _shown_numbers(chosen) == _shown_numbers(rival):
        if chosen.length < rival.length:
            return f"ties with {rival_label} on every estimate; the shorter pipeline wins"
        return f"ties with {rival_label} on every estimate (order by name decides)"
    return f"beats {rival_label}: {_delta(chosen, rival)}"


def _explain(chosen: Candidate, ranked: list[Candidate]) -> dict[str, str]:
    """Per stage: why this choice, against the best-ranked pipeline that differs there
    (named by its full label, so the comparison is between whole pipelines)."""
    reasons = {}
    for stage in STAGES:
        mine = chosen.step(stage)
        mine_label = mine.label if mine else None
        rival = next(
            (
                c
                for c in ranked
                if c is not chosen
                and ((c.step(stage).label if c.step(stage) else None) != mine_label)
            ),
            None,
        )
        note = mine.estimate.note if mine else ""
        if rival is None:
            if mine:
                reasons[stage] = note or "only feasible choice"
            continue
        text = _comparison(chosen, rival, rival.label)  # whole pipelines, full labels
        if mine:
            reasons[stage] = f"{note}; {text}" if note else text
        else:
            reasons[stage] = f"skipped: {text}"
    return reasons


def plan_pipeline(
    profile: HardwareProfile, info: ModelInfo, registry: StrategyRegistry
) -> PlanningResult:
    """Choose the best pipeline for ``info`` on ``profile`` from ``registry``'s strategies.

    A strategy whose planning code raises is dropped (named, with its plugin, in the
    warnings and rejections); the others are planned as usual."""
    guarded = GuardedRegistry(registry)
    registry = guarded  # every strategy call below goes through the guard
    candidates: list[Candidate] = []
    for combo in itertools.product(*_stage_options(registry, profile, info)):
        view = PipelineView()
        for stage, choice in zip(STAGES, combo, strict=True):
            if choice is not None:
                view.steps[stage] = choice
        try:
            if _first_failure(profile, info, view) is None:
                candidates.append(_evaluate_candidate(profile, info, view))
        except StrategyFault:
            continue
    if not candidates:
        reasons = {
            f"{strategy.name}: {support.reason}"
            for choices in _stage_options(registry, profile, info)
            for choice in choices
            if choice is not None
            for strategy in [choice[0]]
            for support in [
                check_support(strategy, profile, info, PipelineView({strategy.stage: choice}))
            ]
            if not support.ok
        }
        raise PlanError(
            f"no feasible pipeline for profile {profile.name}",
            "; ".join(sorted(reasons)[:4]) or "install a plugin with strategies for this target",
        )
    baseline = _baseline(profile, info)
    for candidate in candidates:
        candidate.score = _score(candidate, baseline, profile)
        misses = _budget_misses(candidate, profile)
        candidate.budget_misses = [f"est. {miss.text()}" for miss in misses]
        candidate.miss_total = sum(miss.relative for miss in misses)
    # Within budget first, then fully delegated (a fallback op splits the graph and
    # costs a CPU round trip the latency model does not see), then — outside the budgets —
    # the closest to them (summed relative miss, as the search picks among measured
    # candidates), then score; on a tie the shorter pipeline wins (a stage with no
    # predicted effect never earns its place).
    ranked = sorted(
        candidates,
        key=lambda c: (
            bool(c.budget_misses),
            not c.fully_delegated,
            round(c.miss_total, 3),
            round(c.score, 9),
            c.length,
            c.conversions,
            c.label,
        ),
    )
    chosen = ranked[0]
    warnings = [w for w in (profile.isa_warning(),) if w]
    warnings += [f"{fault}; dropped from planning" for fault in guarded.faults.values()]
    if chosen.budget_misses:
        warnings.append(
            f"no pipeline meets {profile.name}'s budgets; "
            f"closest: {'; '.join(chosen.budget_misses)}"
        )
    return PlanningResult(
        profile=profile,
        info=info,
        chosen=chosen,
        ranked=ranked,
        baseline=baseline,
        rejections=_rejections(registry, profile, info, chosen, ranked, guarded.faults),
        reasons=_explain(chosen, ranked),
        warnings=warnings,
    )


def _first_failure(
    profile: HardwareProfile, info: ModelInfo, view: PipelineView
) -> tuple[str, Strategy, str] | None:
    """The first step of ``view`` that cannot run (quantize checked first), if any."""
    seen, _final = view.infos(info)
    order = sorted(view.steps.items(), key=lambda item: item[0] != "quantize")
    for stage, (strategy, _params) in order:
        support = check_support(strategy, profile, seen[stage], view)
        if not support.ok:
            return stage, strategy, support.reason
    return None


def _rejections(
    registry: StrategyRegistry,
    profile: HardwareProfile,
    info: ModelInfo,
    chosen: Candidate,
    ranked: list[Candidate],
    faults: dict[str, str],
) -> list[Rejection]:
    """Why each unused strategy is not in the chosen pipeline: put it in, see what breaks."""
    rejections = []
    options = _stage_options(registry, profile, info)
    for stage, choices in zip(STAGES, options, strict=True):
        mine = chosen.step(stage)
        for choice in choices:
            if choice is None:
                continue
            strategy, params = choice
            label = Step(stage, strategy, params, Estimate()).label
            if mine is not None and mine.label == label:
                continue
            view = PipelineView({s.stage: (s.strategy, s.params) for s in chosen.steps})
            view.steps[stage] = choice
            view.steps = {k: view.steps[k] for k in STAGES if k in view.steps}
            try:
                failure = _first_failure(profile, info, view)
            except StrategyFault as fault:
                failure = (stage, strategy, str(fault))
            if strategy.name in faults:
                reason = faults[strategy.name]
            elif failure is not None:
                reason = (
                    failure[2]
                    if failure[1] is strategy
                    else (f"with it, {failure[1].name} cannot run: {failure[2]}")
                )
            else:
                best = next(c for c in ranked if (c.step(stage) and c.step(stage).label == label))
                if _shown_numbers(best) == _shown_numbers(chosen):
                    reason = "feasible, no predicted effect: ties with the chosen pipeline"
                else:
                    reason = f"feasible, scores worse ({best.score:.3f} vs {chosen.score:.3f}"
                    others = [s.label for s in best.steps if s.stage not in (stage, "evaluate")]
                    if others:
                        reason += f", best with it: {best.label}"
                    reason += "): " + _delta(best, chosen)
            rejections.append(Rejection(stage, label, reason))
    listed = {r.strategy.split("(")[0] for r in rejections}
    for name, fault in faults.items():
        if name not in listed:  # it raised before offering any parameters
            stage = registry.registry.get(name).stage
            rejections.append(Rejection(stage, name, fault))
    return rejections


def _baseline(profile: HardwareProfile, info: ModelInfo) -> Candidate:
    """The float32 model as converted with no compression (the reference for scores)."""
    size = estimate_size_bytes(info, "float32")
    # The baseline runs where the target runs it; integer-only targets never run it.
    precision = "float32" if profile.runs("float32") else next(iter(profile.precisions))
    return Candidate(
        steps=[],
        precision="float32",
        size_bytes=size,
        gzip_bytes=estimate_gzip_bytes(size, "float32"),
        latency_ms=estimate_latency_ms(profile, info, precision),
        ssim=1.0,
        fine_tune_stages=0,
        coverage=predict_coverage(info, profile, "float32"),
    )


def to_plan(result: PlanningResult, model: str | None) -> Plan:
    """The chosen candidate as an editable plan, with full default params filled in."""
    stages = []
    for step in result.chosen.steps:
        config = step.strategy.Config.model_validate(step.params)
        stages.append(
            StageSpec(
                stage=step.stage,
                strategy=step.strategy.name,
                params=config.model_dump(),
                why=result.reasons.get(step.stage),
            )
        )
    chosen = result.chosen
    return Plan(
        profile=result.profile.name,
        model=model,
        stages=stages,
        predicted={
            "precision": chosen.precision,
            "size_bytes": chosen.size_bytes,
            "gzip_bytes": chosen.gzip_bytes,
            "estimated_latency_ms": round(chosen.latency_ms, 3),
            "estimated_ssim": round(chosen.ssim, 4),
            "baseline_size_bytes": result.baseline.size_bytes,
            "baseline_estimated_latency_ms": round(result.baseline.latency_ms, 3),
            **_coverage_fields(chosen, result.baseline),
        },
        rejected=[
            {"stage": r.stage, "strategy": r.strategy, "reason": r.reason}
            for r in result.rejections
        ],
    )
