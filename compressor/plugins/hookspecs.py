"""The compressor plugin API: every hook a plugin may implement.

Implement a hook with ``@compressor.plugins.hookimpl`` in a module or object, and
expose it through an entry point in group ``compressor``. Built-in strategies use
exactly these hooks. Implementations may take fewer arguments than the spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from compressor.plugins import PROJECT_NAME

if TYPE_CHECKING:
    from compressor.core.context import RunContext
    from compressor.core.keras_objects import KerasObjectRegistry
    from compressor.core.metrics import MetricRegistry
    from compressor.core.profiles import ProfileRegistry
    from compressor.core.strategy import Strategy, StrategyRegistry

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_strategies(registry: StrategyRegistry) -> None:
    """Register strategy classes: call ``registry.add(MyStrategy)`` for each.

    Called once when the plugin manager starts. A strategy name must be unique
    across all plugins; a duplicate is reported naming both plugins.
    """


@hookspec
def register_hardware_profiles(registry: ProfileRegistry) -> None:
    """Register hardware profiles: ``registry.add_file(path)`` or ``registry.add(profile)``.

    Called once when the plugin manager starts. Profiles are validated strictly;
    an invalid one is reported naming the plugin, file and field.
    """


@hookspec
def register_keras_objects(registry: KerasObjectRegistry) -> None:
    """Register custom Keras layers/objects so models using them load safely.

    Call ``registry.add(name, cls)``. Used whenever compressor loads a ``.keras`` file.
    """


@hookspec
def register_metrics(registry: MetricRegistry) -> None:
    """Register fidelity metrics: ``registry.add(Metric(name, task, primary, compute))``.

    ``compute(reference, test)`` gets one output of the float and the compressed model
    (float32 arrays, batch first) and returns scores; ``primary`` names the one in [0, 1]
    (1: as the float model) that the constraints see. ``--metric NAME`` (or
    ``--metric OUTPUT=NAME``) selects it; the first metric registered for a task is that
    task's default. Called once when the plugin manager starts.
    """


@hookspec
def on_run_started(context: RunContext) -> None:
    """Called when ``compressor run`` starts, after the run directory exists.

    ``context`` holds the profile, the plan, the run directory and the data.
    """


@hookspec
def on_stage_started(
    stage: str, strategy: Strategy, params: dict[str, Any], context: RunContext
) -> None:
    """Called just before a stage's strategy runs."""


@hookspec
def on_stage_finished(
    stage: str, strategy: Strategy, seconds: float, output_path: str, context: RunContext
) -> None:
    """Called after a stage finished; ``output_path`` is the stage's saved output."""


@hookspec
def on_run_finished(context: RunContext, report: dict[str, Any]) -> None:
    """Called once the run's ``report.json`` is written; ``report`` is its content, already
    checked against ``compressor.api.Report`` (``Report.model_validate(report)`` gives the
    typed view)."""
