"""`compressor stylize`: apply a generator (.keras or .tflite) to a photo or a folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from compressor.cli import options
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
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Allow --output to be --input itself or inside it (results may replace photos).",
    ),
    trust_model: bool = options.TRUST_MODEL,
) -> None:
    """Stylize one photo, or every photo of a folder (decode, inference and encode on
    separate threads), with a trained or compressed generator. Results never replace
    the input photos unless --overwrite."""
    from compressor.engine.plugin_host import get_host
    from compressor.litert.native_logs import import_tensorflow_quietly
    from compressor.style.stylize import load_generator, stylize_file

    if overlap < 0:
        raise CompressorError(f"--overlap {overlap}: expected a number of pixels ≥ 0")
    check_not_over_input(input_path, output, overwrite)
    import_tensorflow_quietly()
    custom_objects = get_host().keras_objects()
    if not input_path.is_dir():
        width, height = stylize_file(
            model, input_path, output, custom_objects, tile, overlap, threads or None,
            trust_model,
        )  # fmt: skip
        console.print(f"wrote [bold]{escape(str(output))}[/bold] ({width}x{height})")
        return
    generator = load_generator(model, custom_objects, threads or None, trust_model)
    _stylize_folder(generator, input_path, output, tile, overlap)


def check_not_over_input(input_path: Path, output: Path, overwrite: bool) -> None:
    """Refuse an ``--output`` that is ``--input`` or lies inside an input folder, where
    results would replace or mix with the photos (unless ``overwrite``)."""
    if overwrite or not input_path.exists():
        return
    source, target = input_path.resolve(), output.resolve()
    if target == source:
        raise CompressorError(
            f"--output {output} is --input {input_path}: the results would replace the photos",
            "choose another --output, or pass --overwrite",
        )
    if input_path.is_dir() and source in target.parents:
        raise CompressorError(
            f"--output {output} is inside --input {input_path}",
            "choose a folder outside the photos' folder, or pass --overwrite",
        )


def _stylize_folder(generator, folder: Path, output: Path, tile: bool, overlap: int) -> None:
    """The folder case: a progress bar, then images/s and any photo that failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from compressor.style.pipeline import folder_photos, output_path_for, stylize_folder

    if output.exists() and not output.is_dir():
        raise CompressorError(
            f"--output {output}: is a file, but --input {folder} is a folder",
            "give a folder for the results",
        )
    photos = folder_photos(folder)
    if not photos:
        raise CompressorError(f"--input {folder}: no PNG/JPEG/BMP/GIF/TIFF/WebP photos in it")
    not_photos = sorted(p.name for p in folder.iterdir() if p not in set(photos))
    output.mkdir(parents=True, exist_ok=True)
    with Progress(
        TextColumn("stylizing"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("stylize", total=len(photos))
        result = stylize_folder(
            generator, photos, output, tile, overlap, progress=lambda _: bar.advance(task)
        )
    console.print(
        f"wrote {len(result.written)} of {len(photos)} photos to "
        f"[bold]{escape(str(output))}[/bold] in "
        f"{result.seconds:.1f} s ({result.images_per_second:.2f} images/s)"
    )
    renamed = [
        (photo, target)
        for photo, target in result.targets.items()
        if target.name != output_path_for(photo, output).name
    ]
    if renamed:
        console.print(
            "names kept apart: "
            + escape(", ".join(f"{photo.name} → {target.name}" for photo, target in renamed[:6]))
            + (f" and {len(renamed) - 6} more" if len(renamed) > 6 else "")
        )
    if not_photos:
        console.print(
            f"[yellow]not photos, left alone:[/yellow] {len(not_photos)} "
            + escape(f"({', '.join(not_photos[:6])}{' …' if len(not_photos) > 6 else ''})")
        )
    for path, reason in result.failed:
        console.print(f"[red]skipped {escape(str(path))}: {escape(reason)}[/red]")
    if result.failed:
        raise typer.Exit(1)
