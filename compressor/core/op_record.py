"""One operator of a ``.tflite`` as the coverage rules see it: plain data, no LiteRT
(``compressor.litert.tflite_runtime.list_operators`` reads them from a flatbuffer)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpRecord:
    """One operator of a ``.tflite``: its builtin name and its tensors' types."""

    index: int
    name: str
    input_types: list[str]
    output_types: list[str]
    input_roles: list[str]  # "data", "bias" (int32 in int8 models) or "param" (int32 shape/axis)
    output_shapes: tuple[tuple[int, ...], ...] = ()  # shape signatures; -1 is a dynamic dim
    version: int = 1  # the op's version in the flatbuffer's operator codes
