"""com.microsoft.DynamicQuantizeMatMul: onnxruntime's optimiser makes it of quantize_dynamic's
DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul (-> Add) chain, and a model saved
after that optimisation contains it. We expand it into DynamicQuantizeLinear +
MatMulIntegerToFloat (passes/dynamic_quant.py); onnxruntime's kernel computes the same
two steps, so the float outputs are compared bit for bit with onnxruntime running the
saved model (one thread)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import compile_and_run

F32 = np.float32


def _float_model(kind: str, rng) -> tuple:
    """A two-layer float model: MatMul + bias + Relu + MatMul on a batched 3-D input, or
    Gemm (transB, bias) + Relu + MatMul on a 2-D one; odd sizes."""
    w = (rng.standard_normal((19, 11)) * 0.3).astype(F32)
    b = rng.standard_normal(11).astype(F32)
    w2 = (rng.standard_normal((11, 6)) * 0.3).astype(F32)
    if kind == "matmul":
        nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
                 helper.make_node("Add", ["h", "b"], ["h2"]),
                 helper.make_node("Relu", ["h2"], ["h3"]),
                 helper.make_node("MatMul", ["h3", "W2"], ["y"])]
        inits, shape = [("W", w), ("b", b), ("W2", w2)], [3, 5, 19]
    else:
        nodes = [helper.make_node("Gemm", ["x", "Wt", "b"], ["h"], transB=1),
                 helper.make_node("Relu", ["h"], ["h3"]),
                 helper.make_node("MatMul", ["h3", "W2"], ["y"])]
        inits, shape = [("Wt", w.T.copy()), ("b", b), ("W2", w2)], [4, 19]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, n) for n, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                             ir_version=8), shape


def _fused_model(tmp_path, kind: str, per_channel: bool, weight_type) -> tuple:
    """quantize_dynamic's model after onnxruntime's optimisation (saved), and the input
    shape."""
    model, shape = _float_model(kind, np.random.default_rng(0))
    fp, dq, fused = (str(tmp_path / n) for n in ("f.onnx", "dq.onnx", "fused.onnx"))
    onnx.save(model, fp)
    quantize_dynamic(fp, dq, per_channel=per_channel, weight_type=weight_type)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = fused
    ort.InferenceSession(dq, so, providers=["CPUExecutionProvider"])
    return fused, shape


def _ort(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]


@pytest.mark.parametrize("kind", ["matmul", "gemm"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("weight_type", [QuantType.QInt8, QuantType.QUInt8],
                         ids=["s8", "u8"])
def test_dynamic_quantize_matmul_bit_exact(kind, per_channel, weight_type, tmp_path, summary):
    path, shape = _fused_model(tmp_path, kind, per_channel, weight_type)
    nodes = onnx.load(path).graph.node
    assert [n.op_type for n in nodes].count("DynamicQuantizeMatMul") == 2, \
        [n.op_type for n in nodes]
    plan = build_plan(load_onnx(path, {"x": tuple(shape)}), "m")
    kinds = [i.kernel.name for i in plan.instrs]
    assert not any(op.type == "DynamicQuantizeMatMul" for op in plan.graph.ops)
    assert any("matmul_integer_to_float" in i.kernel.name for i in plan.instrs), kinds
    rng = np.random.default_rng(1)
    worst, differ = 0.0, 0
    for trial in range(3):
        x = (rng.standard_normal(shape) * 2).astype(F32)
        if trial == 2:
            x = np.abs(x)  # A's range widened to include 0 from one side
        ref = _ort(path, x)
        ours = list(compile_and_run(path, {"x": x}).values())[0]
        assert ours.shape == ref.shape
        worst = max(worst, float(np.abs(ours - ref).max()))
        differ += int(np.sum(ours != ref))
    summary(f"DynamicQuantizeMatMul {kind} {'per-channel' if per_channel else 'per-tensor'} "
            f"{weight_type.name}: max |ours - onnxruntime| {worst:g}, {differ} elements differ")
    assert differ == 0 and worst == 0.0


@pytest.mark.parametrize("isa", ["generic", "x86_64-v3"])
def test_dynamic_quantize_matmul_every_x86_level(isa, tmp_path):
    """A zero point in B, no bias, at the portable and the AVX2 level: the float epilogue is
    the same float operations there (no contraction into fused multiply-adds)."""
    rng = np.random.default_rng(4)
    b = rng.integers(0, 256, (23, 9)).astype(np.uint8)
    inits = [numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array(0.013, F32), "bs"),
             numpy_helper.from_array(np.array(131, np.uint8), "bz")]
    node = helper.make_node("DynamicQuantizeMatMul", ["x", "B", "bs", "bz"], ["y"],
                            domain="com.microsoft", name="dqmm")
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 23])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 9])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)],
                          ir_version=8)
    path = str(tmp_path / "m.onnx")
    onnx.save(m, path)
    x = (rng.standard_normal((2, 3, 23)) * 5 - 1).astype(F32)
    ours = list(compile_and_run(path, {"x": x}, isa=isa).values())[0]
    np.testing.assert_array_equal(ours, _ort(path, x))
