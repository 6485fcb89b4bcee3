"""Every quantized-op case (cases.py) against every int8 implementation that applies to
it, on every platform that runs that implementation; onnxruntime is the oracle and integer
outputs must match it bit for bit."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kernels.harness import check_choice, choice_params
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.isa import spec
from megcc_builder.kernels.quant import winograd_avx2_s8, winograd_f43_avx2_s8
from kernels.quant.cases import BOOK


@pytest.mark.parametrize("impl,platform,case", BOOK.params())
def test_quant(impl, platform, case):
    BOOK.check(impl, platform, case)


@pytest.mark.parametrize("platform,case", choice_params(BOOK))
def test_cost_model_choice(platform, case):
    check_choice(BOOK, platform, case)


def _qconv3x3_model(w: np.ndarray, c: int) -> onnx.ModelProto:
    init = [numpy_helper.from_array(np.array(v, dt), n) for n, v, dt in (
        ("xs", 0.05, np.float32), ("xz", 0, np.uint8), ("ws", 0.001, np.float32),
        ("wz", 0, np.uint8), ("ys", 0.5, np.float32), ("yz", 0, np.uint8))]
    init.append(numpy_helper.from_array(w, "w"))
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"],
                            ["y"], pads=[1, 1, 1, 1])
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 2, 4, 4])],
                          init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("c,chosen", [(900, True), (920, False)])
def test_winograd_only_within_the_exact_bound(c, chosen):
    """The integer Winograd computes 4 * acc in int32: it must refuse weights for which
    255 * sum|w - w_zp| could reach 2^29 (920 channels of 255: 5.38e8 > 2^29 = 5.37e8), and
    take them below it (900: 5.27e8)."""
    w = np.full((2, c, 3, 3), 255, np.uint8)
    graph = load_onnx(_qconv3x3_model(w, c))
    op = next(o for o in graph.ops if o.type == "QLinearConv")
    why = winograd_avx2_s8._applies(op, graph, spec("x86_64-v3"))
    assert (why is None) == chosen, why
    if not chosen:
        assert "int32" in why


@pytest.mark.parametrize("c,chosen", [(114, True), (116, False)])
def test_winograd_f43_only_within_the_recovery_window(c, chosen):
    """F(4x4,3x3) computes 576 * acc modulo 2^32 and recovers acc - centre in [-2^25, 2^25):
    weights of 255 against inputs in [0, 255] give acc in [0, 255 * 255 * 9 * c], a
    half-width of 3.336e7 < 2^25 = 3.355e7 for 114 channels (taken) and 3.394e7 for 116
    (refused: F(2x2,3x3) remains)."""
    w = np.full((2, c, 3, 3), 255, np.uint8)
    graph = load_onnx(_qconv3x3_model(w, c))
    op = next(o for o in graph.ops if o.type == "QLinearConv")
    why = winograd_f43_avx2_s8._applies(op, graph, spec("x86_64-v3"))
    assert (why is None) == chosen, why
    if not chosen:
        assert "2^25" in why
        assert winograd_avx2_s8._applies(op, graph, spec("x86_64-v3")) is None


def test_winograd_f43_transforms_give_576_times_the_correlation():
    """The integer transforms of the kernel (B^T, GS, AS) against numpy's direct 3x3
    correlation of a 6x6 patch at the extremes of the centred ranges."""
    rng = np.random.default_rng(5)
    m = winograd_f43_avx2_s8
    for trial in range(50):
        g = rng.choice([-255, -1, 0, 1, 255], (3, 3)) if trial % 2 else \
            rng.integers(-255, 256, (3, 3))
        d = rng.choice([-255, 0, 255], (6, 6)) if trial % 2 else rng.integers(-255, 256, (6, 6))
        u, v = m.GS @ g @ m.GS.T, m.BT @ d @ m.BT.T
        assert np.abs(u).max() <= 32767 and np.abs(v).max() <= 32767
        y = m.AS.T @ (u * v) @ m.AS
        ref = np.array([[(d[i:i + 3, j:j + 3] * g).sum() for j in range(4)] for i in range(4)])
        assert (y == m.SCALE * ref).all()
