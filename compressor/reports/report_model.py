"""The schema of report.json: one pydantic model that the run writes through and every
reader (``compressor report``, the terminal tables, report.html) loads through.

Sections whose keys are fixed are typed and closed (an unknown key is an error, so a
writer cannot drift from the schema unnoticed); the parts plugins fill (stage facts and
metrics, fidelity metrics of any kind, search details) are typed as maps.
``compressor report --schema`` prints the JSON Schema.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from compressor.planning.plan import Plan

Fidelity = dict[str, float]  # e.g. {"ssim": …, "psnr_db": …} or {"top1_agreement": …, …}


# JSON has no infinity: a PSNR of identical outputs (inf) is written as the string
# "Infinity" (also "-Infinity", "NaN"), everywhere in report.json, and read back as a float.
_JSON_NON_FINITE = "strings"


def json_number(value: Any) -> float | None:
    """A number as report.json holds it: a float, or the strings "Infinity",
    "-Infinity", "NaN" for non-finite ones (JSON has none); None stays None."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None if value is None else float(value)


class Outcome(StrEnum):
    """What happened to a candidate of the plan search."""

    NOT_TRIED = "not tried"
    FAILED = "failed"
    MEETS = "meets"  # measured, meets every constraint; not yet compared
    MISSES = "misses"
    CHOSEN = "chosen"
    LOST = "lost"


def outcome_text(outcome: Outcome, reason: str) -> str:
    """A candidate's outcome and reason as report.json's ``status`` line."""
    if outcome is Outcome.MEETS:
        return reason or "meets every constraint"
    return f"{outcome.value}: {reason}" if reason else outcome.value


def candidate_outcome(record: dict[str, Any]) -> Outcome:
    """The outcome of a candidate as report.json or a search record holds it (files
    written before ``outcome`` was recorded: read from the status line's first word)."""
    if "outcome" in record:
        return Outcome(record["outcome"])
    head = str(record.get("status", "")).split(":", 1)[0]
    known = {o.value: o for o in Outcome}
    return known.get(head, Outcome.MEETS if head == "meets every constraint" else Outcome.NOT_TRIED)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan=_JSON_NON_FINITE)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", ser_json_inf_nan=_JSON_NON_FINITE)


class ProfileSummary(_Closed):
    """The target the run compressed for."""

    name: str
    delegate: str
    threads: int
    runs_on_this_host: bool = Field(description="this machine runs the target's runtime")


class ModelSummary(_Closed):
    """The model as given (before compression)."""

    source: str
    name: str
    params: int
    macs: int
    input_shape: list[int | None] | None
    output_shape: list[int | None] | None
    origin: dict[str, Any] = Field(
        default_factory=dict,
        description="how the model got in: format, translation, constant folding, fixed "
        "inputs, input_size_choice, trusted (loaded with --trust-model)",
    )


class InputMappingSummary(_Closed):
    """Model input = ((image in [0, 1], RGB or BGR) × (high − low) + low − mean) / std."""

    low: float
    high: float
    bgr: bool
    source: str = Field(
        description="--input-range/--bgr/--mean/--std, the model's own layers, or default"
    )
    mean: list[float] | None = Field(
        default=None, description="subtracted per channel (model's channel order)"
    )
    std: list[float] | None = Field(default=None, description="divided by, after the mean")


class DataSummary(_Closed):
    """Where the images came from and how they were split."""

    source: str
    splits: dict[str, dict[str, Any]]
    skipped: list[Any]
    input_mapping: InputMappingSummary | None = Field(
        default=None, description="how photos (RGB in [0, 1]) became the model's inputs"
    )


class OpCoverage(_Closed):
    """Operators of a .tflite the target's delegate runs."""

    total_ops: int
    delegated_ops: int
    fraction: float
    fallback: list[str]
    cut_at: str | None
    analyzer: dict[str, Any] | None = None
    refused: str | None = None


class OutputFidelity(_Closed):
    """One output of the model, judged by its task."""

    task: str = Field(description="image, classification, detection, segmentation, …")
    task_reason: str = Field(description="why: --task, --metric, or what the guess read")
    metric: str = Field(description="the registered metric that scored it")
    primary: str = Field(description="the score the constraints see (in 0..1)")
    scores: Fidelity


class Measurement(_Open):
    """Everything measured (or estimated) about one .tflite: baseline or result."""

    precision: str
    size_bytes: int
    gzip_bytes: int
    weight_zero_fraction: float
    host_latency_ms: float
    host_latency_p90_ms: float
    host_threads: int
    latency_runs: int
    estimated_latency_ms: float | None
    estimated_latency_note: str
    fidelity: Fidelity = Field(description="the worst output's scores")
    fidelity_metric: str | None = Field(default=None, description="its primary score")
    fidelity_output: str | None = Field(default=None, description="the worst output")
    fidelity_outputs: dict[str, OutputFidelity] | None = Field(
        default=None, description="every output's task and scores, by output name"
    )
    fidelity_warnings: list[str] = Field(default_factory=list)
    fidelity_images: int
    fidelity_split: str
    fidelity_arithmetic: str | None = None
    fidelity_host_float32: Fidelity | None = None
    op_coverage: OpCoverage | None = None
    label_accuracy: dict[str, float] | None = Field(
        default=None,
        description="top-1 accuracy against the --data class folders, by classification "
        "output (held-out images)",
    )


class StageRecord(_Open):
    """One stage as it ran: strategy, where its output is, what it did."""

    name: str
    strategy: str
    plugin: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    seconds: float
    output: str | None = None
    built_by: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)


class Ratios(_Closed):
    """Baseline / result: above 1 the result is smaller or faster."""

    size: float
    gzip: float
    host_latency: float


class ConstraintCheck(_Closed):
    """The shipped result against the run's constraints."""

    min_fidelity: float | None = None
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    max_gzip_mb: float | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    fidelity_metric: str
    latency: str
    met: bool
    misses: list[str]


class Report(_Closed):
    """report.json."""

    compressor_version: str
    created: str
    profile: ProfileSummary
    model: ModelSummary
    data: DataSummary
    plan: Plan | None
    stages: list[StageRecord]
    baseline: Measurement
    result: Measurement
    ratios: Ratios
    artifact: str = Field(description="the final .tflite, relative to the run directory")
    provenance: dict[str, Any]
    notes: list[str]
    warnings: list[str]
    constraints: ConstraintCheck | None = None
    search: dict[str, Any] | None = Field(
        default=None, description="the plan search: constraints, candidates measured, choice"
    )
    resumed_after: list[str] | None = Field(
        default=None, description="stages completed before a resume"
    )

    def to_json_dict(self) -> dict[str, Any]:
        """Plain data as report.json holds it (unset optional sections left out)."""
        return json.loads(self.model_dump_json(exclude_none=False, exclude_unset=True))


def report_schema() -> dict[str, Any]:
    """The JSON Schema of report.json."""
    return Report.model_json_schema()


def validate_report(data: dict[str, Any], where: str) -> Report:
    """``data`` as a Report; a CompressorError naming the first bad field otherwise."""
    from pydantic import ValidationError

    from compressor.core.errors import CompressorError

    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise CompressorError(
            f"{where}: field '{field}': {first['msg']}",
            "report.json does not match its schema (`compressor report --schema`)",
        ) from exc
