"""`compressor stylize` never loses a photo: no result replaces an input unless
--overwrite, and no two inputs are written to one name."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from compressor.style.pipeline import output_paths
from tests.conftest import assert_one_line_error, build_tiny_generator, invoke_cli


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "gen.keras"
    build_tiny_generator(size=32).save(path)
    return path


def _photos(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for suffix in ("png", "gif", "tif", "JPG"):
        pixels = rng.integers(0, 256, (36, 44, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo.{suffix}")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_output_on_or_inside_the_input_is_refused(generator, tmp_path):
    photos = tmp_path / "photos"
    before = _photos(photos)
    for output in (photos, photos / "styled"):
        result = invoke_cli("stylize", "--model", str(generator), "--input", str(photos),
                            "--output", str(output))  # fmt: skip
        assert_one_line_error(result, "--overwrite")
    single = photos / "photo.png"
    result = invoke_cli("stylize", "--model", str(generator), "--input", str(single),
                        "--output", str(single))  # fmt: skip
    assert_one_line_error(result, "would replace the photos")
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.iterdir()}
    assert after == before


def test_photos_with_one_stem_get_one_result_each(generator, tmp_path):
    photos = tmp_path / "photos"
    _photos(photos)
    out = tmp_path / "styled"
    result = invoke_cli("stylize", "--model", str(generator), "--input", str(photos),
                        "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(p.name for p in out.iterdir())
    assert written == ["photo-gif.png", "photo-tif.png", "photo.JPG", "photo.png"]
    assert "wrote 4 of 4" in result.stdout
    assert "photo.gif → photo-gif.png" in result.stdout.replace("\n", " ")


def test_output_names_are_distinct_case_insensitively():
    from pathlib import Path

    photos = [Path("a/x.png"), Path("a/X.PNG"), Path("a/x.gif"), Path("a/x-gif.png")]
    targets = output_paths(photos, Path("out"))
    names = [t.name.lower() for t in targets.values()]
    assert len(set(names)) == len(photos)
