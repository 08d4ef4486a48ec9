"""Measure the constants the planner's estimates use and write them, with host and date,
to ``compressor/planning/planner_constants.json`` (read by the strategies' ``estimate``).

Every value is measured here on the shipped demo generator (instance norm, 128×128) or
its batch-norm twin, on scikit-image's bundled photos split by file: calibration and
fine-tuning use the calibration split, every SSIM is taken on the held-out split against
the model's own float output. Fine-tuning strategies run with their default configs.

    python benchmarks/planner_constants.py            # about 15 minutes on 2 cores
    python benchmarks/planner_constants.py --quick    # post-training values only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import ROOT, host_facts  # noqa: E402

OUTPUT = ROOT / "compressor" / "planning" / "planner_constants.json"


def _context(model: Any, images: Any, profile: str) -> Any:
    from compressor.core.model_info import model_info_from_keras
    from compressor.engine.plugin_host import get_host

    return get_host().run_context(
        profile=get_host().profiles.resolve(profile),
        run_dir=Path(tempfile.mkdtemp(prefix="constants-")),
        float_model=model,
        model_info=model_info_from_keras(model),
        images=images,
    )


def _apply(name: str, artifact: Any, context: Any, **params: Any) -> Any:
    """Apply a strategy in a fresh copy of ``context`` (strategies that rewrite the model
    update the context's model facts; the next measurement must start from the original)."""
    from dataclasses import replace

    from compressor.engine.plugin_host import get_host

    strategy = get_host().strategies.get(name)
    fresh = replace(context, model_info=context.original_model_info, notes=[])
    return strategy.apply(artifact, fresh, strategy.Config(**params))


def _held_out_ssim(tflite: bytes, context: Any) -> float:
    from compressor.core.fidelity import ssim
    from compressor.litert.tflite_runtime import TFLiteModel

    images = context.images.evaluation
    return ssim(context.float_outputs("evaluation").first, TFLiteModel(tflite).predict(images))


def _loss(tflite: bytes, context: Any) -> float:
    return round(1.0 - _held_out_ssim(tflite, context), 4)


def _gzip(data: bytes) -> int:
    from compressor.litert.measurement import gzip_size

    return gzip_size(data)


def batch_norm_twin(teacher: Any, images: np.ndarray) -> Any:
    """The demo generator with batch norm in place of instance norm: same convs, BN
    statistics estimated on ``images`` (no training)."""
    from dataclasses import replace

    from compressor.models.default import demo_config
    from compressor.models.generator import build_generator
    from compressor.style.distill import copy_matching_weights, recalibrate_batch_norm

    twin = build_generator(replace(demo_config(None), norm="batch"), seed=0)
    copy_matching_weights(teacher, twin)
    recalibrate_batch_norm(twin, images)
    return twin


def elu_cnn(shape: tuple[int, ...]) -> Any:
    """A small conv net with ELU activations (random weights), for the activation swap."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    x = inputs
    for width in (16, 32, 16):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="elu")(x)
    outputs = keras.layers.Conv2D(shape[-1], 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="elu_cnn")


def norm_passes() -> dict[str, Any]:
    """Operators the converter emits for one instance-norm layer (its memory passes)."""
    import tf_keras as keras

    from compressor.litert.conversion import convert_keras
    from compressor.litert.tflite_runtime import list_operators
    from compressor.models.generator import InstanceNormalization

    inputs = keras.Input((16, 16, 8))
    model = keras.Model(inputs, InstanceNormalization()(inputs))
    ops = [op.name for op in list_operators(convert_keras(model, "float32"))]
    return {"value": float(len(ops)), "how": f"converted ops of one InstanceNormalization: {ops}"}


class SavedValues(dict):
    """Measured constants, written to ``OUTPUT`` as each arrives (a crash keeps them)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__()
        self.meta = meta
        self.previous = json.loads(OUTPUT.read_text())["values"] if OUTPUT.exists() else {}

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        super().__setitem__(key, value)
        document = {**self.meta, "values": {**self.previous, **self}}
        OUTPUT.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"{key:42s} {value['value']:<8} {value['how']}", flush=True)


def _demo() -> tuple[Any, Any, Any]:
    """The shipped demo, the built-in samples at its size, and an x86-cpu context."""
    from compressor.core.datasets import load_builtin_samples
    from compressor.models.default import build_default_model

    teacher = build_default_model(None)
    images = load_builtin_samples(tuple(teacher.input_shape[1:]), seed=0)
    return teacher, images, _context(teacher, images, "x86-cpu")


def measure_cut_student(values: dict[str, dict[str, Any]], teacher: Any, context: Any) -> None:
    """The SSIM each offered cut-student shape loses on the demo (default distillation):
    one constant per shape, and the default shape's as the width curve's point."""
    from compressor.core.artifact import Artifact
    from compressor.strategies.distill import CUT_SHAPES, CutStudentConfig, cut_shape_constant

    defaults = CutStudentConfig()
    default = (defaults.keep, defaults.trunk_keep, defaults.residual_blocks, defaults.edge_kernel)
    for keep, trunk, blocks, edge in CUT_SHAPES:
        start = time.perf_counter()
        shape = {"keep": keep, "trunk_keep": trunk, "residual_blocks": blocks, "edge_kernel": edge}
        cut = _apply("cut-student", Artifact(keras_model=teacher), context, **shape)
        data = _apply("tflite-float32", cut, context).tflite_bytes
        entry = {
            "value": _loss(data, context),
            "how": f"cut-student {keep:g}x width (trunk {trunk:g}x), {blocks} blocks, "
            f"{edge}x{edge} edges (default "
            f"{defaults.steps} steps, SSIM term {defaults.ssim_weight:g}) + float32 "
            f"({time.perf_counter() - start:.0f} s)",
        }
        values[cut_shape_constant(keep, blocks, edge, trunk)] = entry
        if (keep, trunk, blocks, edge) == default:
            values["ssim_loss.cut_student@0.5"] = {
                "value": entry["value"],
                "how": entry["how"] + "; the planner interpolates other widths linearly to no "
                "loss at 1.0",
            }


def measure(quick: bool, values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every constant: {name: {value, how}}, stored into ``values``."""
    from compressor.core.artifact import Artifact
    from compressor.core.datasets import load_builtin_samples

    values["norm_passes"] = norm_passes()
    teacher, images, context = _demo()
    shape = tuple(teacher.input_shape[1:])
    float_bytes = _apply("tflite-float32", Artifact(keras_model=teacher), context).tflite_bytes
    float_gzip = _gzip(float_bytes)
    for name, precision in (
        ("tflite-float16", "float16"),
        ("tflite-dynamic-int8", "dynamic_int8"),
        ("tflite-full-int8", "full_int8_instance_norm"),
    ):
        data = _apply(name, Artifact(keras_model=teacher), context).tflite_bytes
        values[f"ssim_loss.{precision}"] = {"value": _loss(data, context), "how": name}
        bits = {"float16": 16, "dynamic_int8": 8}.get(precision)
        if bits:
            values[f"gzip_ratio.{bits}"] = {
                "value": round(_gzip(data) / len(data), 4),
                "how": f"gzip -9 / size of the demo's {name} file",
            }
    values["gzip_ratio.32"] = {
        "value": round(float_gzip / len(float_bytes), 4),
        "how": "gzip -9 / size of the demo's float32 file",
    }
    from dataclasses import replace

    from compressor.models.default import demo_config
    from compressor.models.generator import build_generator

    plain = build_generator(replace(demo_config(None), norm="batch"), seed=0)
    plain_context = _context(plain, images, "edgetpu")
    data = _apply("tflite-full-int8", Artifact(keras_model=plain), plain_context).tflite_bytes
    values["ssim_loss.full_int8"] = {
        "value": _loss(data, plain_context),
        "how": "tflite-full-int8 of the demo's architecture with batch norm, random weights",
    }
    data = _apply("tflite-int16x8", Artifact(keras_model=plain), plain_context).tflite_bytes
    values["ssim_loss.int16x8"] = {
        "value": _loss(data, plain_context),
        "how": "tflite-int16x8 of the demo's architecture with batch norm, random weights",
    }
    twin = batch_norm_twin(teacher, images.train)
    twin_context = _context(twin, images, "edgetpu")
    twin_ptq = _apply("tflite-full-int8", Artifact(keras_model=twin), twin_context)
    ptq_loss = _loss(twin_ptq.tflite_bytes, twin_context)
    values["ssim_loss.full_int8_batch_norm_twin"] = {
        "value": ptq_loss,
        "how": "tflite-full-int8 of the demo's trained convs with batch norm in place of "
        "instance norm (statistics from calibration images, no training); informational",
    }
    if quick:
        return values
    elu = elu_cnn(shape)
    elu_context = _context(elu, load_builtin_samples(tuple(elu.input_shape[1:]), seed=0), "edgetpu")
    swapped = _apply(
        "activation-swap", Artifact(keras_model=elu), elu_context, swaps={"elu": "relu"}
    )
    data = _apply("tflite-float32", swapped, elu_context).tflite_bytes
    values["ssim_loss.activation_swap"] = {
        "value": _loss(data, elu_context),
        "how": "activation-swap elu->relu (defaults) + float32 on a 4-conv ELU net, random weights",
    }

    def qat_scale(model: Any, model_context: Any, ptq: float, label: str) -> dict[str, Any]:
        start = time.perf_counter()
        trained = _apply("tfmot-qat", Artifact(keras_model=model), model_context)
        trained.pre_qat_model = None  # the QAT conversion alone, not the better-of-two
        data = _apply("tflite-full-int8", trained, model_context).tflite_bytes
        loss = _loss(data, model_context)
        return {
            "value": round(min(1.0, loss / max(ptq, 1e-6)), 4),
            "how": f"{label}: QAT (defaults) + full int8 SSIM loss {loss} vs post-training "
            f"{ptq} ({time.perf_counter() - start:.0f} s); capped at 1: the quantize stage "
            "keeps the better of the two",
        }

    values["qat_loss_scale"] = qat_scale(twin, twin_context, ptq_loss, "batch-norm twin")
    in_loss = values["ssim_loss.full_int8_instance_norm"]["value"]
    values["qat_loss_scale_instance_norm"] = qat_scale(
        teacher, _context(teacher, images, "edgetpu"), in_loss, "demo (instance norm)"
    )
    for sparsity in (0.5, 0.75):
        pruned = _apply(
            "magnitude-prune", Artifact(keras_model=teacher), context, target_sparsity=sparsity
        )
        data = _apply("tflite-float32", pruned, context).tflite_bytes
        values[f"ssim_loss.magnitude_prune@{sparsity}"] = {
            "value": _loss(data, context),
            "how": f"magnitude-prune {sparsity} (defaults) + float32",
        }
        values[f"gzip_factor.magnitude_prune@{sparsity}"] = {
            "value": round(_gzip(data) / float_gzip, 4),
            "how": "gzip of the pruned float32 file / unpruned",
        }
    pruned = _apply("prune-2x4", Artifact(keras_model=teacher), context)
    data = _apply("tflite-float32", pruned, context).tflite_bytes
    values["ssim_loss.prune_2x4"] = {"value": _loss(data, context), "how": "prune-2x4 + float32"}
    values["gzip_factor.prune_2x4"] = {
        "value": round(_gzip(data) / float_gzip, 4),
        "how": "gzip of the 2:4 float32 file / unpruned",
    }
    for keep in (0.75, 0.5):
        thin = _apply("prune-channels", Artifact(keras_model=teacher), context, keep=keep)
        data = _apply("tflite-float32", thin, context).tflite_bytes
        values[f"ssim_loss.prune_channels@{keep}"] = {
            "value": _loss(data, context),
            "how": f"prune-channels keep {keep} (defaults) + float32",
        }
    measure_cut_student(values, teacher, context)
    swapped = _apply("norm-swap", Artifact(keras_model=teacher), context)
    data = _apply("tflite-float32", swapped, context).tflite_bytes
    values["ssim_loss.norm_swap"] = {
        "value": _loss(data, context),
        "how": "norm-swap (defaults: 300 distillation steps) + float32, vs the teacher",
    }
    return values


def main() -> None:
    """Measure and write the constants file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="post-training values only")
    parser.add_argument(
        "--only-cut-student",
        action="store_true",
        help="re-measure the cut-student constants (every offered shape) only",
    )
    args = parser.parse_args()
    import compressor  # noqa: F401  (Keras 2 switch)

    meta = {
        "measured_by": "python benchmarks/planner_constants.py"
        + (" --quick" if args.quick else "")
        + (" --only-cut-student (others: the previous full run)" if args.only_cut_student else ""),
        "date": str(date.today()),
        "host": host_facts(),
        "model": "shipped demo generator (instance norm, 128x128) and its batch-norm twin",
        "images": "scikit-image samples; calibration split for calibration and fine-tuning, "
        "SSIM on the held-out split",
    }
    start = time.perf_counter()
    if args.only_cut_student:
        teacher, _, context = _demo()
        measure_cut_student(SavedValues(meta), teacher, context)
    else:
        measure(args.quick, SavedValues(meta))
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
