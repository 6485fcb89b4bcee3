"""The direct 1x1 convolution for few output channels (kernels/conv/pointwise_fewoc_simd_f32)
with run-time extents: a model with (N, C, H, W) dim_params is compiled once into a dynamic
plan, the kernel computes it (its positions are run-time params, no shape guard), and the
one session runs several batches and map sizes, against onnxruntime."""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.session import InferenceSession
from tool_support import need_tool


def _model():
    rng = np.random.default_rng(16)
    w = (rng.standard_normal((13, 40, 1, 1)) / np.sqrt(40)).astype(np.float32)
    b = rng.standard_normal(13).astype(np.float32)
    w2 = (rng.standard_normal((13, 40, 1, 1)) / np.sqrt(40)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Conv", ["x", "w2"], ["r"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["c", "r"], ["s"]),  # a fused residual
             helper.make_node("Clip", ["s", "lo", "hi"], ["y"])]
    graph = helper.make_graph(
        nodes, "fewoc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 40, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
         numpy_helper.from_array(w2, "w2"),
         numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(1.0), "hi")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_compiled_once_runs_every_size():
    """At the host's level (x86_64-v3 or an AVX-512 level: blocks of 6 or 8 channels)."""
    need_tool("gcc")
    model = _model()
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with InferenceSession(model) as sess:
        net = sess.native_network()
        assert net.model.dynamic[net.plan]
        kernels = net.model.instruction_kernels(net.plan)
        assert any(k.startswith("conv2d_1x1_fewoc_c40_oc13") and "_residual" in k
                   for k in kernels), kernels
        rng = np.random.default_rng(3)
        # whole steps, single vectors, scalar tails, several tiles, batches of 1 to 3
        for shape in ((1, 40, 9, 13), (3, 40, 20, 21), (2, 40, 1, 3), (1, 40, 32, 40)):
            x = rng.standard_normal(shape).astype(np.float32)
            [got] = sess.run(None, {"x": x})
            [want] = ref.run(None, {"x": x})
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_bitwise_identical_on_one_two_and_three_threads():
    """Parts take ranges of position tiles, each computed as on one thread: 32 x 40 =
    1280 positions in tiles of 96 (C = 40), a ragged last tile of 32."""
    need_tool("gcc")
    model = _model()
    x = np.random.default_rng(5).standard_normal((2, 40, 32, 40)).astype(np.float32)
    outs = []
    for threads in (1, 2, 3):
        with InferenceSession(model, threads=threads) as sess:
            kernels = sess.native_network().model.instruction_kernels(0)
            assert any(k.startswith("conv2d_1x1_fewoc") for k in kernels), kernels
            outs.append(sess.run(None, {"x": x})[0].tobytes())
    assert outs[1] == outs[0] and outs[2] == outs[0]
