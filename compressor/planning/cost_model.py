"""Predict size and target latency from ModelInfo and a profile's numbers (no TF).

latency = conv MACs (channels padded to the profile's tiles) / throughput[precision]
        + norm elements (channels padded to the output tile) × passes / norm rate[precision]
        + other memory-bound elements × passes / element rate[precision]
        + ops × per-op overhead
Every number comes from the profile, so a calibrated profile gives better estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

from compressor.core.block_conv_weights import BLOCK
from compressor.core.model_info import LayerInfo, ModelInfo
from compressor.core.profiles import ConvTiles, HardwareProfile
from compressor.planning.measured_constants import measured

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
_NORM_KINDS = ("instance_norm", "layer_norm", "group_norm")
_WEIGHTED_KINDS = ("conv", "conv_transpose", "depthwise_conv", "separable_conv", "dense")
_BITS_PER_WEIGHT = {"float32": 32, "float16": 16, "dynamic_int8": 8, "int8": 8, "int16x8": 8}
FLATBUFFER_OVERHEAD_BYTES = 4096


@dataclass(frozen=True)
class Work:
    """The work one inference does, in the units the profile's rates are given in."""

    macs: float  # conv/dense multiply-accumulates
    norm_elements: float  # element passes of instance/layer/group norm
    elements: float  # element passes of other memory-bound ops
    ops: int  # operators (each pays the per-op overhead)


def tile_padded_macs(layer: LayerInfo, tiles: ConvTiles | None) -> float:
    """``layer``'s MACs as the target computes them: a plain conv's input and output
    channels rounded up to whole tiles (its other MACs as they are)."""
    if tiles is None or not layer.in_channels or not layer.out_channels:
        return float(layer.macs)
    padded_in = -(-layer.in_channels // tiles.input) * tiles.input
    padded_out = -(-layer.out_channels // tiles.output) * tiles.output
    return layer.macs * (padded_in / layer.in_channels) * (padded_out / layer.out_channels)


def tile_padded_norm_elements(layer: LayerInfo, tiles: ConvTiles | None) -> float:
    """A norm's elements as the target's vectors see them: its channels (4× on 2×2
    blocks) rounded up to the output tile, the lanes the kernels fill along channels (a
    norm over 8 channels costs twice per element what one over 16 costs on x86-cpu;
    docs/measurements.md)."""
    channels = layer.output_shape[-1] if layer.output_shape else None
    if tiles is None or not channels:
        return float(layer.output_elements)
    if layer.class_name == "BlockInstanceNormalization" and not layer.writes_blocks:
        channels *= BLOCK**2  # computed on the blocks, written back to space
    padded = -(-channels // tiles.output) * tiles.output
    return layer.output_elements * padded / channels


def work_of(info: ModelInfo, mac_factor: float = 1.0, tiles: ConvTiles | None = None) -> Work:
    """Split ``info``'s inference into the cost model's terms (MACs padded to ``tiles``)."""
    other = sum(
        layer.output_elements * _ELEMENTWISE_PASSES.get(layer.kind, 0.0) for layer in info.layers
    )
    # Batch norm folds into the preceding conv; activations fuse into it.
    return Work(
        macs=(info.macs + sum(tile_padded_macs(layer, tiles) - layer.macs for layer in info.layers))
        * mac_factor,
        # passes = ops the converter emits per instance norm (measured, planner_constants.json)
        norm_elements=sum(
            tile_padded_norm_elements(layer, tiles)
            for layer in info.layers
            if layer.kind in _NORM_KINDS
        )
        * measured("norm_passes"),
        elements=other,
        ops=sum(1 for layer in info.layers if layer.kind not in ("identity", "activation")),
    )


def estimate_latency_ms(
    profile: HardwareProfile, info: ModelInfo, precision: str, mac_factor: float = 1.0
) -> float:
    """Estimated latency of one inference of ``info`` at ``precision`` on ``profile``."""
    spec = profile.precisions[precision]
    work = work_of(info, mac_factor, profile.conv_tiles)
    compute_ms = work.macs / (spec.gmacs_per_s * 1e9) * 1e3
    norm_rate = spec.norm_gelems_per_s or spec.gelems_per_s
    norm_ms = work.norm_elements / (norm_rate * 1e9) * 1e3
    other_ms = work.elements / (spec.gelems_per_s * 1e9) * 1e3
    overhead_ms = work.ops * profile.per_op_overhead_us / 1e3
    return compute_ms + norm_ms + other_ms + overhead_ms


def estimate_size_bytes(info: ModelInfo, precision: str) -> int:
    """Estimated ``.tflite`` size: weights at the precision's width, biases and norms float."""
    bits = _BITS_PER_WEIGHT[precision]
    weighted = sum(layer.params for layer in info.layers if layer.kind in _WEIGHTED_KINDS)
    other = info.params - weighted
    return int(weighted * bits / 8 + other * 4 + FLATBUFFER_OVERHEAD_BYTES)


def estimate_gzip_bytes(size_bytes: int, precision: str, gzip_factor: float = 1.0) -> int:
    """Estimated gzip size; ``gzip_factor`` < 1 models sparse or clustered weights."""
    ratio = measured(f"gzip_ratio.{_BITS_PER_WEIGHT[precision]}")
    return int(size_bytes * ratio * gzip_factor)
