"""Core float32 kernels against numpy references: convolution, GEMM/MatMul, pooling,
element-wise with broadcasting, fused epilogues and fused element-wise chains."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.host import run_onnx
from reference import assert_close, conv2d, pool2d

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


CONV_CASES = [
    # (N, C, H, W, OC, k, stride, pads(t,l,b,r), dilation, group, bias)
    (1, 3, 7, 7, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    (2, 5, 9, 6, 7, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 1, False),
    (1, 4, 8, 8, 6, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2, True),
    (1, 3, 11, 13, 5, (5, 3), (2, 1), (2, 1, 2, 1), (2, 1), 1, True),
    (1, 6, 10, 10, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, True),  # depthwise
    (2, 4, 9, 9, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 4, False),  # depthwise x2
    (1, 7, 5, 5, 7, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 7, True),  # depthwise 5x5
    (1, 3, 1, 1, 2, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),
    (1, 1, 7, 3, 1, (3, 3), (3, 3), (1, 1, 1, 1), (1, 1), 1, False),
    (1, 6, 6, 6, 9, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 3, True),  # grouped
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"_g{c[9]}")
def test_conv(case):
    n, c, h, w, oc, k, s, p, d, g, with_bias = case
    x, wt = f32(n, c, h, w), f32(oc, c // g, *k)
    consts = {"w": wt}
    if with_bias:
        consts["b"] = f32(oc)
    model = one_node_model("Conv", {"x": x}, ["y"], consts, kernel_shape=list(k), strides=list(s),
                           pads=list(p), dilations=list(d), group=g)
    (y,) = run_onnx(model, {"x": x})
    ref = conv2d(x, wt, consts.get("b"), s, p, d, g)
    assert_close(y, ref, what=str(case))


def test_conv_1d_and_auto_pad():
    x, wt = f32(2, 3, 17), f32(4, 3, 3)
    model = one_node_model("Conv", {"x": x}, ["y"], {"w": wt}, strides=[2], auto_pad="SAME_UPPER")
    (y,) = run_onnx(model, {"x": x})
    ref = conv2d(x[:, :, None, :], wt[:, :, None, :], None, (1, 2), (0, 1, 0, 1))[:, :, 0, :]
    assert_close(y, ref)


@pytest.mark.parametrize("trans_a,trans_b,c_shape,alpha,beta", [
    (0, 0, (5,), 1.0, 1.0), (0, 1, (3, 5), 0.5, 2.0), (1, 0, None, 1.0, 1.0),
    (1, 1, (3, 1), 1.5, -1.0), (0, 1, (), 1.0, 1.0)])
def test_gemm(trans_a, trans_b, c_shape, alpha, beta):
    m, k, n = 3, 7, 5
    a = f32(k, m) if trans_a else f32(m, k)
    b = f32(n, k) if trans_b else f32(k, n)
    consts = {"b": b}
    if c_shape is not None:
        consts["c"] = f32(*c_shape)
    model = one_node_model("Gemm", {"a": a}, ["y"], consts, transA=trans_a, transB=trans_b,
                           alpha=alpha, beta=beta)
    (y,) = run_onnx(model, {"a": a})
    ref = alpha * ((a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b))
    if c_shape is not None:
        ref = ref + beta * consts["c"]
    assert_close(y, ref)


@pytest.mark.parametrize("a_shape,b_shape", [
    ((3, 4), (4, 5)), ((2, 3, 4), (4, 6)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 3)),
    ((2, 3, 4), (4,)), ((1, 9, 17), (3, 17, 33))])
def test_matmul(a_shape, b_shape):
    a, b = f32(*a_shape), f32(*b_shape)
    model = one_node_model("MatMul", {"a": a, "b": b}, ["y"])
    (y,) = run_onnx(model, {"a": a, "b": b})
    assert_close(y, np.matmul(a.astype(np.float64), b))


@pytest.mark.parametrize("mode,k,s,p,ceil,incpad,dil", [
    ("max", (3, 3), (2, 2), (1, 1, 1, 1), 0, 0, (1, 1)),
    ("max", (2, 2), (2, 2), (0, 0, 0, 0), 1, 0, (1, 1)),
    ("max", (3, 2), (1, 2), (0, 1, 1, 0), 0, 0, (2, 1)),
    ("avg", (3, 3), (2, 2), (1, 1, 1, 1), 0, 0, (1, 1)),
    ("avg", (3, 3), (2, 2), (1, 1, 1, 1), 0, 1, (1, 1)),
    ("avg", (2, 2), (2, 2), (0, 0, 0, 0), 1, 0, (1, 1)),
    ("avg", (5, 5), (1, 1), (2, 2, 2, 2), 0, 1, (1, 1))])
def test_pool(mode, k, s, p, ceil, incpad, dil):
    x = f32(2, 3, 9, 8)
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p), ceil_mode=ceil)
    if mode == "max":
        attrs["dilations"] = list(dil)
        model = one_node_model("MaxPool", {"x": x}, ["y"], opset=12, **attrs)
    else:
        model = one_node_model("AveragePool", {"x": x}, ["y"], count_include_pad=incpad, **attrs)
    (y,) = run_onnx(model, {"x": x})
    ref = pool2d(x, k, s, p, mode, bool(incpad), bool(ceil), dil)
    assert_close(y, ref)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op):
    x = f32(2, 5, 7, 3)
    (y,) = run_onnx(one_node_model(op, {"x": x}, ["y"]), {"x": x})
    ref = x.mean((2, 3), keepdims=True) if op == "GlobalAveragePool" else x.max((2, 3), keepdims=True)
    assert_close(y, ref)


BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
          "Max": np.maximum, "Min": np.minimum}


@pytest.mark.parametrize("a_shape,b_shape", [
    ((2, 3, 4), (2, 3, 4)), ((2, 3, 4), ()), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)),
    ((1, 3, 1, 5), (2, 1, 7, 1)), ((5,), (3, 1)), ((1, 1), (1, 1)), ((2, 1, 3), (1, 4, 1))])
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_broadcast(op, a_shape, b_shape):
    a, b = f32(*a_shape), f32(*b_shape)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
    (y,) = run_onnx(one_node_model(op, {"a": a, "b": b}, ["y"]), {"a": a, "b": b})
    assert_close(y, BINARY[op](a.astype(np.float64), b))


UNARY = {"Relu": lambda x: np.maximum(x, 0), "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
         "Tanh": np.tanh, "Exp": np.exp, "Abs": np.abs, "Neg": np.negative,
         "Floor": np.floor, "Ceil": np.ceil, "Sqrt": lambda x: np.sqrt(np.abs(x)),
         "Log": lambda x: np.log(np.abs(x) + 0.1)}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op):
    x = f32(3, 7, 5) * 2
    if op in ("Sqrt",):
        x = np.abs(x)
    if op == "Log":
        x = np.abs(x) + np.float32(0.1)
    (y,) = run_onnx(one_node_model(op, {"x": x}, ["y"]), {"x": x})
    ref = UNARY[op](x.astype(np.float64)) if op not in ("Sqrt", "Log") else \
        (np.sqrt(x.astype(np.float64)) if op == "Sqrt" else np.log(x.astype(np.float64)))
    assert_close(y, ref)


def test_int64_arithmetic_broadcast():
    a = RNG.integers(-50, 50, (3, 4)).astype(np.int64)
    b = RNG.integers(1, 9, (4,)).astype(np.int64)
    for op, fn in (("Add", np.add), ("Mul", np.multiply), ("Sub", np.subtract)):
        (y,) = run_onnx(one_node_model(op, {"a": a, "b": b}, ["y"]), {"a": a, "b": b})
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, fn(a, b))


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
