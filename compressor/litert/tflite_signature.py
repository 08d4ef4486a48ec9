"""A SignatureDef for a ``.tflite`` that has none (MediaPipe-style files, graphs written
by older converters): ai-edge-quantizer and LiteRT's signature runner address a model
by its signature, and fail on a file without one."""

from __future__ import annotations

from compressor.litert.flatbuffer_edit import model_bytes, read_model, schema_module

DEFAULT_SIGNATURE = "serving_default"


def _tensor_name(tensor, index: int, kind: str, taken: set[str]) -> str:
    raw = tensor.name or b""
    name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    name = name or f"{kind}_{index}"
    while name in taken:
        name = f"{name}_{index}"
    taken.add(name)
    return name


def add_default_signature(data: bytes) -> bytes | None:
    """``data`` with a ``serving_default`` signature over the main subgraph's
    inputs and outputs (named after their tensors), or None when it has a signature."""
    schema = schema_module()
    model = read_model(data)
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
    return model_bytes(model)


def strip_signatures(data: bytes) -> bytes:
    """``data`` without SignatureDefs, as many shipped ``.tflite`` files are."""
    model = read_model(data)
    model.signatureDefs = []
    return model_bytes(model)
