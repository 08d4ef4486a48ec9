"""Quantize stage: TFLite converter to float32, float16, dynamic-range int8, full int8, int16x8."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import Field

from compressor.api import (
    Artifact,
    Estimate,
    HardwareProfile,
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
from compressor.core.errors import error_line
from compressor.litert.conversion import (
    configure_converter,
    keras_converter,
    saved_model_converter,
)
from compressor.litert.frozen_graph import FROZEN_KEY, TFLITE_FORMAT
from compressor.litert.native_logs import quiet_native_logs
from compressor.planning.measured_constants import measured

# Expected SSIM losses vs the float model come from benchmarks/planner_constants.py
# (compressor/planning/planner_constants.json: host, date and how each was measured).


class _ConvertConfig(StrategyConfig):
    pass


class FullInt8Config(StrategyConfig):
    io_type: Literal["auto", "int8", "uint8", "float32"] = Field(
        default="auto", description="I/O tensor type; auto picks the profile's first integer type"
    )
    calibration_images: int = Field(
        default=64, ge=1, le=1000, description="Representative images for calibration"
    )


class _TFLiteConversion(Strategy):
    """Shared converter logic; subclasses set the precision and converter options."""

    stage = "quantize"
    Config = _ConvertConfig
    accepts_frozen_graph = True  # a SavedModel, not a .tflite (see supports)

    def supports(
        self, profile: HardwareProfile, info: ModelInfo, pipeline: PipelineView
    ) -> Support:
        if info.extra.get(FROZEN_KEY) == TFLITE_FORMAT and self.produces_precision != "float32":
            return Support.no(
                "the TFLite converter cannot re-convert a .tflite (ai-edge-quantizer can)"
            )
        precision = self.produces_precision or "float32"
        if profile.requires_full_integer and precision != "int8":
            return Support.no(f"{profile.name} runs only full-integer int8 models")
        if not profile.runs(precision):
            return Support.no(f"{profile.name} does not execute {precision} ({profile.delegate})")
        if precision != "int8" and "float32" not in profile.io_types:
            return Support.no(f"{profile.name} needs integer I/O")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        """The measured fidelity cost of this strategy's precision."""
        return precision_estimate(self.produces_precision, info)

    def configure(self, converter: Any, context: RunContext, config: StrategyConfig) -> dict:
        """Set converter options; return facts to record on the artifact."""
        return {}

    def apply(self, artifact: Artifact, context: RunContext, config: StrategyConfig) -> Artifact:
        """Convert the Keras model to a ``.tflite`` with this strategy's precision."""

        if artifact.is_tflite:
            raise StageError(f"{self.name}: the model is already converted to .tflite")
        if artifact.keras_model is not None:
            converter = keras_converter(artifact.keras_model)
        elif artifact.graph is not None and artifact.graph.saved_model_dir:
            graph = artifact.graph
            converter = saved_model_converter(graph.saved_model_dir, graph.image_size)
        else:
            raise StageError(
                f"{self.name}: the TFLite converter needs a Keras model or a SavedModel",
                "quantize a .tflite with aeq-int8, aeq-dynamic-int8 or aeq-mixed-precision",
            )
        facts = self.configure(converter, context, config)
        try:
            with quiet_native_logs(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # converter chatter, not user-actionable
                data = converter.convert()
        except Exception as exc:
            raise StageError(
                f"{self.name}: TFLite conversion failed: {error_line(exc, last=True)}",
                "choose another quantize strategy in the plan",
            ) from exc
        return artifact.with_tflite(data, precision=self.produces_precision, **facts)


class Float32Conversion(_TFLiteConversion):
    """Plain float32 conversion: the reference point, and the fallback for float-only targets."""

    name = "tflite-float32"
    summary = "TFLite float32 conversion (no quantization)"
    produces_precision = "float32"

    def apply(self, artifact: Artifact, context: RunContext, config: StrategyConfig) -> Artifact:
        """Convert; the untouched float model's conversion is the run's baseline, made once."""
        original = artifact.keras_model or artifact.graph
        if original is not None and original is context.float_model:
            return artifact.with_tflite(context.float_tflite(), precision="float32")
        if artifact.graph is not None:  # a rewritten graph: its float .tflite is the result
            return artifact.with_tflite(artifact.graph.tflite, precision="float32")
        return super().apply(artifact, context, config)


class Float16Conversion(_TFLiteConversion):
    """float16 weights; GPU delegates compute in fp16, CPUs dequantize to fp32."""

    name = "tflite-float16"
    summary = "TFLite float16 weights (GPU delegate runs fp16 natively)"
    produces_precision = "float16"

    def configure(self, converter, context, config) -> dict:
        configure_converter(converter, "float16")
        return {}


class DynamicRangeInt8(_TFLiteConversion):
    """int8 weights, float activations quantized on the fly by hybrid kernels."""

    name = "tflite-dynamic-int8"
    summary = "TFLite dynamic-range int8 (int8 weights, float activations)"
    produces_precision = "dynamic_int8"

    def configure(self, converter, context, config) -> dict:
        configure_converter(converter, "dynamic_int8")
        return {}


def full_int8_loss(info: ModelInfo) -> float:
    """Expected SSIM loss of post-training full int8 for this model."""
    if info.has_instance_norm:
        return measured("ssim_loss.full_int8_instance_norm")
    return measured("ssim_loss.full_int8")


def precision_estimate(precision: str, info: ModelInfo) -> Estimate:
    """What converting to ``precision`` costs in fidelity (measured planner constants)."""
    if precision == "float32":
        return Estimate(precision="float32")
    if precision == "int8":
        return Estimate(precision="int8", ssim_loss=full_int8_loss(info))
    return Estimate(precision=precision, ssim_loss=measured(f"ssim_loss.{precision}"))


class FullInteger(_TFLiteConversion):
    """Full-integer int8 with a representative dataset; int8/uint8 I/O for integer targets."""

    name = "tflite-full-int8"
    summary = "TFLite full-integer int8 (calibrated on images; int8/uint8 I/O)"
    produces_precision = "int8"
    Config = FullInt8Config

    def supports(self, profile, info, pipeline) -> Support:
        base = super().supports(profile, info, pipeline)
        if not base.ok:
            return base
        if not ({"int8", "uint8"} & set(profile.io_types) or "float32" in profile.io_types):
            return Support.no(f"{profile.name} allows no int8/uint8 or float I/O")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        note = "instance norm at risk under full int8" if info.has_instance_norm else ""
        return Estimate(precision="int8", ssim_loss=full_int8_loss(info), note=note)

    def configure(self, converter, context, config: FullInt8Config) -> dict:
        io_type = config.io_type
        if io_type == "auto":
            io_type = context.profile.int8_io_type()
        samples = context.representative_images(config.calibration_images)
        configure_converter(converter, "int8", samples, io_type)
        return {"io_type": io_type}

    def apply(self, artifact: Artifact, context: RunContext, config: StrategyConfig) -> Artifact:
        """Convert; after QAT also convert the pre-QAT model and keep the closer one.

        QAT cannot simulate ops inside custom layers (instance norm's mean/rsqrt), which
        the converter still quantizes, so a QAT model can convert worse than plain
        post-training quantization. Both are measured and the better one is kept.
        """
        converted = super().apply(artifact, context, config)
        if artifact.pre_qat_model is None:
            return converted
        fallback = super().apply(Artifact(keras_model=artifact.pre_qat_model), context, config)
        qat_score = _match_score(converted.tflite_bytes, context)
        ptq_score = _match_score(fallback.tflite_bytes, context)
        scores = {"qat_match": round(qat_score, 5), "ptq_match": round(ptq_score, 5)}
        if qat_score >= ptq_score:
            context.note(
                f"{self.name}: QAT model kept: matches the float model {qat_score:.4f} vs "
                f"post-training int8 {ptq_score:.4f} (+{qat_score - ptq_score:.4f}, "
                f"{context.images.choice_split} images)"
            )
            return converted.with_tflite(converted.tflite_bytes, qat_kept=True, **scores)
        context.note(
            f"{self.name}: QAT discarded: it converted worse than post-training int8 "
            f"(match {qat_score:.4f} vs {ptq_score:.4f}, -{ptq_score - qat_score:.4f}, "
            f"{context.images.choice_split} images); kept post-training int8"
        )
        return converted.with_tflite(fallback.tflite_bytes, qat_kept=False, **scores)


def _match_score(model: bytes, context: RunContext) -> float:
    """How closely a .tflite matches the float model (higher is better): the run's
    fidelity (the worst output's task score) on the selection split, which QAT never
    trained on (so its fit to the training images gains it nothing), and never on the
    held-out images that the report scores."""
    from compressor.litert.tflite_runtime import TFLiteModel

    images = context.images.choice[:64]
    reference = context.float_outputs("choice")[:64]
    return context.judge(reference, TFLiteModel(model).predict_outputs(images)).value


class Int16x8(_TFLiteConversion):
    """int16 activations with int8 weights: accurate, but reference kernels are slow on CPU."""

    name = "tflite-int16x8"
    summary = "TFLite int16 activations / int8 weights (accurate, slow on CPU)"
    produces_precision = "int16x8"

    def supports(self, profile, info, pipeline) -> Support:
        base = super().supports(profile, info, pipeline)
        if not base.ok:
            return base
        if info.has_instance_norm:
            return Support.no("instance norm's SQUARED_DIFFERENCE has no int16 kernel")
        return Support.yes()

    def configure(self, converter, context, config) -> dict:
        configure_converter(converter, "int16x8", context.representative_images(32))
        return {}


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the TFLite conversion strategies of the quantize stage."""
    for strategy in (Float32Conversion, Float16Conversion, DynamicRangeInt8, FullInteger, Int16x8):
        registry.add(strategy)
