"""Constant folding of a float ``.tflite`` at batch 1: what the TFLite converter does for
Keras models, done for graphs that arrive already converted.

A ``.tflite`` converted with a dynamic batch computes shapes at run time (``SHAPE`` →
``STRIDED_SLICE`` → ``PACK`` → ``RESHAPE``), and a fixed ``--input`` leaves whole
branches (e.g. a style vector's dense layers) that depend only on constants. Delegates
cannot run the shape arithmetic (the EdgeTPU compiler cuts the graph at the first
``SHAPE``), and the constant branches are work done on every image.

Here the batch is fixed to 1 (what on-device inference runs), ``SHAPE`` of a tensor
whose shape is then fully static is a constant, and every op whose inputs are all
constants is evaluated once (LiteRT runs the graph and its intermediate values are read)
and replaced by its result. The folded graph is checked against the original.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Ops never folded: state, control flow, randomness, and what feeds or reads variables.
_KEEP = {
    "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "WHILE", "IF",
    "CALL", "CUSTOM", "RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL", "MULTINOMIAL",
    "QUANTIZE", "DEQUANTIZE",
}  # fmt: skip
# Ops whose output shape depends on input values: with one, a SHAPE is not a constant.
_VALUE_DEPENDENT_SHAPES = {
    "WHERE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "UNIQUE", "RANGE",
}  # fmt: skip


@dataclass(frozen=True)
class FoldResult:
    """The folded model, and how many ops became constants."""

    model: bytes
    folded_ops: int
    max_abs_diff: float


def _static(tensor) -> bool:
    signature = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
    return signature is not None and all(int(d) >= 0 for d in signature)


def _fix_batch(graph) -> bool:
    """Give inputs with a dynamic batch batch 1; True when every input is then static."""
    for index in graph.inputs:
        tensor = graph.tensors[index]
        if tensor.shapeSignature is not None and len(tensor.shapeSignature) > 0:
            signature = [int(d) for d in tensor.shapeSignature]
            if signature[0] < 0:
                signature[0] = 1
            tensor.shapeSignature = signature
            tensor.shape = [max(d, 1) for d in signature]
    return all(_static(graph.tensors[i]) for i in graph.inputs)


def _foldable_ops(flat, graph, static_inputs: bool) -> list[int]:
    """Positions of ops whose outputs are constants: all inputs constant, or ``SHAPE``
    when every shape in the graph follows from the (static) input shapes."""
    from ai_edge_litert.tools import flatbuffer_utils

    names = [
        flatbuffer_utils.opcode_to_name(flat, op.opcodeIndex) or "CUSTOM" for op in graph.operators
    ]
    shapes_static = static_inputs and not set(names) & _VALUE_DEPENDENT_SHAPES
    constant = {
        i
        for i, tensor in enumerate(graph.tensors)
        if tensor.buffer > 0
        and flat.buffers[tensor.buffer].data is not None
        and len(flat.buffers[tensor.buffer].data) > 0
    }
    folded = []
    for position, (name, op) in enumerate(zip(names, graph.operators, strict=True)):
        used = [i for i in op.inputs if i >= 0]
        if name in _KEEP or not op.outputs or not used:
            continue
        if (name == "SHAPE" and shapes_static) or all(i in constant for i in used):
            folded.append(position)
            constant.update(op.outputs)
    return folded


def drop_unused_tensors(flat, graph) -> None:
    """Remove tensors no op, graph input/output or signature refers to (renumbering the
    rest), and the buffers only they held: folded branches leave such orphans, and
    tools that read every tensor (ai-edge-quantizer's calibration) fail on them."""
    used = {i for op in graph.operators for i in [*op.inputs, *op.outputs] if i >= 0}
    used |= set(graph.inputs) | set(graph.outputs)
    keep = sorted(used)
    index = {old: new for new, old in enumerate(keep)}
    graph.tensors = [graph.tensors[i] for i in keep]
    for op in graph.operators:
        op.inputs = [index[i] if i >= 0 else i for i in op.inputs]
        op.outputs = [index[i] for i in op.outputs]
    graph.inputs = [index[i] for i in graph.inputs]
    graph.outputs = [index[i] for i in graph.outputs]
    for signature in flat.signatureDefs or []:
        for item in [*signature.inputs, *signature.outputs]:
            item.tensorIndex = index[item.tensorIndex]
    referenced = {t.buffer for sub in flat.subgraphs for t in sub.tensors}
    referenced |= {m.buffer for m in flat.metadata or []}
    for buffer_id, buffer in enumerate(flat.buffers):
        if buffer_id and buffer_id not in referenced:
            buffer.data = None  # left as an empty placeholder, so buffer ids stay valid


def fold_constants(model: bytes) -> FoldResult:
    """``model`` at batch 1 with every constant subgraph evaluated once (unchanged bytes
    and 0 folded ops when there is nothing to fold)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils

    from compressor.litert.tflite_runtime import TFLiteModel

    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    if len(flat.subgraphs) != 1:
        return FoldResult(model, 0, 0.0)
    graph = flat.subgraphs[0]
    folded = _foldable_ops(flat, graph, _fix_batch(graph))
    if not folded:
        return FoldResult(model, 0, 0.0)
    remaining_inputs = {
        i for p, op in enumerate(graph.operators) if p not in folded for i in op.inputs
    } | set(graph.outputs)
    needed = sorted(
        {o for p in folded for o in graph.operators[p].outputs if o in remaining_inputs}
    )
    interpreter = Interpreter(
        model_content=bytes(flatbuffer_utils.convert_object_to_bytearray(flat)),
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    image = None
    for detail in interpreter.get_input_details():
        image = np.random.default_rng(0).uniform(0, 1, detail["shape"]).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], image)
    interpreter.invoke()
    for index in needed:
        value = np.asarray(interpreter.get_tensor(index))
        buffer = flatbuffer_utils.BufferT()
        buffer.data = np.frombuffer(value.tobytes(), np.uint8)
        flat.buffers.append(buffer)
        tensor = graph.tensors[index]
        tensor.buffer = len(flat.buffers) - 1
        tensor.shape, tensor.shapeSignature = list(value.shape), None
    graph.operators = [op for p, op in enumerate(graph.operators) if p not in set(folded)]
    drop_unused_tensors(flat, graph)
    folded_model = bytes(flatbuffer_utils.convert_object_to_bytearray(flat))
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    got = TFLiteModel(folded_model).predict(image)
    error = float(np.max(np.abs(np.asarray(expected, np.float32) - got)))
    return FoldResult(folded_model, len(folded), error)


def dynamic_image_input(model: bytes) -> bool:
    """True when the model's first input is an image whose height or width is dynamic
    (-1 in its shape signature)."""
    from compressor.litert.flatbuffer_edit import read_model

    graph = read_model(model).subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    signature = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
    dims = [int(d) for d in signature] if signature is not None else []
    return len(dims) == 4 and (dims[1] < 0 or dims[2] < 0)


def fix_input_size(model: bytes, size: int) -> bytes:
    """``model`` with a dynamic image input fixed at batch 1 × ``size`` × ``size``: LiteRT
    resizes the input and propagates every tensor's shape, and those shapes are written
    into the file, so it is static (constant folding then removes shape arithmetic)."""
    from ai_edge_litert.interpreter import Interpreter

    from compressor.litert.flatbuffer_edit import model_bytes, read_model

    interpreter = Interpreter(model_content=model)
    detail = interpreter.get_input_details()[0]
    channels = int(detail["shape_signature"][-1])
    interpreter.resize_tensor_input(detail["index"], [1, size, size, channels], strict=False)
    interpreter.allocate_tensors()
    shapes = {int(t["index"]): [int(d) for d in t["shape"]]
              for t in interpreter.get_tensor_details()}  # fmt: skip
    flat = read_model(model)
    graph = flat.subgraphs[0]
    for index, tensor in enumerate(graph.tensors):
        if index in shapes and tensor.shapeSignature is not None and any(
            int(d) < 0 for d in tensor.shapeSignature
        ):
            tensor.shape, tensor.shapeSignature = shapes[index], None
    return model_bytes(flat)
