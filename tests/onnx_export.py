"""Write a small Keras 3 functional model as an ONNX graph (NCHW, opset 17), weight for
weight, with ``onnx.helper``: how tests get "the same model as ONNX" offline.

Covers the layers the tests' Keras 3 model uses: Rescaling, Conv2D, SeparableConv2D,
BatchNormalization, Activation / fused activations (relu, sigmoid, hard_silu), Add.
Anything else is refused, so a test cannot silently export a different model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "hard_silu": "HardSwish"}


class _Graph:
    def __init__(self) -> None:
        self.nodes: list = []
        self.weights: list = []

    def constant(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output


def _inbound(layer_config: dict) -> list[str]:
    names = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                names.append(value["config"]["keras_history"][0])
            else:
                for item in value.values():
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(layer_config.get("inbound_nodes", []))
    return names


def _activation(graph: _Graph, name: str, activation: str, source: str) -> str:
    if activation in (None, "linear"):
        return source
    if activation not in _ACTIVATIONS:
        raise ValueError(f"onnx_export: activation {activation!r} of {name} is not covered")
    return graph.node(_ACTIVATIONS[activation], [source], f"{name}/act")


def _conv(graph: _Graph, name: str, source: str, kernel, bias, config, group: int = 1) -> str:
    kh, kw = kernel.shape[2:]
    pads = [kh // 2, kw // 2, kh // 2, kw // 2] if config["padding"] == "same" else [0, 0, 0, 0]
    inputs = [source, graph.constant(f"{name}/W", kernel)]
    if bias is not None:
        inputs.append(graph.constant(f"{name}/B", bias))
    return graph.node(
        "Conv",
        inputs,
        f"{name}/conv",
        kernel_shape=[kh, kw],
        pads=pads,
        strides=list(config["strides"]),
        group=group,
    )


def _layer(graph: _Graph, layer, config: dict, sources: list[str]) -> str:
    kind, name = layer.__class__.__name__, layer.name
    weights = layer.get_weights()
    if kind == "Rescaling":
        scaled = graph.node(
            "Mul", [sources[0], graph.constant(f"{name}/s", config["scale"])], f"{name}/mul"
        )
        return graph.node(
            "Add", [scaled, graph.constant(f"{name}/o", config["offset"])], f"{name}/add"
        )
    if kind == "Conv2D":
        bias = weights[1] if config["use_bias"] else None
        out = _conv(graph, name, sources[0], weights[0].transpose(3, 2, 0, 1), bias, config)
        return _activation(graph, name, config["activation"], out)
    if kind == "SeparableConv2D":
        depthwise, pointwise = weights[0], weights[1]
        channels = depthwise.shape[2]
        dw = _conv(graph, f"{name}/dw", sources[0], depthwise.transpose(2, 3, 0, 1), None,
                   config, group=channels)  # fmt: skip
        bias = weights[2] if config["use_bias"] else None
        pw = _conv(graph, f"{name}/pw", dw, pointwise.transpose(3, 2, 0, 1), bias,
                   {"padding": "valid", "strides": (1, 1)})  # fmt: skip
        return _activation(graph, name, config["activation"], pw)
    if kind == "BatchNormalization":
        gamma, beta, mean, variance = weights
        inputs = [sources[0]] + [
            graph.constant(f"{name}/{part}", value)
            for part, value in zip(("g", "b", "m", "v"), (gamma, beta, mean, variance), strict=True)
        ]
        return graph.node("BatchNormalization", inputs, f"{name}/bn", epsilon=config["epsilon"])
    if kind == "Activation":
        return _activation(graph, name, config["activation"], sources[0])
    if kind == "Add":
        return graph.node("Add", sources, f"{name}/add")
    raise ValueError(f"onnx_export: layer {name} ({kind}) is not covered")


def export_keras3_to_onnx(model, path: Path) -> Path:
    """Write ``model`` (Keras 3, one NHWC image input) as ONNX with an NCHW input named
    like the Keras input and one NCHW output."""
    import onnx
    from onnx import TensorProto, helper

    graph = _Graph()
    _, height, width, channels = model.inputs[0].shape
    input_name = model.layers[0].name
    tensors = {input_name: input_name}
    for layer_config in model.get_config()["layers"][1:]:
        layer = model.get_layer(layer_config["name"])
        sources = [tensors[name] for name in _inbound(layer_config)]
        tensors[layer.name] = _layer(graph, layer, layer_config["config"], sources)
    output = tensors[model.layers[-1].name]
    out_channels = model.outputs[0].shape[-1]
    onnx_graph = helper.make_graph(
        graph.nodes,
        model.name,
        [
            helper.make_tensor_value_info(
                input_name, TensorProto.FLOAT, [1, channels, height, width]
            )
        ],
        [
            helper.make_tensor_value_info(
                output, TensorProto.FLOAT, [1, out_channels, height, width]
            )
        ],
        graph.weights,
    )
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))
    return path


def yolo_style_head_onnx(path: Path, seed: int = 0) -> Path:
    """A dynamic-size ONNX graph shaped like a YOLOv8 export's head: a conv trunk at two
    scales, each flattened by a ``Reshape([N, C, -1])`` whose target is computed at run
    time (``Shape → Gather → Concat``), then concatenated over anchors (axis 2). Input
    ``images`` is ``[batch, 3, height, width]``; output ``output0`` is ``[batch, 6, anchors]``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights, nodes = [], []

    def constant(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    kernel = constant("w1", rng.normal(0, 0.3, (6, 3, 3, 3)).astype(np.float32))
    bias = constant("b1", np.zeros(6, np.float32))
    x = node("Conv", ["images", kernel, bias], "conv", pads=[1, 1, 1, 1], strides=[2, 2])
    x = node("Relu", [x], "relu")
    pooled = node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    shape = node("Shape", ["images"], "shape")
    batch = node("Gather", [shape, constant("zero", np.array([0], np.int64))], "batch")
    channels = constant("channels", np.array([6], np.int64))
    rest = constant("rest", np.array([-1], np.int64))
    target = node("Concat", [batch, channels, rest], "target", axis=0)
    flat_a = node("Reshape", [x, target], "flat_a")
    flat_b = node("Reshape", [pooled, target], "flat_b")
    node("Concat", [flat_a, flat_b], "output0", axis=2)
    image = ["batch", 3, "height", "width"]
    graph = helper.make_graph(
        nodes,
        "yolo_style_head",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, image)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, "anchors"])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def erf_gelu_onnx(path: Path, seed: int = 0) -> Path:
    """A dynamic-size opset-17 ONNX graph with GELU written as its erf formula, in the
    three orders exporters use, between convolutions: ``images`` ``[batch, 3, h, w]`` →
    ``output`` ``[batch, 4, h, w]``. TFLite has no builtin ``Erf``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights, nodes = [], []

    def constant(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str) -> str:
        nodes.append(helper.make_node(op, inputs, [output]))
        return output

    def conv(name: str, source: str, channels_in: int, channels_out: int) -> str:
        kernel = constant(f"{name}/w", rng.normal(0, 0.4, (channels_out, channels_in, 1, 1)))
        nodes.append(helper.make_node("Conv", [source, kernel], [name]))
        return name

    root2, one, half = constant("sqrt2", 2**0.5), constant("one", 1.0), constant("half", 0.5)
    x = conv("conv0", "images", 3, 4)
    for order in ("x_first", "half_first", "half_x"):
        erf = node("Erf", [node("Div", [x, root2], f"{order}/div")], f"{order}/erf")
        plus = node("Add", [erf, one], f"{order}/add")
        if order == "x_first":
            y = node("Mul", [node("Mul", [x, plus], f"{order}/mul"), half], f"{order}/out")
        elif order == "half_first":
            y = node("Mul", [node("Mul", [plus, half], f"{order}/mul"), x], f"{order}/out")
        else:
            y = node("Mul", [node("Mul", [x, half], f"{order}/mul"), plus], f"{order}/out")
        x = conv(f"{order}/conv", y, 4, 4)
    nodes.append(helper.make_node("Identity", [x], ["output"]))
    dims = ["batch", None, "height", "width"]
    graph = helper.make_graph(
        nodes,
        "erf_gelu",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [dims[0], 3, *dims[2:]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [dims[0], 4, *dims[2:]])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
