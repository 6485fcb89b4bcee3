"""Quantized (int8) MegEngine models for testing, made with MegEngine's own flow.

Every model is a float MegEngine network built from `megengine.module`'s quantizable
modules (QuantStub, ConvBnRelu2d, Elemwise, Concat, Linear, ...), with seeded weights and
non-trivial BatchNorm statistics (mge_zoo.init_weights), then:
  quantize_qat(net, calibration_qconfig) -> run calibration batches with the observers on
  -> quantize(qat) -> trace(capture_as_const=True).dump(...), plain or
  optimize_for_inference,
exactly as a user post-training-quantizes a model. Calibration data is real-ish: crops of
the two photographs sklearn ships (load_sample_images) for image nets, the real digits for
the digits CNN, seeded Gaussian data for single operators.

Two kinds of models:
* OPS: one quantized operator each (the output is left quantized, so MegEngine's int8 result
  is compared as integers); inputs are float, quantized by a QuantStub (a TypeCvt).
* NETS: whole networks (digits CNN, MobileNetV2-, ResNet-18-, ShuffleNetV2-style at small
  resolution) with float input and float output.

`dump(name, dir, optimize)` caches the .mge in `dir`; `reference_output` runs the dumped
file through MegEngine's graph executor.
"""
from __future__ import annotations

import functools
import os
from typing import Callable, Dict, List, Tuple

import numpy as np

import megengine as mge
import megengine.functional as F
import megengine.module as M
from megengine.jit import trace
from megengine.quantization import (calibration_qconfig, disable_observer, enable_observer,
                                    quantize, quantize_qat)

import mge_zoo

IMAGE = (1, 3, 32, 32)  # the image nets' resolution: small, so tests stay fast


# ------------------------------------------------------------------ calibration data
def sample_images(shape=IMAGE, count=8, seed=0) -> np.ndarray:
    """`count` random crops of sklearn's two sample photographs, resized to `shape`,
    normalised with ImageNet's mean/std: real pixel statistics without a download."""
    import cv2

    photos = _photos()
    rng = np.random.RandomState(seed)
    _, c, h, w = shape
    out = np.empty((count, c, h, w), np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32) * 255
    std = np.array([0.229, 0.224, 0.225], np.float32) * 255
    for i in range(count):
        img = photos[rng.randint(len(photos))]
        size = rng.randint(96, min(img.shape[:2]))
        y, x = rng.randint(img.shape[0] - size), rng.randint(img.shape[1] - size)
        crop = cv2.resize(img[y:y + size, x:x + size], (w, h), interpolation=cv2.INTER_AREA)
        out[i] = ((crop.astype(np.float32) - mean) / std).transpose(2, 0, 1)
    return out


@functools.lru_cache(maxsize=None)
def _photos():
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)


def gaussian(shape, seed, scale=1.0) -> np.ndarray:
    return (np.random.RandomState(seed).standard_normal(shape) * scale).astype(np.float32)


# ------------------------------------------------------------------ quantization flow
def post_training_quantize(net: M.Module, batches: List[Tuple[np.ndarray, ...]]) -> M.Module:
    """MegEngine's calibration flow; returns the quantized module in eval mode."""
    net.eval()
    qat = quantize_qat(net, qconfig=calibration_qconfig)
    qat.eval()
    enable_observer(qat)
    for batch in batches:
        qat(*[mge.tensor(b) for b in batch])
    disable_observer(qat)
    q = quantize(qat)
    q.eval()
    return q


# ------------------------------------------------------------------ single operators
class _ConvOp(M.Module):
    """QuantStub -> one quantized conv (+ BN folded, + fused non-linearity)."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act="identity", bn=True, bias=True):
        super().__init__()
        self.quant = M.QuantStub()
        cls = {("identity", True): M.ConvBn2d, ("relu", True): M.ConvBnRelu2d,
               ("identity", False): M.Conv2d, ("relu", False): M.ConvRelu2d}
        kw = {} if bn else {"bias": bias}
        self.conv = cls[("relu" if act == "relu" else "identity", bn)](
            cin, cout, k, stride, k // 2, groups=groups, **kw)
        # MegEngine has no QAT module for the other ConvBias non-linearities: the
        # quantized conv's forward is called with the mode (set after quantize())
        self.nonlinear_mode = act if act not in ("identity", "relu") else None

    def forward(self, x):
        x = self.quant(x)
        if self.nonlinear_mode and not self.training and hasattr(self.conv, "calc_conv_quantized"):
            return self.conv.calc_conv_quantized(x, nonlinear_mode=self.nonlinear_mode)
        return self.conv(x)


class _ElemwiseOp(M.Module):
    def __init__(self, method, arity):
        super().__init__()
        self.arity = arity
        self.qa = M.QuantStub()
        self.qb = M.QuantStub() if arity == 2 else None  # an idle observer has no range
        self.op = M.Elemwise(method)

    def forward(self, a, b=None):
        if self.arity == 1:
            return self.op(self.qa(a))
        return self.op(self.qa(a), self.qb(b))


class _LinearOp(M.Module):
    def __init__(self, cin, cout, bias=True):
        super().__init__()
        self.quant = M.QuantStub()
        self.fc = M.Linear(cin, cout, bias=bias)

    def forward(self, x):
        return self.fc(self.quant(x))


class _FnOp(M.Module):
    """QuantStub -> a functional op on the quantized tensor (pooling, reshapes, ...)."""

    def __init__(self, fn, dequant=False):
        super().__init__()
        self.quant = M.QuantStub()
        self.dequant = M.DequantStub() if dequant else None
        self.fn = fn

    def forward(self, x):
        y = self.fn(self.quant(x))
        return self.dequant(y) if self.dequant is not None else y


class _ConcatOp(M.Module):
    def __init__(self, axis=1):
        super().__init__()
        self.qa, self.qb = M.QuantStub(), M.QuantStub()
        self.cat = M.Concat()
        self.axis = axis

    def forward(self, a, b):
        return self.cat([self.qa(a), self.qb(b)], self.axis)


class _AsymmOp(M.Module):
    """float -> Quantized8Asymm (uint8 with a zero point), optionally back to float; MegEngine's
    quantization flow does not make asymmetric activations, so the dtype is given directly."""

    def __init__(self, scale, zero_point, back):
        super().__init__()
        self.scale, self.zero_point, self.back = scale, zero_point, back

    def forward(self, x):
        from megengine.core.tensor import dtype as D

        q = x.astype(D.quint8(self.scale, self.zero_point))
        return q.astype("float32") if self.back else q


def _shuffle(x):  # (n, c, h, w) -> channel shuffle as reshape / transpose / reshape
    n, c, h, w = x.shape
    return x.reshape(n, 2, c // 2, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)


# name -> (module builder, input shapes, input scales)
OPS: Dict[str, Tuple[Callable[[], M.Module], List[tuple], List[float]]] = {}


def _op(name, build, shapes, scales=None):
    OPS[name] = (build, shapes, scales or [1.0] * len(shapes))


_X = (2, 8, 12, 12)
# (MegEngine's x86 CPU cannot run a quantized ConvBias with nonlineMode SIGMOID:
# "unsupported nolinemode", so there is no such dump to test)
for _act in ("identity", "relu", "h_swish"):
    _op(f"conv3x3_{_act}", lambda a=_act: _ConvOp(8, 16, 3, act=a), [_X])
_op("conv3x3_s2_relu", lambda: _ConvOp(8, 12, 3, stride=2, act="relu"), [_X])
_op("conv1x1_identity", lambda: _ConvOp(8, 24, 1), [_X])
_op("conv1x1_s2_relu", lambda: _ConvOp(8, 16, 1, stride=2, act="relu"), [_X])
_op("conv5x5_nobn_relu", lambda: _ConvOp(8, 7, 5, act="relu", bn=False), [_X])
_op("conv3x3_nobias", lambda: _ConvOp(8, 16, 3, bn=False, bias=False), [_X])
_op("conv_first_layer_c3", lambda: _ConvOp(3, 16, 3, stride=2, act="relu"), [(1, 3, 17, 17)])
_op("group_conv_relu", lambda: _ConvOp(8, 16, 3, groups=4, act="relu"), [_X])
_op("group_conv_g2_relu", lambda: _ConvOp(16, 16, 3, groups=2, act="relu"), [(2, 16, 10, 10)])
_op("depthwise_relu", lambda: _ConvOp(8, 8, 3, groups=8, act="relu"), [_X])
_op("depthwise_s2_identity", lambda: _ConvOp(8, 8, 3, stride=2, groups=8), [_X])
_op("depthwise_h_swish", lambda: _ConvOp(8, 8, 3, groups=8, act="h_swish"), [_X])
for _m in ("ADD", "FUSE_ADD_RELU", "MUL", "FUSE_ADD_SIGMOID", "FUSE_ADD_H_SWISH"):
    _op(f"elemwise_{_m.lower()}", lambda m=_m: _ElemwiseOp(m, 2), [_X, _X], [1.0, 2.5])
_op("elemwise_add_broadcast", lambda: _ElemwiseOp("ADD", 2), [_X, (1, 8, 1, 1)], [1.0, 0.5])
_op("elemwise_mul_broadcast", lambda: _ElemwiseOp("MUL", 2), [_X, (1, 8, 1, 1)], [1.0, 0.5])
for _m in ("RELU", "H_SWISH", "SIGMOID"):
    _op(f"elemwise_{_m.lower()}", lambda m=_m: _ElemwiseOp(m, 1), [_X], [3.0])
_op("linear", lambda: _LinearOp(40, 10), [(3, 40)])
_op("linear_nobias", lambda: _LinearOp(33, 7, bias=False), [(2, 33)])
_op("maxpool_3x3_s2_p1", lambda: _FnOp(lambda x: F.max_pool2d(x, 3, 2, 1)), [_X])
_op("avgpool_2x2", lambda: _FnOp(lambda x: F.avg_pool2d(x, 2)), [_X])
_op("avgpool_3x3_s2_p1_include_pad",
    lambda: _FnOp(lambda x: F.avg_pool2d(x, 3, 2, 1, mode="average")), [_X])
_op("avgpool_3x3_s1_p1_exclude_pad",
    lambda: _FnOp(lambda x: F.avg_pool2d(x, 3, 1, 1, mode="average_count_exclude_padding")), [_X])
_op("global_avgpool", lambda: _FnOp(lambda x: F.adaptive_avg_pool2d(x, 1)), [_X])
_op("global_maxpool", lambda: _FnOp(lambda x: F.adaptive_max_pool2d(x, 1)), [_X])
_op("concat_requant", lambda: _ConcatOp(), [_X, (2, 5, 12, 12)], [1.0, 3.0])
_op("reshape_flatten", lambda: _FnOp(lambda x: F.flatten(x, 1)), [_X])
_op("dimshuffle", lambda: _FnOp(lambda x: x.transpose(0, 2, 3, 1)), [_X])
_op("channel_shuffle", lambda: _FnOp(_shuffle), [_X])
_op("subtensor", lambda: _FnOp(lambda x: x[:, 2:6, ::2]), [_X])
_op("typecvt_roundtrip", lambda: _FnOp(lambda x: x, dequant=True), [_X], [4.0])
_op("typecvt_quint8", lambda: _AsymmOp(0.0371, 117, False), [_X], [3.0])
_op("typecvt_quint8_roundtrip", lambda: _AsymmOp(0.0529, 3, True), [_X], [3.0])
OP_NAMES = tuple(OPS)


def op_inputs(name: str, seed: int = 0) -> List[np.ndarray]:
    """Test inputs of op `name` (different from its calibration data)."""
    _, shapes, scales = OPS[name]
    return [gaussian(s, seed * 100 + i + 1, sc) for i, (s, sc) in enumerate(zip(shapes, scales))]


def near_ties(scale: float, shape, seed=0) -> np.ndarray:
    """Values at and next to the rounding ties of quantization step `scale`: (k + 1/2) * s in
    float32 and its two float32 neighbours, for every k of the int8 range, in random order."""
    k = np.arange(-131, 131)
    mid = ((k + 0.5) * np.float32(scale)).astype(np.float32)
    vals = np.concatenate([mid, np.nextafter(mid, np.float32(np.inf)),
                           np.nextafter(mid, np.float32(-np.inf))])
    n = int(np.prod(shape))
    return np.random.RandomState(seed).choice(vals, n).astype(np.float32).reshape(shape)


def near_tie_inputs(graph, seed=0) -> Dict[str, np.ndarray]:
    """Inputs of a loaded model (IR graph) at the ties of the QuantizeLinear each feeds."""
    feeds = {}
    for i, name in enumerate(graph.inputs):
        (q,) = [op for op in graph.ops if op.type == "QuantizeLinear" and op.inputs[0] == name]
        feeds[name] = near_ties(float(graph.tensor(q.inputs[1]).data),
                                graph.tensor(name).shape, seed + i)
    return feeds


def build_op(name: str) -> M.Module:
    build, shapes, scales = OPS[name]
    net = mge_zoo.init_weights(build(), seed=sum(map(ord, name)))
    batches = [tuple(gaussian(s, 1000 + 10 * j + i, sc)
                     for i, (s, sc) in enumerate(zip(shapes, scales))) for j in range(4)]
    return post_training_quantize(net, batches)


# ------------------------------------------------------------------ whole networks
def _cbr(cin, cout, k, stride=1, groups=1):
    return M.ConvBnRelu2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)


def _cb(cin, cout, k, stride=1, groups=1):
    return M.ConvBn2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)


class QInvertedResidual(M.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [_cbr(cin, hidden, 1)] if expand != 1 else []
        layers += [_cbr(hidden, hidden, 3, stride, groups=hidden), _cb(hidden, cout, 1)]
        self.conv = M.Sequential(*layers)
        self.add = M.Elemwise("ADD") if stride == 1 and cin == cout else None

    def forward(self, x):
        return self.add(x, self.conv(x)) if self.add is not None else self.conv(x)


class _Head(M.Module):
    """Global average pooling + classifier: int8 (the default), or in float after the
    DequantStub (`float_head`: the classifier kept out of quantization, as deployments that
    keep the last layer in float do; the dequantized feature map is a second output, so the
    int8 body can be compared exactly)."""

    def __init__(self, cin, num_classes, float_head):
        super().__init__()
        self.float_head = float_head
        self.dequant = M.DequantStub()
        self.fc = M.Linear(cin, num_classes)
        if float_head:
            self.fc.disable_quantize()

    def forward(self, x):
        if self.float_head:  # (logits, the int8 body's output map, dequantized)
            features = self.dequant(x)
            return self.fc(F.flatten(F.adaptive_avg_pool2d(features, 1), 1)), features
        return self.dequant(self.fc(F.flatten(F.adaptive_avg_pool2d(x, 1), 1)))


class QMobileNetV2(M.Module):
    """MobileNetV2 at width 0.5 for 32x32 inputs (ReLU, as MegEngine's quantized models)."""
    CFG = [(1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 2), (6, 32, 2, 2), (6, 48, 1, 1)]

    def __init__(self, num_classes=10, float_head=False):
        super().__init__()
        self.quant = M.QuantStub()
        layers, cin = [_cbr(3, 16, 3, 1)], 16
        for t, c, n, s in self.CFG:
            for i in range(n):
                layers.append(QInvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_cbr(cin, 128, 1))
        self.features = M.Sequential(*layers)
        self.head = _Head(128, num_classes, float_head)

    def forward(self, x):
        return self.head(self.features(self.quant(x)))


class QBasicBlock(M.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = _cbr(cin, cout, 3, stride)
        self.conv2 = _cb(cout, cout, 3)
        self.down = _cb(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        self.add_relu = M.Elemwise("FUSE_ADD_RELU")

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        return self.add_relu(self.conv2(self.conv1(x)), identity)


class QResNet18(M.Module):
    """ResNet-18's layout (2-2-2-2 basic blocks) at a quarter of the width, 32x32 inputs."""

    def __init__(self, num_classes=10, float_head=False):
        super().__init__()
        self.quant = M.QuantStub()
        self.stem = _cbr(3, 16, 3, 1)
        blocks, cin = [], 16
        for cout, stride in [(16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1),
                             (128, 2), (128, 1)]:
            blocks.append(QBasicBlock(cin, cout, stride))
            cin = cout
        self.layers = M.Sequential(*blocks)
        self.head = _Head(128, num_classes, float_head)

    def forward(self, x):
        x = F.max_pool2d(self.stem(self.quant(x)), 3, 2, 1)
        return self.head(self.layers(x))


class QShuffleV2Block(M.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        mid = cout // 2
        branch_in = cin if stride == 2 else cin // 2
        self.main = M.Sequential(_cbr(branch_in, mid, 1), _cb(mid, mid, 3, stride, groups=mid),
                                 _cbr(mid, cout - branch_in, 1))
        if stride == 2:
            self.proj = M.Sequential(_cb(cin, cin, 3, stride, groups=cin), _cbr(cin, cin, 1))
        self.cat = M.Concat()

    def forward(self, x):
        if self.stride == 1:
            proj, x = mge_zoo.channel_shuffle(x)  # reshape / transpose / indexing on int8
            return self.cat([proj, self.main(x)], 1)
        return self.cat([self.proj(x), self.main(x)], 1)


class QShuffleNetV2(M.Module):
    def __init__(self, num_classes=10, float_head=False):
        super().__init__()
        self.quant = M.QuantStub()
        self.first = _cbr(3, 16, 3, 1)
        blocks, cin = [], 16
        for repeats, cout in zip([2, 3, 2], [32, 64, 128]):
            for i in range(repeats):
                blocks.append(QShuffleV2Block(cin, cout, 2 if i == 0 else 1))
                cin = cout
        self.features = M.Sequential(*blocks)
        self.last = _cbr(cin, 256, 1)
        self.head = _Head(256, num_classes, float_head)

    def forward(self, x):
        x = F.max_pool2d(self.first(self.quant(x)), 3, 2, 1)
        return self.head(self.last(self.features(x)))


def digits_float() -> M.Module:
    """The trained float digits CNN (samples/digits/make_model.py, seeded)."""
    return mge_zoo.build("digits")


def digits_data():
    """(x_train, y_train, x_test, y_test) of samples/digits (sklearn's real 8x8 digits)."""
    return mge_zoo._digits_module().load_split(0)


def _build_digits():
    """The sample's own int8 flow (samples/digits/make_model.py: quantize_int8)."""
    return mge_zoo._digits_module().quantize_int8(digits_float(), digits_data()[0][:1024])


def _build_image_net(cls, seed, float_head=False):
    def build():
        net = mge_zoo.init_weights(cls(float_head=float_head), seed)
        return post_training_quantize(net, [(sample_images(IMAGE, 16, seed=0),)])
    return build


NETS: Dict[str, Tuple[Callable[[], M.Module], tuple]] = {
    "digits": (_build_digits, (1, 1, 8, 8)),
    "mobilenet_v2": (_build_image_net(QMobileNetV2, 11), IMAGE),
    "resnet18": (_build_image_net(QResNet18, 12), IMAGE),
    "shufflenet_v2": (_build_image_net(QShuffleNetV2, 13), IMAGE),
    # the same networks (same seeds) with the pooling + classifier in float
    "mobilenet_v2_float_head": (_build_image_net(QMobileNetV2, 11, True), IMAGE),
    "resnet18_float_head": (_build_image_net(QResNet18, 12, True), IMAGE),
    "shufflenet_v2_float_head": (_build_image_net(QShuffleNetV2, 13, True), IMAGE),
}
NET_NAMES = tuple(NETS)


def net_input(name: str, seed: int = 100) -> np.ndarray:
    """A test input not used for calibration: a held-out digit or another photo crop."""
    if name == "digits":
        return digits_data()[2][seed % 300][None]
    return sample_images(NETS[name][1], 1, seed=seed)


# ------------------------------------------------------------------ dumping
_built: Dict[str, M.Module] = {}


def build(name: str) -> M.Module:
    """The quantized module `name` (an op or a net), built once per process."""
    if name not in _built:
        _built[name] = build_op(name) if name in OPS else NETS[name][0]()
    return _built[name]


def input_shapes(name: str) -> List[tuple]:
    return OPS[name][1] if name in OPS else [NETS[name][1]]


def input_names(name: str) -> List[str]:
    n = len(input_shapes(name))
    return ["data"] if n == 1 else [f"in{i}" for i in range(n)]


# dump modes: optimize_for_inference, and the extra layout options MegCC's ARM flow uses
DUMP_MODES = {"plain": (False, {}), "optimized": (True, {}),
              "nchw44": (True, {"enable_nchw44": True}),
              "nchw44_dot": (True, {"enable_nchw44_dot": True})}


def dump(name: str, directory: str, mode) -> str:
    """Dump model `name` into `directory` (cached: an existing file is reused). `mode` is a
    DUMP_MODES key, or a bool (optimize_for_inference or not)."""
    if isinstance(mode, bool):
        mode = "optimized" if mode else "plain"
    optimize, options = DUMP_MODES[mode]
    path = os.path.join(directory, f"{name}_{mode}.mge")
    if os.path.exists(path):
        return path
    net = build(name)
    shapes = input_shapes(name)

    @trace(symbolic=True, capture_as_const=True)
    def infer(*args):
        return net(*args)

    infer(*[mge.tensor(np.zeros(s, np.float32)) for s in shapes])
    tmp = path + ".tmp"
    infer.dump(tmp, arg_names=input_names(name), optimize_for_inference=optimize, **options)
    os.replace(tmp, path)  # atomic: a half-written dump is never cached
    return path


def reference_output(path: str, inputs: Dict[str, np.ndarray]) -> List[np.ndarray]:
    return mge_zoo.reference_output(path, inputs)


# ------------------------------------------------------------------ malformed models
def _bad_models():
    """name -> (traced function builder, input count, what the error must mention).
    Written with megengine.functional, since MegEngine's quantization flow never makes them."""
    from megengine.core.tensor import dtype as D
    from megengine.functional.elemwise import _elemwise_multi_type

    def conv_with_bias_scale(factor):
        w = mge.tensor(np.ones((4, 4, 3, 3), np.int8).astype(D.qint8(0.01)))
        b = mge.tensor(np.ones((1, 4, 1, 1), np.int32).astype(
            D.qint32(float(np.float32(0.05) * np.float32(0.01)) * factor)))
        return lambda x: F.quantized.conv_bias_activation(
            x.astype(D.qint8(0.05)), w, b, dtype=D.qint8(0.1), padding=1)

    def multi_type(mode):
        return lambda a, b: _elemwise_multi_type(a.astype(D.qint8(0.05)), b.astype(D.qint8(0.04)),
                                                 mode=mode, dtype=D.qint8(0.1))
    return {
        "negative_scale": (lambda: (lambda x: x.astype(D.qint8(-0.1))), 1,
                           ["scale -0.1", "must be positive"]),
        "zero_scale": (lambda: (lambda x: x.astype(D.qint8(0.0))), 1,
                       ["has scale 0:", "must be positive"]),
        "bias_scale_mismatch": (lambda: conv_with_bias_scale(1.00002), 1,
                                ["ConvBias", "bias scale", "input scale", "weight scale"]),
        "unsupported_mode": (lambda: multi_type("qfuse_add_tanh"), 2,
                             ["ElemwiseMultiType", "QFUSE_ADD_TANH"]),
        "unsupported_dtype": (lambda: (lambda x: x.astype(D.qint4(0.5))), 1, ["QuantizedS4"]),
    }


BAD_MODELS = ("negative_scale", "zero_scale", "bias_scale_mismatch", "unsupported_mode",
              "unsupported_dtype")


def dump_bad(name: str, directory: str) -> Tuple[str, List[str]]:
    """(path of malformed model `name`, substrings its one-line error must contain)."""
    build_fn, arity, mention = _bad_models()[name]
    path = os.path.join(directory, f"bad_{name}.mge")
    if not os.path.exists(path):
        fn = trace(symbolic=True, capture_as_const=True)(build_fn())
        fn(*[mge.tensor(np.zeros((1, 4, 6, 6), np.float32)) for _ in range(arity)])
        fn.dump(path + ".tmp", arg_names=[f"in{i}" for i in range(arity)])
        os.replace(path + ".tmp", path)
    return path, mention
