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
INPUT_RANGE = typer.Option(
    None,
    "--input-range",
    help="LO,HI: the values the model takes for black and white (e.g. -1,1 or 0,255). "
    "Default: what the model states (a Keras Rescaling input layer), else 0,1.",
)
BGR = typer.Option(False, "--bgr", help="The model takes BGR channel order (OpenCV-trained).")
MEAN = typer.Option(
    None,
    "--mean",
    help="V or V1,V2,V3: subtracted from the inputs (in the --input-range units, the "
    "model's channel order), e.g. 0.485,0.456,0.406 for ImageNet-normalised models.",
)
STD = typer.Option(
    None,
    "--std",
    help="V or V1,V2,V3: the inputs are divided by it after --mean, e.g. 0.229,0.224,0.225.",
)
TRUST_MODEL = typer.Option(
    False,
    "--trust-model",
    help="Allow code the model file carries (Keras Lambda layers, Python modules named in "
    "its config) to run. Off by default: a model file is untrusted input.",
)


def check_limit(flag: str, value: float | None, positive: bool = False) -> None:
    """Refuse a NaN, infinite or negative number (``positive``: also zero) for ``flag``;
    ``None`` (not given) passes. Zero is a value, not "unset"."""
    import math

    from compressor.core.errors import CompressorError

    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        expected = "a positive number" if positive else "a number ≥ 0"
        raise CompressorError(f"{flag} {value}: expected {expected}")


def check_size(flag: str, value: int | None) -> None:
    """Refuse an image size below 1 pixel for ``flag`` (``None``: not given)."""
    from compressor.core.errors import CompressorError

    if value is not None and value < 1:
        raise CompressorError(f"{flag} {value}: expected a size of at least 1 pixel")


TASKS = typer.Option(
    None,
    "--task",
    help="How an output is judged: image, classification, detection, segmentation, "
    "landmarks, embedding or regression; OUTPUT=TASK for one output (repeatable). "
    "Default: guessed from each output's name and values (the report says why).",
)
METRICS = typer.Option(
    None,
    "--metric",
    help="A registered metric (see `compressor plugins`) for every output, or OUTPUT=NAME "
    "for one (repeatable); it replaces the task's default metric.",
)
