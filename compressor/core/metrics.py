"""Fidelity metrics as plugins, and the judge that scores every output of a model.

A ``Metric`` turns the float and the compressed model's values of one output into
scores; its ``primary`` score (in [0, 1], higher is closer) is what the constraints see.
Plugins add metrics through the ``register_metrics`` hook (the built-in ones are
registered the same way, by ``compressor.strategies.metrics``). The ``FidelityJudge``
picks each output's task (``--task`` or the guess of ``core.tasks``) and metric
(``--metric`` or the task's first registered metric), scores every output and takes the
worst output's primary score as the model's fidelity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compressor.core.errors import CompressorError, ModelError, PluginError
from compressor.core.outputs import ModelOutputs
from compressor.core.tasks import TASKS, TaskChoice, guess_task

Scores = dict[str, float]


@dataclass(frozen=True)
class Metric:
    """One way to score an output: ``compute(reference, test)`` → scores (both arrays
    batch first, float32), of which ``primary`` is in [0, 1] with 1 meaning identical.
    ``accepts(shape)`` returns why an output of that shape (batch first) cannot be read,
    or None; ``uninformative(scores)`` why the images gave the output nothing to do.
    A metric of ``arity`` 2 reads an output pair (boxes, scores): ``compute`` then gets
    two (boxes, scores) tuples."""

    name: str
    task: str
    primary: str
    compute: Callable[[np.ndarray, np.ndarray], Scores]
    summary: str = ""
    accepts: Callable[[tuple[int, ...]], str | None] = field(default=lambda shape: None)
    uninformative: Callable[[Scores], str | None] = field(default=lambda scores: None)
    arity: int = 1


class MetricRegistry:
    """Metrics by name, in registration order (built-ins first)."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._plugins: dict[str, str] = {}
        self.current_plugin = "compressor"

    def add(self, metric: Metric) -> None:
        """Register ``metric``; its name must be unique and its task one of ``TASKS``."""
        if metric.name in self._metrics:
            raise PluginError(
                f"plugin '{self.current_plugin}': metric '{metric.name}' is already "
                f"registered by plugin '{self._plugins[metric.name]}'"
            )
        if metric.task not in TASKS:
            raise PluginError(
                f"plugin '{self.current_plugin}': metric '{metric.name}' has task "
                f"'{metric.task}'; expected one of {', '.join(TASKS)}"
            )
        self._metrics[metric.name] = metric
        self._plugins[metric.name] = self.current_plugin

    def drop_plugin(self, plugin: str) -> None:
        """Forget what a plugin that failed had registered."""
        for name in [n for n, p in self._plugins.items() if p == plugin]:
            del self._metrics[name], self._plugins[name]

    def get(self, name: str) -> Metric:
        """The metric ``name``; a one-line error listing the known ones otherwise."""
        if name not in self._metrics:
            raise CompressorError(
                f"--metric: no metric named '{name}'",
                f"known metrics: {', '.join(self._metrics)}",
            )
        return self._metrics[name]

    def for_task(self, task: str, arity: int = 1) -> Metric:
        """The first metric registered for ``task`` (reading ``arity`` outputs)."""
        for metric in self._metrics.values():
            if metric.task == task and metric.arity == arity:
                return metric
        raise CompressorError(f"no metric is registered for task '{task}'")

    def plugin_of(self, name: str) -> str:
        """Which plugin registered metric ``name``."""
        return self._plugins[name]

    def __iter__(self) -> Any:
        return iter(self._metrics.values())


@dataclass(frozen=True)
class OutputScore:
    """One output judged: its task (and why), the metric and its scores."""

    output: str
    task: str
    task_reason: str
    metric: str
    primary: str
    scores: Scores
    warning: str | None = None

    @property
    def value(self) -> float:
        """The primary score (0 for NaN: a broken output never passes)."""
        value = float(self.scores[self.primary])
        return 0.0 if np.isnan(value) else value

    def to_dict(self) -> dict[str, Any]:
        """As report.json's ``fidelity_outputs`` entries hold it."""
        return {
            "task": self.task,
            "task_reason": self.task_reason,
            "metric": self.metric,
            "primary": self.primary,
            "scores": dict(self.scores),
        }


@dataclass(frozen=True)
class Judgement:
    """Every output's score; the model's fidelity is the worst output's."""

    outputs: tuple[OutputScore, ...]

    @property
    def worst(self) -> OutputScore:
        """The output with the lowest primary score (the first on ties)."""
        return min(self.outputs, key=lambda score: score.value)

    @property
    def value(self) -> float:
        """The model's fidelity: the worst output's primary score."""
        return self.worst.value

    def numbers(self) -> dict[str, Any]:
        """Fields of a measurement: ``fidelity`` (the worst output's scores),
        ``fidelity_metric`` (its primary key), ``fidelity_output``, per output
        ``fidelity_outputs``, and ``fidelity_warnings``."""
        worst = self.worst
        return {
            "fidelity": dict(worst.scores),
            "fidelity_metric": worst.primary,
            "fidelity_output": worst.output,
            "fidelity_outputs": {score.output: score.to_dict() for score in self.outputs},
            "fidelity_warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        """Outputs the judging images gave nothing to do."""
        return [f"output '{s.output}': {s.warning}" for s in self.outputs if s.warning]


def parse_assignments(values: list[str], option: str) -> dict[str, str]:
    """``["detection", "boxes=regression"]`` → ``{"*": "detection", "boxes": "regression"}``
    (a value without ``OUTPUT=`` applies to every output)."""
    parsed: dict[str, str] = {}
    for value in values:
        output, sep, choice = value.rpartition("=")
        key = output.strip() if sep else "*"
        if not choice.strip() or (sep and not key):
            raise CompressorError(
                f"{option} {value!r}: expected NAME or OUTPUT=NAME",
                f"e.g. {option} detection, or {option} boxes=regression",
            )
        if key in parsed:
            raise CompressorError(f"{option}: output '{key}' is given twice")
        parsed[key] = choice.strip()
    return parsed


class FidelityJudge:
    """Scores a compressed model's outputs against the float model's, output by output.

    ``tasks`` and ``metrics`` map an output name (or ``"*"``: every output) to a task or
    metric name (``--task``, ``--metric``). A task guessed from the float values is kept
    for the run, so every split is judged alike."""

    def __init__(
        self,
        registry: MetricRegistry,
        tasks: dict[str, str] | None = None,
        metrics: dict[str, str] | None = None,
    ) -> None:
        self.registry = registry
        self.tasks = dict(tasks or {})
        self.metrics = dict(metrics or {})
        for name, task in self.tasks.items():
            if task not in TASKS:
                where = "" if name == "*" else f"{name}="
                raise CompressorError(
                    f"--task {where}{task}: unknown task", f"tasks: {', '.join(TASKS)}"
                )
        for name in self.metrics.values():
            registry.get(name)
        self._chosen: dict[str, TaskChoice] = {}

    def check_outputs(self, names: list[str]) -> None:
        """Refuse ``--task``/``--metric`` for an output the model does not have."""
        for option, given in (("--task", self.tasks), ("--metric", self.metrics)):
            for output in given:
                if output != "*" and output not in names:
                    raise CompressorError(
                        f"{option} {output}=…: the model has no output '{output}'",
                        f"its outputs: {', '.join(names)}",
                    )

    def settle_tasks(self, reference: ModelOutputs) -> None:
        """Guess every output's task now, from ``reference`` (the float model's outputs on
        the run's largest split), so no split judged later guesses differently."""
        for name, values in reference.named().items():
            if name not in self.tasks and "*" not in self.tasks and name not in self._chosen:
                self._chosen[name] = guess_task(name, values)

    def _choose(self, output: str, reference: np.ndarray) -> tuple[TaskChoice, Metric]:
        metric_name = self.metrics.get(output, self.metrics.get("*"))
        task_name = self.tasks.get(output, self.tasks.get("*"))
        if metric_name is not None:
            metric = self.registry.get(metric_name)
            return TaskChoice(metric.task, f"--metric {metric_name}"), metric
        if task_name is not None:
            choice = TaskChoice(task_name, "--task")
        else:
            if output not in self._chosen:
                self._chosen[output] = guess_task(output, reference)
            choice = self._chosen[output]
        return choice, self.registry.for_task(choice.task)

    def score_output(self, output: str, reference: np.ndarray, test: np.ndarray) -> OutputScore:
        """One output's task, metric and scores."""
        choice, metric = self._choose(output, reference)
        refused = metric.accepts(tuple(reference.shape))
        if refused:
            raise ModelError(
                f"output '{output}' {tuple(reference.shape[1:])}: metric '{metric.name}' "
                f"({choice.task}) cannot read it: {refused}",
                "pick another --task/--metric for this output",
            )
        if test.shape != reference.shape:
            raise ModelError(
                f"output '{output}': the compressed model gives shape {test.shape[1:]}, "
                f"the float model {reference.shape[1:]}"
            )
        scores = metric.compute(reference, test)
        warning = metric.uninformative(scores)
        if warning is None and len(reference) > 1 and np.all(reference == reference[:1]):
            warning = "the float model gives the same value on every judging image"
        return OutputScore(
            output, choice.task, choice.reason, metric.name, metric.primary, scores, warning
        )

    def _pairs(self, reference: ModelOutputs) -> list[tuple[str, str]]:
        """Box + score output pairs among the outputs no ``--task``/``--metric`` names."""
        from compressor.core.detection import pair_roles

        if "*" in self.tasks or "*" in self.metrics:
            return []
        free = {
            name: tuple(values.shape)
            for name, values in reference.named().items()
            if name not in self.tasks and name not in self.metrics
        }
        return pair_roles(free)

    def score_pair(
        self, boxes: str, scores: str, reference: ModelOutputs, test: ModelOutputs
    ) -> OutputScore:
        """A box output and a score output judged together as one detection head."""
        from compressor.core.tasks import DETECTION

        metric = self.registry.for_task(DETECTION, arity=2)
        ref, out = reference.named(), test.named()
        for name in (boxes, scores):
            if out[name].shape != ref[name].shape:
                raise ModelError(
                    f"output '{name}': the compressed model gives shape "
                    f"{out[name].shape[1:]}, the float model {ref[name].shape[1:]}"
                )
        computed = metric.compute((ref[boxes], ref[scores]), (out[boxes], out[scores]))
        anchors = ref[boxes].shape[1]
        return OutputScore(
            f"{boxes}+{scores}",
            DETECTION,
            f"'{boxes}' {ref[boxes].shape[1:]} and '{scores}' {ref[scores].shape[1:]} share "
            f"{anchors} anchors: a box + score head",
            metric.name,
            metric.primary,
            computed,
            metric.uninformative(computed),
        )

    def judge(
        self, reference: ModelOutputs | np.ndarray, test: ModelOutputs | np.ndarray
    ) -> Judgement:
        """Score every output of ``test`` against ``reference`` (paired by name); a box
        output and a score output of one detection head are scored together."""
        reference = _as_outputs(reference)
        test = _as_outputs(test).aligned_to(reference)
        pairs = self._pairs(reference)
        paired = {name for pair in pairs for name in pair}
        scores = [self.score_pair(boxes, kind, reference, test) for boxes, kind in pairs]
        scores += [
            self.score_output(name, ref, out)
            for name, ref, out in zip(reference.names, reference.arrays, test.arrays,
                                      strict=True)
            if name not in paired
        ]  # fmt: skip
        return Judgement(tuple(scores))


def _as_outputs(values: ModelOutputs | np.ndarray) -> ModelOutputs:
    return values if isinstance(values, ModelOutputs) else ModelOutputs.single(values)
