"""QAT stage: tfmot quantization-aware training, layer by layer, never crashing on custom layers.

Supported Keras layers are annotated with tfmot's default 8-bit configs; instance
norm gets an output-only quantizer (its math stays float, its output is int8-ranged);
other custom layers stay float. After pruning, the pruning-preserving scheme keeps zeros.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from compressor.core.artifact import Artifact
from compressor.core.context import RunContext
from compressor.core.errors import StageError
from compressor.core.finetune import fine_tune_on_float
from compressor.core.keras_io import clone_keras_model
from compressor.core.model_info import ModelInfo
from compressor.core.strategy import Estimate, PipelineView, Strategy, StrategyRegistry, Support
from compressor.plugins import hookimpl
from compressor.strategies.prune import FineTuneConfig

QAT_LOSS_SCALE = 0.25
# QAT cannot simulate the int8 math inside instance norm (mean, rsqrt), which the
# converter quantizes anyway: measured on the default generator, 40 QAT steps moved the
# Keras simulation from SSIM 0.67 to 0.70 but the converted model did worse (0.51).
QAT_LOSS_SCALE_INSTANCE_NORM = 0.8


class QATConfig(FineTuneConfig):
    # An untrained QAT model has uncalibrated ranges (and crashes the converter).
    fine_tune_steps: int = Field(default=40, ge=1, le=100_000, description="Training steps")
    learning_rate: float = Field(
        default=1e-4, gt=0, le=1, description="Adam learning rate"
    )  # QAT recovers most of full-int8's quality loss


def _output_only_config_class() -> type:
    import tensorflow_model_optimization as tfmot

    class OutputOnlyQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Quantize only a layer's output (for layers whose math tfmot cannot wrap)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            return None

        def set_quantize_activations(self, layer, quantize_activations):
            return None

        def get_output_quantizers(self, layer):
            return [
                tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                    num_bits=8, per_axis=False, symmetric=False, narrow_range=False
                )
            ]

        def get_config(self):
            return {}

    return OutputOnlyQuantizeConfig


def annotate_for_qat(model: Any) -> tuple[Any, dict[str, list[str]], dict[str, Any]]:
    """Annotate each layer tfmot supports; return (annotated model, layer groups, scope)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    output_only = _output_only_config_class()
    groups: dict[str, list[str]] = {"quantized": [], "output_only": [], "float": []}

    def annotate(layer: Any) -> Any:
        copy = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, keras.layers.InputLayer):
            return copy
        if layer.__class__.__name__ == "InstanceNormalization":
            groups["output_only"].append(layer.name)
            return tfmot.quantization.keras.quantize_annotate_layer(copy, output_only())
        if registry.supports(layer) or layer.name in conv_batch_norms:
            # BatchNorm after a conv: tfmot's layout transform folds the pair in QAT
            groups["quantized"].append(layer.name)
            return tfmot.quantization.keras.quantize_annotate_layer(copy)
        groups["float"].append(layer.name)
        return copy

    from compressor.strategies.fuse import find_foldable_pairs

    conv_batch_norms = set(find_foldable_pairs(model))

    source = clone_keras_model(model)
    annotated = keras.models.clone_model(source, clone_function=annotate)
    annotated.set_weights(source.get_weights())
    return annotated, groups, {"OutputOnlyQuantizeConfig": output_only}


class TfmotQAT(Strategy):
    """Quantization-aware training with self-distillation from the float model."""

    name = "tfmot-qat"
    stage = "qat"
    summary = "tfmot QAT, layer-wise annotation (custom layers float), pruning-preserving"
    Config = QATConfig

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        precision = pipeline.final_precision
        if precision != "int8":
            return Support.no(f"QAT trains for int8 activations; the plan converts to {precision}")
        quantize = pipeline.steps["quantize"]
        loss = quantize[0].estimate(profile, info, quantize[1], pipeline).ssim_loss
        if loss < profile.at_risk_ssim_loss:
            return Support.not_needed(
                f"not needed: estimated full-int8 SSIM loss {loss:.3f} is below "
                f"{profile.name}'s at-risk threshold {profile.at_risk_ssim_loss}"
            )
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        if info.has_instance_norm:
            return Estimate(
                quant_loss_scale=QAT_LOSS_SCALE_INSTANCE_NORM,
                fine_tunes=True,
                note="model at risk under full int8: QAT trains convs for int8 (instance "
                "norm internals are not simulated; conversion keeps QAT only if it matches "
                "better than post-training int8)",
            )
        return Estimate(
            quant_loss_scale=QAT_LOSS_SCALE,
            fine_tunes=True,
            note="model at risk under full int8: QAT recovers most of the loss",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: QATConfig) -> Artifact:
        """Annotate, apply the (pruning-preserving) scheme, fine-tune against the float model."""
        import tensorflow_model_optimization as tfmot

        annotated, groups, scope = annotate_for_qat(artifact.keras_model)
        if not groups["quantized"]:
            raise StageError("tfmot-qat: no layer of the model can be quantized by tfmot")
        scheme = None
        if artifact.facts.get("sparsity"):
            if any(
                layer.__class__.__name__ == "Conv2DTranspose"
                for layer in artifact.keras_model.layers
            ):
                context.note(
                    "tfmot-qat: Conv2DTranspose present, pruning-preserving scheme skipped"
                )
            else:
                scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        objects = {**registered_keras_objects(), **scope}
        try:
            with tfmot.quantization.keras.quantize_scope(objects):
                model = (
                    tfmot.quantization.keras.quantize_apply(annotated, scheme)
                    if scheme
                    else (tfmot.quantization.keras.quantize_apply(annotated))
                )
        except Exception as exc:
            raise StageError(
                f"tfmot-qat: quantize_apply failed: {exc}".splitlines()[0][:300]
            ) from exc
        losses = fine_tune_on_float(model, context, config)
        if groups["float"] or groups["output_only"]:
            context.note(
                f"tfmot-qat: {len(groups['quantized'])} layers quantized, "
                f"{len(groups['output_only'])} output-only (instance norm), "
                f"{len(groups['float'])} left float"
                + (f" ({', '.join(groups['float'][:5])})" if groups["float"] else "")
            )
        qat_artifact = artifact.with_keras(
            model,
            qat=True,
            qat_scheme="prune-preserve" if scheme else "default-8bit",
            qat_final_loss=losses[-1] if losses else None,
        )
        qat_artifact.pre_qat_model = artifact.keras_model
        return qat_artifact


def registered_keras_objects() -> dict[str, Any]:
    """Custom Keras objects registered by plugins (needed to clone custom layers)."""
    from compressor.plugins.manager import get_host

    return get_host().keras_objects()


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the QAT strategy."""
    registry.add(TfmotQAT)
