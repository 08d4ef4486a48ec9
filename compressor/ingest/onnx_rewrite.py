"""Exact rewrites of an ONNX graph before onnx2tf sees it.

An exporter that predates ONNX's ``Gelu`` (opset 20) writes GELU as its formula,
``0.5 · x · (1 + erf(x / √2))``. onnx2tf converts that ``Erf`` to TensorFlow's ``Erf``,
which TFLite has no builtin for: the converter refuses it (onnx2tf's own ``.tflite``
needs the Flex delegate, ``FlexErf``). The formula is exactly GELU, which TFLite has as a
builtin (XNNPACK and the GPU delegate run it): ``fuse_erf_gelu`` replaces each such chain
by one ONNX ``Gelu`` node, which onnx2tf converts to ``tf.nn.gelu``. ``Gelu`` exists from
opset 20, so an older graph is first moved to opset 20 by onnx's own version converter
(which rewrites the ops whose form changed, e.g. ``ReduceMean``'s axes). A ``Gelu`` of the
``com.microsoft`` domain would spare that step, but onnx's shape inference does not know
it, and onnx2tf re-infers shapes and loses every shape after it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

GELU_OPSET = 20
ERF_GELU = "0.5·x·(1 + erf(x/√2)) as GELU"
_TOLERANCE = 1e-5


class _Graph:
    """Producers, consumers and constant values of an ONNX graph's tensors."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.outputs = {o.name for o in graph.output}

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant tensor, else None."""
        value = self.constants.get(name)
        if value is None or value.size != 1:
            return None
        return float(np.asarray(value).reshape(()))

    def only_consumer(self, name: str, op_type: str) -> Any | None:
        """The single node reading ``name``, if it is an ``op_type`` and ``name`` is not a
        graph output (an intermediate value that nothing else sees)."""
        readers = self.consumers.get(name, [])
        if name in self.outputs or len(readers) != 1 or readers[0].op_type != op_type:
            return None
        return readers[0]

    def other_input(self, node: Any, name: str) -> str | None:
        """The input of a two-input ``node`` that is not ``name``."""
        if len(node.input) != 2 or name not in node.input:
            return None
        return node.input[1] if node.input[0] == name else node.input[0]

    def is_constant(self, name: str, value: float) -> bool:
        """True for a one-element constant equal to ``value``."""
        found = self.scalar(name)
        return found is not None and math.isclose(found, value, rel_tol=_TOLERANCE)


def _gelu_chain(g: _Graph, erf: Any) -> tuple[str, str, list[Any]] | None:
    """For an ``Erf`` node: (x, output, nodes) when it is the middle of an exact GELU
    formula (every intermediate read only by the next step), else None. The three
    orders exporters write: (x·(1+erf))·0.5, ((1+erf)·0.5)·x and (x·0.5)·(1+erf)."""
    scaled = g.producer.get(erf.input[0])
    if scaled is None or len(scaled.input) != 2 or scaled.input[0] in g.constants:
        return None
    x = scaled.input[0]
    divides = scaled.op_type == "Div" and g.is_constant(scaled.input[1], math.sqrt(2.0))
    multiplies = scaled.op_type == "Mul" and g.is_constant(scaled.input[1], math.sqrt(0.5))
    if not (divides or multiplies) or g.only_consumer(scaled.output[0], "Erf") is None:
        return None
    add = g.only_consumer(erf.output[0], "Add")
    if add is None or not g.is_constant(g.other_input(add, erf.output[0]) or "", 1.0):
        return None
    first = g.only_consumer(add.output[0], "Mul")
    other = g.other_input(first, add.output[0]) if first is not None else None
    if first is None or other is None:
        return None
    chain = [scaled, erf, add, first]
    if other == x or g.is_constant(other, 0.5):
        last = g.only_consumer(first.output[0], "Mul")
        rest = g.other_input(last, first.output[0]) if last is not None else None
        if rest is None or not (g.is_constant(rest, 0.5) if other == x else rest == x):
            return None
        return x, last.output[0], [*chain, last]
    half = g.producer.get(other)
    if half is None or half.op_type != "Mul" or g.only_consumer(other, "Mul") is None:
        return None
    if g.is_constant(g.other_input(half, x) or "", 0.5):
        return x, first.output[0], [half, *chain]
    return None


def _chains(model: Any) -> list[tuple[str, str, list[Any]]]:
    g = _Graph(model.graph)
    return [c for c in (_gelu_chain(g, n) for n in model.graph.node if n.op_type == "Erf") if c]


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def fuse_erf_gelu(model: Any) -> tuple[Any, int]:
    """``model`` (an ``onnx.ModelProto``) with every exact erf-GELU chain replaced by
    one ``Gelu`` node at the place of the chain's last node, and how many were
    replaced. A graph below opset 20 is converted to 20 first (a new model); one the
    version converter cannot move is returned unchanged, with 0."""
    from onnx import helper, version_converter

    chains = _chains(model)
    if not chains:
        return model, 0
    if _opset(model) < GELU_OPSET:
        try:
            model = version_converter.convert_version(model, GELU_OPSET)
        except Exception:  # the converter raises many kinds on ops it cannot move
            return model, 0
        chains = _chains(model)
    removed = {id(node) for _, _, nodes in chains for node in nodes}
    source_of = {out: x for x, out, _ in chains}
    kept = []
    for node in model.graph.node:
        if id(node) not in removed:
            kept.append(node)
        elif node.output[0] in source_of:
            name = f"{node.name or node.output[0]}/gelu"
            inputs, outputs = [source_of[node.output[0]]], [node.output[0]]
            kept.append(helper.make_node("Gelu", inputs, outputs, name))
    del model.graph.node[:]
    model.graph.node.extend(kept)
    read = {name for node in kept for name in node.input}
    unused = [i for i in model.graph.initializer if i.name not in read]
    for initializer in unused:  # the chains' √2, 1 and 0.5
        model.graph.initializer.remove(initializer)
    return model, len(chains)
