"""The strategy contract every plugin implements, and the registry plugins add to.

A strategy fills one pipeline stage. Its needs and effects are declared so the
planner can reason about it without TensorFlow; only ``apply`` does real work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from compressor.core.errors import PlanError, PluginError, error_line
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
    # no Keras model; see compressor/litert/frozen_graph.py.
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
        self.failed_plugins: dict[str, str] = {}  # plugin -> why it did not load/register

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
            import difflib

            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            if self.failed_plugins:
                failed = "; ".join(f"'{p}' ({why})" for p, why in self.failed_plugins.items())
                hint += f"plugins that failed to load, one may provide it: {failed}; "
            raise PlanError(
                f"unknown strategy '{name}'",
                hint + f"known strategies: {', '.join(sorted(self._entries))}",
            )
        return self._entries[name].strategy

    def plugin_of(self, name: str) -> str:
        """Name of the plugin that registered strategy ``name``."""
        return self._entries[name].plugin

    def drop_plugin(self, plugin: str) -> None:
        """Forget what ``plugin`` registered (it failed part-way through)."""
        self._entries = {k: e for k, e in self._entries.items() if e.plugin != plugin}

    def for_stage(self, stage: str) -> list[Strategy]:
        """Strategies of one stage, in registration order."""
        return [e.strategy for e in self._entries.values() if e.strategy.stage == stage]

    def entries(self) -> list[RegisteredStrategy]:
        """All registrations, in registration order."""
        return list(self._entries.values())


class StrategyFault(Exception):
    """A plugin's strategy raised in a planning method; it is dropped, not the plan."""


class GuardedStrategy:
    """A strategy as planning calls it. An exception in the plugin's ``candidate_params``,
    ``supports``, ``estimate`` or ``rewrite_info`` is recorded in ``faults`` (naming the
    plugin and the strategy) and drops this strategy only: no parameter sets, a hard
    "no", or a ``StrategyFault`` the planner skips the candidate for. Every other
    attribute is the strategy's own."""

    def __init__(self, strategy: Strategy, plugin: str, faults: dict[str, str]) -> None:
        self._strategy, self._plugin, self._faults = strategy, plugin, faults

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_strategy", "_plugin", "_faults"):
            raise AttributeError(name)  # copy/pickle probes, and before __init__ ran
        return getattr(self._strategy, name)

    @property
    def unwrapped(self) -> Strategy:
        """The plugin's strategy object."""
        return self._strategy

    def _fault(self, method: str, exc: Exception) -> str:
        text = error_line(exc, fallback="")[:200]
        message = (
            f"plugin '{self._plugin}': strategy '{self._strategy.name}' failed in "
            f"{method}: {type(exc).__name__}{': ' + text if text else ''}"
        )
        self._faults.setdefault(self._strategy.name, message)
        return message

    def candidate_params(self, profile: HardwareProfile, info: ModelInfo) -> list[dict[str, Any]]:
        """The strategy's parameter sets; none when it raises."""
        try:
            return self._strategy.candidate_params(profile, info)
        except Exception as exc:
            self._fault("candidate_params", exc)
            return []

    def supports(
        self, profile: HardwareProfile, info: ModelInfo, pipeline: PipelineView
    ) -> Support:
        """The strategy's verdict; a hard "no" naming the failure when it raises."""
        try:
            return self._strategy.supports(profile, info, pipeline)
        except Exception as exc:
            return Support.no(self._fault("supports", exc))

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        """The strategy's estimate; ``StrategyFault`` when it raises."""
        try:
            return self._strategy.estimate(profile, info, params, pipeline)
        except Exception as exc:
            raise StrategyFault(self._fault("estimate", exc)) from exc

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        """The strategy's rewritten facts; ``StrategyFault`` when it raises."""
        try:
            return self._strategy.rewrite_info(info, params)
        except Exception as exc:
            raise StrategyFault(self._fault("rewrite_info", exc)) from exc


class GuardedRegistry:
    """A registry whose strategies are ``GuardedStrategy`` objects (one per strategy,
    so identity holds within a planning pass); ``faults`` collects what failed."""

    def __init__(self, registry: StrategyRegistry) -> None:
        self.registry = registry
        self.faults: dict[str, str] = {}
        self._guarded = {
            entry.strategy.name: GuardedStrategy(entry.strategy, entry.plugin, self.faults)
            for entry in registry.entries()
        }

    def for_stage(self, stage: str) -> list[Any]:
        """Guarded strategies of one stage, in registration order."""
        return [self._guarded[s.name] for s in self.registry.for_stage(stage)]

    def get(self, name: str) -> Any:
        """The guarded strategy named ``name`` (PlanError when unknown)."""
        return self._guarded[self.registry.get(name).name]

    def plugin_of(self, name: str) -> str:
        """Name of the plugin that registered strategy ``name``."""
        return self.registry.plugin_of(name)


def check_support(
    strategy: Strategy, profile: HardwareProfile, info: ModelInfo, pipeline: PipelineView
) -> Support:
    """``strategy.supports(...)`` after the checks every strategy shares: a strategy that
    needs Keras layers does not apply to a frozen graph."""
    from compressor.core.model_info import FROZEN_KEY

    frozen = info.extra.get(FROZEN_KEY)
    if frozen and not strategy.accepts_frozen_graph:
        return Support.no(f"not applicable: frozen graph ({frozen}); it needs a Keras model")
    return strategy.supports(profile, info, pipeline)
