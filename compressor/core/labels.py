"""True accuracy against the user's labels: a ``--data`` folder with one subfolder of
images per class (``core/datasets.class_folders``). Fidelity says how closely the
compressed model agrees with the float one; this says how often each is right."""

from __future__ import annotations

import numpy as np

from compressor.core.outputs import ModelOutputs


def label_accuracy(
    outputs: ModelOutputs, labels: np.ndarray, names: list[str]
) -> dict[str, float]:
    """Top-1 accuracy against ``labels`` (a class index per image) of each output in
    ``names`` whose scores cover every label: the arg-max of its values per image, or,
    for one value per image and classes 0/1, that value above the midpoint of its range
    (0.5 for a probability, 0 for a logit). Outputs that cannot be read as these
    classes are left out."""
    named = outputs.named()
    found = {}
    for name in names:
        if name not in named or len(named[name]) != len(labels) or not len(labels):
            continue
        scores = np.asarray(named[name], np.float64).reshape(len(labels), -1)
        if scores.shape[1] == 1 and int(labels.max()) <= 1:
            threshold = 0.5 if scores.min() >= 0.0 and scores.max() <= 1.0 else 0.0
            predicted = (scores[:, 0] > threshold).astype(np.int64)
        elif scores.shape[1] > int(labels.max()):
            predicted = np.argmax(scores, axis=1)
        else:
            continue
        found[name] = float(np.mean(predicted == labels))
    return found
