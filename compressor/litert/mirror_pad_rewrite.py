"""Rewrite reflection padding (``MIRROR_PAD``) in a float ``.tflite`` into ops every
delegate runs: one-row ``SLICE`` ops and a ``CONCATENATION`` per padded axis.

``MIRROR_PAD`` is not an EdgeTPU op (the compiler cuts the graph there, so everything
after it runs on the CPU) and not an XNNPACK one. Reflection is a copy: row ``k`` of the
padding is row ``p - k`` (REFLECT) or ``p - 1 - k`` (SYMMETRIC) of the input, so
slicing those rows and concatenating them around the input gives the same tensor, bit
for bit, in float and (with the concatenation's shared scale) in int8.

The edit is made on the flatbuffer (the ``tflite`` schema's object API, as LiteRT's own
``flatbuffer_utils`` reads and writes it): the pad op is replaced in place by the new
ops, its output tensor is kept (so the ops after it and the signature are untouched),
and only new tensors and constant buffers are appended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compressor.core.errors import StageError
from compressor.litert.flatbuffer_edit import (
    builtin_code,
    drop_unused_opcodes,
    model_bytes,
    opcode_index,
    read_model,
    schema_module,
)

_REFLECT, _SYMMETRIC = 0, 1  # tflite MirrorPadMode


@dataclass(frozen=True)
class MirrorPadRewrite:
    """The rewritten model and what changed."""

    model: bytes
    rewritten: int  # MIRROR_PAD ops replaced
    skipped: list[str]  # "INDEX: why" for MIRROR_PAD ops left as they were
    ops_added: int


class _GraphEditor:
    """Appends tensors, constant buffers and ops to one subgraph of a model object."""

    def __init__(self, model, subgraph) -> None:
        self.model, self.subgraph = model, subgraph
        self.schema = schema_module()
        self.slice_code = opcode_index(model, self.schema.BuiltinOperator.SLICE)
        self.concat_code = opcode_index(model, self.schema.BuiltinOperator.CONCATENATION)

    def constant(self, name: str, values: list[int]) -> int:
        buffer = self.schema.BufferT()
        buffer.data = np.frombuffer(np.asarray(values, np.int32).tobytes(), np.uint8)
        self.model.buffers.append(buffer)
        return self._tensor(name, [len(values)], None, self.schema.TensorType.INT32, buffer_id=-1)

    def activation(self, name: str, like, shape: list[int], signature: list[int] | None) -> int:
        return self._tensor(name, shape, signature, like.type, buffer_id=0)

    def _tensor(self, name, shape, signature, dtype, buffer_id: int) -> int:
        tensor = self.schema.TensorT()
        tensor.name = name.encode()
        tensor.shape = list(shape)
        if signature is not None:
            tensor.shapeSignature = list(signature)
        tensor.type = dtype
        tensor.buffer = len(self.model.buffers) - 1 if buffer_id < 0 else buffer_id
        self.subgraph.tensors.append(tensor)
        return len(self.subgraph.tensors) - 1

    def slice_op(self, source: int, begin: int, size: int, output: int):
        op = self.schema.OperatorT()
        op.opcodeIndex = self.slice_code
        op.inputs, op.outputs = [source, begin, size], [output]
        op.builtinOptionsType = self.schema.BuiltinOptions.SliceOptions
        op.builtinOptions = self.schema.SliceOptionsT()
        return op

    def concat_op(self, inputs: list[int], axis: int, output: int):
        op = self.schema.OperatorT()
        op.opcodeIndex = self.concat_code
        op.inputs, op.outputs = list(inputs), [output]
        op.builtinOptionsType = self.schema.BuiltinOptions.ConcatenationOptions
        options = self.schema.ConcatenationOptionsT()
        options.axis = axis
        op.builtinOptions = options
        return op


def _rows(size: int, before: int, after: int, mode: int) -> tuple[list[int], list[int]]:
    """Input rows copied before and after the input along one axis, in output order."""
    shift = 0 if mode == _REFLECT else 1
    head = [before - k - shift for k in range(before)]
    tail = [size - 2 + shift - k for k in range(after)]
    return head, tail


def _paddings(model, tensor) -> np.ndarray | None:
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    if data is None or len(data) == 0:
        return None
    dtype = np.int64 if tensor.type == schema_module().TensorType.INT64 else np.int32
    return np.frombuffer(bytes(np.asarray(data, np.uint8)), dtype).reshape(-1, 2)


def _replacement(editor: _GraphEditor, op) -> tuple[list, str | None]:
    """The ops replacing MIRROR_PAD ``op`` (or [] and why it stays)."""
    subgraph, model = editor.subgraph, editor.model
    source, pads_id = op.inputs[0], op.inputs[1]
    output = op.outputs[0]
    pads = _paddings(model, subgraph.tensors[pads_id])
    if pads is None:
        return [], "its paddings are computed at run time"
    mode = op.builtinOptions.mode if op.builtinOptions is not None else _REFLECT
    x = subgraph.tensors[source]
    shape = [int(d) for d in x.shape]
    signature = [int(d) for d in x.shapeSignature] if x.shapeSignature is not None else None
    rank = len(shape)
    if pads.shape[0] != rank:
        return [], f"paddings {pads.tolist()} do not match rank {rank}"
    axes = [axis for axis in range(rank) if pads[axis].any()]
    for axis in axes:
        before, after = (int(v) for v in pads[axis])
        dynamic = signature is not None and signature[axis] < 0
        limit = shape[axis] - (1 if mode == _REFLECT else 0)
        if dynamic or before > limit or after > limit or before < 0 or after < 0:
            return [], f"axis {axis} is dynamic or shorter than its padding"
    ops = []
    base = subgraph.tensors[output].name.decode(errors="replace") + "/mirror_pad_rewrite"
    current = source
    for position, axis in enumerate(axes):
        before, after = (int(v) for v in pads[axis])
        head, tail = _rows(shape[axis], before, after, mode)
        pieces = []
        for row in [*head, None, *tail]:
            if row is None:
                pieces.append(current)
                continue
            begin = [0] * rank
            begin[axis] = row
            size = [-1] * rank
            size[axis] = 1
            row_shape = list(shape)
            row_shape[axis] = 1
            row_signature = None
            if signature is not None:
                row_signature = list(signature)
                row_signature[axis] = 1
            name = f"{base}/axis{axis}/row{row}"
            piece = editor.activation(name, x, row_shape, row_signature)
            ops.append(
                editor.slice_op(
                    current,
                    editor.constant(f"{name}/begin", begin),
                    editor.constant(f"{name}/size", size),
                    piece,
                )
            )
            pieces.append(piece)
        shape[axis] += before + after
        if signature is not None:
            signature[axis] = shape[axis]
        last = position == len(axes) - 1
        joined = output if last else editor.activation(f"{base}/axis{axis}", x, shape, signature)
        ops.append(editor.concat_op(pieces, axis, joined))
        current = joined
    return ops, None


def rewrite_mirror_pads(data: bytes) -> MirrorPadRewrite:
    """Replace every ``MIRROR_PAD`` with constant paddings by slices and concatenations."""
    try:
        model = read_model(data)
    except Exception as exc:
        raise StageError(f"mirror-pad rewrite: cannot read the .tflite flatbuffer ({exc})") from exc
    mirror_pad = schema_module().BuiltinOperator.MIRROR_PAD
    pad_codes = {
        i for i, code in enumerate(model.operatorCodes) if builtin_code(code) == mirror_pad
    }
    if not pad_codes:
        return MirrorPadRewrite(data, 0, [], 0)
    rewritten, added, skipped = 0, 0, []
    for subgraph in model.subgraphs:
        if not any(op.opcodeIndex in pad_codes for op in subgraph.operators):
            continue
        editor = _GraphEditor(model, subgraph)
        operators = []
        for index, op in enumerate(subgraph.operators):
            if op.opcodeIndex not in pad_codes:
                operators.append(op)
                continue
            replacement, why = _replacement(editor, op)
            if why:
                skipped.append(f"{index}: {why}")
                operators.append(op)
                continue
            operators.extend(replacement)
            rewritten += 1
            added += len(replacement) - 1
        subgraph.operators = operators
    drop_unused_opcodes(model, pad_codes)
    return MirrorPadRewrite(model_bytes(model), rewritten, skipped, added)
