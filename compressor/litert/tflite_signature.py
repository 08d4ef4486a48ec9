"""A SignatureDef for a ``.tflite`` that has none (MediaPipe-style files, graphs written
by older converters): ai-edge-quantizer and LiteRT's signature runner address a model
by its signature, and fail on a file without one."""

from __future__ import annotations

DEFAULT_SIGNATURE = "serving_default"


def _tensor_name(tensor, index: int, kind: str, taken: set[str]) -> str:
    raw = tensor.name or b""
    name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    name = name or f"{kind}_{index}"
    while name in taken:
        name = f"{name}_{index}"
    taken.add(name)
    return name


def add_default_signature(model_bytes: bytes) -> bytes | None:
    """``model_bytes`` with a ``serving_default`` signature over the main subgraph's
    inputs and outputs (named after their tensors), or None when it has a signature."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    if model.signatureDefs:
        return None
    subgraph = model.subgraphs[0]
    signature = schema.SignatureDefT()
    signature.signatureKey = DEFAULT_SIGNATURE
    signature.subgraphIndex = 0
    for kind, indices in (("input", subgraph.inputs), ("output", subgraph.outputs)):
        taken: set[str] = set()
        maps = []
        for position, tensor_index in enumerate(indices):
            entry = schema.TensorMapT()
            entry.name = _tensor_name(subgraph.tensors[tensor_index], position, kind, taken)
            entry.tensorIndex = int(tensor_index)
            maps.append(entry)
        setattr(signature, f"{kind}s", maps)
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def strip_signatures(model_bytes: bytes) -> bytes:
    """``model_bytes`` without SignatureDefs, as many shipped ``.tflite`` files are."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    model.signatureDefs = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
