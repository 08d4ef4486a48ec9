"""Benchmark the flagship workload: train the demo style generator, compress it for every
shipped profile, and compare with the float32 `.tflite` of the teacher.

    python benchmarks/style_transfer.py              # trains the demo first (~1 h on 2 cores)
    python benchmarks/style_transfer.py --shipped    # uses the demo shipped in the package

Writes ``benchmarks/results/style_transfer.json`` and the table in ``docs/benchmarks.md``.
All latencies are LiteRT medians of ``--runs`` invocations on this host at 2 threads and
256x256; SSIM/PSNR are against the float Keras teacher on held-out photos; content and
style scores use a judge network no training used (``compressor.style.quality``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
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
from compressor.litert.tflite_runtime import interleaved_latency  # noqa: E402

TRAIN_PHOTOS = (
    "astronaut.png",
    "camera.png",
    "coffee.png",
    "motorcycle_left.png",
    "rocket.jpg",
)
HELD_OUT_PHOTOS = ("chelsea.png", "motorcycle_right.png", "retina.jpg")
# More unlabelled images for the compressor runs (distillation, calibration) and the naive
# converter's calibration: the teacher labels any image, and a student distilled on 5
# photos learns less of it. None of them is held out or the style image.
EXTRA_RUN_IMAGES = (
    "brick.png",
    "grass.png",
    "gravel.png",
    "coins.png",
    "moon.png",
    "page.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "cell.png",
    "clock_motion.png",
    "color.png",
    "microaneurysms.png",
    "text.png",
)
STYLE_IMAGE = "ihc.png"
SHIPPED_PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")


def skimage_file(name: str) -> Path:
    """A photo or texture from scikit-image's wheel."""
    return Path(str(resources.files("skimage") / "data" / name))


def prepare_demo_data(work: Path) -> tuple[Path, Path]:
    """The demo's training photos and style image, copied from scikit-image."""
    photos = work / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_PHOTOS:
        shutil.copyfile(skimage_file(name), photos / name)
    style = work / f"style{Path(STYLE_IMAGE).suffix}"
    shutil.copyfile(skimage_file(STYLE_IMAGE), style)
    return photos, style


def prepare_run_images(work: Path) -> Path:
    """The folder the compressor runs take as ``--data``: the training photos plus
    ``EXTRA_RUN_IMAGES``, all from scikit-image."""
    folder = work / "run_images"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in TRAIN_PHOTOS + EXTRA_RUN_IMAGES:
        shutil.copyfile(skimage_file(name), folder / name)
    return folder


def demo_train_args(photos: Path, style: Path, output: Path) -> list[str]:
    """The shipped demo's `compressor train` arguments, with paths under ``work``."""
    from compressor.models.default import demo_record

    args = demo_record()["command"].split()[2:]
    replaced = {"--style": str(style), "--data": str(photos), "--output": str(output)}
    for i, arg in enumerate(args[:-1]):
        if arg in replaced:
            args[i + 1] = replaced[arg]
    return args


def train_demo(work: Path) -> tuple[Path, float | None]:
    """Train the demo with the documented command (reused when already trained in ``work``)."""
    photos, style = prepare_demo_data(work)
    output = work / "demo.keras"
    if output.exists():
        print(f"reusing {output} (delete it to retrain)")
        return output, None
    args = demo_train_args(photos, style, output)
    print("training:", "compressor", " ".join(args))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "compressor", *args], check=True)
    return output, time.perf_counter() - start


def teacher_at(size: int, trained: Path | None, work: Path) -> tuple[Any, Path]:
    """The trained generator rebuilt at ``size`` and saved (run_job takes a path)."""
    from compressor.ingest.keras_io import load_keras_model
    from compressor.models.default import build_default_model, demo_config
    from compressor.models.generator import InstanceNormalization, build_generator

    if trained is None:
        model = build_default_model(size)
    else:
        weights = load_keras_model(trained, {"InstanceNormalization": InstanceNormalization})
        model = build_generator(demo_config(size))
        model.set_weights(weights.get_weights())
    path = work / f"teacher_{size}.keras"
    model.save(path)
    return model, path


def budget_profile(name: str, latency_ms: float, min_fidelity: float, work: Path) -> Path:
    """A copy of shipped profile ``name`` with a latency budget and a fidelity floor (the
    real-time variant)."""
    source = Path(str(resources.files("compressor.hardware_profiles") / f"{name}.yaml"))
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["name"] = f"{name}-rt"
    data["description"] = f"{data['description']} — {latency_ms:g} ms budget"
    data.setdefault("budgets", {})["max_latency_ms"] = latency_ms
    data["budgets"]["min_fidelity"] = min_fidelity
    path = work / "profiles" / f"{name}-rt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class StyleScorer:
    """The demo's two quality numbers (``compressor.style.quality``): style distance to
    the style image relative to the photo's, in a judge network no training used, and
    SSIM of edge maps with the photo."""

    def __init__(self, style: Path, size: int) -> None:
        from compressor.style.images import load_rgb, to_array
        from compressor.style.quality import StyleJudge

        self.judge = StyleJudge.for_style(to_array(load_rgb(style, "style image"), (size, size)))

    def __call__(self, outputs: np.ndarray, photos: np.ndarray) -> dict[str, float]:
        """Both numbers, averaged over the photos."""
        from compressor.style.quality import style_scores

        return style_scores(self.judge, outputs, photos)


def run_planned(
    profile: str | None,
    teacher_path: Path,
    photos: Path,
    work: Path,
    plan: Path | None = None,
) -> dict[str, Any]:
    """`compressor run` in-process (planned for ``profile``, or with the given ``plan``);
    returns the report, the `.tflite` bytes and the seconds it took."""
    from compressor.engine.job import run_job
    from compressor.engine.plugin_host import get_host

    output = work / "runs" / Path(plan or profile or "run").stem
    if output.exists():
        shutil.rmtree(output)
    start = time.perf_counter()
    run_dir, report = run_job(get_host(), profile, plan, teacher_path, photos, output)
    return {
        "report": report,
        "tflite": (run_dir / "model.tflite").read_bytes(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    """Train (or take) the demo, compress it per profile, measure, write JSON + docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipped", action="store_true", help="use the packaged demo")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=None,
        help="latency budget of the real-time variants (default: the float32 teacher's "
        "2-thread latency / --speedup)",
    )
    parser.add_argument("--speedup", type=float, default=3.0, help="goal for the budget")
    parser.add_argument(
        "--rt-min-fidelity", type=float, default=0.90, help="SSIM floor of the -rt runs"
    )
    parser.add_argument("--profiles", nargs="*", default=list(SHIPPED_PROFILES))
    parser.add_argument(
        "--rt-profiles", nargs="*", default=["x86-cpu"], help="profiles given a budget too"
    )
    args = parser.parse_args()
    os.environ.setdefault("COMPRESSOR_OFFLINE", "1")
    from compressor.core.datasets import images_from_paths
    from compressor.models.default import demo_record

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    photos, style = prepare_demo_data(work)
    run_images = prepare_run_images(work)
    trained, train_seconds = (None, None) if args.shipped else train_demo(work)
    teacher, teacher_path = teacher_at(args.size, trained, work)
    shape = (args.size, args.size, 3)
    held_out = images_from_paths(
        [skimage_file(n) for n in HELD_OUT_PHOTOS], shape, "held-out", held_out_fraction=0
    ).evaluation
    # The naive baseline calibrates where compressor does: on the run images, never on
    # the held-out photos every row is scored on.
    calibration = images_from_paths(
        sorted(run_images.iterdir()), shape, "run images", held_out_fraction=0
    ).train
    reference = teacher.predict(held_out, verbose=0)
    scorer = StyleScorer(style, args.size)

    rows: list[dict[str, Any]] = []
    models: dict[str, bytes] = {}

    def record(label: str, model: bytes, extra: dict[str, Any]) -> None:
        row, outputs = measure(model, held_out, reference, threads=(1, 2), runs=args.runs)
        row.update(scorer(outputs, held_out))
        rows.append({"label": label, **extra, **row})
        models[label] = model
        print(f"{label}: {row}")

    record(
        "teacher float32 (plain converter)",
        convert_naive(teacher, "float32"),
        {"profile": None, "pipeline": "TFLiteConverter float32"},
    )
    record(
        "teacher naive full int8",
        convert_naive(teacher, "full-int8", calibration),
        {"profile": None, "pipeline": "TFLiteConverter full int8 (PTQ)"},
    )
    budget = args.budget_ms or round(rows[0]["latency_ms_2t"] / args.speedup, 1)
    runs = [(p, p) for p in args.profiles]
    for name in args.rt_profiles:
        runs.append((f"{name}-rt", str(budget_profile(name, budget, args.rt_min_fidelity, work))))
    for label, profile in runs:
        result = run_planned(profile, teacher_path, run_images, work)
        report = result["report"]
        pipeline = " -> ".join(s["strategy"] for s in report["stages"] if s["name"] != "evaluate")
        distill = next((s for s in report["stages"] if s["name"] == "distill"), None)
        record(
            label,
            result["tflite"],
            {
                "profile": label,
                "pipeline": pipeline,
                "precision": report["result"]["precision"],
                "run_seconds": result["seconds"],
                "estimated_target_ms": report["result"].get("estimated_latency_ms"),
                "distill_steps": distill["params"].get("steps") if distill else None,
                "distill_seconds": distill["seconds"] if distill else None,
                "notes": report.get("notes", []),
            },
        )

    # Runs and measurements above share the CPU with training; measure latency again,
    # all models round-robin, so the ratios compare like with like.
    for threads in (1, 2):
        medians = interleaved_latency(
            models, held_out[0], threads, rounds=5, runs=args.runs // 4 or 1
        )
        for row in rows:
            row[f"latency_ms_{threads}t"] = medians[row["label"]]
    fp32 = rows[0]["latency_ms_2t"]
    for row in rows:
        row["speedup_vs_fp32_teacher_2t"] = round(fp32 / row["latency_ms_2t"], 2)
    data = {
        "benchmark": "style_transfer",
        "host": host_facts(),
        "input_size": args.size,
        "held_out_photos": list(HELD_OUT_PHOTOS),
        "budget_ms": budget,
        "demo": {
            "source": "shipped package" if args.shipped else str(trained),
            "train_seconds": train_seconds,
            "record": demo_record(),
        },
        "rows": rows,
    }
    write_json(ROOT / "benchmarks" / "results" / "style_transfer.json", data)
    table = markdown_table(
        (
            "target",
            "pipeline",
            "size MB",
            "gzip MB",
            "ms 1 thr",
            "ms 2 thr",
            "× fp32",
            "SSIM",
            "PSNR dB",
            "style dist.",
            "edge SSIM",
            "distill steps (s)",
        ),
        [
            (
                r["profile"] or r["label"],
                r["pipeline"],
                r["size_mb"],
                r["gzip_mb"],
                r["latency_ms_1t"],
                r["latency_ms_2t"],
                r["speedup_vs_fp32_teacher_2t"],
                r["ssim"],
                r["psnr_db"],
                r["style_distance_vs_photo"],
                r["edge_ssim"],
                f"{r['distill_steps']} ({r['distill_seconds']:.0f})"
                if r.get("distill_steps")
                else "—",
            )
            for r in rows
        ],
    )
    host = data["host"]
    header = (
        f"Measured on {host['cpu']} ({host['cores']} cores), {args.size}x{args.size}, "
        f"LiteRT median of {args.runs}; fidelity vs the float Keras teacher on "
        f"{', '.join(HELD_OUT_PHOTOS)}; `-rt` rows add a {budget:g} ms latency budget "
        f"(the float32 teacher's 2-thread latency / {args.speedup:g}) and an SSIM floor of "
        f"{args.rt_min_fidelity:g} to the shipped profile. "
        "Style dist.: Gram distance to the style image relative to the photo's, in a judge "
        "network no training used (below 1: closer to the style); edge SSIM: SSIM of Sobel "
        "edge maps with the photo (docs/style-transfer.md)."
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "style-transfer", f"{header}\n\n{table}")
    print(table)


if __name__ == "__main__":
    main()
