"""Predict size and target latency from ModelInfo and a profile's numbers (no TF).

latency = conv MACs / throughput[precision]
        + memory-bound elements × passes / element rate[precision]
        + ops × per-op overhead
Every number comes from the profile, so a calibrated profile gives better estimates.
"""

from __future__ import annotations

from compressor.core.model_info import ModelInfo
from compressor.core.profiles import HardwareProfile

# Passes over the data a layer kind costs when it cannot be fused into a conv.
_ELEMENTWISE_PASSES = {
    "add": 1.0,
    "mul": 1.0,
    "concat": 1.0,
    "resize": 1.0,
    "pad": 1.0,
    "pool": 1.0,
    "scale": 1.0,
    "other": 1.0,
    "reshape": 0.5,
}
# Mean, squared difference, mean, rsqrt-mul, sub, mul-add: instance/layer/group norm.
_NORM_PASSES = 6.0
_NORM_KINDS = ("instance_norm", "layer_norm", "group_norm")
_WEIGHTED_KINDS = ("conv", "conv_transpose", "depthwise_conv", "separable_conv", "dense")
_BITS_PER_WEIGHT = {"float32": 32, "float16": 16, "dynamic_int8": 8, "int8": 8, "int16x8": 8}
# How well gzip shrinks dense weights of each width (measured on random-init convs).
_GZIP_RATIO = {32: 0.93, 16: 0.92, 8: 0.88}
FLATBUFFER_OVERHEAD_BYTES = 4096


def estimate_latency_ms(
    profile: HardwareProfile, info: ModelInfo, precision: str, mac_factor: float = 1.0
) -> float:
    """Estimated latency of one inference of ``info`` at ``precision`` on ``profile``."""
    spec = profile.precisions[precision]
    compute_ms = info.macs * mac_factor / (spec.gmacs_per_s * 1e9) * 1e3
    norm_elements = info.elements_of(*_NORM_KINDS)
    norm_rate = spec.norm_gelems_per_s or spec.gelems_per_s
    norm_ms = norm_elements * _NORM_PASSES / (norm_rate * 1e9) * 1e3
    other = sum(
        layer.output_elements * _ELEMENTWISE_PASSES.get(layer.kind, 0.0) for layer in info.layers
    )
    # Batch norm folds into the preceding conv except where nothing precedes it.
    other_ms = other / (spec.gelems_per_s * 1e9) * 1e3
    ops = sum(1 for layer in info.layers if layer.kind not in ("identity", "activation"))
    overhead_ms = ops * profile.per_op_overhead_us / 1e3
    return compute_ms + norm_ms + other_ms + overhead_ms


def estimate_size_bytes(info: ModelInfo, precision: str) -> int:
    """Estimated ``.tflite`` size: weights at the precision's width, biases and norms float."""
    bits = _BITS_PER_WEIGHT[precision]
    weighted = sum(layer.params for layer in info.layers if layer.kind in _WEIGHTED_KINDS)
    other = info.params - weighted
    return int(weighted * bits / 8 + other * 4 + FLATBUFFER_OVERHEAD_BYTES)


def estimate_gzip_bytes(size_bytes: int, precision: str, gzip_factor: float = 1.0) -> int:
    """Estimated gzip size; ``gzip_factor`` < 1 models sparse or clustered weights."""
    ratio = _GZIP_RATIO[_BITS_PER_WEIGHT[precision]]
    return int(size_bytes * ratio * gzip_factor)
