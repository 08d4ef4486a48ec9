"""Calibrate a profile's cost-model numbers on this host with LiteRT.

Four small workloads, each dominated by one term of the cost model (per-op overhead,
conv MACs, memory-bound elements, instance-norm elements), are converted at every
precision the profile runs and timed with the profile's thread count. The rates are
solved term by term, subtracting what the already-known terms explain, so the
calibrated profile reproduces the measured latencies through ``estimate_latency_ms``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from compressor.core.host import host_arch, host_cpu, host_isa
from compressor.core.model_info import model_info_from_keras
from compressor.core.profiles import HardwareProfile, PrecisionSpec
from compressor.litert.conversion import convert_keras
from compressor.litert.tflite_runtime import measure_latency
from compressor.planning.cost_model import Work, work_of

# int16x8 runs reference kernels: its workloads are shrunk so calibration stays quick,
# and it has no SQUARED_DIFFERENCE kernel, so no instance-norm workload.
_SLOW_PRECISIONS = {"int16x8"}
_NO_NORM_KERNEL = {"int16x8"}
_MIN_MS = 1e-3


@dataclass
class Measurement:
    """One workload at one precision: its work and its measured median latency."""

    workload: str
    precision: str
    work: Work
    latency_ms: float


def _workloads(size: int) -> dict[str, Any]:
    """Keras models, each dominated by one cost term."""
    import tf_keras as keras

    from compressor.layers.instance_norm import InstanceNormalization

    def model(name: str, body: Callable[[Any], Any], shape: tuple[int, int, int]) -> Any:
        inputs = keras.Input(shape)
        return keras.Model(inputs, body(inputs), name=name)

    def overhead(x):
        for _ in range(40):
            x = keras.layers.Add()([x, x])
        return x

    def convs(x):
        for _ in range(4):
            x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
        return x

    def elementwise(x):
        y = keras.layers.UpSampling2D(2)(x)
        for _ in range(6):
            y = keras.layers.Add()([y, y])
        return y

    def norms(x):
        for _ in range(4):
            x = InstanceNormalization()(x)
        return x

    keras.utils.set_random_seed(0)
    return {
        "overhead": model("overhead", overhead, (2, 2, 4)),
        "conv": model("conv", convs, (size, size, 32)),
        "elementwise": model("elementwise", elementwise, (size, size, 32)),
        "norm": model("norm", norms, (size, size, 32)),
    }


def measure_workloads(
    precisions: list[str],
    threads: int,
    size: int = 64,
    runs: int = 20,
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Convert and time every workload at every precision."""
    measurements = []
    for precision in precisions:
        workload_size = max(8, size // 4) if precision in _SLOW_PRECISIONS else size
        for name, model in _workloads(workload_size).items():
            if name == "norm" and precision in _NO_NORM_KERNEL:
                continue
            if progress:
                progress(f"{precision}: {name}")
            shape = tuple(model.input_shape[1:])
            samples = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
            io_type = "int8" if precision == "int8" else "float32"
            data = convert_keras(model, precision, samples, io_type)
            stats = measure_latency(data, samples[0], threads, runs=runs, warmup=3)
            work = work_of(model_info_from_keras(model))
            measurements.append(Measurement(name, precision, work, stats.median_ms))
    return measurements


def _rate(amount: float, remaining_ms: float) -> float:
    """Units per second (in 1e9) that explain ``remaining_ms`` for ``amount`` of work."""
    return amount / (max(remaining_ms, _MIN_MS) * 1e-3) / 1e9


def fit_profile(
    base: HardwareProfile, measurements: list[Measurement], name: str, host: str | None = None
) -> HardwareProfile:
    """``base`` with rates and per-op overhead solved from ``measurements``."""
    by_key = {(m.workload, m.precision): m for m in measurements}
    precisions = sorted({m.precision for m in measurements})
    overheads = [
        by_key["overhead", p].latency_ms / by_key["overhead", p].work.ops for p in precisions
    ]
    overhead_ms = float(np.median(overheads))
    specs = dict(base.precisions)
    for precision in precisions:
        conv, elem = by_key["conv", precision], by_key["elementwise", precision]
        norm = by_key.get(("norm", precision))
        # elementwise first (pure memory-bound), then convs and norms net of it
        gelems = _rate(elem.work.elements, elem.latency_ms - elem.work.ops * overhead_ms)
        conv_rest = (
            conv.latency_ms - conv.work.ops * overhead_ms - conv.work.elements / (gelems * 1e6)
        )
        gmacs = _rate(conv.work.macs, conv_rest)
        norm_rate = None
        if norm is not None:
            norm_rest = (
                norm.latency_ms - norm.work.ops * overhead_ms - norm.work.elements / (gelems * 1e6)
            )
            norm_rate = round(_rate(norm.work.norm_elements, norm_rest), 3)
        specs[precision] = PrecisionSpec(
            gmacs_per_s=round(gmacs, 3), gelems_per_s=round(gelems, 3), norm_gelems_per_s=norm_rate
        )
    where = host or host_cpu()
    isa = list(host_isa())
    return base.model_copy(
        update={
            "name": name,
            "description": f"{where} ({', '.join(isa) or 'no listed ISA extensions'}), "
            f"LiteRT + {base.delegate}, {base.threads} threads — calibrated on {date.today()} "
            f"from {base.name}",
            "arch": host_arch(),
            "isa": isa,
            "precisions": specs,
            "per_op_overhead_us": round(overhead_ms * 1e3, 3),
        }
    )
