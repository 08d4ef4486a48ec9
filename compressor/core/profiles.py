"""Hardware profiles: YAML files that state what a target runs and how fast.

A profile is data, not code: a new device is a new YAML file. Loading is strict:
an unknown key, a wrong type or a missing field is an error naming the file and field.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compressor.core.constraints import Budgets
from compressor.core.errors import ProfileError
from compressor.core.validation import describe_validation_error, yaml_error_text

Precision = Literal["float32", "float16", "dynamic_int8", "int8", "int16x8"]
IoType = Literal["float32", "int8", "uint8"]
PRECISION_ORDER: tuple[str, ...] = ("float32", "float16", "dynamic_int8", "int8", "int16x8")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrecisionSpec(_Strict):
    """How fast the target computes at one precision (at the profile's thread count)."""

    gmacs_per_s: float = Field(gt=0, description="Sustained multiply-accumulates (1e9/s) in convs")
    gelems_per_s: float = Field(
        gt=0, description="Elements (1e9/s) through memory-bound ops: adds, resizes, pads"
    )
    norm_gelems_per_s: float | None = Field(
        default=None, gt=0, description="Elements (1e9/s) through unfused instance/layer norms"
    )


class ConvTiles(_Strict):
    """Channel tiles of the target's conv kernels: a conv computes input channels per
    tap and output channels in whole tiles, so a 3-channel output costs a 16-channel one
    where the output tile is 16 (XNNPACK f32 on AVX-512, docs/measurements.md)."""

    input: int = Field(default=1, ge=1, le=64, description="Input channels per tap, per tile")
    output: int = Field(default=1, ge=1, le=256, description="Output channels per tile")


class Objective(_Strict):
    """Weights of the planner's score: lower score wins among plans within budget."""

    latency: float = Field(default=1.0, ge=0, description="Weight of latency / baseline latency")
    size: float = Field(default=0.25, ge=0, description="Weight of gzip size / baseline gzip")
    fidelity: float = Field(default=5.0, ge=0, description="Weight of estimated SSIM loss")
    effort: float = Field(default=0.02, ge=0, description="Weight per fine-tuning stage")


class HardwareProfile(_Strict):
    """What a target supports and prefers; the planner's only source of device facts."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Profile name")
    description: str
    runtime: Literal["litert"] = "litert"
    delegate: Literal["xnnpack", "gpu", "edgetpu", "nnapi", "reference"]
    arch: Literal["x86_64", "arm64"] | None = Field(
        default=None, description="CPU architecture of the target (CPU delegates)"
    )
    isa: list[str] = Field(
        default_factory=list, description="ISA features the numbers assume, e.g. avx512_vnni"
    )
    precisions: dict[Precision, PrecisionSpec] = Field(
        min_length=1, description="Precisions the target executes, with throughput"
    )
    io_types: list[IoType] = Field(min_length=1, description="Tensor types allowed at model I/O")
    requires_full_integer: bool = Field(
        default=False, description="Every op must run int8 (e.g. EdgeTPU)"
    )
    supported_ops: list[str] = Field(min_length=1, description="TFLite builtin ops the target runs")
    threads: int = Field(ge=1, le=64, description="Interpreter threads")
    memory_mb: int = Field(gt=0, description="Memory available to the model")
    max_tensor_dims: int | None = Field(default=None, ge=1, description="Max non-unit tensor dims")
    max_op_versions: dict[str, int] = Field(
        default_factory=dict,
        description="Newest version of a builtin op the target's compiler/runtime parses; "
        "a newer one makes it refuse the whole model",
    )
    float_arithmetic: Literal["float32", "float16"] = Field(
        default="float32",
        description="Arithmetic of float ops on the target (float16: e.g. the GPU delegate "
        "with precision loss allowed); fidelity is measured in it",
    )
    channel_alignment: int = Field(default=1, ge=1, description="Channel multiple the target likes")
    per_op_overhead_us: float = Field(default=5.0, ge=0, description="Fixed cost per op dispatch")
    conv_tiles: ConvTiles | None = Field(
        default=None, description="Channel tiles of conv kernels (None: MACs cost alike)"
    )
    budgets: Budgets = Budgets()
    objective: Objective = Objective()

    def constrained(self, constraints: Any) -> HardwareProfile:
        """This profile with ``constraints`` (the run's resolved ``Constraints``) as its
        budgets: the planner ranks for what the user asked (``--min-fidelity``,
        ``--max-latency-ms``, …), and strategies deciding whether they are needed see it."""
        return self.model_copy(update={"budgets": constraints.as_budgets()})

    def runs(self, precision: str) -> bool:
        """True when the target executes ``precision``."""
        return precision in self.precisions

    def runs_on_this_host(self) -> bool:
        """True when the target's runtime is this machine (a CPU delegate on this host's
        architecture): then host latency is the target's latency."""
        from compressor.core.host import host_arch

        return self.delegate in ("xnnpack", "reference") and self.arch == host_arch()

    def isa_warning(self) -> str | None:
        """A one-line warning when this host lacks ISA features the profile assumes."""
        missing = self.missing_isa()
        if not missing:
            return None
        return (
            f"{self.name} assumes {', '.join(missing)}, which this host lacks: its latency "
            "estimates do not hold here (runs measure latency instead); "
            "`--profile host` uses rates measured on this machine"
        )

    def missing_isa(self) -> list[str]:
        """ISA features this profile's rates assume that this host lacks (only for a
        profile of this host's architecture): then its estimates do not hold here."""
        from compressor.core.host import host_arch, host_isa

        if self.arch != host_arch():
            return []
        return [feature for feature in self.isa if feature not in host_isa()]

    def int8_io_type(self) -> str:
        """I/O type of a full-int8 model for this target: its first integer type, else float."""
        return next((t for t in self.io_types if t in ("int8", "uint8")), "float32")


class LoadedProfile(BaseModel):
    """A validated profile together with where it came from."""

    model_config = ConfigDict(frozen=True)
    profile: HardwareProfile
    source: str


def load_profile_file(path: Path) -> HardwareProfile:
    """Read and strictly validate one profile YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(
            f"cannot read profile file {path}: {exc.strerror or exc}",
            "check the path passed to --profile",
        ) from exc
    return parse_profile(text, str(path))


def parse_profile(text: str, source: str) -> HardwareProfile:
    """Validate profile YAML ``text``; ``source`` names it in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(
            f"profile file {source}: {yaml_error_text(exc)}", "fix the YAML syntax"
        ) from exc
    if not isinstance(data, dict):
        raise ProfileError(
            f"profile file {source}: expected a mapping of fields, got {type(data).__name__}",
            "see docs/profiles.md for the fields",
        )
    try:
        return HardwareProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(
            f"profile file {source}: {describe_validation_error(exc)}",
            "see docs/profiles.md for the fields",
        ) from exc


class ProfileRegistry:
    """Profiles by name: the shipped YAML files plus those plugins register."""

    def __init__(
        self, host_factory: Callable[[ProfileRegistry], tuple[HardwareProfile, bool]] | None = None
    ) -> None:
        """``host_factory`` makes this machine's profile (``--profile host``): given the
        registry, it returns the profile and whether it was calibrated just now."""
        self._profiles: dict[str, LoadedProfile] = {}
        self.current_plugin = "compressor"
        self.notices: list[str] = []  # e.g. "calibrated this host's profile"
        self._host_factory = host_factory

    def add_file(self, path: str | Path) -> HardwareProfile:
        """Load a profile YAML file and register it under its ``name``."""
        path = Path(path)
        profile = load_profile_file(path)
        self._add(profile, str(path))
        return profile

    def add(self, profile: HardwareProfile) -> None:
        """Register an already built profile object."""
        self._add(profile, f"plugin {self.current_plugin}")

    def _add(self, profile: HardwareProfile, source: str) -> None:
        if profile.name in self._profiles:
            earlier = self._profiles[profile.name].source
            raise ProfileError(
                f"profile '{profile.name}' from {source} is already registered by {earlier}",
                "give the profile another name",
            )
        self._profiles[profile.name] = LoadedProfile(profile=profile, source=source)

    def names(self) -> list[str]:
        """All registered profile names, sorted."""
        return sorted(self._profiles)

    def all(self) -> list[LoadedProfile]:
        """All registered profiles with their sources, sorted by name."""
        return [self._profiles[n] for n in self.names()]

    def resolve(self, name_or_path: str) -> HardwareProfile:
        """Return the profile named ``name_or_path``, or load it if it is a YAML path."""
        candidate = Path(name_or_path)
        if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
            if not candidate.is_file():
                raise ProfileError(f"profile file {candidate} does not exist", "check the path")
            return load_profile_file(candidate)
        if name_or_path in self._profiles:
            return self._profiles[name_or_path].profile
        if name_or_path == "host":
            return self.host_profile()
        raise ProfileError(
            f"unknown profile '{name_or_path}'",
            f"choose one of: {', '.join(self.names())}, host, or pass a YAML file path",
        )

    def host_profile(self) -> HardwareProfile:
        """This machine's profile (``--profile host``): cached, or calibrated now."""
        if self._host_factory is None:
            raise ProfileError("this registry has no host profile", "use a named profile")
        profile, calibrated = self._host_factory(self)
        if calibrated:
            self.notices.append(f"calibrated this host's profile ({profile.description})")
        return profile


def builtin_profile_paths() -> list[Path]:
    """Paths of the profile YAML files shipped inside the package."""
    folder = resources.files("compressor.hardware_profiles")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))
