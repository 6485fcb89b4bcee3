"""More MegEngine oprs in .mge graphs, end to end against MegEngine running the same file:
LayerNormForward (epsilon and axes recovered by probing MegEngine, affine or not),
Argmax/Argmin, TopK (largest and smallest), IndexingMultiAxisVec (one axis, and F.gather's
full-coordinate form with its MultipleDeviceTensorHolder constants), Cumsum and WarpAffine
(NHWC and NCHW, every border mode). Tolerance |ours - ref| / max(1, |ref|) <= 1e-4;
integer outputs exact."""
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

RNG = np.random.RandomState(21)
GATHER_INDEX = RNG.randint(0, 4, (2, 3, 5, 6)).astype(np.int32)
AFFINE = np.array([[[1.1, 0.2, -1.5], [-0.1, 0.9, 2.0]],
                   [[0.8, -0.3, 3.0], [0.25, 1.2, -2.5]]], np.float32)


class LN(M.Module):
    def __init__(self):
        super().__init__()
        self.ln = M.LayerNorm(6)
        self.ln2 = M.LayerNorm((5, 6), eps=1e-3)
        rng = np.random.RandomState(3)
        for p in self.parameters():
            p._reset(megengine.tensor(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))

    def forward(self, x):
        return (self.ln(x), self.ln2(x),
                F.nn.layer_norm(x, (6,), affine=False, eps=1e-6))


CASES = {
    "layer_norm": LN(),
    "arg": lambda x: (F.argmax(x, axis=1), F.argmin(x, axis=3)),
    "topk": lambda x: (*F.topk(x.reshape(2, -1), 5), *F.topk(x.reshape(2, -1), 4, descending=False)),
    "index_one_axis": lambda x: (x[:, [0, 2, 3]], x[:, :, [4, 0]]),
    "gather": lambda x: F.gather(x, 1, megengine.tensor(GATHER_INDEX)),
    "cumsum": lambda x: (F.cumsum(x, axis=2), F.cumsum(x, axis=0)),
    "warp_affine_nhwc": lambda x: tuple(
        F.vision.warp_affine(x, megengine.tensor(AFFINE), (7, 9), border_mode=b, border_val=0.5)
        for b in ("replicate", "reflect", "reflect_101", "wrap", "constant")),
    "warp_affine_nchw": lambda x: F.vision.warp_affine(x, megengine.tensor(AFFINE), (6, 8),
                                                       format="NCHW"),
}


def _dump(fn, shape, path):
    if isinstance(fn, M.Module):
        fn.eval()

    @trace(symbolic=True, capture_as_const=True)
    def infer(data):
        return fn(data)

    infer(megengine.tensor(np.zeros(shape, np.float32)))
    infer.dump(path, arg_names=["data"])
    return path


@pytest.mark.parametrize("name", CASES)
def test_matches_megengine(tmp_path, name):
    shape = (2, 4, 5, 6)
    path = _dump(CASES[name], shape, str(tmp_path / f"{name}.mge"))
    x = np.random.RandomState(7).uniform(-1, 1, shape).astype(np.float32)
    refs = mge_zoo.reference_output(path, {"data": x})
    ours = compile_and_run(path, {"data": x})
    assert len(ours) == len(refs)
    for (out, got), ref in zip(ours.items(), refs):
        if np.asarray(ref).dtype.kind in "iu":
            np.testing.assert_array_equal(got, ref, err_msg=f"{name}/{out}")
        else:
            assert_close(got, ref, what=f"{name}/{out}")
