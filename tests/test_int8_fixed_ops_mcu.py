"""The fixed-point forms of QLinearAdd, QLinearMul and the average pools
(enable_fixed_point_requant) compiled into one model and run on the host and on the
Cortex-M targets (qemu): each op's output must equal the exact integer arithmetic of the
kernel cases' numpy references (tests/kernels/quant/cases.py), and every op must have taken
its `_q31` kernel (no float requantization left on the core)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from build_support import require_target
from kernels.quant.cases import _fixed_binary_ref, _fixed_pool_ref
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import run_compiled

SCALES = dict(sa=0.031, sb=0.017, sc=0.045, sm=0.2, sm2=0.05, sp=0.02, sg=0.01)
ZPS = dict(za=3, zb=-7, zc=11, zm=-4, zm2=0, zp=5, zg=-9)
SHAPE = (1, 6, 9, 11)


def _model(path: str) -> None:
    init = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in SCALES.items()]
    init += [numpy_helper.from_array(np.array(v, np.int8), k) for k, v in ZPS.items()]
    ms = "com.microsoft"
    nodes = [
        helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"],
                         domain=ms),
        helper.make_node("QLinearMul", ["c", "sc", "zc", "m", "sm", "zm", "sm2", "zm2"],
                         ["d"], domain=ms),
        helper.make_node("QLinearAveragePool", ["d", "sm2", "zm2", "sp", "zp"], ["e"],
                         domain=ms, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("QLinearGlobalAveragePool", ["e", "sp", "zp", "sg", "zg"], ["f"],
                         domain=ms, channels_last=0)]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("a", TensorProto.INT8, SHAPE),
                                       vi("b", TensorProto.INT8, (1, 6, 1, 1)),
                                       vi("m", TensorProto.INT8, (SHAPE[-1],))],
                          [vi(n, TensorProto.INT8, None) for n in "cdef"], init)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                             helper.make_opsetid(ms, 1)]), path)


def _reference(a, b, m):
    s = {k: np.float32(v) for k, v in SCALES.items()}
    z = {k: np.int8(v) for k, v in ZPS.items()}
    c = _fixed_binary_ref("QLinearAdd", "int8")(a, s["sa"], z["za"], b, s["sb"], z["zb"],
                                                 s["sc"], z["zc"])[0]
    d = _fixed_binary_ref("QLinearMul", "int8")(c, s["sc"], z["zc"], m, s["sm"], z["zm"],
                                                 s["sm2"], z["zm2"])[0]
    e = _fixed_pool_ref("int8", (3, 3), (2, 2), (1, 1, 1, 1))(d, s["sm2"], z["zm2"], s["sp"],
                                                              z["zp"])[0]
    f = _fixed_pool_ref("int8", glob=True)(e, s["sp"], z["zp"], s["sg"], z["zg"])[0]
    return [c, d, e, f]


@pytest.mark.parametrize("target,isa", [(None, "generic"), ("cortex-m4", "cortex-m-dsp"),
                                        ("cortex-m55", "cortex-m-mve")])
def test_fixed_elementwise_and_pools(tmp_path, target, isa):
    if target:
        require_target(target)
    path = str(tmp_path / "m.onnx")
    _model(path)
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, SHAPE).astype(np.int8)
    b = rng.integers(-128, 128, (1, 6, 1, 1)).astype(np.int8)
    m = rng.integers(-128, 128, (SHAPE[-1],)).astype(np.int8)
    a.flat[:2], b.flat[:2] = [-128, 127], [127, -128]
    spec = ModelSpec("m", path, [{"a": SHAPE, "b": b.shape, "m": m.shape}], True, isa,
                     enable_fixed_point_requant=True)
    bundle = compile_bundle([spec], str(tmp_path / "out"), save_c_array=False, isa=isa)
    kernels = [i.kernel.name for i in bundle.models[0].plans[0].instrs]
    assert len(kernels) == 4 and all("_q31" in k for k in kernels), kernels
    outs = run_compiled(bundle.files["kernels_c"], bundle.files["m.tiny"], [a, b, m],
                        target=target)
    for name, got, want in zip("cdef", outs, _reference(a, b, m)):
        np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=name)
