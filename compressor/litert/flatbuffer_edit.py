"""Small edits of a ``.tflite`` flatbuffer's object tree (``ai_edge_litert``'s schema):
operator codes and constant tensors, shared by the graph rewrites."""

from __future__ import annotations

from typing import Any

import numpy as np


def schema_module() -> Any:
    """LiteRT's generated flatbuffer schema module."""
    from ai_edge_litert import schema_py_generated as schema

    return schema


def read_model(data: bytes) -> Any:
    """A ``.tflite``'s bytes as LiteRT's mutable object tree (``ModelT``)."""
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def model_bytes(model: Any) -> bytes:
    """The object tree written back as ``.tflite`` bytes."""
    from ai_edge_litert.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def builtin_code(code: Any) -> int:
    """An operator code's builtin operator (old files keep it in the deprecated field)."""
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def with_builtin_codes(data: bytes) -> tuple[bytes, int]:
    """The model with every operator code's ``builtin_code`` field set, and how many
    were missing. Files written before TFLite 2.4 keep the operator only in
    ``deprecated_builtin_code`` (``builtin_code`` reads 0, which is ``ADD``): readers of
    the new field alone, such as ai-edge-quantizer, then take every op for an ``ADD``."""
    model = read_model(data)
    missing = 0
    for code in model.operatorCodes:
        if int(code.builtinCode) < int(code.deprecatedBuiltinCode):
            code.builtinCode = int(code.deprecatedBuiltinCode)
            missing += 1
    return (model_bytes(model), missing) if missing else (data, 0)


def opcode_index(model: Any, builtin: int, version: int = 1) -> int:
    """The index of ``builtin``'s operator code in ``model``, added when missing; an
    existing code is raised to at least ``version``."""
    schema = schema_module()
    for index, code in enumerate(model.operatorCodes):
        if builtin_code(code) == builtin:
            code.version = max(int(code.version), version)
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def int32_constant(model: Any, subgraph: Any, name: str, values: list[int]) -> int:
    """Append a constant int32 vector tensor (with its buffer); returns its index."""
    schema = schema_module()
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.asarray(values, np.int32).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.name = name.encode()
    tensor.shape = [len(values)]
    tensor.type = schema.TensorType.INT32
    tensor.buffer = len(model.buffers) - 1
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def drop_unused_opcodes(model, candidates: set[int]) -> None:
    """Remove operator codes in ``candidates`` no op uses any more (renumbering the rest),
    so a rewritten file does not still declare the operator it replaced."""
    used = {op.opcodeIndex for subgraph in model.subgraphs for op in subgraph.operators}
    unused = sorted(candidates - used)
    if not unused:
        return
    new_index, kept = {}, []
    for index, code in enumerate(model.operatorCodes):
        if index not in unused:
            new_index[index] = len(kept)
            kept.append(code)
    model.operatorCodes = kept
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            op.opcodeIndex = new_index[op.opcodeIndex]
