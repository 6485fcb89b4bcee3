"""Transpose elimination (passes/transposes.py) against onnxruntime: inverse pairs vanish,
transposes move below element-wise ops and channel concats to meet their inverse, and the
graph computes the same thing; where no inverse follows, the transposes stay."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.compiler import build_plan
from megcc_builder.options import CompileOptions
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import run_onnx
from reference import assert_close

RNG = np.random.default_rng(11)
TO44 = [0, 1, 3, 4, 2]    # (N, C/4, 4, H, W) -> (N, C/4, H, W, 4)
FROM44 = [0, 1, 4, 2, 3]  # its inverse


def model(nodes, inputs, consts, outputs):
    graph = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(a, n) for n, a in consts.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def pair():
    """T then its inverse: nothing left."""
    nodes = [helper.make_node("Transpose", ["a"], ["t"], perm=TO44),
             helper.make_node("Transpose", ["t"], ["u"], perm=FROM44),
             helper.make_node("Relu", ["u"], ["y"])]
    return nodes, {"a": f32(1, 2, 4, 3, 5)}, {}, ["y"], 0


def across_elementwise():
    """Add(T(a), T(b)) + a per-channel constant in the transposed layout, ReLU, a scalar
    Mul, then the inverse: all four transposes cancel; T(a) also feeds a second output."""
    c = f32(1, 2, 1, 1, 4)
    nodes = [helper.make_node("Transpose", ["a"], ["ta"], perm=TO44),
             helper.make_node("Transpose", ["b"], ["tb"], perm=TO44),
             helper.make_node("Add", ["ta", "tb"], ["s"]),
             helper.make_node("Add", ["s", "c"], ["sc"]),
             helper.make_node("Relu", ["sc"], ["r"]),
             helper.make_node("Mul", ["r", "half"], ["m"]),
             helper.make_node("Transpose", ["m"], ["y"], perm=FROM44),
             helper.make_node("Sigmoid", ["ta"], ["z"])]
    consts = {"c": c, "half": np.array(0.5, np.float32)}
    # z keeps T(a): one transpose stays
    return nodes, {"a": f32(1, 2, 4, 3, 5), "b": f32(1, 2, 4, 3, 5)}, consts, ["y", "z"], 1


def across_concat():
    nodes = [helper.make_node("Transpose", ["a"], ["ta"], perm=TO44),
             helper.make_node("Transpose", ["b"], ["tb"], perm=TO44),
             helper.make_node("Concat", ["ta", "tb"], ["cat"], axis=1),
             helper.make_node("Transpose", ["cat"], ["y"], perm=FROM44)]
    return nodes, {"a": f32(1, 2, 4, 3, 5), "b": f32(1, 3, 4, 3, 5)}, {}, ["y"], 0


def no_inverse():
    """Different permutations, and a broadcast run-time operand: nothing to cancel."""
    nodes = [helper.make_node("Transpose", ["a"], ["ta"], perm=TO44),
             helper.make_node("Add", ["ta", "row"], ["s"]),
             helper.make_node("Transpose", ["s"], ["y"], perm=[0, 2, 1, 3, 4])]
    return nodes, {"a": f32(1, 2, 4, 3, 5), "row": f32(1, 1, 1, 1, 4)}, {}, ["y"], 2


CASES = {"pair": pair, "across_elementwise": across_elementwise,
         "across_concat": across_concat, "no_inverse": no_inverse}


@pytest.mark.parametrize("case", sorted(CASES))
def test_transposes_cancel_and_results_match(case):
    nodes, inputs, consts, outputs, left = CASES[case]()
    m = model(nodes, inputs, consts, outputs)
    plan = build_plan(load_onnx(m), "t", CompileOptions(isa="generic"))
    assert sum(op.type == "Transpose" for op in plan.graph.ops) == left
    refs = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, inputs)
    for ours, ref, name in zip(run_onnx(m, inputs, isa="native"), refs, outputs):
        assert_close(ours, ref, what=f"{case}/{name}")
