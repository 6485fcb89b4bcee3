"""Float models and their onnxruntime-quantized forms for the int8 model tests.

Every model is generated deterministically (seeded weights, seeded calibration data) and
cached in a directory the caller gives (a pytest tmp dir): QOperator per-tensor
(quantize_static, uint8 activations, int8 weights), QDQ per-channel (quantize_static), QDQ
with int8 activations, and dynamically quantized (quantize_dynamic).
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


# --- float models --------------------------------------------------------------------------
def _light(name: str, seed: int = 11) -> onnx.ModelProto:
    """A shipped light model with seeded He-scaled weights, its final Softmax dropped (the
    logits are compared: a quantization step is defined there)."""
    from test_onnx_real_models import with_random_weights

    model = with_random_weights(onnx.load(os.path.join(LIGHT, f"light_{name}.onnx")), seed)
    g = model.graph
    _drop_final_softmax(g)
    inits = {t.name for t in g.initializer}
    for vi in [vi for vi in g.input if vi.name in inits]:  # weights listed as inputs
        g.input.remove(vi)
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:  # the fills' shapes
        g.initializer.remove(t)
    model.ir_version = 8  # (before IR 4, every initializer had to be a graph input)
    return onnx.version_converter.convert_version(model, 13)


def _drop_final_softmax(g: onnx.GraphProto) -> None:
    last = g.node[-1]
    if last.op_type == "Softmax":
        out = g.output[0]
        g.node.remove(last)
        g.output.remove(out)
        g.output.append(helper.make_empty_tensor_value_info(last.input[0]))


def _ppocr(name: str, shape: List[int]) -> onnx.ModelProto:
    """A trained PaddleOCR model from its pinned PyPI wheel (tests/pypi_models.py) with its
    symbolic input dims fixed to `shape` (so the Shape -> Reshape chains fold to constants
    and the quantizer sees every tensor's shape), converted to opset 13. The classifier
    keeps its final Softmax: the quantizer writes it as QLinearSoftmax (QOperator) or a
    DequantizeLinear -> Softmax -> QuantizeLinear island, and its probabilities are
    compared, in steps of the quantizer's 1/256."""
    from pypi_models import model_path

    model = onnx.load(model_path(name))
    g = model.graph
    last = g.node[-1]
    if last.op_type == "Identity":  # Paddle's exporter renames the output with an Identity
        g.node.remove(last)
        g.output[0].name = last.input[0]
    dims = g.input[0].type.tensor_type.shape.dim
    for d, n in zip(dims, shape):
        d.Clear()
        d.dim_value = n
    del g.value_info[:]
    for out in g.output:  # re-inferred from the fixed input
        out.type.tensor_type.ClearField("shape")
    # opset 13: per-channel DequantizeLinear (its axis attribute) needs it
    model = onnx.version_converter.convert_version(model, 13)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


class _Builder:
    """A small graph built node by node with seeded He-scaled weights."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, value, base="w") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op, ins, **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k=1, stride=1, group=1):
        w = self.rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (cin // group * k * k))
        b = self.rng.uniform(-0.1, 0.1, cout)
        return self.node("Conv", [x, self.const(w), self.const(b, "b")], kernel_shape=[k, k],
                         strides=[stride, stride], pads=[k // 2] * 4, group=group)

    def relu6(self, x):
        return self.node("Clip", [x, self.const(0.0, "lo"), self.const(6.0, "hi")])


def mobilenet_se(seed: int = 5) -> onnx.ModelProto:
    """MobileNetV2-style network on an NHWC input: inverted residual blocks (1x1 expand,
    3x3 depthwise, squeeze-excitation, 1x1 project, residual add), ReLU6, global pool, FC."""
    b = _Builder(seed)
    x = b.node("Transpose", ["image"], perm=[0, 3, 1, 2])  # NHWC -> NCHW
    x = b.relu6(b.conv(x, 3, 16, 3, 2))
    for expand, stride in ((3, 1), (4, 1), (3, 2)):
        c = 16
        h = b.relu6(b.conv(x, c, c * expand, 1))
        h = b.relu6(b.conv(h, c * expand, c * expand, 3, stride, group=c * expand))
        s = b.node("GlobalAveragePool", [h])
        s = b.node("Relu", [b.conv(s, c * expand, 8, 1)])
        s = b.node("Sigmoid", [b.conv(s, 8, c * expand, 1)])
        h = b.node("Mul", [h, s])
        h = b.conv(h, c * expand, c, 1)
        x = b.node("Add", [x, h]) if stride == 1 else h
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    w = b.rng.standard_normal((16, 10)) * np.sqrt(2.0 / 16)
    y = b.node("Gemm", [x, b.const(w), b.const(b.rng.uniform(-0.1, 0.1, 10), "b")])
    graph = helper.make_graph(
        b.nodes, "mobilenet_se",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 32, 32, 3])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def digits_cnn() -> Tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """The samples/digits CNN trained on sklearn's digits (MegEngine, seeded), written as
    ONNX with its BatchNorms folded: (model with a symbolic batch, test images, labels)."""
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "digits_make_model", os.path.join(root, "samples", "digits", "make_model.py"))
    mm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mm)
    net, _ = mm.train()
    _, _, x_te, y_te = mm.load_split()
    b = _Builder(0)

    def folded(seq):
        conv, bn = seq[0], seq[1]
        w = conv.weight.numpy()
        gamma, beta = bn.weight.numpy().reshape(-1), bn.bias.numpy().reshape(-1)
        mean, var = bn.running_mean.numpy().reshape(-1), bn.running_var.numpy().reshape(-1)
        k = gamma / np.sqrt(var + bn.eps)
        return w * k[:, None, None, None], beta - mean * k

    def conv(x, seq):
        w, bias = folded(seq)
        return b.node("Conv", [x, b.const(w), b.const(bias, "b")], kernel_shape=[3, 3],
                      pads=[1, 1, 1, 1])

    x = b.node("Relu", [conv("data", net.c1)])
    x = b.node("Relu", [conv(x, net.c2)])
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.node("HardSwish", [conv(x, net.c3)])
    x = b.node("Flatten", [x], axis=1)
    y = b.node("Gemm", [x, b.const(net.fc.weight.numpy()), b.const(net.fc.bias.numpy(), "b")],
               transB=1)
    graph = helper.make_graph(
        b.nodes, "digits",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), x_te, y_te


# --- quantization ----------------------------------------------------------------------------
class _Reader:
    def __init__(self, name: str, samples: List[np.ndarray]):
        self.it = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def quantize_all(float_path: str, out_dir: str, input_name: str,
                 calibration: List[np.ndarray], forms=None) -> Dict[str, str]:
    """{form: path} of the model quantized in every form (cached by file name)."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    base = os.path.splitext(os.path.basename(float_path))[0]
    wanted = forms
    forms = {
        "qoperator": dict(quant_format=QuantFormat.QOperator, per_channel=False,
                          activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8),
        "qdq_per_channel": dict(quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8),
        "qdq_s8": dict(quant_format=QuantFormat.QDQ, per_channel=True,
                       activation_type=QuantType.QInt8, weight_type=QuantType.QInt8),
        # 7-bit weights (onnxruntime's advice for AVX2 without VNNI): the vpmaddubsw kernel
        "qdq_reduce_range": dict(quant_format=QuantFormat.QDQ, per_channel=True,
                                 activation_type=QuantType.QUInt8,
                                 weight_type=QuantType.QInt8, reduce_range=True),
    }
    paths = {}
    for form, kw in forms.items():
        if wanted is not None and form not in wanted:
            continue
        path = os.path.join(out_dir, f"{base}.{form}.onnx")
        if not os.path.exists(path):
            quantize_static(float_path, path, _Reader(input_name, calibration),
                            calibrate_method=CalibrationMethod.MinMax, **kw)
        paths[form] = path
    if wanted is not None and "dynamic" not in wanted:
        return paths
    path = os.path.join(out_dir, f"{base}.dynamic.onnx")
    if not os.path.exists(path):
        quantize_dynamic(float_path, path, weight_type=QuantType.QUInt8)
    paths["dynamic"] = path
    return paths


def prepared(model: onnx.ModelProto, out_dir: str, name: str) -> str:
    """The float model saved after onnxruntime's pre-processing (shape inference)."""
    path = os.path.join(out_dir, f"{name}.onnx")
    if not os.path.exists(path):
        model.ir_version = min(model.ir_version, 8)
        onnx.save(model, path)
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(path, path, skip_symbolic_shape=True)
    return path


def text_image(rng: np.random.Generator, shape, mean, std) -> np.ndarray:
    """An image-like NCHW input for the OCR models: lines of seeded random words rendered
    with OpenCV (dark ink, antialiased) on a light shaded page with a little noise, in
    [0, 1], then normalised as the model's own pre-processing does ((x - mean) / std, per
    channel). The PP-OCRv4 detector marks ~20 % of a 64x64 page as text on these."""
    import cv2

    n, c, h, w = shape
    mean = np.broadcast_to(np.asarray(mean, np.float32), (c,))
    std = np.broadcast_to(np.asarray(std, np.float32), (c,))
    letters = np.array(list("ABCDEFGHKMNPRSTUVWXYZabdeghkmnpqrstuwxyz0123456789"))
    out = np.empty(shape, np.float32)
    for i in range(n):
        page = np.full((h, w, c), rng.uniform(200, 255), np.float32)
        page *= np.linspace(0.9, 1.0, w)[None, :, None]
        y = int(rng.integers(2, 8))
        while True:
            scale = rng.uniform(0.35, 0.6)
            y += int(24 * scale) + 2
            if y > h - 2:
                break
            word = "".join(rng.choice(letters, int(rng.integers(3, 9))))
            ink = tuple(float(v) for v in rng.uniform(0, 80, 3))
            cv2.putText(page, word, (int(rng.integers(0, max(1, w // 6))), y),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)
        img = np.clip(page + rng.normal(0, 3, page.shape), 0, 255) / 255.0
        out[i] = ((img - mean) / std).transpose(2, 0, 1)
    return out


# model name -> input generator (rng, shape) for models with image-like inputs; the others
# take seeded standard-normal data
INPUTS: Dict[str, Callable] = {
    # PaddleOCR's classifier normalises to [-1, 1], its detector with ImageNet's mean/std
    "ppocr_cls": lambda rng, shape: text_image(rng, shape, 0.5, 0.5),
    "ppocr_det": lambda rng, shape: text_image(rng, shape, [0.485, 0.456, 0.406],
                                               [0.229, 0.224, 0.225]),
}

# model name -> the decision its output stands for, compared as "top-1 agreement": the
# class (argmax over the last axis) unless given here
DECISIONS: Dict[str, Callable] = {
    # the detector's text mask at PaddleOCR's DB threshold (argmax along a row of a
    # probability map saturated at 0 or 1 is a tie-break, not a decision)
    "ppocr_det": lambda y: y > 0.3,
}

MODELS: Dict[str, Callable] = {
    "squeezenet": lambda: _light("squeezenet"),
    "shufflenet": lambda: _light("shufflenet"),
    "mobilenet_se": mobilenet_se,
    # PaddleOCR's text-direction classifier (MobileNetV3-style: depthwise, SE with
    # HardSigmoid, h-swish) at its deployed input size
    "ppocr_cls": lambda: _ppocr("ppocr_cls", [1, 3, 48, 192]),
    # PP-OCRv4 text detector (depthwise, residual, SE blocks, FPN with Resize and
    # ConvTranspose, sigmoid probability map) at a small input to keep the tests quick
    "ppocr_det": lambda: _ppocr("ppocr_det", [1, 3, 64, 64]),
}
