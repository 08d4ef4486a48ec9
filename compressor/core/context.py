"""Everything a strategy may use while it runs: profile, data, the float model, progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.artifact import is_frozen_graph
from compressor.core.builtin_metrics import builtin_judge
from compressor.core.datasets import ImageSet
from compressor.core.errors import CompressorError
from compressor.core.metrics import FidelityJudge, Judgement
from compressor.core.model_info import ModelInfo
from compressor.core.outputs import ModelOutputs
from compressor.core.profiles import HardwareProfile

ProgressCallback = Callable[[str, float], None]


SAMPLE_IMAGES = 4  # images shown before/after in report.html


def predict_outputs(model: Any, images: np.ndarray) -> ModelOutputs:
    """Named outputs of a Keras model or a ``FrozenGraph`` on ``images``."""
    if hasattr(model, "predict_outputs"):
        return model.predict_outputs(images)
    return ModelOutputs.from_keras(model, model.predict(images, batch_size=8, verbose=0))


def output_names(model: Any) -> list[str]:
    """Names of a Keras model's or a ``FrozenGraph``'s outputs, in its order."""
    names = getattr(model, "output_names", None)
    return list(names) if names else ["output"]


def _ignore_progress(message: str, fraction: float) -> None:
    return None


@dataclass
class RunContext:
    """Shared state of one run. ``float_model`` is the original, uncompressed model: a
    Keras model, or a ``FrozenGraph`` (which predicts like one)."""

    profile: HardwareProfile
    run_dir: Path
    float_model: Any
    model_info: ModelInfo
    images: ImageSet
    plan: Any = None
    seed: int = 0
    progress: ProgressCallback = _ignore_progress
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _float_outputs: dict[str, ModelOutputs] = field(default_factory=dict)
    _float_tflite: dict[str, bytes] = field(default_factory=dict)
    original_model_info: ModelInfo | None = None
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # for report.html
    constraints: Any = None  # the run's Constraints (e.g. the fidelity floor strategies aim at)
    # Keras model -> float32 .tflite; the engine passes LiteRT's converter (the contract
    # does not import LiteRT itself).
    float_converter: Callable[[Any], bytes] | None = None
    # Custom Keras objects registered by plugins (to clone or quantize custom layers).
    keras_objects: dict[str, Any] = field(default_factory=dict)
    # Scores every output by its task (plugins' metrics, --task/--metric choices).
    fidelity_judge: FidelityJudge = field(default_factory=builtin_judge)

    def __post_init__(self) -> None:
        # model_info follows architecture rewrites (distillation); the baseline keeps this.
        if self.original_model_info is None:
            self.original_model_info = self.model_info

    def float_outputs(self, which: str) -> ModelOutputs:
        """Outputs of the float model on the ``train``, ``calibration`` (whole calibration
        images), ``choice`` (the images choices are made on: the selection split, or the
        calibration images without one) or ``evaluation`` (held-out) images (cached)."""
        if which not in self._float_outputs:
            images = {
                "train": self.images.train,
                "calibration": self.images.calibration,
                "choice": self.images.choice,
                "evaluation": self.images.evaluation,
            }[which]
            self._float_outputs[which] = predict_outputs(self.float_model, images)
        return self._float_outputs[which]

    def judge(self, reference: ModelOutputs, outputs: ModelOutputs) -> Judgement:
        """Every output of a compressed model scored against the float model's."""
        return self.fidelity_judge.judge(reference, outputs)

    def float_tflite(self) -> bytes:
        """The float model as a float32 ``.tflite`` (the baseline), converted once."""
        if "float32" not in self._float_tflite:
            if is_frozen_graph(self.float_model):
                self._float_tflite["float32"] = self.float_model.tflite
            elif self.float_converter is None:
                raise CompressorError("RunContext.float_converter is not set: no way to convert")
            else:
                self._float_tflite["float32"] = self.float_converter(self.float_model)
        return self._float_tflite["float32"]

    def representative_images(self, limit: int = 64) -> np.ndarray:
        """Calibration images for full-integer conversion. The first holds one pixel at
        the input range's low end and one at its high end (black and white, as real
        photos have), so the int8 input scale covers every value the model takes, not
        only the range the calibration photos happened to reach."""
        samples = np.array(self.images.train[:limit], dtype=np.float32, copy=True)
        if len(samples) and samples.ndim == 4 and samples.shape[2] >= 2:
            mapping = self.images.mapping
            samples[0, 0, 0, :] = mapping.low
            samples[0, 0, 1, :] = mapping.high
        return samples

    def note(self, message: str) -> None:
        """Record something the report must show (a fallback, a skipped layer)."""
        self.notes.append(message)
