"""The channels-in-lanes depthwise on a large stride-2 map (transposed in bands of output
rows, depthwise_chblock_simd_f32.band_rows): the kernel the cost model picks at the AVX2
level, against onnxruntime, and bitwise identical on 1, 2 and 3 threads (parts are channel
blocks; the bands never split a sum)."""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.kernels.conv.depthwise_chblock_simd_f32 import band_rows
from megcc_builder.session import InferenceSession
from tool_support import need_tool


def _model(c, h, w):
    rng = np.random.default_rng(14)
    wt = numpy_helper.from_array(rng.standard_normal((c, 1, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=c, strides=[2, 2],
                          pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "dw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [wt, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_large_stride2_map_in_bands_matches_onnxruntime_on_1_2_3_threads():
    need_tool("gcc")
    c, h, w = 48, 120, 160  # 60 x 80 outputs: 6 bands of 10 rows at AVX2
    geo = dict(oh=60, ow=80, sh=2, sw=2, kh=3, kw=3, dh=1, dw=1)
    assert band_rows(geo, 8) < 60
    model = _model(c, h, w)
    sessions = {n: InferenceSession(model, threads=n, isa="x86_64-v3") for n in (1, 2, 3)}
    net = sessions[1].native_network()
    kernels = set(net.model.instruction_kernels(net.plan))
    assert any(k.startswith("conv2d_depthwise_cb8_k3x3_s2x2") for k in kernels), kernels
    x = np.random.default_rng(3).standard_normal((1, c, h, w)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = sessions[1].run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for n in (2, 3):
        assert sessions[n].run(None, {"x": x})[0].tobytes() == got.tobytes()
