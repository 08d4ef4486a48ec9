"""The strategy contract every plugin implements, and the registry plugins add to.

A strategy fills one pipeline stage. Its needs and effects are declared so the
planner can reason about it without TensorFlow; only ``apply`` does real work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from compressor.core.errors import PlanError, PluginError
from compressor.core.validation import describe_validation_error

if TYPE_CHECKING:
    from compressor.core.artifact import Artifact
    from compressor.core.context import RunContext
    from compressor.core.model_info import ModelInfo
    from compressor.core.profiles import HardwareProfile

STAGES: tuple[str, ...] = ("train", "distill", "prune", "qat", "fuse", "quantize", "evaluate")
REQUIRED_STAGES: tuple[str, ...] = ("quantize", "evaluate")


class StrategyConfig(BaseModel):
    """Base of every strategy's parameters: strict, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Support:
    """Whether a strategy can run in a candidate pipeline, and why not."""

    ok: bool
    reason: str = ""
    hard: bool = True  # False: it could run, the planner just sees no gain (user plans may use it)

    @classmethod
    def yes(cls) -> Support:
        """The strategy can run."""
        return cls(True)

    @classmethod
    def no(cls, reason: str) -> Support:
        """The strategy cannot run, for ``reason``."""
        return cls(False, reason)

    @classmethod
    def not_needed(cls, reason: str) -> Support:
        """The strategy could run but brings nothing here; plans may still ask for it."""
        return cls(False, reason, hard=False)


@dataclass(frozen=True)
class Estimate:
    """Cheap, TF-free prediction of a stage's effect, combined by the cost model."""

    precision: str | None = None  # compute precision after this stage (quantize)
    gzip_factor: float = 1.0  # extra compressibility of the weights (sparsity, clustering)
    mac_factor: float = 1.0  # fraction of MACs left (structured changes)
    ssim_loss: float = 0.0  # expected SSIM loss vs the float model
    quant_loss_scale: float = 1.0  # how much this stage shrinks int8 quantization loss (QAT)
    fine_tunes: bool = False  # the stage trains (costs time, needs data)
    conversions: int = 0  # model conversions the stage may run (breaks ties: cheaper first)
    note: str = ""


@dataclass
class PipelineView:
    """A candidate pipeline as strategies see it while the planner checks them."""

    steps: dict[str, tuple[Strategy, dict[str, Any]]] = field(default_factory=dict)

    def has(self, stage: str) -> bool:
        """True when the pipeline fills ``stage``."""
        return stage in self.steps

    def infos(self, info: ModelInfo) -> tuple[dict[str, ModelInfo], ModelInfo]:
        """The model facts each stage sees (after earlier rewrites), and the final ones."""
        seen = {}
        for stage in STAGES:
            if stage in self.steps:
                seen[stage] = info
                strategy, params = self.steps[stage]
                info = strategy.rewrite_info(info, params)
        return seen, info

    @property
    def final_precision(self) -> str | None:
        """Compute precision the quantize stage produces, if chosen."""
        step = self.steps.get("quantize")
        return step[0].produces_precision if step else None


class Strategy:
    """Base class of all strategies (built-in and third-party).

    Subclasses set ``name``, ``stage``, ``summary`` and ``Config``, and implement
    ``apply``. They override ``supports``/``estimate``/``candidate_params`` to tell
    the planner when they fit and what they do.
    """

    name: ClassVar[str] = ""
    stage: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    produces_precision: ClassVar[str | None] = None
    auto_plan: ClassVar[bool] = True  # False: only used when a plan names it
    # True: also runs on a frozen graph (SavedModel, float .tflite), whose artifact has
    # no Keras model; see compressor/core/frozen_graph.py.
    accepts_frozen_graph: ClassVar[bool] = False

    def parse_params(self, params: Mapping[str, Any] | None, where: str) -> StrategyConfig:
        """Validate ``params`` against ``Config``; errors name ``where`` and the field."""
        try:
            return self.Config.model_validate(dict(params or {}))
        except ValidationError as exc:
            raise PlanError(
                describe_validation_error(exc, prefix=where),
                f"see `compressor plugins` for {self.name}'s parameters",
            ) from exc

    def candidate_params(self, profile: HardwareProfile, info: ModelInfo) -> list[dict[str, Any]]:
        """Parameter sets the planner should try for this profile and model."""
        return [{}]

    def supports(
        self, profile: HardwareProfile, info: ModelInfo, pipeline: PipelineView
    ) -> Support:
        """Whether this strategy can run for ``profile`` on ``info`` in ``pipeline``."""
        return Support.yes()

    def estimate(
        self,
        profile: HardwareProfile,
        info: ModelInfo,
        params: dict[str, Any],
        pipeline: PipelineView,
    ) -> Estimate:
        """Predict the stage's effect cheaply (no TensorFlow)."""
        return Estimate()

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        """Model facts after this stage, for strategies that change the architecture
        (distillation, norm swap); later stages are planned on the result."""
        return info

    def apply(self, artifact: Artifact, context: RunContext, config: StrategyConfig) -> Artifact:
        """Do the real work on ``artifact`` and return the stage's output."""
        raise NotImplementedError


@dataclass
class RegisteredStrategy:
    """A strategy instance and the plugin that registered it."""

    strategy: Strategy
    plugin: str


class StrategyRegistry:
    """Strategies by name; the host checks names and stages, plugins only call ``add``."""

    def __init__(self) -> None:
        self._entries: dict[str, RegisteredStrategy] = {}
        self.current_plugin = "compressor"

    def add(self, strategy_class: type[Strategy]) -> None:
        """Register a ``Strategy`` subclass (called from ``register_strategies``)."""
        plugin = self.current_plugin
        if not (isinstance(strategy_class, type) and issubclass(strategy_class, Strategy)):
            raise PluginError(
                f"plugin '{plugin}' registered {strategy_class!r}, "
                "which is not a Strategy subclass",
                "subclass compressor.core.strategy.Strategy",
            )
        name, stage = strategy_class.name, strategy_class.stage
        if not name:
            raise PluginError(f"plugin '{plugin}': {strategy_class.__name__} has no name")
        if stage not in STAGES:
            raise PluginError(
                f"plugin '{plugin}': strategy '{name}' has stage '{stage}'",
                f"expected one of {', '.join(STAGES)}",
            )
        if name in self._entries:
            raise PluginError(
                f"plugin '{plugin}': strategy '{name}' is already registered by "
                f"'{self._entries[name].plugin}'",
                "choose a unique strategy name",
            )
        self._entries[name] = RegisteredStrategy(strategy_class(), plugin)

    def get(self, name: str) -> Strategy:
        """The strategy named ``name``; a PlanError lists the known ones if absent."""
        if name not in self._entries:
            raise PlanError(
                f"unknown strategy '{name}'",
                f"known strategies: {', '.join(sorted(self._entries))}",
            )
        return self._entries[name].strategy

    def plugin_of(self, name: str) -> str:
        """Name of the plugin that registered strategy ``name``."""
        return self._entries[name].plugin

    def for_stage(self, stage: str) -> list[Strategy]:
        """Strategies of one stage, in registration order."""
        return [e.strategy for e in self._entries.values() if e.strategy.stage == stage]

    def entries(self) -> list[RegisteredStrategy]:
        """All registrations, in registration order."""
        return list(self._entries.values())


def check_support(
    strategy: Strategy, profile: HardwareProfile, info: ModelInfo, pipeline: PipelineView
) -> Support:
    """``strategy.supports(...)`` after the checks every strategy shares: a strategy that
    needs Keras layers does not apply to a frozen graph."""
    from compressor.core.frozen_graph import FROZEN_KEY

    frozen = info.extra.get(FROZEN_KEY)
    if frozen and not strategy.accepts_frozen_graph:
        return Support.no(f"not applicable: frozen graph ({frozen}); it needs a Keras model")
    return strategy.supports(profile, info, pipeline)
