"""Delegate op coverage of a converted model on a target, from its operators (the rules;
``compressor.litert.tflite_coverage`` reads a ``.tflite`` and asks TensorFlow's analyzer).

For each operator of the ``.tflite``: does the profile's delegate run it? For an
integer-only target (EdgeTPU) an op also needs int8/uint8 tensors, and the graph is
cut at the first op it cannot run: everything after runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compressor.core.op_record import OpRecord
from compressor.core.profiles import HardwareProfile

ALL_BUILTINS = "ALL_BUILTINS"
_INTEGER = {"int8", "uint8"}


@dataclass
class Coverage:
    """Which ops the target's delegate runs and where the graph falls back."""

    total_ops: int
    delegated_ops: int
    fallback: list[str] = field(default_factory=list)  # "INDEX:OP (reason)"
    cut_at: str | None = None  # first op the delegate cannot run (graph cut)
    analyzer: dict | None = None  # TensorFlow's GPU compatibility verdict, when asked
    refused: str | None = None  # why the target's compiler refuses the whole model

    @property
    def fraction(self) -> float:
        """Delegated ops / all ops."""
        return self.delegated_ops / self.total_ops if self.total_ops else 1.0

    def to_dict(self) -> dict:
        """Plain data for report.json."""
        return {
            "total_ops": self.total_ops,
            "delegated_ops": self.delegated_ops,
            "fraction": round(self.fraction, 4),
            "fallback": self.fallback,
            "cut_at": self.cut_at,
            **({"analyzer": self.analyzer} if self.analyzer else {}),
            **({"refused": self.refused} if self.refused else {}),
        }


def not_in_op_list(name: str, profile: HardwareProfile) -> str | None:
    """Why ``profile``'s delegate does not run builtin ``name``, if it does not."""
    supported = set(profile.supported_ops)
    if ALL_BUILTINS not in supported and name not in supported:
        return f"{name} is not in {profile.name}'s op list"
    return None


def _why_not(op: OpRecord, profile: HardwareProfile) -> str | None:
    missing = not_in_op_list(op.name, profile)
    if missing:
        return missing
    if profile.requires_full_integer:
        tensors = [
            t for t, role in zip(op.input_types, op.input_roles, strict=True) if role == "data"
        ] + op.output_types
        floats = sorted({t for t in tensors if t not in _INTEGER})
        if floats and op.name not in ("QUANTIZE", "DEQUANTIZE"):
            return f"{op.name} has {'/'.join(floats)} tensors ({profile.name} runs int8 only)"
    return shape_problem(op.name, [list(s) for s in op.output_shapes], profile)


def shape_problem(
    what: str, shapes: list[list[int | None]], profile: HardwareProfile
) -> str | None:
    """Why ``profile``'s delegate cannot take these output shapes (dynamic dims, or more
    non-unit dims than ``max_tensor_dims``), if it cannot. Batch dims count as 1."""
    if profile.max_tensor_dims is None:
        return None
    for shape in shapes:
        dims = shape[1:] if len(shape) > 1 else shape
        if any(d is None or d < 0 for d in dims):
            return f"{what} has a dynamic shape ({profile.name} needs static shapes)"
        non_unit = sum(1 for d in dims if d != 1)
        if non_unit > profile.max_tensor_dims:
            return (
                f"{what} output has {non_unit} non-unit dims "
                f"(max {profile.max_tensor_dims} on {profile.name})"
            )
    return None


def summarise(verdicts: list[tuple[int, str, str | None]], profile: HardwareProfile) -> Coverage:
    """Coverage from (op index, op name, reason it falls back or None), in execution order."""
    fallback = [f"{index}:{name} ({reason})" for index, name, reason in verdicts if reason]
    first = next(((index, name) for index, name, reason in verdicts if reason), None)
    delegated = len(verdicts) - len(fallback)
    if profile.delegate == "edgetpu" and first is not None:
        # The EdgeTPU compiler maps only the ops before the first unsupported one.
        delegated = sum(1 for index, _, _ in verdicts if index < first[0])
    cut_at = f"{first[0]}:{first[1]}" if first else None
    return Coverage(len(verdicts), delegated, fallback, cut_at)


def op_coverage(
    ops: list[OpRecord],
    profile: HardwareProfile,
    flagged: frozenset[int] = frozenset(),
    analyzer: dict | None = None,
) -> Coverage:
    """Coverage of the converted model's ``ops`` (in execution order) on ``profile``.

    ``flagged`` are ops TensorFlow's GPU analyzer refuses (not delegated, whatever the
    profile's op list says), and ``analyzer`` its verdict, both from
    ``compressor.litert.tflite_coverage.model_coverage``."""
    verdicts = [
        (
            op.index,
            op.name,
            _why_not(op, profile)
            or ("TensorFlow's GPU analyzer flags it" if op.index in flagged else None),
        )
        for op in ops
    ]
    coverage = summarise(verdicts, profile)
    coverage.analyzer = analyzer
    too_new = version_problem(ops, profile)
    if too_new:
        coverage.refused = too_new
        coverage.delegated_ops = 0
    return coverage


def version_problem(ops: list[OpRecord], profile: HardwareProfile) -> str | None:
    """Why ``profile``'s compiler refuses the model for an op version newer than it
    parses (``max_op_versions``), if it does."""
    for op in ops:
        limit = profile.max_op_versions.get(op.name)
        if limit is not None and op.version > limit:
            return (
                f"{op.index}:{op.name} is version {op.version}; {profile.name}'s compiler "
                f"parses up to {limit}, so it refuses the whole model"
            )
    return None
