"""float16 weights of a float ``.tflite`` widened to float32 constants.

Files converted with float16 quantization (MediaPipe's selfie segmenter, many models on
the web) store each weight as a float16 constant feeding a ``DEQUANTIZE`` op. Tools that
read weights as constants see none: ai-edge-quantizer fails on the ``DEQUANTIZE``
("'NoneType' object has no attribute 'ndim'"), and a dynamic-range or float16 recipe
leaves the file as it was. Each such ``DEQUANTIZE`` is computed once here (float16 →
float32 is exact) and its output becomes a constant: the same arithmetic, a plain float32
graph every quantizer reads.
"""

from __future__ import annotations

import numpy as np

from compressor.litert.flatbuffer_edit import (
    builtin_code,
    drop_unused_opcodes,
    model_bytes,
    read_model,
    schema_module,
)

FLOAT16_DEQUANTIZE = "DEQUANTIZE of float16 weights"


def widen_float16_weights(data: bytes) -> tuple[bytes, int]:
    """The model with every float16-constant ``DEQUANTIZE`` folded into a float32
    constant, and how many were folded (0: ``data`` comes back as it was)."""
    from compressor.litert.tflite_fold import drop_unused_tensors

    schema = schema_module()
    model = read_model(data)
    dequantize = {
        index
        for index, code in enumerate(model.operatorCodes)
        if builtin_code(code) == schema.BuiltinOperator.DEQUANTIZE
    }
    folded = 0
    for graph in model.subgraphs:
        kept = []
        for op in graph.operators:
            source = graph.tensors[op.inputs[0]] if op.inputs else None
            buffer = model.buffers[source.buffer] if source is not None else None
            if (
                op.opcodeIndex in dequantize
                and source.type == schema.TensorType.FLOAT16
                and buffer is not None
                and buffer.data is not None
                and len(buffer.data)
            ):
                values = np.frombuffer(bytes(buffer.data), np.float16).astype(np.float32)
                widened = schema.BufferT()
                widened.data = np.frombuffer(values.tobytes(), np.uint8)
                model.buffers.append(widened)
                graph.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
                folded += 1
            else:
                kept.append(op)
        if len(kept) != len(graph.operators):
            graph.operators = kept
            drop_unused_tensors(model, graph)
    if not folded:
        return data, 0
    drop_unused_opcodes(model, dequantize)
    return model_bytes(model), folded
