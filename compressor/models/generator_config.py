"""Shape of a Johnson-style generator (TF-free, shared by the model and the planner)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a generator: width multiplier, residual blocks, norm, block type, input
    size, the kernel of its first and last convs (9 in Johnson et al.; students may
    use less: those two full-resolution convs dominate a narrow generator's latency), and
    the residual trunk's own width multiplier (None: ``width``; students keep the trunk
    wider than the full-resolution layers, where fidelity is cheap to keep)."""

    width: float = 1.0
    residual_blocks: int = 5
    norm: Literal["instance", "batch"] = "instance"
    depthwise: bool = False
    input_size: int = 128
    edge_kernel: int = 9
    trunk_width: float | None = None
