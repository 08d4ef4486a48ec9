"""Emulate a float16-computing target (the GPU delegate with precision loss allowed) on
the host: the Keras model re-built with every layer's dtype float16, so weights,
activations and arithmetic are float16 as on the device, then run by TensorFlow.

LiteRT on a CPU computes float models in float32 whatever their weights, so the host's
outputs overstate a float16 GPU's fidelity; overflow past 65504 or lost low bits show up
only here. A model that cannot be re-built this way (frozen graphs, exotic layers) is
reported as not emulated, never silently measured in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compressor.core.errors import error_line
from compressor.core.outputs import ModelOutputs

FLOAT16_METHOD = "float16 emulated: the Keras model re-built with float16 layer dtypes on host"


def float16_twin(model: Any) -> Any:
    """A copy of Keras ``model`` whose layers compute and store in float16."""
    import tf_keras as keras

    def clone(layer: Any) -> Any:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float16"})

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin


def float16_outputs(model: Any, images: np.ndarray, batch_size: int = 8) -> ModelOutputs:
    """Outputs of ``model`` on ``images`` computed in float16, as float32 (inf/nan kept)."""
    import tensorflow as tf

    twin = float16_twin(model)
    batches = []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start : start + batch_size], tf.float16)
        result = twin(batch, training=False)
        values = result if isinstance(result, list | tuple) else [result]
        batches.append([np.asarray(v, dtype=np.float32) for v in values])
    merged = [np.concatenate(parts) for parts in zip(*batches, strict=True)]
    return ModelOutputs.from_keras(model, merged if len(merged) > 1 else merged[0])


def emulated_outputs(model: Any, images: np.ndarray) -> tuple[ModelOutputs | None, str]:
    """(float16 outputs, how they were computed), or (None, why not) when ``model`` is not
    a Keras model that can be re-built in float16."""
    if model is None or not hasattr(model, "get_config"):
        return None, "float16 not emulated (no Keras model: frozen graph); float32 on host"
    try:
        return float16_outputs(model, images), FLOAT16_METHOD
    except Exception as exc:  # any layer that will not re-build in float16
        return None, f"float16 not emulated ({error_line(exc)}); float32 on host"
