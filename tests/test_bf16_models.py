"""bfloat16 ONNX models computed in float32 with conversions only at the edges
(passes/float16_regions.py treats bfloat16 like float16), against onnxruntime running the
same model widened to float32 (the bfloat16 weights and inputs as float32 values, an
explicit Cast to bfloat16 as a rounding through ml_dtypes), then rounded to bfloat16: equal
within one bfloat16 ulp (our float32 result and onnxruntime's may straddle a rounding
boundary)."""
import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import compile_and_run
from megcc_builder.options import CompileOptions

BF16 = ml_dtypes.bfloat16


def _model(elem, inits, cast_to):
    """Conv -> Relu -> Cast(to bfloat16: a rounding inside) -> Flatten -> MatMul ->
    Softmax, with a bfloat16 output read by a later operator."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Cast", ["r1"], ["q1"], to=cast_to),
             helper.make_node("Flatten", ["q1"], ["f1"]),
             helper.make_node("MatMul", ["f1", "w2"], ["y1"]),
             helper.make_node("Softmax", ["y1"], ["y2"])]
    vi = lambda n, s: helper.make_tensor_value_info(n, elem, s)  # noqa: E731
    g = helper.make_graph(nodes, "g", [vi("x", (2, 3, 4, 4))], [vi("y1", None), vi("y2", None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_bfloat16_model_computes_in_float32_between_edge_conversions(tmp_path):
    rng = np.random.default_rng(5)
    inits = {"w1": (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(BF16),
             "b1": rng.standard_normal(4).astype(BF16),
             "w2": (rng.standard_normal((64, 5)) * 0.2).astype(BF16)}
    model = _model(TensorProto.BFLOAT16, inits, TensorProto.BFLOAT16)
    x = rng.standard_normal((2, 3, 4, 4)).astype(BF16)

    plan = build_plan(load_onnx(model), "m", CompileOptions(isa="generic"))
    casts = [i for i in plan.instrs if i.kernel.name.startswith("cast_")]
    names = sorted(i.kernel.name for i in casts)
    # x in; the Cast inside rounds (to bfloat16 and back); y1 and y2 out
    assert names == sorted(["cast_bfloat16_to_float32"] * 2 + ["cast_float32_to_bfloat16"] * 3)
    g = plan.graph
    computing = [i for i in plan.instrs if i not in casts]
    assert {g.tensors[n].dtype for i in computing for n in i.inputs + i.outputs
            if n and not g.tensors[n].is_const} == {"float32"}

    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    ours = compile_and_run(path, {"x": x}, isa="generic")

    # oracle: onnxruntime in float32 on the same values, in two halves with the inner Cast's
    # rounding to bfloat16 between them
    f32 = {k: v.astype(np.float32) for k, v in inits.items()}
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None)  # noqa: E731
    head = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"])], "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 3, 4, 4))], [vi("r1")],
        [numpy_helper.from_array(f32[k], k) for k in ("w1", "b1")])
    tail = helper.make_graph(
        [helper.make_node("Flatten", ["q1"], ["f1"]),
         helper.make_node("MatMul", ["f1", "w2"], ["y1"]),
         helper.make_node("Softmax", ["y1"], ["y2"])], "tail",
        [helper.make_tensor_value_info("q1", TensorProto.FLOAT, (2, 4, 4, 4))],
        [vi("y1"), vi("y2")], [numpy_helper.from_array(f32["w2"], "w2")])

    def run(graph, feeds):
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        return ort.InferenceSession(m.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, feeds)

    (r1,) = run(head, {"x": x.astype(np.float32)})
    refs = run(tail, {"q1": r1.astype(BF16).astype(np.float32)})
    for name, ref in zip(("y1", "y2"), refs):
        got = ours[name]
        assert got.dtype == BF16, got.dtype
        want = ref.astype(BF16)
        ulp = np.abs(want.astype(np.float32)) * 2.0 ** -7  # bfloat16's spacing, at most
        assert np.all(np.abs(got.astype(np.float32) - want.astype(np.float32)) <= ulp), name
