"""Frozen graphs: models without trainable Keras layers (a SavedModel, a float ``.tflite``).

A frozen graph is carried as its float32 ``.tflite`` (the baseline and the reference the
run is scored against), plus the SavedModel directory when there is one, so the TFLite
converter can re-convert it at any precision. Stages that need Keras layers (pruning,
QAT, distillation, fusing) do not apply; post-training quantization (the converter for a
SavedModel, ai-edge-quantizer for any float ``.tflite``), per-op mixed precision and
evaluation do. Strategies say which they are with ``accepts_frozen_graph``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compressor.core.errors import ModelError, error_line
from compressor.core.model_info import (  # noqa: F401  (re-exported: the graph's facts)
    FROZEN_KEY,
    MIRROR_PADS_KEY,
    SAVED_MODEL_FORMAT,
    TFLITE_FORMAT,
    LayerInfo,
    ModelInfo,
    TensorSpec,
)
from compressor.core.outputs import ModelOutputs

# TFLite builtin op -> the op kind the cost model and the planner reason about.
_KIND_BY_OP = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise_conv",
    "TRANSPOSE_CONV": "conv_transpose",
    "FULLY_CONNECTED": "dense",
    "ADD": "add",
    "MUL": "mul",
    "SUB": "add",
    "CONCATENATION": "concat",
    "RESIZE_BILINEAR": "resize",
    "RESIZE_NEAREST_NEIGHBOR": "resize",
    "PAD": "pad",
    "PADV2": "pad",
    "MIRROR_PAD": "pad",
    "MAX_POOL_2D": "pool",
    "AVERAGE_POOL_2D": "pool",
    "MEAN": "pool",
    "RESHAPE": "reshape",
    "RELU": "activation",
    "RELU6": "activation",
    "LOGISTIC": "activation",
    "TANH": "activation",
    "HARD_SWISH": "activation",
    "LEAKY_RELU": "activation",
    "PRELU": "activation",
    "SOFTMAX": "activation",
}
_ACTIVATION_BY_OP = {
    "RELU": "relu",
    "RELU6": "relu6",
    "LOGISTIC": "sigmoid",
    "TANH": "tanh",
    "HARD_SWISH": "hard_swish",
    "LEAKY_RELU": "leaky_relu",
    "PRELU": "prelu",
    "SOFTMAX": "softmax",
}


@dataclass
class FrozenGraph:
    """A model as a float32 ``.tflite`` (and its SavedModel, when it came as one)."""

    tflite: bytes
    source_format: str  # TFLITE_FORMAT or SAVED_MODEL_FORMAT
    name: str
    saved_model_dir: str | None = None
    image_size: int | None = None  # a dynamic SavedModel input traced at this size
    rewritten_ops: dict[str, int] = field(default_factory=dict)  # custom op -> ops replaced

    def predict(self, images: np.ndarray, batch_size: int = 8, verbose: int = 0) -> np.ndarray:
        """The first float output on ``images`` (Keras-like, so the run treats both alike)."""
        return self.predict_outputs(images).first

    @property
    def output_names(self) -> list[str]:
        """The graph's output names (SignatureDef order)."""
        from compressor.litert.tflite_runtime import TFLiteModel

        return list(TFLiteModel(self.tflite).output_names)

    def predict_outputs(self, images: np.ndarray) -> ModelOutputs:
        """Every float output on ``images``, named as the graph's signature names them
        (run in a child process first: a graph that crashes LiteRT is a one-line error)."""
        from compressor.litert.crash_guard import guarded_outputs

        return guarded_outputs(self.tflite, images, None, f"model {self.name}")


def is_saved_model_dir(path: Path) -> bool:
    """True for a directory holding a TensorFlow SavedModel."""
    return path.is_dir() and (path / "saved_model.pb").is_file()


def _convert_saved_model(path: Path, image_size: int | None = None) -> bytes:
    from compressor.litert.conversion import saved_model_converter
    from compressor.litert.native_logs import quiet_native_logs

    try:
        converter = saved_model_converter(str(path), image_size)
        with quiet_native_logs(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as exc:
        raise ModelError(
            f"SavedModel {path}: the TFLite converter cannot convert it: "
            f"{error_line(exc, last=True)}",
            "export a serving signature with a fixed input shape (e.g. model.export(dir))",
        ) from exc


def _check_float_tflite(model: bytes, source: str) -> None:
    from compressor.litert.tflite_runtime import TFLiteModel, list_operators

    try:
        runner = TFLiteModel(model)
    except ModelError as exc:
        raise ModelError(f"model {source}: {exc.message}", exc.hint) from exc
    dtype = np.dtype(runner.input_detail["dtype"]).name
    if dtype != "float32":
        raise ModelError(
            f"model {source}: input is {dtype}: it is already quantized",
            "pass the float32 .tflite (compressor quantizes it)",
        )
    quantized = [op for op in list_operators(model) if {"int8", "uint8"} & set(op.input_types)]
    if quantized:
        raise ModelError(
            f"model {source}: op {quantized[0].index}:{quantized[0].name} has int8 tensors: "
            "the model is already quantized",
            "pass the float32 .tflite (compressor quantizes it)",
        )


def normalized_tflite(data: bytes, source: str) -> tuple[bytes, dict[str, int]]:
    """A float ``.tflite`` as every tool here reads it, and what was rewritten (what ->
    count): operator codes in the field new readers use, custom ops with a builtin
    equivalent replaced, float16 weights widened to float32 constants."""
    from compressor.litert.custom_op_rewrite import rewrite_custom_ops
    from compressor.litert.flatbuffer_edit import with_builtin_codes
    from compressor.litert.float16_weights import FLOAT16_DEQUANTIZE, widen_float16_weights

    data, codes = with_builtin_codes(data)
    rewrite = rewrite_custom_ops(data, source)
    widened, count = widen_float16_weights(rewrite.model)
    rewritten = dict(rewrite.rewritten)
    if codes:
        rewritten["operator codes in deprecated_builtin_code only"] = codes
    if count:
        rewritten[FLOAT16_DEQUANTIZE] = count
    return widened, rewritten


def load_frozen_graph(path: Path, image_size: int | None = None) -> FrozenGraph:
    """A SavedModel directory or float ``.tflite`` as a frozen graph (one-line errors);
    ``image_size`` fixes a SavedModel's dynamic input height and width."""
    if is_saved_model_dir(path):
        graph = FrozenGraph(
            _convert_saved_model(path, image_size),
            SAVED_MODEL_FORMAT,
            path.name,
            saved_model_dir=str(path),
            image_size=image_size,
        )
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"model file {path} cannot be read ({exc.strerror})") from exc
        model, rewritten = normalized_tflite(data, f"model {path}")
        graph = FrozenGraph(model, TFLITE_FORMAT, path.stem, rewritten_ops=rewritten)
    _check_float_tflite(graph.tflite, str(path))
    return graph


def _macs(name: str, shapes_in: list[tuple[int, ...]], shape_out: tuple[int, ...]) -> int:
    def product(dims) -> int:
        total = 1
        for d in dims:
            total *= max(int(d), 1)
        return total

    if name == "CONV_2D" and len(shapes_in) > 1 and len(shapes_in[1]) == 4:
        _out_ch, kh, kw, in_ch = shapes_in[1]
        return product(shape_out[1:]) * kh * kw * in_ch
    if name == "DEPTHWISE_CONV_2D" and len(shapes_in) > 1 and len(shapes_in[1]) == 4:
        _one, kh, kw, _ch = shapes_in[1]
        return product(shape_out[1:]) * kh * kw
    if name == "TRANSPOSE_CONV" and len(shapes_in) > 2 and len(shapes_in[1]) == 4:
        out_ch, kh, kw, _in_ch = shapes_in[1]
        return product(shapes_in[2][1:]) * kh * kw * out_ch
    if name == "FULLY_CONNECTED" and len(shapes_in) > 1 and len(shapes_in[1]) == 2:
        units, depth = shapes_in[1]
        return product(shape_out[:-1][1:] or (1,)) * units * depth
    return 0


def model_info_from_tflite(model: bytes, name: str, source_format: str) -> ModelInfo:
    """Planning facts of a float ``.tflite``: one layer per operator (op kinds, MACs,
    weights), marked as a frozen graph."""
    from compressor.litert.tflite_runtime import _interpreter

    interpreter = _interpreter(model, delegates=False)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    produced = {int(d["index"]) for d in interpreter.get_input_details()}
    ops = interpreter._get_ops_details()
    for op in ops:
        produced.update(int(i) for i in op["outputs"] if int(i) >= 0)
    layers = []
    mirror_pads: dict[str, list[list[int]]] = {}
    for op in ops:
        op_name = str(op["op_name"])
        inputs = [int(i) for i in op["inputs"] if int(i) >= 0]
        outputs = [int(i) for i in op["outputs"] if int(i) >= 0]
        shapes_in = [tuple(int(d) for d in tensors[i]["shape"]) for i in inputs]
        shape_out = tuple(int(d) for d in tensors[outputs[0]]["shape"]) if outputs else ()
        params = sum(
            int(np.prod(tensors[i]["shape"]))
            for i in inputs
            if i not in produced and np.dtype(tensors[i]["dtype"]).kind == "f"
        )
        if op_name == "MIRROR_PAD" and len(inputs) > 1 and inputs[1] not in produced:
            pads = interpreter.get_tensor(inputs[1])
            mirror_pads[f"{int(op['index'])}:{op_name}"] = np.asarray(pads).tolist()
        layers.append(
            LayerInfo(
                name=f"{int(op['index'])}:{op_name}",
                class_name=op_name,
                kind=_KIND_BY_OP.get(op_name, "other"),
                params=params,
                macs=_macs(op_name, shapes_in, shape_out),
                output_elements=int(np.prod(shape_out[1:])) if len(shape_out) > 1 else 0,
                output_shape=[None, *shape_out[1:]] if shape_out else [],
                activation=_ACTIVATION_BY_OP.get(op_name),
            )
        )

    def spec(detail: dict[str, Any]) -> TensorSpec:
        # the signature says which dims are dynamic (-1); "shape" holds 1 for them
        signature = detail.get("shape_signature")
        dims = signature if signature is not None and len(signature) else detail["shape"]
        shape = [None if int(d) < 0 else int(d) for d in dims]
        return TensorSpec(str(detail["name"]), [None, *shape[1:]], np.dtype(detail["dtype"]).name)

    return ModelInfo(
        name=name,
        layers=layers,
        inputs=[spec(d) for d in interpreter.get_input_details()],
        outputs=[spec(d) for d in interpreter.get_output_details()],
        extra={
            FROZEN_KEY: source_format,
            **({MIRROR_PADS_KEY: mirror_pads} if mirror_pads else {}),
        },
    )


def is_frozen(info: ModelInfo) -> bool:
    """True when ``info`` describes a frozen graph (no Keras layers to train)."""
    return bool(info.extra.get(FROZEN_KEY))
