"""Structured channel pruning: which filters can be removed, and what removing them saves.

A *channel group* is a Conv2D (the producer) whose output reaches exactly one Conv2D
(the consumer) through channel-wise layers only (norms, activations, resizes, pads,
pools, depthwise convs). Dropping producer filters drops the same channels in every
layer between and the consumer's matching input channels; nothing else changes shape.
Outputs that feed an Add, a Concatenate, two layers or the model output are not
prunable (their width is tied to other tensors).

``find_channel_groups`` reads a Keras graph; ``prune_channels`` rebuilds the smaller Keras
model with sliced weights; ``compressor.planning.channel_scaling.scale_info`` is the TF-free
prediction the planner uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GROUPS_KEY = "channel_groups"
_CHANNELWISE = {
    "BatchNormalization",
    "InstanceNormalization",
    "ReLU",
    "Activation",
    "LeakyReLU",
    "ELU",
    "UpSampling2D",
    "ZeroPadding2D",
    "Dropout",
    "MaxPooling2D",
    "AveragePooling2D",
    "DepthwiseConv2D",
}


def _outbound(layer: Any) -> list[Any]:
    layers = []
    for node in layer._outbound_nodes:
        layers.append(node.outbound_layer)
    return layers


def find_channel_groups(model: Any) -> list[dict[str, Any]]:
    """Channel groups of a functional Keras model, in layer order."""
    output_layers = {layer.name for layer in getattr(model, "_output_layers", [])}
    groups = []
    for layer in model.layers:
        if layer.__class__.__name__ != "Conv2D" or getattr(layer, "groups", 1) != 1:
            continue
        between, current = [], layer
        while True:
            if current.name in output_layers:
                break
            nxt = _outbound(current)
            if len(nxt) != 1 or len(nxt[0]._inbound_nodes) != 1:
                break
            following = nxt[0]
            name = following.__class__.__name__
            if name == "Conv2D" and getattr(following, "groups", 1) == 1:
                groups.append(
                    {"producer": layer.name, "between": between, "consumer": following.name}
                )
                break
            if name not in _CHANNELWISE or (
                name == "DepthwiseConv2D" and following.depth_multiplier != 1
            ):
                break
            between.append(following.name)
            current = following
    return groups


def kept_channels(channels: int, keep: float, alignment: int = 4) -> int:
    """How many of ``channels`` to keep: ``keep`` fraction, a multiple of ``alignment``."""
    alignment = max(1, alignment)
    kept = int(round(channels * keep / alignment)) * alignment
    return max(alignment, min(channels, kept))


def _saliency(model: Any, group: dict[str, Any]) -> np.ndarray:
    """L1 norm of each producer filter, times |scale| of a following norm layer."""
    kernel = model.get_layer(group["producer"]).get_weights()[0]
    score = np.abs(kernel).sum(axis=(0, 1, 2))
    for name in group["between"]:
        layer = model.get_layer(name)
        if layer.__class__.__name__ in ("BatchNormalization", "InstanceNormalization"):
            gamma = layer.get_weights()[0]
            if layer.__class__.__name__ == "BatchNormalization":
                variance = layer.get_weights()[3]
                gamma = gamma / np.sqrt(variance + layer.epsilon)
            score = score * np.abs(gamma)
            break
    return score


def prune_channels(
    model: Any, keep: float, alignment: int = 4, custom_objects: dict[str, Any] | None = None
) -> tuple[Any, dict[str, tuple[int, int]]]:
    """The model with the least salient filters of every channel group removed.

    Returns the new model and, per producer, (channels before, channels after).
    """
    import tf_keras as keras

    groups = find_channel_groups(model)
    keep_in: dict[str, np.ndarray] = {}
    keep_out: dict[str, np.ndarray] = {}
    sizes = {}
    for group in groups:
        score = _saliency(model, group)
        count = kept_channels(len(score), keep, alignment)
        kept = np.sort(np.argsort(-score, kind="stable")[:count])
        sizes[group["producer"]] = (len(score), count)
        keep_out[group["producer"]] = kept
        for name in group["between"]:
            keep_in[name] = kept  # channel-wise: same channels in and out
        keep_in[group["consumer"]] = kept
    config = model.get_config()
    for layer_config in config["layers"]:
        name = layer_config["config"]["name"]
        if name in keep_out:
            layer_config["config"]["filters"] = int(len(keep_out[name]))
        # A loaded model records each layer's build input shape; stale after pruning,
        # it would build a norm layer with the old channel count.
        layer_config.pop("build_config", None)
    smaller = keras.Model.from_config(config, custom_objects=custom_objects or {})
    for layer in smaller.layers:
        weights = model.get_layer(layer.name).get_weights()
        if not weights:
            continue
        layer.set_weights(_slice(layer, weights, keep_in.get(layer.name), keep_out))
    return smaller, sizes


def _slice(
    layer: Any, weights: list[np.ndarray], keep_in: np.ndarray | None, keep_out: dict
) -> list[np.ndarray]:
    name = layer.__class__.__name__
    if name == "Conv2D":
        kernel, *rest = weights
        if keep_in is not None:
            kernel = kernel[:, :, keep_in, :]
        if layer.name in keep_out:
            kernel = kernel[..., keep_out[layer.name]]
            rest = [b[keep_out[layer.name]] for b in rest]
        return [kernel, *rest]
    if keep_in is None:
        return weights
    if name == "DepthwiseConv2D":
        kernel, *rest = weights
        return [kernel[:, :, keep_in, :], *[b[keep_in] for b in rest]]
    return [w[keep_in] for w in weights]  # per-channel vectors (norm scales, offsets, stats)
