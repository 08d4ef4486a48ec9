"""Does the demo generator do style transfer? Two numbers on held-out photos, for the
shipped demo and, with ``--compare``, an earlier one; and docs/demo_samples.png.

    python benchmarks/demo_quality.py --compare old_demo.keras:hubble_deep_field.jpg

- style distance: Gram distance to the demo's style image, relative to the untouched
  photo's, in a judge network no training used (below 1: the output is closer to the
  style than the photo was);
- edge SSIM: SSIM of Sobel edge maps of output and photo (content kept).
Both from ``compressor.style.quality``, at 256x256 on scikit-image's chelsea,
motorcycle_right and retina (none trained on). Writes
``benchmarks/results/demo_quality.json`` and the table in docs/style-transfer.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import ROOT, host_facts, markdown_table, replace_section, write_json  # noqa: E402
from benchmarks.style_transfer import HELD_OUT_PHOTOS, STYLE_IMAGE, skimage_file  # noqa: E402

SIZE = 256


def _generator_at(path: Path | None) -> Any:
    """A demo-shaped generator at 256² with the weights of ``path`` (default: shipped)."""
    from dataclasses import replace

    from compressor.core.model_info import model_info_from_keras
    from compressor.ingest.keras_io import load_keras_model
    from compressor.models.default import build_default_model
    from compressor.models.generator import InstanceNormalization, build_generator
    from compressor.models.generator_spec import generator_config_from_info

    if path is None:
        return build_default_model(SIZE)
    trained = load_keras_model(path, {"InstanceNormalization": InstanceNormalization})
    config = generator_config_from_info(model_info_from_keras(trained))
    model = build_generator(replace(config, input_size=SIZE))
    model.set_weights(trained.get_weights())
    return model


def _row(label: str, model: Any, style_name: str, photos: np.ndarray) -> tuple[dict, Any]:
    from compressor.style.images import load_rgb, to_array
    from compressor.style.quality import StyleJudge, style_scores

    style = to_array(load_rgb(skimage_file(style_name), "style"), (SIZE, SIZE))
    outputs = model.predict(photos, verbose=0)
    scores = style_scores(StyleJudge.for_style(style), outputs, photos)
    return {"demo": label, "style_image": style_name, **scores}, (style, outputs)


def _samples_png(style: np.ndarray, photos: np.ndarray, outputs: np.ndarray, path: Path) -> None:
    """Style image, then each held-out photo over its stylized output."""
    from PIL import Image

    gap = np.ones((SIZE, 8, 3), np.float32)
    column = [np.concatenate([style, np.ones_like(style)], axis=0)]
    for photo, output in zip(photos, outputs, strict=True):
        column += [np.concatenate([gap, gap], axis=0), np.concatenate([photo, output], axis=0)]
    grid = np.concatenate(column, axis=1)
    Image.fromarray((np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def main() -> None:
    """Score the shipped demo (and --compare ones), write JSON, table and samples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compare", nargs="*", default=[], help="PATH.keras:STYLE (a scikit-image file name)"
    )
    args = parser.parse_args()
    from compressor.models.default import demo_record
    from compressor.style.images import load_rgb, to_array

    photos = np.stack(
        [to_array(load_rgb(skimage_file(n), "photo"), (SIZE, SIZE)) for n in HELD_OUT_PHOTOS]
    )
    record = demo_record()
    rows = []
    shipped, (style, outputs) = _row(
        f"shipped ({record['loss_network']})", _generator_at(None), STYLE_IMAGE, photos
    )
    rows.append(shipped)
    for spec in args.compare:
        path, style_name = spec.rsplit(":", 1)
        row, _ = _row(Path(path).name, _generator_at(Path(path)), style_name, photos)
        rows.append(row)
    _samples_png(style, photos, outputs, ROOT / "docs" / "demo_samples.png")
    data = {"benchmark": "demo_quality", "host": host_facts(), "size": SIZE, "rows": rows}
    write_json(ROOT / "benchmarks" / "results" / "demo_quality.json", data)
    table = markdown_table(
        ("demo", "style image", "style distance vs photo", "edge SSIM"),
        [(r["demo"], r["style_image"], r["style_distance_vs_photo"], r["edge_ssim"]) for r in rows],
    )
    replace_section(ROOT / "docs" / "style-transfer.md", "demo-quality", table)
    print(table)


if __name__ == "__main__":
    main()
