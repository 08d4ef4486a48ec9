"""What structured channel pruning saves, predicted from ModelInfo alone (TF-free): the
planner's view of ``compressor.core.channels.prune_channels``."""

from __future__ import annotations

from dataclasses import replace

from compressor.core.channels import GROUPS_KEY, kept_channels
from compressor.core.model_info import ModelInfo


def scale_info(info: ModelInfo, keep: float, alignment: int = 4) -> ModelInfo:
    """``info`` after pruning every channel group to ``keep`` of its filters (analytic)."""
    layers = {layer.name: layer for layer in info.layers}
    groups = [
        g
        for g in info.extra.get(GROUPS_KEY, [])
        if {g["producer"], g["consumer"], *g["between"]} <= set(layers)
    ]
    if not groups:
        return info
    out_scale: dict[str, float] = {}
    in_scale: dict[str, float] = {}
    for group in groups:
        producer = layers[group["producer"]]
        channels = int(producer.output_shape[-1])
        ratio = kept_channels(channels, keep, alignment) / channels
        for name in (group["producer"], *group["between"]):
            out_scale[name] = ratio
        in_scale[group["consumer"]] = ratio
        for name in group["between"]:
            in_scale[name] = ratio
    scaled = []
    for layer in info.layers:
        o, i = out_scale.get(layer.name, 1.0), in_scale.get(layer.name, 1.0)
        if o == 1.0 and i == 1.0:
            scaled.append(layer)
            continue
        weight = o * i if layer.kind == "conv" else o
        shape = list(layer.output_shape)
        if shape and shape[-1] is not None and o != 1.0:
            shape[-1] = int(round(shape[-1] * o))
        scaled.append(
            replace(
                layer,
                params=int(round(layer.params * weight)),
                macs=int(round(layer.macs * weight)),
                output_elements=int(round(layer.output_elements * o)),
                output_shape=shape,
                in_channels=int(round(layer.in_channels * i)),
                out_channels=int(round(layer.out_channels * o)),
            )
        )
    extra = {k: v for k, v in info.extra.items() if k != GROUPS_KEY}
    return ModelInfo(
        name=f"{info.name}_ch{keep:g}",
        layers=scaled,
        inputs=info.inputs,
        outputs=info.outputs,
        extra={**extra, GROUPS_KEY: groups},
    )
