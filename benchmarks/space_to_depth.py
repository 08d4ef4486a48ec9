"""Convs on 2x2 space-to-depth blocks vs the same convs as they are, on this host.

    python benchmarks/space_to_depth.py

Three tables, all latency LiteRT medians at 2 threads, measured round-robin side by side:
single stride-1 'same' convs at 256x256 (direct vs ``SpaceToDepthConv2D`` with the
same weights rearranged) and upsample + conv pairs (direct vs ``SubPixelConv2D``);
single instance norms in space vs on 2x2 blocks (``BlockInstanceNormalization``); and
the demo generator at 256x256 with what the ``space-to-depth`` strategy rewrites on
x86-cpu (teacher and the half-width cut shape), with and without its norms on blocks.
Every rewritten model is checked equal to the original. Writes
``benchmarks/results/space_to_depth.json`` and the tables in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    ROOT,
    host_facts,
    markdown_table,
    replace_section,
    write_json,
)

# (kernel, input channels, output channels) of single convs at 256x256
CONV_SHAPES = (
    (9, 16, 3),
    (9, 8, 3),
    (9, 3, 16),
    (9, 3, 8),
    (9, 16, 16),
    (5, 16, 3),
    (5, 3, 16),
    (7, 16, 3),
    (3, 16, 3),
    (3, 32, 16),
)


def _single_conv(size: int, kernel: int, cin: int, cout: int) -> Any:
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, cin))
    outputs = keras.layers.Conv2D(cout, kernel, padding="same", name="conv")(inputs)
    return keras.Model(inputs, outputs)


# (input size, input channels, output channels) of nearest x2 upsample + 3x3 conv pairs
UPSAMPLE_SHAPES = ((128, 32, 16), (128, 16, 8), (64, 64, 32), (64, 32, 16))


def _upsample_conv(size: int, cin: int, cout: int) -> Any:
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, cin))
    upsampled = keras.layers.UpSampling2D(2, name="up")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(cout, 3, padding="same", name="conv")(upsampled))


# (size, channels) of single instance norms
NORM_SHAPES = ((256, 8), (256, 16), (128, 16), (128, 32), (64, 64))


def _norms(size: int, channels: int) -> tuple[Any, Any]:
    """An instance norm on (size, size, channels) and the same norm on its 2x2 blocks,
    with the same trained-looking gamma and beta."""
    import tf_keras as keras

    from compressor.layers.block_conv_layers import BlockInstanceNormalization
    from compressor.layers.instance_norm import InstanceNormalization

    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, channels).astype(np.float32) for _ in range(2)]
    inputs = keras.Input((size, size, channels))
    in_space = keras.Model(inputs, InstanceNormalization(name="norm")(inputs))
    blocks = keras.Input((size // 2, size // 2, 4 * channels))
    on_blocks = keras.Model(blocks, BlockInstanceNormalization(writes_blocks=True)(blocks))
    in_space.layers[-1].set_weights(weights)
    on_blocks.layers[-1].set_weights(weights)
    return in_space, on_blocks


def _checked_rewrite(
    model: Any,
    names: set[str],
    size: int,
    upsampled: dict[str, str] | None = None,
    chains: Sequence[Any] = (),
) -> Any:
    from compressor.strategies.space_to_depth import rewrite_model

    rewritten = rewrite_model(model, names, upsampled, chains)
    x = np.random.default_rng(1).random((2, size, size, model.input_shape[-1]), np.float32)
    error = np.max(np.abs(model.predict(x, verbose=0) - rewritten.predict(x, verbose=0)))
    if error > 1e-3:
        raise SystemExit(f"rewrite of {sorted(names)} differs by {error:.2e}")
    return rewritten


def main() -> None:
    """Measure single convs and generators, direct vs on blocks; write JSON and docs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()

    import tensorflow as tf

    from compressor.core.model_info import model_info_from_keras
    from compressor.engine.plugin_host import PluginHost
    from compressor.litert.conversion import convert_keras
    from compressor.litert.tflite_runtime import interleaved_latency
    from compressor.models.default import demo_config
    from compressor.models.generator import build_generator
    from compressor.planning.cost_model import tile_padded_macs
    from compressor.strategies.space_to_depth import (
        block_form,
        block_norm_chains,
        gainful_layers,
        upsampled_convs,
    )

    tiles = PluginHost().profiles.resolve("x86-cpu").conv_tiles
    size = args.size
    conv_rows = []
    for kernel, cin, cout in CONV_SHAPES:
        model = _single_conv(size, kernel, cin, cout)
        layer = model_info_from_keras(model).layers[0]
        predicted = tile_padded_macs(layer, tiles) / tile_padded_macs(block_form(layer), tiles)
        models = {
            "direct": convert_keras(model, "float32"),
            "blocks": convert_keras(_checked_rewrite(model, {"conv"}, size), "float32"),
        }
        x = np.random.default_rng(0).random((size, size, cin), dtype=np.float32)
        ms = interleaved_latency(models, x, 2, rounds=5, runs=args.runs)
        conv_rows.append(
            {
                "conv": f"{kernel}x{kernel} {cin}->{cout}",
                "direct_ms": round(ms["direct"], 2),
                "blocks_ms": round(ms["blocks"], 2),
                "measured_gain": round(ms["direct"] / ms["blocks"], 2),
                "predicted_gain": round(predicted, 2),
            }
        )
        print(conv_rows[-1], flush=True)

    for low, cin, cout in UPSAMPLE_SHAPES:
        model = _upsample_conv(low, cin, cout)
        models = {
            "direct": convert_keras(model, "float32"),
            "blocks": convert_keras(_checked_rewrite(model, set(), low, {"conv": "up"}), "float32"),
        }
        x = np.random.default_rng(0).random((low, low, cin), dtype=np.float32)
        ms = interleaved_latency(models, x, 2, rounds=5, runs=args.runs)
        conv_rows.append(
            {
                "conv": f"up x2 {low}->{2 * low} + 3x3 {cin}->{cout} (sub-pixel)",
                "direct_ms": round(ms["direct"], 2),
                "blocks_ms": round(ms["blocks"], 2),
                "measured_gain": round(ms["direct"] / ms["blocks"], 2),
                "predicted_gain": None,
            }
        )
        print(conv_rows[-1], flush=True)

    norm_rows = []
    for norm_size, channels in NORM_SHAPES:
        in_space, on_blocks = _norms(norm_size, channels)
        x = np.random.default_rng(0).random((norm_size, norm_size, channels), dtype=np.float32)
        blocks = tf.nn.space_to_depth(x[None], 2).numpy()[0]
        want = in_space.predict(x[None], verbose=0)
        got = tf.nn.depth_to_space(on_blocks.predict(blocks[None], verbose=0), 2).numpy()
        if np.max(np.abs(got - want)) > 1e-4:
            raise SystemExit(f"norm on blocks at {norm_size}x{channels} differs")
        models = {
            "space": convert_keras(in_space, "float32"),
            "blocks": convert_keras(on_blocks, "float32"),
        }
        ms = interleaved_latency(models, x, 2, rounds=5, runs=args.runs, inputs={"blocks": blocks})
        norm_rows.append(
            {
                "norm": f"{norm_size}x{norm_size}x{channels}",
                "space_ms": round(ms["space"], 3),
                "blocks_ms": round(ms["blocks"], 3),
                "gain": round(ms["space"] / ms["blocks"], 2),
            }
        )
        print(norm_rows[-1], flush=True)

    generators: dict[str, bytes] = {}
    # label -> (convs on blocks, norms on blocks)
    rewritten: dict[str, tuple[list[str], list[str]]] = {}
    teacher_config = demo_config(size)
    for label, config in (
        ("teacher", teacher_config),
        ("cut shape 0.5x, 5 blocks, 9x9", replace(teacher_config, width=teacher_config.width / 2)),
    ):
        model = build_generator(config, seed=0)
        info = model_info_from_keras(model)
        names, pairs = set(gainful_layers(info, tiles)), upsampled_convs(info)
        chains = block_norm_chains(info, names, set(pairs))
        convs = sorted(names) + [f"{c} (sub-pixel)" for c in sorted(pairs)]
        generators[label] = convert_keras(model, "float32")
        rewritten[label] = ([], [])
        for suffix, with_chains in ((" on blocks", ()), (" on blocks, norms too", chains)):
            generators[label + suffix] = convert_keras(
                _checked_rewrite(model, names, size, pairs, with_chains), "float32"
            )
            rewritten[label + suffix] = (convs, [chain.norm for chain in with_chains])
    x = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    ms = interleaved_latency(generators, x, 2, rounds=7, runs=args.runs)
    base = ms["teacher"]
    generator_rows = [
        {
            "model": label,
            "ms": round(value, 2),
            "x_teacher": round(base / value, 2),
            "rewritten": rewritten[label][0],
            "norms_on_blocks": rewritten[label][1],
        }
        for label, value in ms.items()
    ]
    for row in generator_rows:
        print(row, flush=True)

    write_json(
        ROOT / "benchmarks" / "results" / "space_to_depth.json",
        {
            "host": host_facts(),
            "size": size,
            "convs": conv_rows,
            "norms": norm_rows,
            "generators": generator_rows,
        },
    )
    facts = host_facts()
    text = (
        f"Host: {facts.get('cpu', '?')}, LiteRT at 2 threads, {size}x{size}, float32, "
        "medians, measured side by side (`python benchmarks/space_to_depth.py`).\n\n"
        + markdown_table(
            ["conv", "direct ms", "on 2x2 blocks ms", "gain", "predicted (x86-cpu tiles)"],
            [
                [
                    r["conv"],
                    r["direct_ms"],
                    r["blocks_ms"],
                    r["measured_gain"],
                    r["predicted_gain"] or "—",
                ]
                for r in conv_rows
            ],
        )
        + "\n\n"
        + markdown_table(
            ["instance norm", "in space ms", "on 2x2 blocks ms", "gain"],
            [[r["norm"], r["space_ms"], r["blocks_ms"], r["gain"]] for r in norm_rows],
        )
        + "\n\n"
        + markdown_table(
            ["generator", "ms", "x teacher", "convs on blocks", "norms on blocks"],
            [
                [
                    r["model"],
                    r["ms"],
                    r["x_teacher"],
                    ", ".join(r["rewritten"]) or "—",
                    ", ".join(r["norms_on_blocks"]) or "—",
                ]
                for r in generator_rows
            ],
        )
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "space-to-depth", text)


if __name__ == "__main__":
    main()
