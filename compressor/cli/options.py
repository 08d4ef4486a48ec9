"""Options that several commands share, declared once."""

from __future__ import annotations

import typer

INPUT_SIZE = typer.Option(
    None, "--input-size", help="Input size of a dynamic-size model or of the built-in demo."
)
FIXED_INPUTS = typer.Option(
    None,
    "--input",
    help="NAME=VALUE: fix a second model input (a number, a list or an .npy file) as a "
    "constant; repeatable.",
)
