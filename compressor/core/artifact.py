"""What flows between stages: a Keras model or a converted ``.tflite`` flatbuffer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from compressor.core.model_info import FROZEN_KEY


def is_frozen_graph(model: Any) -> bool:
    """True for a frozen graph (``compressor.litert.frozen_graph.FrozenGraph``): a model
    carried as its float ``.tflite`` bytes and source format, not as Keras layers."""
    return isinstance(getattr(model, "tflite", None), bytes) and hasattr(model, "source_format")


@dataclass
class Artifact:
    """A stage's input/output. Exactly one of ``keras_model``/``tflite_bytes``/``graph``
    is set (``graph``: a frozen graph, see ``compressor.litert.frozen_graph``).

    ``facts`` carries what earlier stages did that later ones must know (sparsity,
    whether QAT wrapped the model, the precision of the conversion, I/O types).
    """

    keras_model: Any = None
    tflite_bytes: bytes | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    # The float model before QAT: full-int8 conversion also tries it (post-training)
    # and keeps whichever matches the float model better.
    pre_qat_model: Any = None
    graph: Any = None
    # The Keras model a .tflite was converted from: targets that compute in float16
    # re-run it in float16 to measure their fidelity (compressor.litert.float16_arithmetic).
    source_model: Any = None

    @classmethod
    def of_model(cls, model: Any) -> Artifact:
        """The first stage's input: a Keras model, or a frozen graph."""
        if is_frozen_graph(model):
            return cls(graph=model, facts={FROZEN_KEY: model.source_format})
        return cls(keras_model=model)

    @property
    def is_tflite(self) -> bool:
        """True once the model has been converted."""
        return self.tflite_bytes is not None

    def with_keras(self, model: Any, **facts: Any) -> Artifact:
        """A new artifact holding ``model`` and the merged facts."""
        return replace(
            self,
            keras_model=model,
            tflite_bytes=None,
            pre_qat_model=None,
            graph=None,
            facts={**self.facts, **facts},
        )

    def with_graph(self, graph: Any, **facts: Any) -> Artifact:
        """A new artifact holding frozen ``graph`` (rewritten) and the merged facts."""
        return replace(
            self,
            keras_model=None,
            tflite_bytes=None,
            pre_qat_model=None,
            graph=graph,
            facts={**self.facts, FROZEN_KEY: graph.source_format, **facts},
        )

    def with_tflite(self, data: bytes, **facts: Any) -> Artifact:
        """A new artifact holding converted bytes and the merged facts."""
        return replace(
            self,
            keras_model=None,
            tflite_bytes=data,
            pre_qat_model=None,
            graph=None,
            source_model=self.keras_model if self.keras_model is not None else self.source_model,
            facts={**self.facts, **facts},
        )
