"""Per-op mixed precision with ai-edge-quantizer: int8 where it holds, higher precision
where an op is sensitive, chosen by an accuracy-control loop.

The float ``.tflite`` is quantized by a recipe: regular expressions on each op's output
tensor name (which carries the Keras layer name), each mapped to ``int8``, ``int16x8``
(16-bit activations) or ``float``; later entries win, ``"*"`` sets the default. With
``auto`` on and a fidelity floor missed, the loop measures each op's sensitivity (the
fidelity gained by keeping that op alone at float, on calibration images) and keeps the
most sensitive ops float until the floor holds — the accuracy-control loop NNCF and
Intel Neural Compressor run. The resolved recipe is recorded, so it can be pasted into a
plan and edited by hand.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from typing import Literal

import numpy as np
from pydantic import Field

from compressor.api import (
    Artifact,
    Estimate,
    ModelInfo,
    PipelineView,
    RunContext,
    StageError,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    Support,
    hookimpl,
)
from compressor.litert.conversion import convert_keras
from compressor.litert.tflite_runtime import io_types
from compressor.strategies.quantize import full_int8_loss

OpPrecision = Literal["int8", "int16x8", "float"]
_ACTIVATION_BITS = {"int8": 8, "int16x8": 16}


class MixedPrecisionConfig(StrategyConfig):
    recipe: dict[str, OpPrecision] = Field(
        default_factory=dict,
        description="regex on an op's output tensor name -> int8 | int16x8 | float; later "
        "entries win; '*' is the default (int8)",
    )
    min_fidelity: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Floor the loop aims for on calibration images (default: the run's)",
    )
    auto: bool = Field(default=True, description="Keep sensitive ops float until the floor holds")
    max_kept_ops: int = Field(default=8, ge=0, le=1000, description="Most ops the loop keeps")
    calibration_images: int = Field(default=64, ge=1, le=1000, description="Calibration images")


def _signature(model: bytes) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_content=model).get_signature_list()
    key = next(iter(signatures))
    return key, signatures[key]["inputs"][0]


def op_scopes(model: bytes) -> list[tuple[str, str]]:
    """(op name, scope) of each operator of a ``.tflite``; the scope (its output tensor
    names) is what recipe regexes are matched against."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as flat_utils

    flat = flat_utils.read_model(model)
    graph = flat.subgraphs[0]
    return [
        (
            flat_utils.get_op_name_by_index(flat, 0, index),
            flat_utils.get_op_scope(op, graph.tensors),
        )
        for index, op in enumerate(graph.operators)
    ]


class Recipe:
    """Builds quantized models from recipes, calibrating the float model once."""

    def __init__(self, float_model: bytes, samples: np.ndarray) -> None:
        from ai_edge_quantizer import quantizer, recipe

        self.float_model = float_model
        key, name = _signature(float_model)
        data = {key: [{name: image[None, ...].astype(np.float32)} for image in samples]}
        calibrating = quantizer.Quantizer(float_model)
        calibrating.load_quantization_recipe(recipe.static_wi8_ai16())
        # its progress bar and debugging-mode warning are not the user's business
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.calibration = calibrating.calibrate(data)

    def build(self, entries: dict[str, OpPrecision]) -> bytes:
        """The model quantized by ``entries`` (regex -> precision, in order)."""
        from ai_edge_quantizer import quantizer
        from ai_edge_quantizer.algorithm_manager import AlgorithmName

        q = quantizer.Quantizer(self.float_model)
        default = entries.get("*", "int8")
        ordered = [(".*", default), *((k, v) for k, v in entries.items() if k != "*")]
        for regex, precision in ordered:
            if precision == "float":
                q.update_quantization_recipe(
                    regex=regex, operation_name="*", algorithm_key=AlgorithmName.NO_QUANTIZE
                )
            else:
                q.add_static_config(regex, "*", _ACTIVATION_BITS[precision], 8)
        result = q.quantize(self.calibration, enable_progress_report=False)
        return bytes(result.quantized_model)


def float_tflite_of(artifact: Artifact, name: str) -> bytes:
    """The float32 ``.tflite`` of a stage input: a frozen graph's, a Keras model's
    conversion, or the input itself when it is a float ``.tflite``."""
    if artifact.graph is not None:
        return artifact.graph.tflite
    if artifact.is_tflite:
        if artifact.facts.get("precision", "float32") != "float32":
            raise StageError(f"{name}: needs a float model, got an already quantized one")
        return artifact.tflite_bytes
    return convert_keras(artifact.keras_model, "float32")


class MixedPrecision(Strategy):
    """ai-edge-quantizer per-op recipe: int8, with sensitive ops kept at higher precision."""

    name = "aeq-mixed-precision"
    stage = "quantize"
    summary = "ai-edge-quantizer per-op recipe: int8, sensitive ops float/int16 (accuracy loop)"
    Config = MixedPrecisionConfig
    produces_precision = "int8"
    accepts_frozen_graph = True

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if profile.requires_full_integer:
            return Support.no(
                f"{profile.name} runs only full int8: no per-op float or int16 fallback "
                "(QAT and norm swap are the levers there)"
            )
        if not profile.runs("int8") or not profile.runs("float32"):
            return Support.no(f"{profile.name} does not run int8 ops beside float ones")
        if "float32" not in profile.io_types:
            return Support.no(f"{profile.name} needs integer I/O")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        # The loop keeps ops float until the fidelity floor holds, so the loss is at most
        # full int8's and at most what the profile's floor allows; what it really costs in
        # latency is only known by measuring (the search does).
        loss = full_int8_loss(info)
        floor = profile.budgets.fidelity_floor
        if floor is not None:
            loss = min(loss, 1.0 - floor)
        return Estimate(
            precision="int8",
            ssim_loss=loss,
            conversions=len(info.layers) + 2,  # one per op's sensitivity, plus both ends
            note="sensitive ops kept float until the fidelity floor holds",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: MixedPrecisionConfig):
        """Quantize by the recipe; run the accuracy-control loop if the floor is missed."""
        float_model = float_tflite_of(artifact, self.name)
        samples = context.representative_images(config.calibration_images)
        builder = Recipe(float_model, samples)
        images = context.images.calibration
        reference = context.float_outputs("calibration")

        def fidelity(model: bytes) -> float:
            from compressor.litert.tflite_runtime import TFLiteModel

            return context.judge(reference, TFLiteModel(model).predict_outputs(images)).value

        entries = dict(config.recipe)
        model = builder.build(entries)
        score = fidelity(model)
        floor = config.min_fidelity
        if floor is None and context.constraints is not None:
            floor = context.constraints.min_fidelity
        sensitivity: list[tuple[str, float]] = []
        if config.auto and floor is not None and score < floor:
            model, score, entries, sensitivity = self._keep_sensitive_ops(
                builder, entries, fidelity, score, floor, config.max_kept_ops, float_model
            )
        kept = [k for k, v in entries.items() if v != "int8" and k != "*"]
        context.note(
            f"{self.name}: {len(kept)} op(s) kept above int8"
            + (f" ({', '.join(kept[:4])})" if kept else "")
            + f"; fidelity {score:.4f} on calibration images"
            + (f" (floor {floor:g})" if floor is not None else "")
        )
        return artifact.with_tflite(
            model,
            precision="int8",
            io_type=io_types(model)[0],
            mixed_recipe=dict(entries),
            mixed_fidelity_calibration=round(score, 5),
            mixed_float_ops=_float_op_count(model),
            mixed_sensitivity=[(name, round(gain, 5)) for name, gain in sensitivity[:10]],
        )

    @staticmethod
    def _keep_sensitive_ops(builder, entries, fidelity, score, floor, max_kept, float_model):
        """Rank ops by the fidelity each regains alone at float; keep the best until the
        floor holds (or ``max_kept`` ops are kept)."""
        gains = []
        for _op, scope in op_scopes(float_model):
            regex = re.escape(scope)
            trial = builder.build({**entries, regex: "float"})
            gains.append((regex, fidelity(trial) - score))
        gains.sort(key=lambda item: -item[1])
        model = builder.build(entries)
        for regex, gain in gains[:max_kept]:
            if gain <= 0 or score >= floor:
                break
            entries = {**entries, regex: "float"}
            model = builder.build(entries)
            score = fidelity(model)
        return model, score, entries, gains


def _float_op_count(model: bytes) -> int:
    """Compute ops that still run in float (checked on the result: an op whose config the
    quantizer cannot apply is left float silently)."""
    from compressor.litert.tflite_runtime import list_operators

    return sum(
        1
        for op in list_operators(model)
        if op.name not in ("QUANTIZE", "DEQUANTIZE") and "float32" in op.output_types
    )


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the ai-edge-quantizer mixed-precision strategy."""
    registry.add(MixedPrecision)
