"""float16 ONNX models computed in float32 with conversions only at the edges of float16
regions (passes/float16_regions.py), against onnxruntime running the float16 model.

Converted real models: the onnx package's light models with seeded weights, converted by
onnxconverter-common's float16 tool (pinned in requirements.txt), whole (float16 inputs and
outputs) and with blocked operators (float32 islands inside: region exits and entries in the
middle of the graph). Tolerance |ours - ref| / max(1, |ref|) <= 1e-2: onnxruntime computes
in float16, we in float32 (each of its operations rounds by up to 2^-11). `megcc inspect`
reports the fp16<->fp32 conversions, which the tests count from the model itself.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxconverter_common import float16

from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import compile_and_run
from megcc_builder.options import CompileOptions
from megcc_builder.passes.float16_regions import conversion_count
from test_onnx_real_models import model_path, with_random_weights


TOL = 1e-2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small_model():
    """Conv -> Relu -> MaxPool -> Conv -> Mul -> Add -> GlobalAveragePool, all float16."""
    rng = np.random.default_rng(0)
    h = np.float16
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(h), "w1"),
             numpy_helper.from_array(rng.standard_normal(8).astype(h), "b1"),
             numpy_helper.from_array((rng.standard_normal((8, 8, 1, 1)) * 0.3).astype(h), "w2"),
             numpy_helper.from_array(np.array(0.5, h), "half")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"]),
             helper.make_node("Mul", ["c2", "half"], ["m2"]),
             helper.make_node("Add", ["m2", "p1"], ["a2"]),
             helper.make_node("GlobalAveragePool", ["a2"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT16, (1, 3, 8, 8))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT16, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def expected_conversions(model: onnx.ModelProto) -> int:
    """One per float16 graph input and output; two per Cast to float16 of a float value
    (rounded, then widened); Casts back to float32 cost nothing."""
    f16 = TensorProto.FLOAT16
    init = {i.name for i in model.graph.initializer}
    n = sum(1 for v in list(model.graph.input) + list(model.graph.output)
            if v.type.tensor_type.elem_type == f16 and v.name not in init)
    for node in model.graph.node:
        to = [a.i for a in node.attribute if a.name == "to"]
        if node.op_type == "Cast" and to == [f16] and node.input[0] not in init:
            if node.output[0] not in {o.name for o in model.graph.output}:
                n += 2
    return n


def test_small_model_converts_at_the_edges_only(tmp_path):
    model = _small_model()
    plan = build_plan(load_onnx(model), "m", CompileOptions(isa="generic"))
    g = plan.graph
    assert conversion_count(plan.instrs, g) == 2  # the input and the output
    kinds = [i.kernel.name for i in plan.instrs]
    assert kinds[0] == "cast_float16_to_float32" and kinds[-1] == "cast_float32_to_float16"
    assert any(k.startswith("conv2d_im2col") and k.endswith("_relu") for k in kinds), kinds
    inner = {g.tensors[n].dtype for i in plan.instrs[1:-1] for n in i.inputs + i.outputs
             if n and not g.tensors[n].is_const}
    assert inner == {"float32"}
    # the weights stay float16 in the file (exact), the bias (8 elements) float32
    consts = {g.tensors[n].dtype for i in plan.instrs for n in i.inputs
              if n and g.tensors[n].is_const and len(g.tensors[n].shape) == 4}
    assert consts == {"float16"}
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float16)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    (ref,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    ours = compile_and_run(path, {"x": x}, isa="generic")["y"]
    assert ours.dtype == np.float16
    err = np.max(np.abs(ours.astype(np.float64) - ref) / np.maximum(1, np.abs(ref)))
    assert err <= TOL
    out = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "inspect", path],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "== float16: 2 fp16<->fp32 conversions" in out


def widened(model: onnx.ModelProto) -> onnx.ModelProto:
    """The float16 model with every float16 tensor (inputs, outputs, initializers, constant
    attributes) made float32: onnxruntime computes with the model's own (float16) values in
    float32, the oracle of what we compute, up to the final rounding of the outputs."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    g = m.graph
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT16:
            v.type.tensor_type.elem_type = TensorProto.FLOAT
    for k, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT16:
            g.initializer[k].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(t).astype(np.float32), t.name))
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT16:
                a.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(a.t).astype(np.float32), a.t.name))
            if a.name == "to" and a.i == TensorProto.FLOAT16:
                a.i = TensorProto.FLOAT
    return m


def half_ulp(x: np.ndarray) -> np.ndarray:
    """Half a float16 ulp at |x|: how far rounding an exact result to float16 may move it."""
    return np.spacing(np.abs(x).astype(np.float16)).astype(np.float64) / 2


# shufflenet is not here: with these seeded weights its activations overflow float16's
# range in onnxruntime (the reference is NaN; ours, computing in float32, is finite)
def test_output_read_inside_the_graph_and_attribute_typed_values(tmp_path):
    """A float16 output that later operators also read (they get its float32 value), and a
    float16 value whose dtype an attribute fixes (EyeLike) entering the float32 region."""
    h = np.float16
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array((rng.standard_normal((4, 4)) * 0.5).astype(h), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y1"]),
             helper.make_node("MatMul", ["y1", "w"], ["m2"]),
             helper.make_node("Relu", ["m2"], ["r"]),
             helper.make_node("EyeLike", ["r"], ["eye"], dtype=TensorProto.FLOAT16),
             helper.make_node("Add", ["r", "eye"], ["s"]),
             helper.make_node("Softmax", ["s"], ["y2"])]
    f16 = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT16, None)  # noqa: E731
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT16, (4, 4))], [f16("y1"), f16("y2")], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    x = rng.standard_normal((4, 4)).astype(h)
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    plan = build_plan(load_onnx(model), "m", CompileOptions(isa="generic"))
    assert conversion_count(plan.instrs, plan.graph) <= 3  # x in, y1 and y2 out
    ours = compile_and_run(path, {"x": x}, isa="generic")
    for name, r in zip(("y1", "y2"), ref):
        assert ours[name].dtype == np.float16
        err = np.max(np.abs(ours[name].astype(np.float64) - r) / np.maximum(1, np.abs(r)))
        assert err <= TOL, (name, err)


LIGHT = ["squeezenet", "inception_v1", "inception_v2", "resnet50", "densenet121"]


@pytest.mark.parametrize("blocked", [(), ("MaxPool", "Concat")], ids=["whole", "islands"])
@pytest.mark.parametrize("name", LIGHT)
def test_converted_light_models(tmp_path, name, blocked, summary):
    """Against onnxruntime on the float16 model: same top-1, and |ours - ref| within 1e-2
    of the output's scale (onnxruntime accumulates in float16: densenet121's logits, up to
    135, differ from ours by 0.07 = 7e-2 of max(1, |ref|), and from its own float32 model
    by as much). Against onnxruntime on the same model widened to float32 (whole models):
    equal up to the final float16 rounding of our outputs plus the float32 rule (1e-4), so
    nothing in between is float16."""
    m = with_random_weights(onnx.load(model_path(name)), seed=11)
    m16 = float16.convert_float_to_float16(m, keep_io_types=False,
                                           op_block_list=list(blocked) or None)
    path = str(tmp_path / f"{name}16.onnx")
    onnx.save(m16, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    feeds = {i.name: rng.standard_normal(i.shape).astype(
        np.float16 if i.type == "tensor(float16)" else np.float32) for i in sess.get_inputs()}
    ref = sess.run(None, feeds)
    oracle = None
    if not blocked:
        wide = str(tmp_path / f"{name}32.onnx")
        onnx.save(widened(m16), wide)
        oracle = ort.InferenceSession(wide, providers=["CPUExecutionProvider"]).run(
            None, {k: v.astype(np.float32) for k, v in feeds.items()})
    ours = compile_and_run(path, feeds)
    out = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "inspect", path],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("== float16:"))
    count = int(line.split()[2])
    for k, (o, r) in enumerate(zip(sess.get_outputs(), ref)):
        got = ours[o.name].astype(np.float64)
        assert ours[o.name].dtype == r.dtype
        r = r.astype(np.float64)
        d = np.abs(got - r)
        err = float(np.max(d / np.maximum(1, np.abs(r))))
        scale = max(1.0, float(np.max(np.abs(r))))
        line = (f"float16 {name} [{'+'.join(blocked) or 'whole'} in float32]: vs onnxruntime "
                f"float16: max |d|/max(1,|ref|) {err:.2e}, max |d| / output scale "
                f"{float(np.max(d)) / scale:.2e}")
        if oracle is not None:
            w = oracle[k].astype(np.float64)
            excess = np.abs(got - w) - half_ulp(w) - 1e-4 * np.maximum(1, np.abs(w))
            line += f"; vs float32 on its values: max |d| {float(np.max(np.abs(got - w))):.2e}"
            assert float(np.max(excess)) <= 0, line
        summary(f"{line}; {count} fp16<->fp32 conversions "
                f"({sum(n.op_type == 'Cast' for n in m16.graph.node)} Casts in the model); "
                f"top-1 {int(np.argmax(got))} (onnxruntime {int(np.argmax(r))})")
        assert float(np.max(d)) <= TOL * scale
        assert np.argmax(got) == np.argmax(r)
    assert count == expected_conversions(m16)


# ---------------------------------------------------- on arm64-fp16: computed in float16
# The full lists (every converted light model, all 118 float16 node cases) are in
# benchmarks/fp16_onnx_arm64.py, which prints the table; here a representative subset under
# qemu-aarch64 -cpu max. onnxruntime computes these in float16 too, so the float16 kernels'
# float16 accumulation is compared with another float16 evaluation.
F16_TARGET = "arm64-fp16"


def test_converted_squeezenet_on_arm64_fp16(tmp_path, summary):
    """Whole in float16 on the float16 kernels (0 conversions: its Dropout is data movement
    and does not cut the region), within 1e-2 of onnxruntime's float16 output, same top-1;
    `megcc inspect --isa arm64-fp16` reports the count."""
    from build_support import require_target
    from fp16_onnx_cases import converted_light_model, errors, run_on

    require_target(F16_TARGET)
    m16 = converted_light_model("squeezenet")
    path = str(tmp_path / "sq16.onnx")
    onnx.save(m16, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float16) for i in sess.get_inputs()}
    (ref,) = sess.run(None, feeds)
    ours, count, plan = run_on(m16, feeds, F16_TARGET, F16_TARGET, str(tmp_path))
    (got,) = ours.values()
    rule, scale = errors(got, ref)
    convs = [i.impl for i in plan.instrs if i.impl.startswith("conv.")]
    assert convs and all(i.endswith("neon64fp16_f16") for i in convs), convs
    out = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "inspect", path, "--isa",
                          F16_TARGET], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("== float16:"))
    summary(f"float16 squeezenet on {F16_TARGET} (float16 kernels): vs onnxruntime float16 "
            f"max |d|/max(1,|ref|) {rule:.2e}; {count} conversions; top-1 {int(np.argmax(got))} "
            f"(onnxruntime {int(np.argmax(ref))})")
    assert got.dtype == np.float16
    assert count == 0 and line.startswith("== float16: 0 fp16<->fp32 conversions"), line
    assert rule <= TOL
    assert np.argmax(got) == np.argmax(ref)


# a float16 conformance case per kind: an fp16-kernel conv + SiLU region with conversions
# at the edges, fp16 attention (softmax, matmuls), Range with a shape-setting input, casts
NODE_CASES = ["test_causal_conv_with_state_silu_fp16", "test_attention_4d_fp16",
              "test_range_float16_type_positive_delta", "test_cast_FLOAT_to_FLOAT16",
              "test_celu_float16", "test_mod_float_edge_cases_fmod_0_float16"]


@pytest.mark.parametrize("case", NODE_CASES)
def test_float16_node_case_on_arm64_fp16(case, tmp_path):
    from build_support import require_target
    from fp16_onnx_cases import as_array, errors, float16_node_cases, run_on

    require_target(F16_TARGET)
    (c,) = list(float16_node_cases(f"^{case}$"))
    inputs, outputs = c.data_sets[0]
    names = [v.name for v in c.model.graph.input if v.name]
    ours, count, _ = run_on(c.model, dict(zip(names, map(as_array, inputs))), F16_TARGET,
                            F16_TARGET, str(tmp_path))
    for v, r in zip(c.model.graph.output, outputs):
        r = as_array(r)
        assert ours[v.name].dtype == r.dtype, v.name
        assert errors(ours[v.name].astype(np.float64), r.astype(np.float64))[0] <= TOL, v.name


def test_unfolded_batchnorm_stays_in_float16_on_arm64_fp16(tmp_path):
    """A BatchNormalization after a Concat (DenseNet's pattern: nothing to fold it into)
    runs as a float16 per-channel Mul and Add: the region is not cut (0 conversions, was 2
    per BatchNormalization); against onnxruntime on the float16 model."""
    from build_support import require_target
    from fp16_onnx_cases import errors, run_on

    require_target(F16_TARGET)
    rng = np.random.default_rng(21)
    h = np.float16
    inits = [numpy_helper.from_array((rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(h), "w1"),
             numpy_helper.from_array((rng.uniform(0.5, 1.5, 12)).astype(h), "g"),
             numpy_helper.from_array(rng.standard_normal(12).astype(h), "b"),
             numpy_helper.from_array((rng.standard_normal(12) * 0.2).astype(h), "m"),
             numpy_helper.from_array((rng.uniform(0.5, 2.0, 12)).astype(h), "v"),
             numpy_helper.from_array((rng.standard_normal((6, 12, 1, 1)) * 0.3).astype(h), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["x", "c1"], ["cat"], axis=1),
             helper.make_node("BatchNormalization", ["cat", "g", "b", "m", "v"], ["bn"]),
             helper.make_node("Conv", ["bn", "w2"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT16, (1, 4, 9, 11))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT16, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    x = rng.standard_normal((1, 4, 9, 11)).astype(h)
    (ref,) = ort.InferenceSession(model.SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(None, {"x": x})
    ours, count, plan = run_on(model, {"x": x}, F16_TARGET, F16_TARGET, str(tmp_path))
    assert count == 0
    assert not [i for i in plan.instrs if "batchnorm" in i.kernel.name]
    assert errors(ours["y"], ref)[0] <= TOL
