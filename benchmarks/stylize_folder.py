"""Throughput of `compressor stylize` on a folder: pipelined (reader and writer threads)
against one photo after another, same model, same photos, outputs byte-compared.

    python benchmarks/stylize_folder.py            # the shipped demo at 256x256, float32

The photos are every RGB/grey image scikit-image bundles (no download), at their own
sizes, copied `--repeat` times. Writes ``benchmarks/results/stylize_folder.json`` and the
table in docs/benchmarks.md. Medians of ``--rounds`` alternating rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    ROOT,
    host_facts,
    markdown_table,
    replace_section,
    write_json,
)

PHOTOS = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)


def _sequential(generator, photos: list[Path], out: Path) -> float:
    """One photo after another on one thread: decode, run, encode."""
    from compressor.style.images import encode, load_rgb
    from compressor.style.pipeline import output_path_for
    from compressor.style.stylize import stylize_image

    start = time.perf_counter()
    for photo in photos:
        encode(stylize_image(generator, load_rgb(photo, "photo")), output_path_for(photo, out))
    return time.perf_counter() - start


def main() -> None:
    """Time both ways, check outputs are identical, write JSON and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="copies of each photo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads")
    args = parser.parse_args()
    from compressor.litert.conversion import convert_keras
    from compressor.models.default import build_default_model
    from compressor.style.pipeline import stylize_folder
    from compressor.style.stylize import load_generator

    work = Path(tempfile.mkdtemp(prefix="stylize-bench-"))
    folder = work / "photos"
    folder.mkdir()
    for name in PHOTOS:
        source = Path(str(resources.files("skimage") / "data" / name))
        for copy in range(args.repeat):
            shutil.copyfile(source, folder / f"{Path(name).stem}_{copy}{Path(name).suffix}")
    photos = sorted(folder.iterdir())
    model = work / "demo.tflite"
    model.write_bytes(convert_keras(build_default_model(args.size), "float32"))
    generator = load_generator(model, {}, args.threads)
    timings: dict[str, list[float]] = {"sequential": [], "pipelined": []}
    for round_number in range(args.rounds):
        for way in ("sequential", "pipelined"):
            out = work / f"{way}_{round_number}"
            if way == "sequential":
                timings[way].append(_sequential(generator, photos, out))
            else:
                timings[way].append(stylize_folder(generator, photos, out).seconds)
    first, second = work / "sequential_0", work / "pipelined_0"
    identical = all(
        (first / p.name).read_bytes() == (second / p.name).read_bytes() for p in first.iterdir()
    )
    rows = []
    for way, seconds in timings.items():
        median = statistics.median(seconds)
        rows.append(
            {
                "way": way,
                "seconds_median": round(median, 2),
                "images_per_second": round(len(photos) / median, 2),
            }
        )
    speedup = rows[0]["seconds_median"] / rows[1]["seconds_median"]
    data = {
        "benchmark": "stylize_folder",
        "host": host_facts(),
        "model": f"shipped demo generator at {args.size}x{args.size}, float32 .tflite",
        "photos": len(photos),
        "litert_threads": args.threads,
        "rounds": args.rounds,
        "outputs_identical": identical,
        "rows": rows,
        "speedup": round(speedup, 2),
    }
    write_json(ROOT / "benchmarks" / "results" / "stylize_folder.json", data)
    table = markdown_table(
        ("way", "seconds (median)", "images/s"),
        [(r["way"], r["seconds_median"], r["images_per_second"]) for r in rows],
    )
    host = data["host"]
    header = (
        f"Measured on {host['cpu']} ({host['cores']} cores): {len(photos)} photos "
        f"(scikit-image's, 10 × {args.repeat}, their own sizes) through {data['model']}, "
        f"LiteRT {args.threads} threads, median of {args.rounds} alternating rounds. "
        f"Pipelined / sequential: {speedup:.2f}× the throughput; outputs byte-identical: "
        f"{identical}."
    )
    replace_section(ROOT / "docs" / "benchmarks.md", "stylize-folder", f"{header}\n\n{table}")
    print(header)
    print(table)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
