"""Concatenation without a copy: when a Concat's inputs lie back to back in its output
(N=1, channel axis), the ops computing them write straight into the output buffer.

Each case runs against onnxruntime and asserts whether the copy kernel was elided, so the
optimisation can neither silently stop applying nor apply where it would be wrong (graph
inputs/outputs, a tensor given twice, blocks that are not contiguous, a part that is itself
produced in place by an element-wise op, nested concatenations as in DenseNet).
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.compiler import build_plan
from megcc_builder.options import CompileOptions
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import run_onnx
from reference import assert_close

RNG = np.random.default_rng(77)


def conv(name, src, oc, ic, consts, k=1):
    consts[f"{name}_w"] = RNG.standard_normal((oc, ic, k, k)).astype(np.float32)
    return helper.make_node("Conv", [src, f"{name}_w"], [name], pads=[k // 2] * 4)


def model(nodes, x_shape, consts, outputs):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(a, n) for n, a in consts.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8  # what the pinned onnxruntime reads
    return m


def fire(consts):
    """SqueezeNet's fire module: two convolutions of one input, concatenated."""
    return [conv("a", "x", 6, 4, consts), conv("b", "x", 5, 4, consts, k=3),
            helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
            conv("y", "c", 3, 11, consts)], ["y"]


def in_place_part(consts):
    """A part computed by an element-wise op that may reuse its input's buffer."""
    return [conv("a", "x", 6, 4, consts), helper.make_node("Sigmoid", ["a"], ["s"]),
            conv("b", "x", 6, 4, consts), helper.make_node("Neg", ["b"], ["n"]),
            helper.make_node("Concat", ["s", "n"], ["c"], axis=1),
            helper.make_node("Relu", ["c"], ["y"])], ["y"]


def nested(consts):
    """DenseNet: each block's output is concatenated onto the growing feature map, and a
    part is read again after the concatenations."""
    return [conv("a", "x", 4, 4, consts), conv("b", "a", 4, 4, consts, k=3),
            helper.make_node("Concat", ["a", "b"], ["c1"], axis=1),
            conv("d", "c1", 4, 8, consts),
            helper.make_node("Concat", ["c1", "d"], ["c2"], axis=1),
            conv("e", "c2", 4, 12, consts), helper.make_node("Add", ["e", "a"], ["y"])], ["y"]


def graph_input_part(consts):
    return [conv("a", "x", 4, 4, consts),
            helper.make_node("Concat", ["x", "a"], ["c"], axis=1),
            helper.make_node("Relu", ["c"], ["y"])], ["y"]


def repeated_part(consts):
    return [conv("a", "x", 4, 4, consts),
            helper.make_node("Concat", ["a", "a"], ["c"], axis=1),
            helper.make_node("Relu", ["c"], ["y"])], ["y"]


def output_part(consts):
    return [conv("a", "x", 4, 4, consts), conv("b", "x", 4, 4, consts),
            helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
            helper.make_node("Relu", ["c"], ["y"])], ["y", "a"]


def spatial_axis(consts):
    """Concatenating rows: each channel's blocks interleave, so the copy must stay."""
    return [conv("a", "x", 4, 4, consts), conv("b", "x", 4, 4, consts),
            helper.make_node("Concat", ["a", "b"], ["c"], axis=2),
            helper.make_node("Relu", ["c"], ["y"])], ["y"]


# (builder, input shape, whether the concatenation copy kernel is elided)
CASES = {
    "fire": (fire, (1, 4, 5, 7), True),
    "in_place_part": (in_place_part, (1, 4, 3, 5), True),
    "nested": (nested, (1, 4, 6, 6), True),
    "graph_input_part": (graph_input_part, (1, 4, 3, 3), False),
    "repeated_part": (repeated_part, (1, 4, 3, 3), False),
    "output_part": (output_part, (1, 4, 3, 3), False),
    "spatial_axis": (spatial_axis, (1, 4, 3, 3), False),
    "batch_2": (fire, (2, 4, 5, 7), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("isa", ["generic", "native"])
def test_concat_matches_onnxruntime(case, isa):
    build, shape, elided = CASES[case]
    consts = {}
    nodes, outputs = build(consts)
    m = model(nodes, shape, consts, outputs)
    x = RNG.standard_normal(shape).astype(np.float32)
    kernels = [i.kernel.name for i in build_plan(load_onnx(m), "t", CompileOptions(isa=isa)).instrs]
    assert any(k.startswith("concat") for k in kernels) != elided, kernels
    refs = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for ours, ref, name in zip(run_onnx(m, {"x": x}, isa=isa), refs, outputs):
        assert_close(ours, ref, what=f"{case}/{name}")
