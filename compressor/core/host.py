"""Facts about the machine compressor runs on: CPU name, architecture, ISA features.

Used to tell whether a profile's target *is* this host (then host latency measures the
target and calibration may write its rates) and which ISA a measurement was made with.
"""

from __future__ import annotations

import functools
import platform

# /proc/cpuinfo flags that change what int8 and float16 kernels can do.
_ISA_FLAGS = {
    "avx2": "avx2",
    "avx512f": "avx512",
    "avx512_vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "asimd": "neon",
    "asimddp": "neon_dotprod",
    "fphp": "fp16",
}
_ARCH_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def host_cpu() -> str:
    """This host's CPU model name (from /proc/cpuinfo where available)."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def host_arch() -> str:
    """``x86_64`` or ``arm64`` (other machines as ``platform.machine()`` names them)."""
    machine = platform.machine().lower()
    return _ARCH_NAMES.get(machine, machine)


@functools.cache
def host_isa() -> tuple[str, ...]:
    """ISA features of this host that matter to LiteRT kernels, e.g. ``avx2``."""
    flags: set[str] = set()
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return tuple(sorted({name for flag, name in _ISA_FLAGS.items() if flag in flags}))
