"""Train a small CNN on sklearn's 8x8 digits and dump it as a MegEngine model.

    python samples/digits/make_model.py [out_dir]

writes digits.mge (input "data", 1x1x8x8, pixels scaled to [0, 1]; output: 10
logits), digits_int8.mge (the same network quantized to int8 with MegEngine's own
post-training flow: quantize_qat, calibration on 1024 training images, quantize; float
input and output, int8 inside) and digits_test.npz (100 held-out images `x` and labels
`y`) so that an application can check the compiled models on real data.  Training is
seeded and takes a few seconds on a laptop CPU.
"""
from __future__ import annotations

import os
import sys
from typing import Tuple

import numpy as np

import megengine as mge
import megengine.functional as F
import megengine.module as M
from megengine.jit import trace


class DigitsNet(M.Module):
    def __init__(self):
        super().__init__()
        self.c1 = _conv_bn(1, 16)
        self.c2 = _conv_bn(16, 32)
        self.c3 = _conv_bn(32, 32)
        self.fc = M.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        x = F.max_pool2d(x, 2)  # 8x8 -> 4x4
        x = F.hswish(self.c3(x))
        return self.fc(F.flatten(x, 1))


def _conv_bn(cin, cout):
    return M.Sequential(M.Conv2d(cin, cout, 3, 1, 1, bias=False), M.BatchNorm2d(cout))


class QuantizableDigitsNet(M.Module):
    """DigitsNet written with MegEngine's quantizable modules: conv+BN(+ReLU) fused modules,
    an Elemwise for the hard-swish, QuantStub/DequantStub at the float boundary."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = M.QuantStub(), M.DequantStub()
        self.c1 = M.ConvBnRelu2d(1, 16, 3, 1, 1, bias=False)
        self.c2 = M.ConvBnRelu2d(16, 32, 3, 1, 1, bias=False)
        self.c3 = M.ConvBn2d(32, 32, 3, 1, 1, bias=False)
        self.hswish = M.Elemwise("H_SWISH")
        self.fc = M.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = self.c2(self.c1(self.quant(x)))
        x = F.max_pool2d(x, 2)
        x = self.hswish(self.c3(x))
        return self.dequant(self.fc(F.flatten(x, 1)))


def quantizable_copy(net: DigitsNet) -> QuantizableDigitsNet:
    """A QuantizableDigitsNet computing exactly what the trained `net` computes."""
    q = QuantizableDigitsNet()
    for dst, (conv, bn) in ((q.c1, net.c1), (q.c2, net.c2), (q.c3, net.c3)):
        dst.conv.weight._reset(conv.weight)
        for attr in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst.bn, attr)._reset(getattr(bn, attr))
        dst.bn.eps = bn.eps
    q.fc.weight._reset(net.fc.weight)
    q.fc.bias._reset(net.fc.bias)
    q.eval()
    return q


def quantize_int8(net: DigitsNet, x_calib: np.ndarray, batch: int = 128) -> M.Module:
    """MegEngine's post-training quantization: observers record the activation ranges on
    `x_calib`, then every layer becomes its int8 version (qint8 weights and activations,
    qint32 biases). Returns the quantized module in eval mode."""
    from megengine.quantization import (calibration_qconfig, disable_observer,
                                        enable_observer, quantize, quantize_qat)

    qat = quantize_qat(quantizable_copy(net), qconfig=calibration_qconfig)
    qat.eval()
    enable_observer(qat)
    for i in range(0, len(x_calib), batch):
        qat(mge.tensor(x_calib[i:i + batch]))
    disable_observer(qat)
    q = quantize(qat)
    q.eval()
    return q


def load_split(seed: int = 0):
    """(x_train, y_train, x_test, y_test); x is float32 N x 1 x 8 x 8 in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int32)
    order = np.random.RandomState(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test = 300
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def _seeded_init(net: M.Module, seed: int) -> None:
    # He-normal weights from numpy, so the result does not depend on MegEngine's RNG.
    rng = np.random.RandomState(seed)
    for mod in net.modules():
        if isinstance(mod, (M.Conv2d, M.Linear)):
            w = mod.weight
            fan_in = int(np.prod(w.shape[1:]))
            w._reset(mge.tensor(rng.normal(0, np.sqrt(2.0 / fan_in), w.shape).astype(np.float32)))


def train(epochs: int = 3, seed: int = 0) -> Tuple[M.Module, float]:
    """Adam, batch 64; returns (model in eval mode, accuracy on the 300 test images)."""
    from megengine.autodiff import GradManager
    import megengine.optimizer as optim

    mge.random.seed(seed)
    x_tr, y_tr, x_te, y_te = load_split(seed)
    net = DigitsNet()
    _seeded_init(net, seed)
    gm = GradManager().attach(net.parameters())
    opt = optim.Adam(net.parameters(), lr=0.01)

    @trace(symbolic=True)  # a traced step is several times faster than eager
    def step(x, y):
        with gm:
            loss = F.loss.cross_entropy(net(x), y)
            gm.backward(loss)
        opt.step().clear_grad()
        return loss

    rng = np.random.RandomState(seed)
    batch = 64
    net.train()
    for _ in range(epochs):
        order = rng.permutation(len(x_tr))
        for i in range(0, len(order) - batch + 1, batch):  # fixed batch: one trace
            idx = order[i:i + batch]
            step(mge.tensor(x_tr[idx]), mge.tensor(y_tr[idx]))
    net.eval()
    pred = net(mge.tensor(x_te)).numpy().argmax(1)
    return net, float((pred == y_te).mean())


def dump(net: M.Module, path: str, optimize_for_inference: bool = False) -> None:
    @trace(symbolic=True, capture_as_const=True)
    def infer(data):
        return net(data)

    infer(mge.tensor(np.zeros((1, 1, 8, 8), np.float32)))
    infer.dump(path, arg_names=["data"], optimize_for_inference=optimize_for_inference)


def main(out_dir: str) -> None:
    net, acc = train()
    print(f"test accuracy: {acc:.3f}")
    dump(net, os.path.join(out_dir, "digits.mge"))
    x_tr, _, x_te, y_te = load_split()
    qnet = quantize_int8(net, x_tr[:1024])
    pred = qnet(mge.tensor(x_te)).numpy().argmax(1)
    print(f"int8 test accuracy: {float((pred == y_te).mean()):.3f}")
    dump(qnet, os.path.join(out_dir, "digits_int8.mge"))
    np.savez_compressed(os.path.join(out_dir, "digits_test.npz"), x=x_te[:100], y=y_te[:100])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
