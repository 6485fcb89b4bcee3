"""An NHWC model input transposed to NCHW for its first convolution: the transpose is folded
into the conv (passes/transposes.py fold_nhwc_input_into_conv), which reads NHWC in its
im2col copy. Checked against onnxruntime on the portable level, AVX2 and arm64 (qemu), for
the im2col shapes, a 1x1 (portable im2col), groups, a depthwise first conv, a batch of 2,
padding larger than the output needs, and with a PReLU epilogue (a face CNN's stem)."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from build_support import require_target
from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import run_onnx
from megcc_builder.isa import host_level, spec
from megcc_builder.options import CompileOptions

# (N, H, W, C, OC, k, stride, pads, group, prelu)
CASES = {
    "k3s2_prelu": (1, 23, 19, 3, 16, 3, 2, (1, 1, 1, 1), 1, True),
    "k3s1_batch2": (2, 9, 11, 3, 13, 3, 1, (1, 1, 1, 1), 1, False),
    "k5s2_asym": (1, 17, 16, 4, 8, 5, 2, (2, 1, 0, 2), 1, True),
    "k1": (1, 7, 9, 5, 6, 1, 1, (0, 0, 0, 0), 1, False),
    "grouped": (1, 8, 10, 6, 9, 3, 1, (1, 1, 1, 1), 3, True),
    "depthwise": (1, 10, 9, 4, 4, 3, 2, (1, 1, 1, 1), 4, False),
}


def _model(n, h, w, c, oc, k, s, pads, g, prelu, seed):
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(
        (rng.standard_normal((oc, c // g, k, k)) / np.sqrt(c // g * k * k)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(oc).astype(np.float32), "b")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xt", "w", "b"], ["c"], kernel_shape=[k, k],
                              strides=[s, s], pads=list(pads), group=g)]
    if prelu:
        inits.append(numpy_helper.from_array(
            rng.uniform(-0.3, 0.4, (oc, 1, 1)).astype(np.float32), "slope"))
        nodes.append(helper.make_node("PRelu", ["c", "slope"], ["p"]))
    nodes.append(helper.make_node("Relu", ["p" if prelu else "c"], ["y"]))
    graph = helper.make_graph(nodes, "nhwc",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, h, w, c])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, rng.standard_normal((n, h, w, c)).astype(np.float32)


PLATFORMS = [("generic", None), ("x86_64-v3", None), ("arm64-neon", "arm64")]


@pytest.mark.parametrize("level,target", PLATFORMS, ids=[p[0] for p in PLATFORMS])
@pytest.mark.parametrize("case", sorted(CASES))
def test_nhwc_conv_matches_onnxruntime(case, level, target):
    if target:
        require_target(target)
    elif not spec(level).features <= spec(host_level()).features:
        pytest.skip(f"host cannot run {level}")
    model, x = _model(*CASES[case], seed=len(case))
    plan = build_plan(load_onnx(model), "m", CompileOptions(isa=level))
    names = [i.kernel.name for i in plan.instrs]
    assert not any("transpose" in n for n in names), names  # folded into the conv
    assert any("_nhwc" in n for n in names), names
    ours = run_onnx(model, {"x": x}, isa=level, target=target)[0]
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_other_consumers_keep_the_transpose():
    """The transposed tensor is also a model output: the conv still reads NHWC, the
    Transpose stays for the output."""
    model, x = _model(*CASES["k3s1_batch2"], seed=5)
    model.graph.output.append(helper.make_tensor_value_info("xt", TensorProto.FLOAT, None))
    ours = run_onnx(model, {"x": x}, isa="generic")
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(ours[1], ref[1])
