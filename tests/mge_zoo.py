"""Deterministic MegEngine models for testing the .mge frontend.

Every model is built from scratch with seeded numpy weights (MegEngine's own
initialisers are not used, so a model does not depend on the global RNG state),
BatchNorm running statistics are set to non-trivial seeded values so that BN
folding in optimized dumps is really exercised, and `dump_model` writes the
traced graph exactly the way a user would (`trace(symbolic=True,
capture_as_const=True)` + `dump`).  `reference_output` runs the *dumped file*
through MegEngine's own graph executor, never the Python module.

Models: mobilenet_v1, mobilenet_v2, resnet18, shufflenet_v2 (x0.5),
digits (a small CNN trained on sklearn's 8x8 digits) and opzoo (a grab bag of
oprs the classic CNNs do not contain).
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Tuple

import numpy as np

import megengine as mge
import megengine.functional as F
import megengine.module as M
from megengine.jit import trace

DEFAULT_SHAPES = {
    "mobilenet_v1": (1, 3, 224, 224),
    "mobilenet_v2": (1, 3, 224, 224),
    "resnet18": (1, 3, 224, 224),
    "shufflenet_v2": (1, 3, 224, 224),
    "digits": (1, 1, 8, 8),
    "opzoo": (2, 8, 12, 12),
}


# ---------------------------------------------------------------- weights
def init_weights(module: M.Module, seed: int) -> M.Module:
    """Overwrite every parameter and BN statistic with seeded values.

    Conv/Linear weights use He-normal so activations stay O(1) through deep
    nets; BN gets mean/var/gamma/beta away from (0, 1, 1, 0), otherwise the BN
    fold would be an identity and prove nothing.
    """
    rng = np.random.RandomState(seed)
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        shape = p.shape
        if name.endswith("bias"):
            value = rng.normal(0.0, 0.1, size=shape)
        elif len(shape) >= 2 and not _is_bn_param(module, name):
            fan_in = int(np.prod(shape[1:])) if len(shape) < 5 else int(np.prod(shape[2:]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        else:  # BN gamma
            value = rng.uniform(0.5, 1.5, size=shape)
        p._reset(mge.tensor(value.astype(np.float32)))
    for mod in module.modules():
        if isinstance(mod, M.BatchNorm2d):
            c = mod.running_mean.shape
            mod.running_mean._reset(mge.tensor(rng.normal(0.0, 0.2, size=c).astype(np.float32)))
            mod.running_var._reset(mge.tensor(rng.uniform(0.5, 2.0, size=c).astype(np.float32)))
    module.eval()
    return module


def _is_bn_param(root: M.Module, name: str) -> bool:
    owner = root
    for part in name.split(".")[:-1]:
        owner = getattr(owner, part) if not part.isdigit() else owner[int(part)]
    return isinstance(owner, M.BatchNorm2d)


def conv_bn(cin, cout, k, stride=1, groups=1, act=True, act_fn=F.relu):
    layers = [M.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              M.BatchNorm2d(cout)]
    if act:
        layers.append(_Act(act_fn))
    return M.Sequential(*layers)


class _Act(M.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# ---------------------------------------------------------------- MobileNetV1
class MobileNetV1(M.Module):
    CFG = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        layers = [conv_bn(3, 32, 3, 2)]
        cin = 32
        for cout, s in self.CFG:
            layers.append(conv_bn(cin, cin, 3, s, groups=cin))  # depthwise
            layers.append(conv_bn(cin, cout, 1))  # pointwise
            cin = cout
        self.features = M.Sequential(*layers)
        self.fc = M.Linear(1024, num_classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(x.mean(axis=(2, 3)))  # global pool written as reductions


# ---------------------------------------------------------------- MobileNetV2
class InvertedResidual(M.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1, act_fn=F.relu6))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act_fn=F.relu6),
                   conv_bn(hidden, cout, 1, act=False)]
        self.conv = M.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(M.Module):
    CFG = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        layers = [conv_bn(3, 32, 3, 2, act_fn=F.relu6)]
        cin = 32
        for t, c, n, s in self.CFG:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 1280, 1, act_fn=F.relu6))
        self.features = M.Sequential(*layers)
        self.classifier = M.Linear(1280, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.classifier(F.flatten(x, 1))


# ---------------------------------------------------------------- ResNet-18
class BasicBlock(M.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, act=False)
        self.down = conv_bn(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        return F.relu(self.conv2(self.conv1(x)) + identity)


class ResNet18(M.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = conv_bn(3, 64, 7, 2)
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (64, 1), (128, 2), (128, 1),
                             (256, 2), (256, 1), (512, 2), (512, 1)]:
            blocks.append(BasicBlock(cin, cout, stride))
            cin = cout
        self.layers = M.Sequential(*blocks)
        self.fc = M.Linear(512, num_classes)

    def forward(self, x):
        x = F.max_pool2d(self.stem(x), 3, 2, 1)
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.fc(F.flatten(x, 1))


# ---------------------------------------------------------------- ShuffleNetV2
def channel_shuffle(x):
    """The MegEngine reference model's shuffle: reshape/transpose, then index."""
    n, c, h, w = x.shape
    x = x.reshape(n * c // 2, 2, h * w)
    x = x.transpose(1, 0, 2)
    x = x.reshape(2, -1, c // 2, h, w)
    return x[0], x[1]


class ShuffleV2Block(M.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        mid = cout // 2
        branch_in = cin if stride == 2 else cin // 2
        out_main = cout - branch_in
        self.main = M.Sequential(
            conv_bn(branch_in, mid, 1), conv_bn(mid, mid, 3, stride, groups=mid, act=False),
            conv_bn(mid, out_main, 1))
        if stride == 2:
            self.proj = M.Sequential(
                conv_bn(cin, cin, 3, stride, groups=cin, act=False), conv_bn(cin, cin, 1))

    def forward(self, x):
        if self.stride == 1:
            proj, x = channel_shuffle(x)
            return F.concat([proj, self.main(x)], 1)
        return F.concat([self.proj(x), self.main(x)], 1)


class ShuffleNetV2(M.Module):
    """ShuffleNetV2 x0.5."""

    def __init__(self, num_classes=1000):
        super().__init__()
        channels = [24, 48, 96, 192, 1024]
        self.first = M.Sequential(conv_bn(3, 24, 3, 2))
        blocks, cin = [], 24
        for repeats, cout in zip([4, 8, 4], channels[1:4]):
            for i in range(repeats):
                blocks.append(ShuffleV2Block(cin, cout, 2 if i == 0 else 1))
                cin = cout
        self.features = M.Sequential(*blocks)
        self.last = conv_bn(cin, channels[4], 1)
        self.fc = M.Linear(channels[4], num_classes, bias=False)

    def forward(self, x):
        x = F.max_pool2d(self.first(x), 3, 2, 1)
        x = self.last(self.features(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.reshape(-1, 1024))


# ---------------------------------------------------------------- digits CNN
def _digits_module():
    """samples/digits/make_model.py: the trainer users see is the one we test."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "samples", "digits", "make_model.py")
    spec = importlib.util.spec_from_file_location("digits_make_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


digits_accuracy = None  # test accuracy of the last trained digits model


def train_digits() -> M.Module:
    """The digits CNN trained from scratch (seeded), in eval mode."""
    global digits_accuracy
    net, digits_accuracy = _digits_module().train()
    return net


# ---------------------------------------------------------------- opzoo
class OpZoo(M.Module):
    """Oprs the classic CNNs do not produce: elementwise zoo, reductions,
    broadcasting, slicing with steps, batched matmul, one-hot indexing, type
    conversion, padded pooling in both average modes, non-global adaptive pooling."""

    def __init__(self):
        super().__init__()
        self.conv = M.Conv2d(8, 8, 3, 1, 1, groups=2)
        self.bn = M.BatchNorm2d(8)
        self.fc = M.Linear(8, 6)

    def forward(self, x):
        n, c, h, w = x.shape
        x = self.bn(self.conv(x))
        a = F.sigmoid(x) * F.tanh(x) + F.exp(-F.abs(x)) - F.log(F.abs(x) + 1.0)
        a = F.maximum(a, x * 0.3) / (F.minimum(a, 2.0) + 3.0)
        a = a + F.hswish(x) + F.leaky_relu(x, 0.1) + F.relu6(x * 4) + F.hsigmoid(x)
        a = a + F.floor_div(x * 4, 3.0) + F.pow(F.abs(x) + 0.5, 1.5) + F.clip(x, -0.5, 0.5)
        a = a + F.silu(x) + F.gelu(x) + F.sqrt(F.abs(x)) + F.square(x)
        a = a + (x * 3) % 1.3 + F.round(x * 3) + F.ceil(x) + F.sin(x) * F.cos(x)
        a = a + F.nn.pad(a, ((0, 0), (0, 0), (1, 2), (0, 3)), constant_value=0.5)[:, :, 2:-1, 1:-2]
        a = a - F.nn.pad(a, ((0, 0), (0, 0), (2, 1), (1, 1)), mode="reflect")[:, :, 1:-2, :-2]
        a = a + F.nn.pad(a, ((0, 0), (0, 0), (0, 1), (2, 0)), mode="edge")[:, :, 1:, 1:-1]
        lo, hi = F.split(a, 2, axis=1)
        a = F.concat([hi, lo], axis=1) * 0.5 + a
        p1 = F.avg_pool2d(a, 3, 2, 1, mode="average")  # counts padding
        p2 = F.avg_pool2d(a, 3, 2, 1, mode="average_count_exclude_padding")
        p3 = F.adaptive_max_pool2d(a, (3, 2))
        p4 = F.adaptive_avg_pool2d(a, (4, 3))
        p5 = F.adaptive_avg_pool2d(a, (5, 7))  # sizes that do not divide 12
        y = (p1 - p2) * 2.0 + p1  # (n, c, 6, 6)
        y = y[:, ::2, 1:5, :]  # strided slice: (n, c/2, 4, 6)
        y = F.transpose(y, (0, 2, 1, 3)).reshape(n, 4, -1)  # (n, 4, c/2*6)
        m = F.matmul(y, F.transpose(y, (0, 2, 1)))  # batched: (n, 4, 4)
        s = F.sum(m, axis=2) + F.mean(m, axis=1) + F.max(m, axis=2, keepdims=False)  # (n, 4)
        s = s + F.min(p3.reshape(n, c, 6), axis=2)[:, :4] + F.prod(F.sigmoid(p4), axis=(2, 3))[:, 4:]
        feat = F.mean(a, axis=(2, 3)) + p5.max(axis=3).sum(axis=2)  # (n, c)
        # s is O(1e3): scaled so the softmax below sees well-conditioned logits (at 6e3 one
        # float32 ulp is 5e-4, and the order of summation alone moves probabilities by 2e-4)
        logits = self.fc(feat) + F.expand_dims(s.sum(axis=1), 1) * 1e-3  # (n, 6)
        gathered = F.indexing_one_hot(logits, mge.tensor(np.arange(n, dtype=np.int32) % 6), 1)
        logits = logits - F.broadcast_to(F.expand_dims(gathered, 1), (n, 6)) * 0.5
        probs = F.softmax(logits, axis=1)
        which = (probs > 0.1).astype("float16").astype("float32") + probs  # exact in fp16
        # where / isnan / logical ops lower to SWITCH_GT0, EQ, NOT, AND, OR + TypeCvt
        inside = (logits > -1.0) & (logits < 1.0) | F.isnan(logits) | (logits == 0.5)
        logits = F.where(inside, logits * 2, logits - 1) + (logits != 0.25).astype("float32")
        return F.concat([which, logits], axis=1)


# ---------------------------------------------------------------- registry
BUILDERS: Dict[str, Callable[[], M.Module]] = {
    "mobilenet_v1": lambda: init_weights(MobileNetV1(), 1),
    "mobilenet_v2": lambda: init_weights(MobileNetV2(), 2),
    "resnet18": lambda: init_weights(ResNet18(), 3),
    "shufflenet_v2": lambda: init_weights(ShuffleNetV2(), 4),
    "digits": train_digits,
    "opzoo": lambda: init_weights(OpZoo(), 5),
}
MODELS = tuple(BUILDERS)

_built: Dict[str, M.Module] = {}


def build(name: str) -> M.Module:
    """The model `name` in eval mode; built once per process (digits trains)."""
    if name not in _built:
        _built[name] = BUILDERS[name]()
    return _built[name]


def dump_model(name: str, path: str, optimize_for_inference: bool,
               input_shape: Tuple[int, ...] = None, fuse_conv_bias: bool = True,
               nchw44: bool = False) -> str:
    """Trace `name` and dump it to `path` (skipped if `path` exists: a cache).

    With optimize_for_inference, `fuse_conv_bias` also asks MegEngine to fuse
    conv + bias + nonlinearity into ConvBias, as deployment dumps usually do, and `nchw44`
    to lay convolutions and pooling out in MegEngine's NCHW44 format (MegCC's ARM flow).
    """
    if os.path.exists(path):
        return path
    net = build(name)
    shape = tuple(input_shape or DEFAULT_SHAPES[name])

    @trace(symbolic=True, capture_as_const=True)
    def infer(data):
        return net(data)

    infer(mge.tensor(np.zeros(shape, np.float32)))
    kwargs = {}
    if optimize_for_inference and fuse_conv_bias:
        kwargs["enable_fuse_conv_bias_nonlinearity"] = True
    if optimize_for_inference and nchw44:
        kwargs["enable_nchw44"] = True
    tmp = path + ".tmp"
    infer.dump(tmp, arg_names=["data"], optimize_for_inference=optimize_for_inference, **kwargs)
    os.replace(tmp, path)  # atomic: a half-written dump is never cached
    return path


def reference_output(path: str, inputs: Dict[str, np.ndarray]) -> List[np.ndarray]:
    """MegEngine's own outputs of the dumped file, in the file's output order."""
    from megengine.utils.comp_graph_tools import GraphInference

    result = GraphInference(path).run(inp_dict=inputs)
    return [np.asarray(v) for v in result.values()]
