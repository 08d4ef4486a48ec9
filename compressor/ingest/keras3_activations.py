"""Keras 3 activations whose tf_keras namesake computes something else, or is missing.

Keras 3 and tf_keras share most activation names with the same maths (``relu``,
``sigmoid``, ``swish`` ...). These differ, so a translated model uses the Keras 3
formula under a ``compressor>`` registered name (saved stage outputs reload with it):

* ``hard_sigmoid``: Keras 3 ``relu6(x + 3) / 6``; tf_keras ``clip(0.2 x + 0.5, 0, 1)``.
* ``hard_silu`` / ``hard_swish``: ``x · relu6(x + 3) / 6`` (not in tf_keras).
* ``gelu``: Keras 3 defaults to the tanh approximation; tf_keras to the exact erf form.
* ``leaky_relu``: Keras 3's slope is 0.2 (tf_keras has no such activation function).
* ``silu``, ``relu6``, ``mish``, ``log_softmax``: not tf_keras activation names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PACKAGE = "compressor"


def _build() -> dict[str, Callable[[Any], Any]]:
    import tensorflow as tf
    import tf_keras as keras

    register = keras.saving.register_keras_serializable(package=PACKAGE)

    @register
    def keras3_hard_sigmoid(x: Any) -> Any:
        """Keras 3 ``hard_sigmoid``: relu6(x + 3) / 6."""
        return tf.nn.relu6(x + 3.0) / 6.0

    @register
    def keras3_hard_silu(x: Any) -> Any:
        """Keras 3 ``hard_silu`` (= ``hard_swish``): x · relu6(x + 3) / 6."""
        return x * tf.nn.relu6(x + 3.0) / 6.0

    @register
    def keras3_gelu(x: Any) -> Any:
        """Keras 3 ``gelu`` with its default tanh approximation."""
        return tf.nn.gelu(x, approximate=True)

    @register
    def keras3_leaky_relu(x: Any) -> Any:
        """Keras 3 ``leaky_relu`` with its default negative slope 0.2."""
        return tf.nn.leaky_relu(x, alpha=0.2)

    @register
    def keras3_relu6(x: Any) -> Any:
        """``relu6``: min(max(x, 0), 6)."""
        return tf.nn.relu6(x)

    @register
    def keras3_mish(x: Any) -> Any:
        """``mish``: x · tanh(softplus(x))."""
        return x * tf.math.tanh(tf.math.softplus(x))

    @register
    def keras3_log_softmax(x: Any) -> Any:
        """``log_softmax`` over the last axis."""
        return tf.nn.log_softmax(x, axis=-1)

    return {
        "hard_sigmoid": keras3_hard_sigmoid,
        "hard_silu": keras3_hard_silu,
        "hard_swish": keras3_hard_silu,
        "gelu": keras3_gelu,
        "leaky_relu": keras3_leaky_relu,
        "relu6": keras3_relu6,
        "mish": keras3_mish,
        "log_softmax": keras3_log_softmax,
        "silu": keras.activations.swish,
    }


_FUNCTIONS: dict[str, Callable[[Any], Any]] | None = None

# Same name, same maths in both Keras versions: passed through as the name.
SHARED_ACTIVATIONS = frozenset(
    {
        "linear",
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "softplus",
        "softsign",
        "elu",
        "selu",
        "exponential",
        "swish",
    }
)


def keras3_activations() -> dict[str, Callable[[Any], Any]]:
    """Keras 3 activation name → the tf_keras function with Keras 3's maths."""
    global _FUNCTIONS
    if _FUNCTIONS is None:
        _FUNCTIONS = _build()
    return _FUNCTIONS


def registered_activation_objects() -> dict[str, Any]:
    """The functions under their registered names, for ``custom_objects``."""
    return {
        f"{PACKAGE}>{function.__name__}": function
        for function in keras3_activations().values()
        if function.__name__.startswith("keras3_")
    }
