"""Fused epilogues and fused element-wise chains against numpy references (the per-operator
kernel cases are in tests/kernels/<family>/cases.py)."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.host import run_onnx
from reference import assert_close, conv2d

RNG = np.random.default_rng(1234)


def one_node_model(op_type, inputs, outputs, consts=None, opset=13, **attrs):
    """inputs: {name: array} fed at run time; consts: {name: array} initializers."""
    consts = consts or {}
    node = helper.make_node(op_type, list(inputs) + list(consts), list(outputs), **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in inputs.items()]
    outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs]
    inits = [numpy_helper.from_array(a, n) for n, a in consts.items()]
    graph = helper.make_graph([node], "t", vi, outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_fused_conv_bias_bn_activation_chain():
    """Conv -> BN -> Clip(0,6) is folded into one kernel; Sigmoid*x after it fuses into one
    element-wise loop; the result still matches numpy."""
    x, wt, b = f32(1, 3, 10, 10), f32(8, 3, 3, 3), f32(8)
    gamma, beta = RNG.random(8).astype(np.float32) + 0.5, f32(8)
    mean, var = f32(8) * 0.1, RNG.random(8).astype(np.float32) + 0.5
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"]),
             helper.make_node("Clip", ["bn", "lo", "hi"], ["r"]),
             helper.make_node("Sigmoid", ["r"], ["s"]),
             helper.make_node("Mul", ["r", "s"], ["y0"]),
             helper.make_node("Add", ["y0", "one"], ["y1"]),
             helper.make_node("Tanh", ["y1"], ["y"])]
    consts = {"w": wt, "b": b, "g": gamma, "be": beta, "m": mean, "v": var,
              "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
              "one": np.array([1.0], np.float32)}
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (y,) = run_onnx(model, {"x": x})
    c = conv2d(x, wt, b, pads=(1, 1, 1, 1))
    bn = (c - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + 1e-5) \
        * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    r = np.clip(bn, 0, 6)
    ref = np.tanh(r * (1 / (1 + np.exp(-r))) + 1)
    assert_close(y, ref)

    from megcc_builder.compiler import build_plan
    from megcc_builder.frontend.onnx import load_onnx

    plan = build_plan(load_onnx(model), "t")
    names = [i.kernel.name for i in plan.instrs]
    assert len(names) == 2, names
    assert names[0].startswith("conv2d_im2col_k3x3") and names[0].endswith("_bias_clip_c0p0_c6p0")
    assert names[1].startswith("ew_")


def test_batchnorm_after_gemm_is_folded():
    x, w, c = f32(3, 6), f32(4, 6), f32(4)
    gamma, beta = RNG.random(4).astype(np.float32) + 0.5, f32(4)
    mean, var = f32(4), RNG.random(4).astype(np.float32) + 0.5
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["g"], transB=1),
             helper.make_node("BatchNormalization", ["g", "ga", "be", "m", "v"], ["y"],
                              epsilon=1e-3)]
    consts = {"w": w, "c": c, "ga": gamma, "be": beta, "m": mean, "v": var}
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (y,) = run_onnx(model, {"x": x})
    g = x.astype(np.float64) @ w.T + c
    assert_close(y, (g - mean) / np.sqrt(var + 1e-3) * gamma + beta)

    from megcc_builder.compiler import build_plan
    from megcc_builder.frontend.onnx import load_onnx

    plan = build_plan(load_onnx(model), "t")
    assert [i.kernel.name for i in plan.instrs] == ["gemm_nt_f32_c"]
