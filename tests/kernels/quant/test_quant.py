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
from megcc_builder.kernels.quant import winograd_avx2_s8
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
