"""Make the MobileNetV1 that the classify sample runs, as a MegEngine model file.

    python make_model.py OUT.mge [--width 1.0] [--size 224] [--seed 1]

MobileNetV1 (Howard et al. 2017: a 3x3 stem, 13 depthwise-separable blocks, global average
pool, a 1000-way classifier) with a width multiplier: --width 0.25 keeps every layer but
with a quarter of the channels (0.47 M parameters instead of 4.2 M), small enough for a
microcontroller board's 4 MB of flash. The weights are seeded random (He-normal, BatchNorm
statistics away from the identity so the BN folding is exercised): no download, the same
file on every machine. Only the input size used for tracing is --size; the compiled input
shape is chosen by `megcc compile --input-shapes`.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import megengine as mge
import megengine.functional as F
import megengine.module as M
from megengine.jit import trace

BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
          (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def conv_bn_relu(cin, cout, k, stride=1, groups=1):
    return M.Sequential(M.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                        M.BatchNorm2d(cout), M.ReLU())


class MobileNetV1(M.Module):
    def __init__(self, width: float = 1.0, num_classes: int = 1000):
        super().__init__()
        c = lambda n: max(8, int(n * width))  # noqa: E731 — channels after the multiplier
        layers = [conv_bn_relu(3, c(32), 3, 2)]
        cin = c(32)
        for cout, stride in BLOCKS:
            layers.append(conv_bn_relu(cin, cin, 3, stride, groups=cin))  # depthwise
            layers.append(conv_bn_relu(cin, c(cout), 1))                   # pointwise
            cin = c(cout)
        self.features = M.Sequential(*layers)
        self.fc = M.Linear(cin, num_classes)
        self.channels = cin

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.fc(F.flatten(x, 1))


def seeded(net: M.Module, seed: int) -> M.Module:
    rng = np.random.RandomState(seed)
    for name, p in sorted(net.named_parameters(), key=lambda kv: kv[0]):
        shape = p.shape
        if name.endswith("bias"):
            v = rng.normal(0.0, 0.1, shape)
        elif len(shape) >= 4 or name.endswith("fc.weight"):
            fan_in = int(np.prod(shape[1:])) if len(shape) < 5 else int(np.prod(shape[2:]))
            v = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        else:  # BatchNorm gamma
            v = rng.uniform(0.5, 1.5, shape)
        p._reset(mge.tensor(v.astype(np.float32)))
    for mod in net.modules():
        if isinstance(mod, M.BatchNorm2d):
            n = mod.running_mean.shape
            mod.running_mean._reset(mge.tensor(rng.normal(0, 0.2, n).astype(np.float32)))
            mod.running_var._reset(mge.tensor(rng.uniform(0.5, 2.0, n).astype(np.float32)))
    net.eval()
    return net


def dump(path: str, width: float = 1.0, size: int = 224, seed: int = 1) -> None:
    net = seeded(MobileNetV1(width), seed)

    @trace(symbolic=True, capture_as_const=True)
    def infer(data):
        return net(data)

    infer(mge.tensor(np.zeros((1, 3, size, size), np.float32)))
    tmp = path + ".tmp"
    infer.dump(tmp, arg_names=["data"], optimize_for_inference=False)
    os.replace(tmp, path)  # atomic: a build never sees half a model


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    dump(a.out, a.width, a.size, a.seed)
