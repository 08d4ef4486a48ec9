"""Students cut from the demo teacher on x86, side by side with the teacher: how fast,
how faithful, after how many distillation steps and how long.

    python benchmarks/style_students.py                   # 2400 and 4000 steps

Each row is `compressor run --profile x86-cpu` with a given plan (cut-student, its
default shape at the given steps, the `space-to-depth` rewrites x86-cpu's channel tiles
choose, then the float32 conversion) on the same data folder as the style-transfer
benchmark's runs (``prepare_run_images``); latency is LiteRT's median at 2 threads, all
models round-robin; SSIM/PSNR and the style scores are on the held-out photos against
the float Keras teacher at 256².
Writes ``benchmarks/results/style_students.json`` and a table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from benchmarks.common import (  # noqa: E402
    ROOT,
    convert_naive,
    host_facts,
    markdown_table,
    measure,
    replace_section,
    write_json,
)
from benchmarks.style_transfer import (  # noqa: E402
    HELD_OUT_PHOTOS,
    StyleScorer,
    prepare_demo_data,
    prepare_run_images,
    run_planned,
    skimage_file,
    teacher_at,
)


def _run_plan(name: str, stages: list[dict[str, Any]], teacher: Path, photos: Path, work: Path):
    """`compressor run` with a given plan on x86-cpu; returns (report, .tflite bytes)."""
    plan = work / f"{name}.yaml"
    plan.write_text(yaml.safe_dump({"profile": "x86-cpu", "stages": stages}), encoding="utf-8")
    result = run_planned(None, teacher, photos, work, plan)
    return result["report"], result["tflite"]


def main() -> None:
    """Cut, distill, convert, measure; write JSON and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work-students")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, nargs="*", default=[2400, 4000])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("COMPRESSOR_OFFLINE", "1")
    from compressor.core.datasets import images_from_paths
    from compressor.litert.tflite_runtime import interleaved_latency
    from compressor.strategies.distill import CutStudentConfig

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    _, style = prepare_demo_data(work)
    photos = prepare_run_images(work)
    teacher, teacher_path = teacher_at(args.size, None, work)
    held_out = images_from_paths(
        [skimage_file(n) for n in HELD_OUT_PHOTOS],
        (args.size, args.size, 3),
        "held-out",
        held_out_fraction=0,
    ).evaluation
    reference = teacher.predict(held_out, verbose=0)
    scorer = StyleScorer(style, args.size)
    rows: list[dict[str, Any]] = []
    models: dict[str, bytes] = {}

    def record(label: str, model: bytes, extra: dict[str, Any]) -> None:
        row, outputs = measure(model, held_out, reference, threads=(2,), runs=args.runs)
        rows.append({"label": label, **extra, **row, **scorer(outputs, held_out)})
        models[label] = model
        print(label, rows[-1])

    record("teacher float32", convert_naive(teacher, "float32"), {"steps": None})
    # float32 only: the table is about fidelity per distillation step; the precision
    # choice is the style-transfer benchmark's search (its x86-cpu-rt row).
    for steps in args.steps:
        stages = [
            {"stage": "distill", "strategy": "cut-student", "params": {"steps": steps}},
            {"stage": "fuse", "strategy": "space-to-depth"},
            {"stage": "quantize", "strategy": "tflite-float32"},
            {"stage": "evaluate", "strategy": "litert-evaluate"},
        ]
        report, model = _run_plan(f"cut{steps}", stages, teacher_path, photos, work)
        record(
            f"cut-student {steps} steps -> space-to-depth -> tflite-float32",
            model,
            {
                "steps": steps,
                "distill_seconds": report["stages"][0]["seconds"],
                "notes": report["notes"],
            },
        )
    medians = interleaved_latency(models, held_out[0], 2, rounds=5, runs=args.runs // 4 or 1)
    for row in rows:
        row["latency_ms_2t"] = medians[row["label"]]
        row["speedup"] = round(medians["teacher float32"] / row["latency_ms_2t"], 2)
    data = {"benchmark": "style_students", "host": host_facts(), "rows": rows}
    write_json(ROOT / "benchmarks" / "results" / "style_students.json", data)
    table = markdown_table(
        (
            "model",
            "distill s",
            "ms 2 thr",
            "× teacher",
            "SSIM",
            "PSNR dB",
            "style dist.",
            "edge SSIM",
        ),
        [
            (
                r["label"],
                round(r["distill_seconds"]) if r.get("distill_seconds") else "—",
                r["latency_ms_2t"],
                r["speedup"],
                r["ssim"],
                r["psnr_db"],
                r["style_distance_vs_photo"],
                r["edge_ssim"],
            )
            for r in rows
        ],
    )
    host = data["host"]
    shape = CutStudentConfig()
    header = (
        f"Measured on {host['cpu']} ({host['cores']} cores), {args.size}x{args.size}, LiteRT "
        f"2 threads, round-robin medians; cut-student's default shape ({shape.keep:g}x "
        f"width, trunk {shape.trunk_keep:g}x, {shape.residual_blocks} blocks, "
        f"{shape.edge_kernel}x{shape.edge_kernel} edges) distilled on the style-transfer "
        f"benchmark's run images (the run's calibration split); fidelity vs the float "
        f"Keras teacher on {', '.join(HELD_OUT_PHOTOS)}."
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "style-students", f"{header}\n\n{table}")
    print(table)


if __name__ == "__main__":
    main()
