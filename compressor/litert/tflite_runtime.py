"""Run, time and inspect ``.tflite`` models with the LiteRT interpreter."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from compressor.core.errors import ModelError
from compressor.core.op_record import OpRecord
from compressor.core.outputs import ModelOutputs, outputs_of


def _interpreter(model: bytes, threads: int | None = None, delegates: bool = True) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from compressor.litert.native_logs import quiet_native_logs

    resolver = (
        OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    try:
        with quiet_native_logs():
            interpreter = Interpreter(
                model_content=model, num_threads=threads, experimental_op_resolver_type=resolver
            )
            interpreter.allocate_tensors()
    except UnicodeDecodeError as exc:
        raise ModelError(
            "LiteRT cannot load the .tflite model: a tensor or signature name is not UTF-8 "
            f"text (byte {exc.object[exc.start : exc.start + 1]!r} at {exc.start})",
            "re-export the model with ASCII or UTF-8 names",
        ) from exc
    except (ValueError, RuntimeError) as exc:
        message = f"LiteRT cannot load the .tflite model: {exc}".splitlines()[0]
        if "custom op" in message:
            from compressor.litert.custom_op_rewrite import REWRITTEN_CUSTOM_OPS

            raise ModelError(
                message,
                "the file needs a custom op LiteRT's builtin resolver lacks; compressor "
                f"rewrites {', '.join(REWRITTEN_CUSTOM_OPS)} to builtins, and others need "
                "the op's kernel or a re-export without it",
            ) from exc
        raise ModelError(message) from exc
    return interpreter


def _to_input(batch: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8, np.int16):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(dtype)
    return batch.astype(dtype)


def _from_output(values: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] in (np.int8, np.uint8, np.int16):
        scale, zero_point = detail["quantization"]
        return (values.astype(np.float32) - zero_point) * scale
    return values.astype(np.float32)


class TFLiteModel:
    """A loaded ``.tflite`` that takes and returns float arrays whatever its I/O types.

    Outputs are named and ordered by the model's SignatureDef (the names the converter
    takes from the Keras output layers); a file without one names them by tensor."""

    def __init__(self, model: bytes, threads: int | None = None) -> None:
        self.interpreter = _interpreter(model, threads)
        self.input_detail = self.interpreter.get_input_details()[0]
        self.output_names, self.output_details = _named_outputs(self.interpreter)
        self.output_detail = self.output_details[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Input shape including the batch dimension."""
        return tuple(int(d) for d in self.input_detail["shape"])

    def _invoke(self, image: np.ndarray) -> None:
        self.interpreter.set_tensor(
            self.input_detail["index"], _to_input(image[None, ...], self.input_detail)
        )
        self.interpreter.invoke()

    def _output(self, detail: dict) -> np.ndarray:
        return _from_output(self.interpreter.get_tensor(detail["index"]), detail)[0]

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        """Run one example (no batch dimension); returns its first output without batch."""
        self._invoke(image)
        return self._output(self.output_detail)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The first output on every example of ``images`` (N, ...), run one by one."""
        return np.stack([self.predict_one(image) for image in images])

    def predict_outputs(self, images: np.ndarray) -> ModelOutputs:
        """Every output on every example of ``images`` (N, ...), named."""
        per_output: list[list[np.ndarray]] = [[] for _ in self.output_details]
        for image in images:
            self._invoke(image)
            for values, detail in zip(per_output, self.output_details, strict=True):
                values.append(self._output(detail))
        return outputs_of([np.stack(values) for values in per_output], self.output_names)


def _named_outputs(interpreter: Any) -> tuple[list[str], list[dict]]:
    """Output names and details in SignatureDef order, else in the interpreter's."""
    details = interpreter.get_output_details()
    signatures = interpreter._get_full_signature_list() or {}
    if signatures:
        outputs = next(iter(signatures.values())).get("outputs") or {}
        by_index = {int(d["index"]): d for d in details}
        if outputs and all(int(i) in by_index for i in outputs.values()):
            return list(outputs), [by_index[int(i)] for i in outputs.values()]
    return [str(d["name"]) for d in details], list(details)


@dataclass(frozen=True)
class LatencyStats:
    """Host latency of repeated invocations after warm-up."""

    median_ms: float
    p90_ms: float
    runs: int
    threads: int
    round_medians_ms: tuple[float, ...] = ()  # per round, when timed round-robin


# A timed sample lasts at least this long: a sub-millisecond model is invoked repeatedly
# per sample and the sample's mean kept, so timer and Python overhead (a few µs per call)
# and scheduler jitter do not decide between models that take tens of µs.
MIN_SAMPLE_MS = 2.0
MAX_INVOCATIONS_PER_SAMPLE = 1000


@dataclass
class _TimedRunner:
    runner: TFLiteModel
    per_sample: int  # invocations averaged into one timed sample


def _timed_runner(model: bytes, example: np.ndarray, threads: int, warmup: int) -> _TimedRunner:
    runner = TFLiteModel(model, threads)
    runner.interpreter.set_tensor(
        runner.input_detail["index"], _to_input(example[None, ...], runner.input_detail)
    )
    fastest = float("inf")
    for _ in range(max(warmup, 1)):
        start = time.perf_counter()
        runner.interpreter.invoke()
        fastest = min(fastest, (time.perf_counter() - start) * 1000.0)
    per_sample = int(np.clip(np.ceil(MIN_SAMPLE_MS / max(fastest, 1e-4)), 1,
                             MAX_INVOCATIONS_PER_SAMPLE))  # fmt: skip
    return _TimedRunner(runner, per_sample)


def _time_invocations(timed: _TimedRunner, runs: int) -> list[float]:
    """``runs`` samples of the per-invocation latency (ms), each the mean of
    ``timed.per_sample`` back-to-back invocations."""
    invoke = timed.runner.interpreter.invoke
    count = timed.per_sample
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(count):
            invoke()
        times.append((time.perf_counter() - start) * 1000.0 / count)
    return times


def _stats(times: list[float], threads: int) -> LatencyStats:
    return LatencyStats(
        median_ms=float(np.median(times)),
        p90_ms=float(np.percentile(times, 90)),
        runs=len(times),
        threads=threads,
    )


def measure_latency(
    model: bytes, example: np.ndarray, threads: int, runs: int = 20, warmup: int = 3
) -> LatencyStats:
    """Time ``runs`` invocations (after ``warmup``) of ``model`` on one ``example``."""
    runner = _timed_runner(model, example, threads, warmup)
    return _stats(_time_invocations(runner, runs), threads)


def interleaved_stats(
    models: dict[str, bytes],
    example: np.ndarray,
    threads: int,
    rounds: int = 5,
    runs: int = 4,
    warmup: int = 3,
    inputs: dict[str, np.ndarray] | None = None,
) -> dict[str, LatencyStats]:
    """Latency of each model from ``rounds`` × ``runs`` invocations taken round-robin, so
    that load from other processes hits every model alike and their ratio stays fair.
    ``inputs`` gives a model its own example where it takes another shape."""
    inputs = inputs or {}
    runners = {
        label: _timed_runner(data, inputs.get(label, example), threads, warmup)
        for label, data in models.items()
    }
    times: dict[str, list[float]] = {label: [] for label in models}
    per_round: dict[str, list[float]] = {label: [] for label in models}
    for _ in range(rounds):
        for label, runner in runners.items():
            timed = _time_invocations(runner, runs)
            times[label].extend(timed)
            per_round[label].append(float(np.median(timed)))
    return {
        label: replace(_stats(values, threads), round_medians_ms=tuple(per_round[label]))
        for label, values in times.items()
    }


def interleaved_latency(
    models: dict[str, bytes],
    example: np.ndarray,
    threads: int,
    rounds: int = 5,
    runs: int = 5,
    inputs: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Median latency (ms) of each model, measured round-robin (``interleaved_stats``)."""
    stats = interleaved_stats(models, example, threads, rounds, runs, inputs=inputs)
    return {label: round(value.median_ms, 2) for label, value in stats.items()}


# Which input of an op is its bias (int32 in an int8 model by design).
_BIAS_POSITION = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}
# Inputs that are shape/axis parameters, int32 by the TFLite schema, not activations.
_PARAM_POSITIONS = {
    "RESIZE_NEAREST_NEIGHBOR": {1},
    "RESIZE_BILINEAR": {1},
    "PAD": {1},
    "PADV2": {1},
    "MEAN": {1},
    "SUM": {1},
    "REDUCE_MAX": {1},
    "REDUCE_MIN": {1},
    "RESHAPE": {1},
    "TRANSPOSE": {1},
    "STRIDED_SLICE": {1, 2, 3},
    "SLICE": {1, 2},
    "TRANSPOSE_CONV": {0},
    "EXPAND_DIMS": {1},
    "SPLIT": {0},
    "TILE": {1},
}


def op_versions(model: bytes) -> list[int]:
    """Version of each operator of the main subgraph, in execution order (read from the
    flatbuffer without unpacking its buffers)."""
    from ai_edge_litert import schema_py_generated as schema

    flat = schema.Model.GetRootAs(model, 0)
    graph = flat.Subgraphs(0)
    return [
        int(flat.OperatorCodes(graph.Operators(i).OpcodeIndex()).Version())
        for i in range(graph.OperatorsLength())
    ]


def list_operators(model: bytes) -> list[OpRecord]:
    """Operators of the model as written (no delegate applied), with tensor types."""
    interpreter = _interpreter(model, delegates=False)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    versions = op_versions(model)
    records = []
    for op in interpreter._get_ops_details():
        inputs = [int(i) for i in op["inputs"] if int(i) >= 0]
        outputs = [int(i) for i in op["outputs"] if int(i) >= 0]
        name = str(op["op_name"])
        bias_position = _BIAS_POSITION.get(name)
        params = _PARAM_POSITIONS.get(name, set())
        roles = [
            "bias" if p == bias_position else "param" if p in params else "data"
            for p in range(len(inputs))
        ]
        records.append(
            OpRecord(
                index=int(op["index"]),
                name=str(op["op_name"]),
                input_types=[np.dtype(tensors[i]["dtype"]).name for i in inputs],
                output_types=[np.dtype(tensors[i]["dtype"]).name for i in outputs],
                input_roles=roles,
                output_shapes=tuple(
                    tuple(int(d) for d in tensors[i].get("shape_signature", tensors[i]["shape"]))
                    for i in outputs
                ),
                version=versions[int(op["index"])] if int(op["index"]) < len(versions) else 1,
            )
        )
    return records


def io_types(model: bytes) -> tuple[str, str]:
    """Names of the model's first input and output dtypes."""
    interpreter = _interpreter(model, delegates=False)
    return (
        np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
        np.dtype(interpreter.get_output_details()[0]["dtype"]).name,
    )


def constant_tensors(model: bytes) -> list[np.ndarray]:
    """Values of the model's constant tensors (weights, biases), as stored."""
    interpreter = _interpreter(model, delegates=False)
    produced: set[int] = {int(i) for d in interpreter.get_input_details() for i in [d["index"]]}
    consumed: set[int] = set()
    for op in interpreter._get_ops_details():
        produced.update(int(i) for i in op["outputs"] if int(i) >= 0)
        consumed.update(int(i) for i in op["inputs"] if int(i) >= 0)
    values = []
    for index in sorted(consumed - produced):
        try:
            values.append(np.asarray(interpreter.get_tensor(index)))
        except ValueError:
            continue
    return values
