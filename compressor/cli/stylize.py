"""`compressor stylize`: apply a generator (.keras or .tflite) to a photo or a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from compressor.cli.render import console
from compressor.core.errors import CompressorError


def stylize(
    model: Path = typer.Option(..., "--model", "-m", help="Generator (.keras or .tflite)."),
    input_path: Path = typer.Option(
        ..., "--input", "-i", help="Photo (any size/mode) or a folder of photos."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Result (.png/.jpg), or a folder for a folder input."
    ),
    tile: bool = typer.Option(
        False,
        "--tile",
        help="Keep the photo's resolution: run overlapping model-sized tiles and blend "
        "them, instead of resizing the photo to the model's input.",
    ),
    overlap: int = typer.Option(32, "--overlap", min=0, help="Tile overlap in pixels."),
    threads: int = typer.Option(
        0, "--threads", min=0, help="LiteRT threads for a .tflite model (0: LiteRT's choice)."
    ),
) -> None:
    """Stylize one photo, or every photo of a folder (decode, inference and encode on
    separate threads), with a trained or compressed generator."""
    from compressor.engine.plugin_host import get_host
    from compressor.litert.native_logs import import_tensorflow_quietly
    from compressor.style.stylize import load_generator, stylize_file

    import_tensorflow_quietly()
    custom_objects = get_host().keras_objects()
    if not input_path.is_dir():
        width, height = stylize_file(
            model, input_path, output, custom_objects, tile, overlap, threads or None
        )
        console.print(f"wrote [bold]{output}[/bold] ({width}x{height})")
        return
    generator = load_generator(model, custom_objects, threads or None)
    _stylize_folder(generator, input_path, output, tile, overlap)


def _stylize_folder(generator, folder: Path, output: Path, tile: bool, overlap: int) -> None:
    """The folder case: a progress bar, then images/s and any photo that failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from compressor.style.pipeline import folder_photos, stylize_folder

    if output.exists() and not output.is_dir():
        raise CompressorError(
            f"--output {output}: is a file, but --input {folder} is a folder",
            "give a folder for the results",
        )
    photos = folder_photos(folder)
    if not photos:
        raise CompressorError(f"--input {folder}: no PNG/JPEG/BMP/GIF/TIFF/WebP photos in it")
    output.mkdir(parents=True, exist_ok=True)
    with Progress(
        TextColumn("stylizing"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("stylize", total=len(photos))
        result = stylize_folder(
            generator, photos, output, tile, overlap, progress=lambda _: bar.advance(task)
        )
    console.print(
        f"wrote {len(result.written)} of {len(photos)} photos to [bold]{output}[/bold] in "
        f"{result.seconds:.1f} s ({result.images_per_second:.2f} images/s)"
    )
    for path, reason in result.failed:
        console.print(f"[red]skipped {path}: {reason}[/red]")
    if result.failed:
        raise typer.Exit(1)
