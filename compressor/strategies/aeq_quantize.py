"""Quantize stage with ai-edge-quantizer on a float ``.tflite``: full int8, int16x8,
dynamic-range int8 or float16 weights, applied to every op its recipe covers.

The TFLite converter needs a Keras model or a SavedModel; a float ``.tflite`` (what
litert-torch and onnx2tf users hold) can only be quantized after the fact, which is what
ai-edge-quantizer does. Keras models are converted to a float ``.tflite`` first, so the
same strategies work on any model. Static modes calibrate on the run's calibration
images. Whether model inputs and outputs stay float32 is ai-edge-quantizer's choice (it
keeps them float behind QUANTIZE/DEQUANTIZE for most graphs); the artifact records it.
"""

from __future__ import annotations

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
from compressor.core.errors import error_line
from compressor.litert.frozen_graph import FROZEN_KEY, TFLITE_FORMAT
from compressor.litert.tflite_runtime import io_types
from compressor.strategies.mixed_precision import (
    Recipe,
    _float_op_count,
    _signature,
    float_tflite_of,
)
from compressor.strategies.quantize import precision_estimate


class AeqConfig(StrategyConfig):
    calibration_images: int = Field(
        default=64, ge=1, le=1000, description="Calibration images (static modes)"
    )


class _AeqStrategy(Strategy):
    stage = "quantize"
    Config = AeqConfig
    accepts_frozen_graph = True
    auto_plan = True

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if info.extra.get(FROZEN_KEY) != TFLITE_FORMAT:
            return Support.not_needed(
                "the TFLite converter quantizes Keras models and SavedModels itself"
            )
        precision = self.produces_precision or "int8"
        if not profile.runs(precision):
            return Support.no(f"{profile.name} does not execute {precision} ({profile.delegate})")
        if "float32" not in profile.io_types and precision != "int8":
            return Support.no(f"{profile.name} needs integer I/O")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        """The measured fidelity cost of this strategy's precision."""
        return precision_estimate(self.produces_precision, info)

    def quantize(self, float_model: bytes, context: RunContext, config: AeqConfig) -> bytes:
        """The quantized model: every op at ``produces_precision``, calibrated on the run's
        calibration images (the dynamic-range strategy overrides this)."""
        builder = Recipe(float_model, context.representative_images(config.calibration_images))
        return builder.build({"*": self.produces_precision})

    def apply(self, artifact: Artifact, context: RunContext, config: AeqConfig) -> Artifact:
        """Quantize the float ``.tflite`` with this strategy's recipe."""
        float_model = float_tflite_of(artifact, self.name)
        try:
            model = self.quantize(float_model, context, config)
        except StageError:
            raise
        except Exception as exc:
            raise StageError(
                f"{self.name}: ai-edge-quantizer failed: {error_line(exc, last=True)}",
                "choose another quantize strategy in the plan",
            ) from exc
        io_type = io_types(model)[0]
        if io_type not in context.profile.io_types:
            context.note(
                f"{self.name}: ai-edge-quantizer left {io_type} inputs; "
                f"{context.profile.name} prefers {'/'.join(context.profile.io_types)} I/O"
            )
        return artifact.with_tflite(
            model,
            precision=self.produces_precision,
            io_type=io_type,
            quantizer="ai-edge-quantizer",
            float_ops_left=_float_op_count(model),
        )


class AeqFullInt8(_AeqStrategy):
    """int8 weights and activations on every op the quantizer supports."""

    name = "aeq-int8"
    summary = "ai-edge-quantizer static int8 on a float .tflite (int8 I/O)"
    produces_precision = "int8"


class AeqInt16x8(_AeqStrategy):
    """int16 activations, int8 weights: accurate, slow on CPUs (reference kernels)."""

    name = "aeq-int16x8"
    summary = "ai-edge-quantizer int16 activations / int8 weights on a float .tflite"
    produces_precision = "int16x8"


class AeqDynamicInt8(_AeqStrategy):
    """int8 weights, float activations quantized on the fly (no calibration)."""

    name = "aeq-dynamic-int8"
    summary = "ai-edge-quantizer dynamic-range int8 on a float .tflite"
    produces_precision = "dynamic_int8"

    def quantize(self, float_model: bytes, context: RunContext, config: AeqConfig) -> bytes:
        from ai_edge_quantizer import quantizer, recipe

        q = quantizer.Quantizer(float_model)
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        _signature(float_model)  # a model without a signature fails here, clearly
        return bytes(q.quantize(enable_progress_report=False).quantized_model)


class AeqFloat16(_AeqStrategy):
    """float16 weights (conv, depthwise, dense, transpose conv) behind DEQUANTIZE ops, as
    the TFLite converter's float16 writes them; compute stays float."""

    name = "aeq-float16"
    summary = "ai-edge-quantizer float16 weights on a float .tflite (float casting)"
    produces_precision = "float16"

    def quantize(self, float_model: bytes, context: RunContext, config: AeqConfig) -> bytes:
        from ai_edge_quantizer import qtyping, quantizer
        from ai_edge_quantizer.algorithm_manager import AlgorithmName

        q = quantizer.Quantizer(float_model)
        weights = qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT)
        config_fp16 = qtyping.OpQuantizationConfig(
            weight_tensor_config=weights,
            compute_precision=qtyping.ComputePrecision.FLOAT,
            explicit_dequantize=True,
        )
        q.update_quantization_recipe(
            regex=".*",
            operation_name="*",
            op_config=config_fp16,
            algorithm_key=AlgorithmName.FLOAT_CASTING,
        )
        return bytes(q.quantize(enable_progress_report=False).quantized_model)


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the ai-edge-quantizer uniform quantize strategies."""
    for strategy in (AeqFullInt8, AeqInt16x8, AeqDynamicInt8, AeqFloat16):
        registry.add(strategy)
