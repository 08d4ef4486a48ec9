"""compressor vs the naive converter a user would otherwise run, per profile and model.

    python benchmarks/vs_naive.py [--profiles x86-cpu ...] [--models generator ...]

For each shipped profile and four model families (benchmarks/families.py: the trained
demo style generator, a texture classifier and a denoiser trained here on scikit-image's
images, Keras MobileNetV2 with random weights) this runs the proven plan (`compressor
run`, in process: plan search on, default constraints) and the plain TFLiteConverter with
``Optimize.DEFAULT`` and with full int8, then measures all three the same way in one
process: size, gzip size, LiteRT host latency (median of --runs at 1 and 2 threads),
fidelity vs the float Keras model, and delegate op coverage on the profile's target.
Fidelity is scored on the held-out split of each family's images — the same files
`compressor run` holds out with seed 0 — and both naive full int8 and compressor
calibrate on the calibration split only. The verdict column says whether the proven
plan is worse than both naive conversions on the fidelity floor (then on host latency
for host targets, size otherwise). Writes ``benchmarks/results.json`` and the tables in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
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
from compressor.litert.tflite_runtime import interleaved_latency  # noqa: E402

PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")
MODELS = ("generator", "texture_classifier", "denoiser", "mobilenet_v2")
NAIVE = ("naive Optimize.DEFAULT", "naive full int8")


def coverage_text(model: bytes, profile: Any) -> dict[str, Any]:
    """Delegate coverage of a converted model on ``profile``."""
    from compressor.litert.tflite_coverage import model_coverage

    return model_coverage(model, profile).to_dict()


def run_planned(
    profile: str, model_path: Path, data: Path | None, work: Path
) -> tuple[bytes, dict[str, Any]]:
    """`compressor run` in-process (plan search on, default constraints)."""
    from compressor.engine.job import run_job
    from compressor.engine.plugin_host import get_host

    output = work / "runs" / f"{profile}-{model_path.stem}"
    if output.exists():
        shutil.rmtree(output)
    run_dir, report = run_job(get_host(), profile, None, model_path, data, output)
    return (run_dir / "model.tflite").read_bytes(), report


def verdict(entry: dict[str, Any], floor: float, host_target: bool) -> str:
    """Is the proven plan worse than both naive baselines on the user's constraint (the
    fidelity floor)? Where all meet it, compare host latency (host targets) or size. A
    naive conversion whose delegate coverage is below the plan's does not run on the
    target's accelerator, so it is no rival there."""
    mine = entry["compressor"]
    if mine["coverage"].get("refused"):
        refused = [label for label in NAIVE if entry[label]["coverage"].get("refused")]
        suffix = "; so are both naive ones" if len(refused) == len(NAIVE) else ""
        return "the target's compiler refuses it (op version)" + suffix
    coverage = mine["coverage"]["fraction"]
    rivals = [entry[label] for label in NAIVE if entry[label]["coverage"]["fraction"] >= coverage]
    if not rivals:
        return "no naive conversion reaches its coverage"
    if mine["fidelity"] < floor:
        if any(r["fidelity"] >= floor for r in rivals):
            return "worse: misses the floor a naive conversion meets"
        if mine["fidelity"] + 1e-9 < max(r["fidelity"] for r in rivals):
            return "worse: all miss the floor, a naive one is closer"
        return "all miss the floor; closest or tied"
    rivals = [r for r in rivals if r["fidelity"] >= floor]
    if not rivals:
        return "meets the floor; no naive one does"
    key = "latency_ms_2t" if host_target else "size_mb"
    if all(mine[key] <= r[key] * 1.05 for r in rivals):
        return "meets the floor; " + ("fastest here" if host_target else "smallest")
    return "meets the floor; a naive one is " + ("faster here" if host_target else "smaller")


def estimate_accuracy(families: list[Any], runs: int) -> list[dict[str, Any]]:
    """Calibrate x86-cpu on this host, then compare the cost model's estimate with the
    measured LiteRT latency (2 threads) of each model at each CPU precision."""
    from compressor.core.datasets import load_builtin_samples
    from compressor.core.host import host_cpu
    from compressor.core.model_info import model_info_from_keras
    from compressor.engine.calibration import fit_profile, measure_workloads
    from compressor.engine.plugin_host import get_host
    from compressor.litert.conversion import convert_keras
    from compressor.litert.tflite_runtime import measure_latency
    from compressor.planning.cost_model import estimate_latency_ms

    shipped = get_host().profiles.resolve("x86-cpu")
    precisions = ["float32", "float16", "dynamic_int8", "int8"]
    calibrated = fit_profile(
        shipped, measure_workloads(precisions, 2, runs=runs), "x86-host", host_cpu()
    )
    rows = []
    for family in families:
        name, model = family.name, family.model
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
        return f"top-1 {row['top1_agreement']:.3f}"
    return "—"


def main() -> None:
    """Measure planned vs naive for every profile × model; write JSON and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="*", default=list(PROFILES))
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "naive")
    parser.add_argument(
        "--render", action="store_true", help="Only rewrite the docs tables from results.json"
    )
    args = parser.parse_args()
    if args.render:
        render(json.loads((ROOT / "benchmarks" / "results.json").read_text(encoding="utf-8")))
        return
    from benchmarks.families import build_families
    from compressor.core.constraints import primary_fidelity
    from compressor.engine.job import load_images
    from compressor.engine.plugin_host import get_host

    host = get_host()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    tflites: dict[tuple[str, str], dict[str, bytes]] = {}
    example: dict[str, Any] = {}
    families = build_families(work, args.models)
    for family in families:
        model = family.model
        path = work / f"{family.name}.keras"
        model.save(path)
        # The same split `compressor run` makes (seed 0): naive full int8 calibrates on the
        # calibration split, everything is scored on the held-out one.
        samples = load_images(family.data, tuple(model.input_shape[1:]), seed=0)
        assert samples.held_out, "fidelity must be scored on held-out images"
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
            data, report = run_planned(profile_name, path, family.data, work)
            seconds = round(time.perf_counter() - start, 1)
            mine = measure(data, images, reference, threads=(1, 2), runs=args.runs)[0]
            pipeline = " → ".join(
                s["strategy"] for s in report["stages"] if s["name"] != "evaluate"
            )
            candidates = report.get("search", {}).get("candidates", [])
            entry = {
                "model": family.name,
                "weights": family.kind,
                "images": {"calibration": len(samples.calibration), "held_out": len(images)},
                "profile": profile_name,
                "floor": report["constraints"]["min_fidelity"],
                "host_target": profile.runs_on_this_host(),
                "compressor": {
                    **mine,
                    "pipeline": pipeline,
                    "run_seconds": seconds,
                    "candidates_measured": len(candidates),
                    "estimated_target_ms": report["result"].get("estimated_latency_ms"),
                    "coverage": coverage_text(data, profile),
                },
            }
            for label, data_naive in naive.items():
                entry[label] = {
                    **measured_naive[label],
                    "coverage": coverage_text(data_naive, profile),
                }
            for label in ("compressor", *NAIVE):
                entry[label]["fidelity"] = primary_fidelity(entry[label])[1]
            rows.append(entry)
            tflites[(family.name, profile_name)] = {"compressor": data, **naive}
            example[family.name] = images[0]
            print(family.name, profile_name, pipeline, mine, flush=True)
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
        entry["verdict"] = verdict(entry, entry["floor"], entry["host_target"])
    estimates = estimate_accuracy(families, args.runs)
    data = {
        "benchmark": "vs_naive",
        "host": host_facts(),
        "runs": args.runs,
        "rows": rows,
        "estimates": estimates,
    }
    write_json(ROOT / "benchmarks" / "results.json", data)
    render(data)


def coverage_cell(coverage: dict[str, Any]) -> str:
    """``100%``, ``30% (cut 3:SHAPE)`` or ``0% (refused: 3:TRANSPOSE_CONV is version 4)``."""
    text = f"{coverage['fraction']:.0%}"
    if coverage.get("refused"):
        return text + f" (refused: {coverage['refused'].split(';')[0]})"
    return text + (f" (cut {coverage['cut_at']})" if coverage["cut_at"] else "")


def render(data: dict[str, Any]) -> None:
    """The docs tables from measured ``data`` (verdicts recomputed from the rows)."""
    table_rows = []
    for entry in data["rows"]:
        entry["verdict"] = verdict(entry, entry["floor"], entry["host_target"])
        for label in ("compressor", *NAIVE):
            r = entry[label]
            cov = r["coverage"]
            table_rows.append(
                (
                    entry["model"],
                    entry["profile"],
                    r.get("pipeline", label) if label == "compressor" else label,
                    r["size_mb"],
                    r["latency_ms_1t"],
                    r["latency_ms_2t"],
                    _fid(r),
                    coverage_cell(cov),
                    entry["verdict"] if label == "compressor" else "",
                )
            )
    table = markdown_table(
        ("model", "profile", "pipeline", "MB", "ms 1t", "ms 2t", "fidelity", "coverage", "verdict"),
        table_rows,
    )
    host_info = data["host"]
    header = (
        f"Measured on {host_info['cpu']} ({host_info['cores']} cores, "
        f"{', '.join(host_info.get('isa', [])) or 'ISA unknown'}); LiteRT median of "
        f"{data['runs']} runs; fidelity vs the float Keras model on each family's held-out "
        "split; coverage on the profile's delegate."
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
            for e in data["estimates"]
        ],
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "estimates", accuracy)
    print(table)


if __name__ == "__main__":
    main()
