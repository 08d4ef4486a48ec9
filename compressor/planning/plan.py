"""The plan: a readable, editable YAML file listing stages, strategies and parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compressor.core.constraints import Budgets
from compressor.core.errors import PlanError
from compressor.core.files import write_text_atomic
from compressor.core.model_info import ModelInfo
from compressor.core.profiles import HardwareProfile
from compressor.core.strategy import (
    REQUIRED_STAGES,
    STAGES,
    GuardedRegistry,
    PipelineView,
    StrategyConfig,
    StrategyFault,
    StrategyRegistry,
    check_support,
)
from compressor.core.validation import describe_validation_error, yaml_error_text

PLAN_VERSION = 1
PLAN_HEADER = (
    "# compressor plan: edit strategies or params, then `compressor run --plan THIS_FILE`.\n"
    "# Stages run in this order: " + " -> ".join(STAGES) + ". `why` and `predicted` are notes.\n"
)


class StageSpec(BaseModel):
    """One stage of a plan."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)
    why: str | None = None


class Plan(BaseModel):
    """A pipeline for one profile; ``predicted``/``rejected`` are informational."""

    model_config = ConfigDict(extra="forbid")
    version: int = PLAN_VERSION
    profile: str
    model: str | None = None
    stages: list[StageSpec] = Field(min_length=1)
    budgets: Budgets | None = None
    predicted: dict[str, Any] = Field(default_factory=dict)
    rejected: list[dict[str, str]] = Field(default_factory=list)

    def to_yaml(self) -> str:
        """YAML text with a header comment explaining how to edit it."""
        data = self.model_dump(exclude_none=True)
        return PLAN_HEADER + yaml.safe_dump(data, sort_keys=False, width=100)

    def save(self, path: Path) -> None:
        """Write the plan as YAML."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, self.to_yaml())


def load_plan(path: Path) -> Plan:
    """Read a plan YAML; every problem is a PlanError naming the file and field."""
    if not path.is_file():
        raise PlanError(f"plan file {path} does not exist", "create one with `compressor plan`")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PlanError(f"plan file {path}: {yaml_error_text(exc)}", "fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise PlanError(f"plan file {path}: expected a mapping with 'profile' and 'stages'")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"plan file {path}: {describe_validation_error(exc)}") from exc
    if plan.version != PLAN_VERSION:
        raise PlanError(f"plan file {path}: version {plan.version} is not {PLAN_VERSION}")
    return plan


def resolve_plan_steps(
    plan: Plan,
    registry: StrategyRegistry,
    profile: HardwareProfile,
    info: ModelInfo,
    source: str,
) -> list[tuple[StageSpec, Any, StrategyConfig]]:
    """Check a plan against the registered strategies and the model; return runnable steps.

    Checks what ``check_plan_stages`` checks, then the strategies' hard ``supports``
    conditions on this model.
    """
    steps, view = _checked_stages(plan, registry, source)
    guarded = GuardedRegistry(registry)
    view = PipelineView(
        {stage: (guarded.get(s.name), params) for stage, (s, params) in view.steps.items()}
    )
    try:
        seen, _final = view.infos(info)
    except StrategyFault as fault:
        raise PlanError(f"plan {source}: {fault}", "fix or uninstall the plugin") from fault
    for i, (spec, strategy, _config) in enumerate(steps):
        support = check_support(guarded.get(strategy.name), profile, seen[spec.stage], view)
        if not support.ok and support.hard:
            raise PlanError(
                f"plan {source}: stages[{i}] {spec.strategy} cannot run on {profile.name}: "
                f"{support.reason}"
            )
    return steps


def check_plan_stages(plan: Plan, registry: StrategyRegistry, source: str) -> None:
    """Check stage order, duplicates, required stages, each strategy's stage and
    params: everything that needs no model, so a bad plan fails before one is loaded."""
    _checked_stages(plan, registry, source)


def _checked_stages(
    plan: Plan, registry: StrategyRegistry, source: str
) -> tuple[list[tuple[StageSpec, Any, StrategyConfig]], PipelineView]:
    steps = []
    view = PipelineView()
    last_index = -1
    for i, spec in enumerate(plan.stages):
        where = f"plan {source}: stages[{i}]"
        if spec.stage not in STAGES:
            raise PlanError(
                f"{where}.stage: unknown stage '{spec.stage}'",
                f"expected one of {', '.join(STAGES)}",
            )
        index = STAGES.index(spec.stage)
        if index <= last_index:
            raise PlanError(
                f"{where}.stage: '{spec.stage}' is out of order or repeated",
                f"stages run in the order {' -> '.join(STAGES)}",
            )
        last_index = index
        try:
            strategy = registry.get(spec.strategy)
        except PlanError as exc:
            raise PlanError(f"{where}.strategy: {exc.message}", exc.hint) from exc
        if strategy.stage != spec.stage:
            raise PlanError(
                f"{where}: strategy '{spec.strategy}' belongs to stage '{strategy.stage}', "
                f"not '{spec.stage}'"
            )
        config = strategy.parse_params(spec.params, f"{where}.params")
        steps.append((spec, strategy, config))
        view.steps[spec.stage] = (strategy, config.model_dump())
    for required in REQUIRED_STAGES:
        if not view.has(required):
            raise PlanError(
                f"plan {source}: has no '{required}' stage",
                f"add a {required} stage (see `compressor plugins`)",
            )
    return steps, view
