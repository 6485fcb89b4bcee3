"""MegEngine's vision and up-sampling oprs in .mge graphs, end to end: F.vision.interpolate
(ResizeForward, and WarpPerspective for align_corners=True), F.vision.warp_perspective with
every border mode, and conv_transpose2d (ConvolutionBackwardData, dense and grouped),
compiled by us and run in C, against MegEngine running the same dumped file.
Tolerance |ours - ref| / max(1, |ref|) <= 1e-4, dumped plain and optimized for inference."""
import os

import numpy as np
import pytest

import mge_zoo
from megcc_builder.host import compile_and_run
from reference import assert_close

megengine = pytest.importorskip("megengine") if not os.environ.get("CI") else __import__("megengine")
import megengine.functional as F  # noqa: E402
import megengine.module as M  # noqa: E402
from megengine.jit import trace  # noqa: E402


def _seeded(module, seed):
    rng = np.random.RandomState(seed)
    for p in module.parameters():
        p._reset(megengine.tensor(rng.uniform(-0.5, 0.5, p.shape).astype(np.float32)))
    return module


class Upsampling(M.Module):
    """What an FPN or a segmentation head does."""

    def __init__(self):
        super().__init__()
        self.up = M.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
        self.grouped = M.ConvTranspose2d(4, 8, (3, 2), stride=(2, 1), padding=(1, 0), groups=2)
        self.nobias = M.ConvTranspose2d(4, 3, 4, stride=3, padding=0, bias=False, dilation=1)

    def forward(self, data):
        return (F.vision.interpolate(data, scale_factor=2, mode="bilinear", align_corners=False),
                F.vision.interpolate(data, size=(7, 11), mode="bilinear", align_corners=False),
                F.vision.interpolate(data, size=(13, 4), mode="nearest"),
                F.vision.interpolate(data, size=(11, 13), mode="bilinear", align_corners=True),
                F.relu(self.up(data)), self.grouped(data), self.nobias(data))


class Warps(M.Module):
    def __init__(self, mats, size, bmode, border_val):
        super().__init__()
        self.mats, self.size, self.bmode, self.border_val = mats, size, bmode, border_val

    def forward(self, data):
        return F.vision.warp_perspective(data, megengine.tensor(self.mats), self.size,
                                         border_mode=self.bmode, border_val=self.border_val)


def _dump(net, shape, path, optimize):
    net.eval()

    @trace(symbolic=True, capture_as_const=True)
    def infer(data):
        return net(data)

    infer(megengine.tensor(np.zeros(shape, np.float32)))
    infer.dump(path, arg_names=["data"], optimize_for_inference=optimize)
    return path


def _compare(path, shape, seed=0):
    x = np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)
    refs = mge_zoo.reference_output(path, {"data": x})
    ours = compile_and_run(path, {"data": x})
    assert len(ours) == len(refs)
    for (name, got), ref in zip(ours.items(), refs):
        assert_close(got, ref, what=f"{os.path.basename(path)}/{name}")


@pytest.mark.parametrize("optimize", [False, True])
def test_interpolate_and_conv_transpose(tmp_path, optimize):
    net = _seeded(Upsampling(), 5)
    shape = (2, 4, 5, 6)
    _compare(_dump(net, shape, str(tmp_path / "up.mge"), optimize), shape)


@pytest.mark.parametrize("bmode", ["replicate", "reflect", "reflect_101", "wrap", "constant"])
def test_warp_perspective_border_modes(tmp_path, bmode):
    rng = np.random.RandomState(11)
    mats = []
    for _ in range(2):  # a rotation + scale + shift with some perspective, reaching outside
        a, s = rng.uniform(-0.6, 0.6), rng.uniform(0.7, 1.6)
        mats.append([[s * np.cos(a), -s * np.sin(a), rng.uniform(-4, 6)],
                     [s * np.sin(a), s * np.cos(a), rng.uniform(-4, 6)],
                     [rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01), 1.0]])
    net = Warps(np.array(mats, np.float32), (9, 14), bmode, 0.25)
    shape = (2, 3, 11, 8)
    _compare(_dump(net, shape, str(tmp_path / f"warp_{bmode}.mge"), False), shape, seed=3)
