"""Delegate coverage of a real ``.tflite``: its operators read by LiteRT's schema, and for
a GPU delegate TensorFlow's GPU analyzer asked too; the rules are
``compressor.planning.coverage``'s (which the TF-free planner shares)."""

from __future__ import annotations

from compressor.core.profiles import HardwareProfile
from compressor.planning.coverage import Coverage, op_coverage


def model_coverage(model: bytes, profile: HardwareProfile) -> Coverage:
    """Coverage of a converted ``.tflite`` on ``profile``, from its real operators (an op
    TensorFlow's GPU analyzer flags is not delegated on a GPU delegate)."""
    from compressor.litert.tflite_runtime import list_operators

    if profile.delegate != "gpu":
        return op_coverage(list_operators(model), profile)
    from compressor.litert.gpu_analyzer import gpu_verdict

    verdict = gpu_verdict(model)
    return op_coverage(
        list_operators(model), profile, frozenset(verdict.flagged_ops), verdict.to_dict()
    )
