"""The built-in fidelity metrics, registered through the same hook as a plugin's."""

from __future__ import annotations

from compressor.api import MetricRegistry, hookimpl
from compressor.core.builtin_metrics import BUILTIN_METRICS


@hookimpl
def register_metrics(registry: MetricRegistry) -> None:
    """Register one metric per task: ssim, top1, detection-f1, mask-miou, landmark-nme,
    cosine, output-match."""
    for metric in BUILTIN_METRICS:
        registry.add(metric)
