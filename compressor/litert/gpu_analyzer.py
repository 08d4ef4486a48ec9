"""TensorFlow's own GPU-delegate compatibility check on a ``.tflite``.

``tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)`` prints, per
subgraph, "GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues
at nodes 3, 7 ..." or "Your model looks compatible with GPU delegate". Where it flags an
op, compressor counts that op as not delegated (the library wins). Where it passes a
model, compressor's op list still applies: measured with TF 2.21, the analyzer passes a
model with a Flex ``Cosh`` (a TensorFlow op, never run by the GPU delegate), so its
"compatible" is not proof (docs/measurements.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FLAGGED = re.compile(r"Subgraph#0 has GPU delegate compatibility issues at nodes ([\d, ]+)")


@dataclass
class AnalyzerVerdict:
    """What the analyzer said about subgraph 0."""

    compatible: bool
    flagged_ops: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """As report.json records it."""
        return {
            "tool": "tf.lite.experimental.Analyzer (gpu_compatibility=True)",
            "compatible": self.compatible,
            "flagged_ops": self.flagged_ops,
        }


def analyzer_text(model: bytes) -> str:
    """The analyzer's report on ``model`` (what ``Analyzer.analyze`` prints)."""
    from tensorflow.lite.python import analyzer

    return str(analyzer._analyzer_wrapper.ModelAnalyzer(model, False, True))


def parse_verdict(text: str) -> AnalyzerVerdict:
    """The verdict in an analyzer report."""
    match = _FLAGGED.search(text)
    if match:
        flagged = [int(n) for n in match.group(1).replace(" ", "").split(",") if n]
        return AnalyzerVerdict(False, flagged)
    return AnalyzerVerdict("compatible with GPU delegate" in text or "compatibile" in text)


def gpu_verdict(model: bytes) -> AnalyzerVerdict:
    """Run the analyzer's GPU compatibility check on ``model``."""
    return parse_verdict(analyzer_text(model))
