"""compressor vs the naive converter a user would otherwise run, per profile and model.

    python benchmarks/vs_naive.py [--profiles x86-cpu ...] [--models generator ...]

For each shipped profile and three model families (the demo style generator, Keras
MobileNetV2 with random weights, a small CNN classifier) this runs the planned pipeline
(`compressor run`, in process) and the plain TFLiteConverter with ``Optimize.DEFAULT``
and with full int8, then measures all three the same way in one process: size, gzip
size, LiteRT host latency (median of --runs at 1 and 2 threads), fidelity vs the float
Keras model, and delegate op coverage on the profile's target. Fidelity is scored on the
held-out split of the built-in photos — the same files `compressor run` holds out with
seed 0 — and both naive full int8 and compressor calibrate on the calibration split only.
Writes ``benchmarks/results.json`` and the table in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("COMPRESSOR_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    ROOT,
    convert_naive,
    host_facts,
    markdown_table,
    measure,
    replace_section,
    write_json,
)
from compressor.core.tflite_runtime import interleaved_latency  # noqa: E402

PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")
MODELS = ("generator", "mobilenet_v2", "classifier")


def build_model(name: str) -> Any:
    """One of the benchmark model families (random weights except the trained demo)."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    if name == "generator":
        from compressor.models.default import build_default_model

        return build_default_model(128)
    if name == "mobilenet_v2":
        return keras.applications.MobileNetV2(
            input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10
        )
    inputs = keras.Input((64, 64, 3))
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="small_classifier")


def coverage_text(model: bytes, profile: Any) -> dict[str, Any]:
    """Delegate coverage of a converted model on ``profile``."""
    from compressor.core.coverage import op_coverage
    from compressor.core.tflite_runtime import list_operators

    return op_coverage(list_operators(model), profile).to_dict()


def run_planned(profile: str, model_path: Path, work: Path) -> tuple[bytes, dict[str, Any]]:
    """`compressor run` in-process on the built-in sample photos."""
    from compressor.core.job import run_job
    from compressor.plugins.manager import get_host

    output = work / "runs" / f"{profile}-{model_path.stem}"
    if output.exists():
        shutil.rmtree(output)
    run_dir, report = run_job(get_host(), profile, None, model_path, None, output)
    return (run_dir / "model.tflite").read_bytes(), report


def estimate_accuracy(models: list[str], runs: int) -> list[dict[str, Any]]:
    """Calibrate x86-cpu on this host, then compare the cost model's estimate with the
    measured LiteRT latency (2 threads) of each model at each CPU precision."""
    from compressor.core.calibration import fit_profile, measure_workloads
    from compressor.core.conversion import convert_keras
    from compressor.core.cost_model import estimate_latency_ms
    from compressor.core.datasets import load_builtin_samples
    from compressor.core.host import host_cpu
    from compressor.core.model_info import model_info_from_keras
    from compressor.core.tflite_runtime import measure_latency
    from compressor.plugins.manager import get_host

    shipped = get_host().profiles.resolve("x86-cpu")
    precisions = ["float32", "float16", "dynamic_int8", "int8"]
    calibrated = fit_profile(
        shipped, measure_workloads(precisions, 2, runs=runs), "x86-host", host_cpu()
    )
    rows = []
    for name in models:
        model = build_model(name)
        info = model_info_from_keras(model)
        samples = load_builtin_samples(tuple(model.input_shape[1:]), seed=0).train
        for precision in precisions:
            io_type = "int8" if precision == "int8" else "float32"
            data = convert_keras(model, precision, samples[:16], io_type)
            measured = measure_latency(data, samples[0], 2, runs=runs).median_ms
            row = {"model": name, "precision": precision, "measured_ms": round(measured, 2)}
            for label, profile in (("shipped", shipped), ("calibrated", calibrated)):
                estimate = estimate_latency_ms(profile, info, precision)
                row[f"{label}_ms"] = round(estimate, 2)
                row[f"{label}_error"] = round((estimate - measured) / measured, 3)
            rows.append(row)
            print(row)
    return rows


def _fid(row: dict[str, Any]) -> str:
    if "ssim" in row:
        return f"SSIM {row['ssim']:.3f}"
    if "top1_agreement" in row:
        return f"top-1 {row['top1_agreement']:.2f}"
    return "—"


def main() -> None:
    """Measure planned vs naive for every profile × model; write JSON and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="*", default=list(PROFILES))
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "naive")
    args = parser.parse_args()
    from compressor.core.datasets import load_builtin_samples
    from compressor.plugins.manager import get_host

    host = get_host()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    tflites: dict[tuple[str, str], dict[str, bytes]] = {}
    example: dict[str, Any] = {}
    for model_name in args.models:
        model = build_model(model_name)
        path = work / f"{model_name}.keras"
        model.save(path)
        shape = tuple(model.input_shape[1:])
        samples = load_builtin_samples(shape, seed=0)
        assert samples.held_out, "fidelity must be scored on held-out photos"
        images = samples.evaluation
        reference = model.predict(images, verbose=0)
        naive = {
            "naive Optimize.DEFAULT": convert_naive(model, "default"),
            "naive full int8": convert_naive(model, "full-int8", samples.train),
        }
        measured_naive = {
            label: measure(data, images, reference, threads=(1, 2), runs=args.runs)[0]
            for label, data in naive.items()
        }
        for profile_name in args.profiles:
            profile = host.profiles.resolve(profile_name)
            start = time.perf_counter()
            data, report = run_planned(profile_name, path, work)
            seconds = round(time.perf_counter() - start, 1)
            mine = measure(data, images, reference, threads=(1, 2), runs=args.runs)[0]
            pipeline = " → ".join(
                s["strategy"] for s in report["stages"] if s["name"] != "evaluate"
            )
            entry = {
                "model": model_name,
                "profile": profile_name,
                "compressor": {
                    **mine,
                    "pipeline": pipeline,
                    "run_seconds": seconds,
                    "estimated_target_ms": report["result"].get("estimated_latency_ms"),
                    "coverage": coverage_text(data, profile),
                },
            }
            for label, data_naive in naive.items():
                entry[label] = {
                    **measured_naive[label],
                    "coverage": coverage_text(data_naive, profile),
                }
            rows.append(entry)
            tflites[(model_name, profile_name)] = {
                "compressor": data,
                **naive,
            }
            example[model_name] = images[0]
            print(model_name, profile_name, pipeline, mine)
    # Re-measure every model of a family round-robin (fair ratios on a noisy host).
    for entry in rows:
        key = (entry["model"], entry["profile"])
        for threads in (1, 2):
            medians = interleaved_latency(
                tflites[key],
                example[entry["model"]],
                threads,
                rounds=5,
                runs=max(1, args.runs // 4),
            )
            for label, value in medians.items():
                entry[label][f"latency_ms_{threads}t"] = value
    estimates = estimate_accuracy(args.models, args.runs)
    data = {
        "benchmark": "vs_naive",
        "host": host_facts(),
        "runs": args.runs,
        "rows": rows,
        "estimates": estimates,
    }
    write_json(ROOT / "benchmarks" / "results.json", data)
    table_rows = []
    for entry in rows:
        for label in ("compressor", "naive Optimize.DEFAULT", "naive full int8"):
            r = entry[label]
            cov = r["coverage"]
            table_rows.append(
                (
                    entry["model"],
                    entry["profile"],
                    r.get("pipeline", label) if label == "compressor" else label,
                    r["size_mb"],
                    r["gzip_mb"],
                    r["latency_ms_1t"],
                    r["latency_ms_2t"],
                    _fid(r),
                    f"{cov['fraction']:.0%}" + (f" (cut {cov['cut_at']})" if cov["cut_at"] else ""),
                )
            )
    table = markdown_table(
        ("model", "profile", "pipeline", "MB", "gzip MB", "ms 1t", "ms 2t", "fidelity", "coverage"),
        table_rows,
    )
    host_info = data["host"]
    header = (
        f"Measured on {host_info['cpu']} ({host_info['cores']} cores); LiteRT median of "
        f"{args.runs} runs; fidelity vs the float Keras model on scikit-image's sample photos; "
        "coverage on the profile's delegate."
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "vs-naive", f"{header}\n\n{table}")
    accuracy = markdown_table(
        (
            "model",
            "precision",
            "measured ms",
            "shipped x86-cpu est.",
            "error",
            "calibrated est.",
            "error",
        ),
        [
            (
                e["model"],
                e["precision"],
                e["measured_ms"],
                e["shipped_ms"],
                f"{e['shipped_error']:+.0%}",
                e["calibrated_ms"],
                f"{e['calibrated_error']:+.0%}",
            )
            for e in estimates
        ],
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "estimates", accuracy)
    print(table)


if __name__ == "__main__":
    main()
