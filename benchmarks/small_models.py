"""Benchmark models with a realistic structure, built here as ONNX (no download):

- `face_cnn`: a MobileFaceNet-style face-embedding CNN with PReLU activations and an NHWC
  input (1x112x112x3 by default, as face pipelines feed it): conv 3x3/2 + BN + PReLU, a
  depthwise stem, inverted-residual bottlenecks (1x1 expand + PReLU, depthwise 3x3 + PReLU,
  1x1 linear, residual add), a 1x1 to 256 channels, a global depthwise 7x7 ("GDConv") and a
  1x1 to the embedding. About 40 MFLOP at 96x96 with width 0.5.
- `detector`: a 320x320 single-shot detector (SSD-lite / YOLO-style): a MobileNetV2-like
  backbone (ReLU6, inverted residuals) down to stride 32, an extra stride-64 stage, and
  per-scale 1x1 class and box heads (3 anchors, 20 classes) at 20x20, 10x10 and 5x5,
  flattened and concatenated into (1, anchors, 25).

Weights: seeded He-initialised convolutions, each followed by a BatchNormalization with
realistic statistics (running mean/variance drawn per channel, gamma around 1) that the
compilers fold; PReLU slopes around 0.25 (their trained values) with spread. The outputs
are therefore of order one through the whole depth, as a trained network's are.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def const(self, base: str, value) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv_bn(self, x: str, cin: int, cout: int, k: int = 1, s: int = 1, group: int = 1,
                act: str = None) -> str:
        """Conv (no bias) + BatchNormalization (+ activation), as a trained export has it."""
        fan_in = cin // group * k * k
        w = self.rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / fan_in)
        y = self.name("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const("w", w)], [y], kernel_shape=[k, k], strides=[s, s],
            pads=[k // 2] * 4, group=group))
        bn = self.name("bn")
        stats = [self.const("gamma", self.rng.uniform(0.6, 1.2, cout)),
                 self.const("beta", self.rng.normal(0.0, 0.1, cout)),
                 self.const("mean", self.rng.normal(0.0, 0.2, cout)),
                 self.const("var", self.rng.uniform(0.8, 2.0, cout))]
        self.nodes.append(helper.make_node("BatchNormalization", [y] + stats, [bn],
                                           epsilon=1e-5))
        return self.act(bn, cout, act)

    def act(self, x: str, channels: int, act: str) -> str:
        if act is None:
            return x
        y = self.name(act.lower())
        if act == "PRelu":
            slope = self.const("slope", self.rng.uniform(0.1, 0.4, (channels, 1, 1)))
            self.nodes.append(helper.make_node("PRelu", [x, slope], [y]))
        elif act == "Relu6":
            self.nodes.append(helper.make_node("Clip", [x, self.const("lo", 0.0),
                                                        self.const("hi", 6.0)], [y]))
        else:
            self.nodes.append(helper.make_node(act, [x], [y]))
        return y

    def add(self, a: str, b: str) -> str:
        y = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [y]))
        return y

    def bottleneck(self, x: str, cin: int, cout: int, s: int, expand: int, act: str) -> str:
        hidden = cin * expand
        h = self.conv_bn(x, cin, hidden, 1, act=act) if expand != 1 else x
        h = self.conv_bn(h, hidden, hidden, 3, s, group=hidden, act=act)
        h = self.conv_bn(h, hidden, cout, 1)
        return self.add(x, h) if s == 1 and cin == cout else h

    def model(self, name: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _width(c: float) -> int:
    return max(8, int(round(c / 8)) * 8)


def face_cnn(size: int = 96, width: float = 0.5, embedding: int = 128,
             seed: int = 112) -> onnx.ModelProto:
    """MobileFaceNet-style embedding CNN, NHWC input (1, size, size, 3), PReLU everywhere."""
    b = _Builder(seed)
    x = "image_nhwc"
    t = b.name("nchw")
    b.nodes.append(helper.make_node("Transpose", [x], [t], perm=[0, 3, 1, 2]))
    c0 = _width(64 * width)
    h = b.conv_bn(t, 3, c0, 3, 2, act="PRelu")
    h = b.conv_bn(h, c0, c0, 3, 1, group=c0, act="PRelu")
    cin = c0
    # (expansion, output channels, repeats, first stride): MobileFaceNet's table
    for t_, c, n, s in ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2),
                        (2, 128, 2, 1)):
        cout = _width(c * width)
        for i in range(n):
            h = b.bottleneck(h, cin, cout, s if i == 0 else 1, t_, "PRelu")
            cin = cout
    c_last = _width(512 * width)
    h = b.conv_bn(h, cin, c_last, 1, act="PRelu")
    spatial = size // 16
    gd = b.name("gdconv")  # global depthwise conv: one weight per position
    w = b.rng.standard_normal((c_last, 1, spatial, spatial)) / spatial
    b.nodes.append(helper.make_node("Conv", [h, b.const("w", w)], [gd],
                                    kernel_shape=[spatial, spatial], group=c_last))
    emb = b.conv_bn(gd, c_last, embedding, 1)
    out = "embedding"
    b.nodes.append(helper.make_node("Flatten", [emb], [out], axis=1))
    return b.model("face_cnn",
                   [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, size, size, 3])],
                   [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, embedding])])


def detector(size: int = 320, classes: int = 20, anchors: int = 3,
             seed: int = 320) -> onnx.ModelProto:
    """SSD-lite / YOLO-style single-shot detector at size x size (NCHW input)."""
    b = _Builder(seed)
    x = "image"
    h = b.conv_bn(x, 3, 16, 3, 2, act="Relu6")
    cin = 16
    feats = []
    # MobileNetV2's table at width 0.5 (expansion, channels, repeats, stride)
    for i, (t_, c, n, s) in enumerate(((1, 8, 1, 1), (6, 16, 2, 2), (6, 16, 3, 2),
                                       (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2),
                                       (6, 160, 1, 1))):
        for j in range(n):
            h = b.bottleneck(h, cin, c, s if j == 0 else 1, t_, "Relu6")
            cin = c
        if i == 4:
            feats.append((h, cin))  # stride 16: 20x20
    feats.append((h, cin))  # stride 32: 10x10
    e = b.conv_bn(h, cin, 128, 1, act="Relu6")  # extra stage, stride 64: 5x5
    e = b.conv_bn(e, 128, 128, 3, 2, group=128, act="Relu6")
    e = b.conv_bn(e, 128, 128, 1, act="Relu6")
    feats.append((e, 128))
    per_anchor = 5 + classes
    flat = []
    for f, c in feats:
        # SSD-lite head: depthwise 3x3 + 1x1 to anchors x (box 4 + objectness + classes)
        d = b.conv_bn(f, c, c, 3, 1, group=c, act="Relu6")
        wt = b.rng.standard_normal((anchors * per_anchor, c, 1, 1)) * np.sqrt(1.0 / c)
        p = b.name("head")
        b.nodes.append(helper.make_node("Conv", [d, b.const("w", wt),
                                                 b.const("b", b.rng.normal(0, 0.1, anchors * per_anchor))],
                                        [p]))
        t = b.name("nhwc")
        b.nodes.append(helper.make_node("Transpose", [p], [t], perm=[0, 2, 3, 1]))
        r = b.name("flat")
        b.nodes.append(helper.make_node("Reshape", [t, b.const_i64([1, -1, per_anchor])], [r]))
        flat.append(r)
    cat = b.name("cat")
    b.nodes.append(helper.make_node("Concat", flat, [cat], axis=1))
    # boxes and scores: sigmoid on objectness and classes, as a YOLO decoder starts
    out = "detections"
    b.nodes.append(helper.make_node("Sigmoid", [cat], [out]))
    return b.model("detector",
                   [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, size, size])],
                   [helper.make_tensor_value_info(
                       out, TensorProto.FLOAT,
                       [1, anchors * sum((size // d) ** 2 for d in (16, 32, 64)), per_anchor])])


def _const_i64(self, value) -> str:
    name = self.name("shape")
    self.inits.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
    return name


_Builder.const_i64 = _const_i64


def flops(model: onnx.ModelProto) -> float:
    """Multiply-adds x 2 of the convolutions (shape inference gives the output sizes)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = inits[node.input[1]]
            out = shapes[node.output[0]]
            total += 2 * np.prod(out) * w[1] * w[2] * w[3]
    return float(total)


if __name__ == "__main__":
    for m in (face_cnn(), detector()):
        print(m.graph.name, f"{flops(m) / 1e6:.1f} MFLOP", len(m.graph.node), "nodes")
