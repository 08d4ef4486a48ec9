"""QAT stage: tfmot quantization-aware training, layer by layer, never crashing on custom layers.

Supported Keras layers are annotated with tfmot's default 8-bit configs; instance
norm gets an output-only quantizer (its math stays float, its output is int8-ranged);
other custom layers stay float. After pruning, the pruning-preserving scheme keeps zeros.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from compressor.api import (
    Artifact,
    Estimate,
    ModelInfo,
    PipelineView,
    RunContext,
    StageError,
    Strategy,
    StrategyRegistry,
    Support,
    clone_keras_model,
    fine_tune_on_float,
    hookimpl,
)
from compressor.planning.measured_constants import measured
from compressor.strategies.prune import FineTuneConfig


class QATConfig(FineTuneConfig):
    fine_tune_steps: int = Field(default=200, ge=1, le=100_000, description="Training steps")
    learning_rate: float = Field(default=1e-3, gt=0, le=1, description="Adam learning rate")


def freeze_batch_norm(model: Any) -> int:
    """Run every BatchNormalization (wrapped or not) in inference mode with frozen
    statistics: fine-tuning on a few images must not re-estimate the model's trained
    mean and variance. Returns how many layers were frozen."""
    import tf_keras as keras

    frozen = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, keras.layers.BatchNormalization):
            inner.trainable = False
            frozen += 1
    return frozen


def calibrate_activation_ranges(model: Any, images: Any, batch_size: int = 8) -> int:
    """Set each moving-average activation range of a tfmot QAT model to the min/max the
    float activations reach on ``images`` — what the converter's calibration does.

    tfmot starts these ranges at [-6, 6] and moves them by an EMA of decay 0.999, so a
    QAT run of a few hundred steps otherwise trains and converts with ranges far from
    the real ones (measured: QAT then converts worse than post-training int8). Returns
    the number of ranges set. BatchNorm must be frozen first (the pass runs in training
    mode, where the quantizers observe).
    """
    import tensorflow as tf
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    seen: set[int] = set()
    original = quant_ops.MovingAvgQuantize

    def observe(inputs, min_var, max_var, per_channel=False, **_ignored):
        axes = list(range(len(inputs.shape) - 1)) if per_channel else None
        low = tf.minimum(tf.reduce_min(inputs, axis=axes), 0.0)
        high = tf.maximum(tf.reduce_max(inputs, axis=axes), 0.0)
        if id(min_var) not in seen:
            seen.add(id(min_var))
            min_var.assign(tf.broadcast_to(low, min_var.shape))
            max_var.assign(tf.broadcast_to(high, max_var.shape))
        else:
            min_var.assign(tf.minimum(min_var, low))
            max_var.assign(tf.maximum(max_var, high))
        return inputs  # downstream layers see float activations, as in calibration

    quant_ops.MovingAvgQuantize = observe
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size], training=True)
    finally:
        quant_ops.MovingAvgQuantize = original
    return len(seen)


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


# Activation functions tfmot's default 8-bit registry quantizes in an Activation layer.
TFMOT_ACTIVATIONS = frozenset(
    {"relu", "swish", "gelu", "relu6", "linear", "softmax", "sigmoid", "tanh"}
)


def _custom_activation_layer(layer: Any) -> bool:
    """An Activation layer whose function tfmot does not know (e.g. Keras 3's
    ``hard_silu`` after translation): quantize only its output."""
    import tf_keras as keras

    return isinstance(layer, keras.layers.Activation) and (
        getattr(layer.activation, "__name__", "") not in TFMOT_ACTIVATIONS
    )


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
        if layer.__class__.__name__ == "InstanceNormalization" or _custom_activation_layer(layer):
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
        if pipeline.steps["quantize"][0].name != "tflite-full-int8":
            return Support.no("a QAT model is converted by tflite-full-int8")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        # QAT's gain is model-specific (measured: none on the demo generator and its
        # batch-norm twin at the default budget, a large one on a model with a wide
        # activation range): the factor is measured, the search tries QAT when
        # post-training int8 misses the fidelity floor, and the conversion keeps it only
        # if it matches the float model better than post-training int8.
        key = "qat_loss_scale_instance_norm" if info.has_instance_norm else "qat_loss_scale"
        scale = measured(key)
        return Estimate(
            quant_loss_scale=scale,
            fine_tunes=True,
            note=f"QAT trains for int8 (measured loss factor {scale:g} on "
            + ("the instance-norm demo" if info.has_instance_norm else "a batch-norm generator")
            + "; kept only if it converts closer than post-training int8)",
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
        objects = {**context.keras_objects, **scope}
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
        frozen = freeze_batch_norm(model)
        ranges = calibrate_activation_ranges(model, context.representative_images(64))
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
            qat_frozen_batch_norms=frozen,
            qat_calibrated_ranges=ranges,
        )
        qat_artifact.pre_qat_model = artifact.keras_model
        return qat_artifact


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the QAT strategy."""
    registry.add(TfmotQAT)
