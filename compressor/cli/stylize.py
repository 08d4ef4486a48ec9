"""`compressor stylize`: apply a generator (.keras or .tflite) to a photo."""

from __future__ import annotations

from pathlib import Path

import typer

from compressor.cli.render import console


def stylize(
    model: Path = typer.Option(..., "--model", "-m", help="Generator (.keras or .tflite)."),
    input_path: Path = typer.Option(..., "--input", "-i", help="Photo (any size/mode)."),
    output: Path = typer.Option(..., "--output", "-o", help="Result (.png/.jpg)."),
) -> None:
    """Stylize one photo with a trained or compressed generator."""
    from compressor.core.native_logs import import_tensorflow_quietly
    from compressor.plugins.manager import get_host
    from compressor.style.stylize import stylize_file

    import_tensorflow_quietly()
    width, height = stylize_file(model, input_path, output, get_host().keras_objects())
    console.print(f"wrote [bold]{output}[/bold] ({width}x{height})")
