"""A model's outputs on a batch: one float array per named output, in the model's order.

A Keras model names its outputs after its output layers; a ``.tflite`` names them in its
SignatureDef (the converter writes the Keras names there, but lists its output tensors in
an order of its own). Outputs of two models are paired by name, so a compressed model's
probability head is compared with the float model's probability head whatever order
either file lists them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compressor.core.errors import ModelError

# Prefixes tools add to output layer names (tensorflow-model-optimization's QAT wrappers).
_ADDED_PREFIXES = ("quant_",)


@dataclass(frozen=True)
class ModelOutputs:
    """Named outputs of one model on one batch (each array's first axis is the batch)."""

    names: tuple[str, ...]
    arrays: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.arrays) or not self.names:
            raise ValueError("ModelOutputs needs one name per array, and at least one")

    @classmethod
    def single(cls, array: np.ndarray, name: str = "output") -> ModelOutputs:
        """One unnamed output."""
        return cls((name,), (np.asarray(array, dtype=np.float32),))

    @classmethod
    def from_keras(cls, model: Any, predictions: Any) -> ModelOutputs:
        """What ``model.predict`` returned (an array, a list or a dict), named by the
        model's output names."""
        names = list(getattr(model, "output_names", None) or [])
        if isinstance(predictions, dict):
            keys = [n for n in names if n in predictions] or list(predictions)
            return cls(tuple(keys), tuple(np.asarray(predictions[k], np.float32) for k in keys))
        values = predictions if isinstance(predictions, list | tuple) else [predictions]
        if len(names) != len(values):
            names = [f"output_{i}" for i in range(len(values))]
        return cls(tuple(names), tuple(np.asarray(v, dtype=np.float32) for v in values))

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def __getitem__(self, batch: slice) -> ModelOutputs:
        """The same outputs for a slice of the batch."""
        return ModelOutputs(self.names, tuple(a[batch] for a in self.arrays))

    @property
    def first(self) -> np.ndarray:
        """The first output (the only one of a single-output model)."""
        return self.arrays[0]

    def named(self) -> dict[str, np.ndarray]:
        """Name → array."""
        return dict(zip(self.names, self.arrays, strict=True))

    def keras_targets(self) -> np.ndarray | list[np.ndarray]:
        """Targets for ``model.fit``: one array, or a list in the model's output order."""
        return self.arrays[0] if len(self.arrays) == 1 else list(self.arrays)

    def aligned_to(self, reference: ModelOutputs) -> ModelOutputs:
        """These outputs in ``reference``'s order and with its names, paired by name (as
        written, or without a prefix a tool added), else by a shape only one output has,
        else by position."""
        if self.names == reference.names:
            return self
        if len(self.names) != len(reference.names):
            raise ModelError(
                f"the compressed model has {len(self.names)} output(s) "
                f"({', '.join(self.names)}), the float model {len(reference.names)} "
                f"({', '.join(reference.names)})"
            )
        order = _pairing(reference, self)
        return ModelOutputs(reference.names, tuple(self.arrays[i] for i in order))


def _bare(name: str) -> str:
    for prefix in _ADDED_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _pairing(reference: ModelOutputs, test: ModelOutputs) -> list[int]:
    """For each reference output, the index of the test output it pairs with."""
    by_name = {_bare(name): i for i, name in enumerate(test.names)}
    if all(_bare(name) in by_name for name in reference.names):
        return [by_name[_bare(name)] for name in reference.names]
    shapes = [a.shape[1:] for a in test.arrays]
    wanted = [a.shape[1:] for a in reference.arrays]
    if all(shapes.count(s) == 1 for s in wanted) and sorted(map(str, shapes)) == sorted(
        map(str, wanted)
    ):
        return [shapes.index(s) for s in wanted]
    return list(range(len(reference.names)))


def outputs_of(values: Sequence[np.ndarray], names: Sequence[str]) -> ModelOutputs:
    """Arrays and their names as ``ModelOutputs``."""
    return ModelOutputs(tuple(names), tuple(np.asarray(v, dtype=np.float32) for v in values))
