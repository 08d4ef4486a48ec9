"""Rewrite activations a target or a quantizer cannot take into plain arithmetic, in a
float ``.tflite``:

- ``HARD_SWISH(x)`` = ``x · (RELU(x + 3) − RELU(x − 3)) · 1/6`` — the EdgeTPU has no
  ``HARD_SWISH`` (the compiler cuts the graph at the first one: MediaPipe's selfie
  segmenter ran 1 of 136 ops on it), but runs ``ADD``, ``RELU``, ``SUB`` and ``MUL``, which
  ai-edge-quantizer quantizes (it has no int8 ``RELU6`` or ``MINIMUM``);
- ``PRELU(x, α)`` = ``RELU(x) + α · (x − RELU(x))`` — ai-edge-quantizer has no int8
  ``PRELU`` and leaves it float (MediaPipe's face mesh: 2 of 143 ops on the EdgeTPU), but
  quantizes ``RELU``, ``SUB``, ``MUL`` and ``ADD``.

Both are the same function in float (``PRELU`` bit for bit: one of the two terms is 0;
``HARD_SWISH`` within float rounding). Each op is replaced in place; its output tensor is
kept, so later ops and the signature are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compressor.litert.flatbuffer_edit import (
    builtin_code,
    drop_unused_opcodes,
    model_bytes,
    opcode_index,
    read_model,
    schema_module,
)

REWRITTEN_ACTIVATIONS = ("HARD_SWISH", "PRELU")


@dataclass
class ActivationRewrite:
    """The rewritten model and how many of each op were replaced."""

    model: bytes
    rewritten: dict[str, int] = field(default_factory=dict)


class _Editor:
    def __init__(self, model, graph) -> None:
        self.model, self.graph = model, graph
        self.schema = schema_module()
        self._codes: dict[int, int] = {}

    def code(self, builtin: int) -> int:
        if builtin not in self._codes:
            self._codes[builtin] = opcode_index(self.model, builtin)
        return self._codes[builtin]

    def scalar(self, name: str, value: float) -> int:
        buffer = self.schema.BufferT()
        buffer.data = np.frombuffer(np.asarray([value], np.float32).tobytes(), np.uint8)
        self.model.buffers.append(buffer)
        return self._tensor(name, [1], len(self.model.buffers) - 1)

    def like(self, name: str, tensor) -> int:
        """A new float activation tensor shaped as ``tensor``."""
        index = self._tensor(name, list(tensor.shape), 0)
        if tensor.shapeSignature is not None:
            self.graph.tensors[index].shapeSignature = list(tensor.shapeSignature)
        return index

    def _tensor(self, name: str, shape: list[int], buffer: int) -> int:
        tensor = self.schema.TensorT()
        tensor.name = name.encode()
        tensor.shape = shape
        tensor.type = self.schema.TensorType.FLOAT32
        tensor.buffer = buffer
        self.graph.tensors.append(tensor)
        return len(self.graph.tensors) - 1

    def op(self, builtin_name: str, inputs: list[int], output: int):
        schema = self.schema
        op = schema.OperatorT()
        op.opcodeIndex = self.code(getattr(schema.BuiltinOperator, builtin_name))
        op.inputs, op.outputs = inputs, [output]
        options = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions"}.get(builtin_name)
        if options:
            value = getattr(schema, f"{options}T")()
            value.fusedActivationFunction = schema.ActivationFunctionType.NONE
            op.builtinOptionsType = getattr(schema.BuiltinOptions, options)
            op.builtinOptions = value
        return op


def _hard_swish(editor: _Editor, op, number: int) -> list:
    """x · RELU6(x + 3) / 6, with RELU6(x + 3) = RELU(x + 3) − RELU(x − 3): ai-edge-quantizer
    has no int8 RELU6 or MINIMUM (it would leave them float), but quantizes these."""
    source, output = op.inputs[0], op.outputs[0]
    like = editor.graph.tensors[output]
    name = f"hard_swish_{number}"
    plus, minus, relu_plus, relu_minus, clipped, product = (
        editor.like(f"{name}/{part}", like)
        for part in ("plus3", "minus3", "relu_plus3", "relu_minus3", "relu6", "x_relu6")
    )
    return [
        editor.op("ADD", [source, editor.scalar(f"{name}/three", 3.0)], plus),
        editor.op("ADD", [source, editor.scalar(f"{name}/minus_three", -3.0)], minus),
        editor.op("RELU", [plus], relu_plus),
        editor.op("RELU", [minus], relu_minus),
        editor.op("SUB", [relu_plus, relu_minus], clipped),
        editor.op("MUL", [source, clipped], product),
        editor.op("MUL", [product, editor.scalar(f"{name}/sixth", 1.0 / 6.0)], output),
    ]


def _prelu(editor: _Editor, op, number: int) -> list:
    source, alpha = op.inputs[0], op.inputs[1]
    output = op.outputs[0]
    like = editor.graph.tensors[output]
    name = f"prelu_{number}"
    positive, negative, scaled = (editor.like(f"{name}/{part}", like)
                                  for part in ("relu", "x_minus_relu", "alpha_times"))  # fmt: skip
    return [
        editor.op("RELU", [source], positive),
        editor.op("SUB", [source, positive], negative),
        editor.op("MUL", [negative, alpha], scaled),
        editor.op("ADD", [positive, scaled], output),
    ]


_REWRITES = {"HARD_SWISH": _hard_swish, "PRELU": _prelu}


def rewrite_activations(
    data: bytes, which: tuple[str, ...] = REWRITTEN_ACTIVATIONS
) -> ActivationRewrite:
    """``data`` with every op named in ``which`` (``HARD_SWISH``, ``PRELU``) decomposed;
    unchanged bytes when there is none."""
    schema = schema_module()
    model = read_model(data)
    wanted = {getattr(schema.BuiltinOperator, name): name for name in which}
    codes = {i: wanted[builtin_code(c)] for i, c in enumerate(model.operatorCodes)
             if builtin_code(c) in wanted}  # fmt: skip
    if not codes:
        return ActivationRewrite(data)
    counts: dict[str, int] = {}
    for graph in model.subgraphs:
        editor = _Editor(model, graph)
        operators = []
        for number, op in enumerate(graph.operators):
            name = codes.get(op.opcodeIndex)
            if name is None or graph.tensors[op.outputs[0]].type != schema.TensorType.FLOAT32:
                operators.append(op)
                continue
            operators.extend(_REWRITES[name](editor, op, number))
            counts[name] = counts.get(name, 0) + 1
        graph.operators = operators
    if not counts:
        return ActivationRewrite(data)
    drop_unused_opcodes(model, set(codes))
    return ActivationRewrite(model_bytes(model), counts)
