"""Gather of one constant index with nothing varying before the axis selects a contiguous
block of its input: a view at an offset, no copy (ShuffleNetV2's channel shuffle splits the
transposed tensor with Gather 0 and Gather 1).

Each case runs against onnxruntime and asserts whether the gather kernel was elided, so the
view can neither silently stop applying nor apply where a copy is needed (graph inputs and
outputs, several indices, a batch before the axis)."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import run_onnx
from megcc_builder.options import CompileOptions
from reference import assert_close

RNG = np.random.default_rng(1414)


def conv(name, src, oc, ic, consts, k=1):
    consts[f"{name}_w"] = RNG.standard_normal((oc, ic, k, k)).astype(np.float32)
    return helper.make_node("Conv", [src, f"{name}_w"], [name], pads=[k // 2] * 4)


def const(consts, name, value, dtype=np.int64):
    consts[name] = np.asarray(value, dtype)
    return name


def shuffle(consts, index=(0, 1), scalar=True, batch=1):
    """conv -> channel shuffle (Reshape, Transpose, Reshape) -> Gather both halves ->
    a conv on one, Concat with the other (x: (batch, 8, 3, 5))."""
    shape = const(consts, "s1", [batch * 4, 2, 15])
    back = const(consts, "s2", [2, batch, 4, 3, 5])
    i0 = const(consts, "i0", index[0] if scalar else [index[0]])
    i1 = const(consts, "i1", index[1] if scalar else [index[1]])
    nodes = [conv("a", "x", 8, 8, consts), helper.make_node("Reshape", ["a", shape], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0, 2]),
             helper.make_node("Reshape", ["t", back], ["u"]),
             helper.make_node("Gather", ["u", i0], ["g0"], axis=0),
             helper.make_node("Gather", ["u", i1], ["g1"], axis=0)]
    if not scalar:  # (1, batch, 4, 3, 5) -> (batch, 4, 3, 5)
        sq = const(consts, "sq", [batch, 4, 3, 5])
        nodes += [helper.make_node("Reshape", ["g0", sq], ["g0s"]),
                  helper.make_node("Reshape", ["g1", sq], ["g1s"])]
        g0, g1 = "g0s", "g1s"
    else:
        g0, g1 = "g0", "g1"
    nodes += [conv("b", g1, 4, 4, consts, k=3), helper.make_node("Sigmoid", [g0], ["s"]),
              helper.make_node("Concat", ["s", "b"], ["y"], axis=1)]
    return nodes, ["y"]


def from_input(consts):
    i = const(consts, "i", 1)
    return [helper.make_node("Gather", ["x", i], ["g"], axis=0),
            helper.make_node("Relu", ["g"], ["y"])], ["y"]


def of_output(consts):
    i = const(consts, "i", 0)
    return [conv("a", "x", 8, 8, consts), helper.make_node("Gather", ["a", i], ["g"], axis=1),
            helper.make_node("Relu", ["g"], ["y"])], ["y", "a"]


def several(consts):
    i = const(consts, "i", [1, 0])
    return [conv("a", "x", 8, 8, consts), helper.make_node("Gather", ["a", i], ["g"], axis=1),
            helper.make_node("Relu", ["g"], ["y"])], ["y"]


def channel(consts):
    """Batch 1, axis 1: one channel plane."""
    i = const(consts, "i", -3)
    return [conv("a", "x", 8, 8, consts), helper.make_node("Gather", ["a", i], ["g"], axis=1),
            helper.make_node("Relu", ["g"], ["y"])], ["y"]


# (builder, input shape, whether every gather kernel is elided)
CASES = {
    "shuffle": (shuffle, (1, 8, 3, 5), True),
    "shuffle_negative": (lambda c: shuffle(c, (-2, -1)), (1, 8, 3, 5), True),
    "shuffle_index_vector": (lambda c: shuffle(c, (1, 0), scalar=False), (1, 8, 3, 5), True),
    "shuffle_batch_2": (lambda c: shuffle(c, batch=2), (2, 8, 3, 5), True),
    "channel": (channel, (1, 8, 3, 5), True),
    "channel_batch_2": (channel, (2, 8, 3, 5), False),
    "graph_input": (from_input, (2, 8, 3, 5), False),
    "graph_output": (of_output, (1, 8, 3, 5), False),
    "several_indices": (several, (1, 8, 3, 5), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("isa", ["generic", "native"])
def test_gather_matches_onnxruntime(case, isa):
    build, shape, elided = CASES[case]
    consts = {}
    nodes, outputs = build(consts)
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(a, n) for n, a in consts.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    x = RNG.standard_normal(shape).astype(np.float32)
    kernels = [i.kernel.name for i in build_plan(load_onnx(m), "t", CompileOptions(isa=isa)).instrs]
    assert any(k.startswith("gather") for k in kernels) != elided, kernels
    refs = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for ours, ref, name in zip(run_onnx(m, {"x": x}, isa=isa), refs, outputs):
        assert_close(ours, ref, what=f"{case}/{name}")
