"""``--profile host``: a profile of this machine, calibrated on first use and cached.

The profile starts from the shipped CPU profile of this host's architecture (``x86-cpu``
or ``pixel-cpu``), has its rates measured here by ``profiles calibrate``'s workloads, and
is cached under the user's cache directory, keyed by CPU model, ISA and thread count, so
later runs re-use it. Its description names the CPU and the ISA it measured.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from compressor.core.errors import ProfileError
from compressor.core.host import host_arch, host_cpu, host_isa
from compressor.core.profiles import HardwareProfile, load_profile_file

HOST_PROFILE_NAME = "host"
_BASE_BY_ARCH = {"x86_64": "x86-cpu", "arm64": "pixel-cpu"}


def cache_dir() -> Path:
    """compressor's cache folder: ``$COMPRESSOR_CACHE_DIR``, else the XDG cache home."""
    explicit = os.environ.get("COMPRESSOR_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "compressor"


def host_profile_path(threads: int) -> Path:
    """Where this machine's calibrated profile is cached."""
    key = f"{host_cpu()}|{','.join(host_isa())}|{threads}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / "profiles" / f"host-{host_arch()}-{digest}.yaml"


def base_profile_name() -> str:
    """The shipped profile a host profile starts from."""
    arch = host_arch()
    if arch not in _BASE_BY_ARCH:
        raise ProfileError(
            f"--profile host: no shipped CPU profile for architecture {arch}",
            "calibrate your own profile YAML with `compressor profiles calibrate`",
        )
    return _BASE_BY_ARCH[arch]


def load_or_calibrate(
    base: HardwareProfile,
    progress: Callable[[str], None] | None = None,
    size: int = 64,
    runs: int = 20,
) -> tuple[HardwareProfile, bool]:
    """The cached host profile, or a new one calibrated now (``size``×``size`` workloads,
    median of ``runs``); returns (profile, whether it was calibrated now)."""
    path = host_profile_path(base.threads)
    if path.is_file():
        return load_profile_file(path), False
    from compressor.litert.native_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    from compressor.engine.calibration import fit_profile, measure_workloads

    measurements = measure_workloads(list(base.precisions), base.threads, size, runs, progress)
    profile = fit_profile(base, measurements, HOST_PROFILE_NAME, host_cpu())
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# This machine ({host_cpu()}, {', '.join(host_isa()) or 'no listed ISA'}), calibrated\n"
        f"# from {base.name} on first use of --profile host. Delete this file to re-measure.\n"
    )
    data = profile.model_dump(mode="json")
    temporary = path.with_suffix(".tmp")
    temporary.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    temporary.replace(path)
    return profile, True


def host_profile_for(registry: Any) -> tuple[HardwareProfile, bool]:
    """This machine's profile, based on the shipped profile of its architecture in
    ``registry`` (cached, or calibrated now); the plugin host gives this to the
    profile registry as its ``host_factory``."""
    return load_or_calibrate(registry.resolve(base_profile_name()))
