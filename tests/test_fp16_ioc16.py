"""enable_ioc16 on Armv8.2-A + FP16 (level arm64-fp16, run under qemu-aarch64 -cpu max): a
float32 model computed in float16 (passes/ioc16.py, the `*_neon64fp16_f16` kernels).
The kernels themselves are checked against NumPy float16 arithmetic case by case in
tests/kernels/ (platform arm64fp16); here:

- MegEngine MobileNetV1/V2, ResNet-18 and ShuffleNetV2 (tests/mge_zoo.py, seeded weights,
  64x64 inputs to keep qemu short) run wholly in float16: one conversion in, one out, every
  convolution, pooling and FC layer on a float16 kernel; against MegEngine's float32
  output: the same top-1, and max|ours - ref| / max|ref| <= 3e-2 (measured 4.6e-3 to
  2.0e-2: float16 activations and accumulation; weight rounding alone gave up to 1.9e-2,
  docs/float16.md);
- the digits sample classifies the real held-out images exactly as MegEngine's float32
  model does;
- the inner loops of the float16 conv (1x1 packed GEMM, direct 3x3), depthwise and FC
  kernels are 8-lane fp16 FMAs (`fmla vN.8h`, by lane or by vector), shown in the report;
- a chain of FC layers is one region (two conversions); the error vs the float32 build;
- mgb-to-tinynn --arm64 --enable_ioc16 builds for arm64-fp16;
- asking for ioc16 on a level without float16 arithmetic is a one-line error naming it.
"""
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mge_zoo
from build_support import require_target
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import build_runner, emulator_of, run_blob
from megcc_builder.passes.float16_regions import conversion_count

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "arm64-fp16"
ZOO_SHAPE = (1, 3, 64, 64)
ZOO_TOL = 3e-2  # max|ours - ref| / max|ref| against MegEngine's float32 output
# the operators that must run on a float16 kernel inside the region
COMPUTE = ("Conv", "MatMul", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool",
           "ReduceMean")


def fc_model(layers, m, k, seed):
    """A chain of Gemm layers: [(N, transB, bias, relu)], input (m, k), float32."""
    rng = np.random.default_rng(seed)
    nodes, inits, src, kin = [], [], "x", k
    for i, (n, trans_b, bias, relu) in enumerate(layers):
        w = (rng.standard_normal((n, kin) if trans_b else (kin, n)) / np.sqrt(kin)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        ins = [src, f"w{i}"]
        if bias:
            inits.append(numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), f"b{i}"))
            ins.append(f"b{i}")
        out = f"g{i}"
        nodes.append(helper.make_node("Gemm", ins, [out], transB=trans_b))
        if relu:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        src, kin = out, n
    nodes.append(helper.make_node("Identity", [src], ["y"]))
    g = helper.make_graph(nodes, "fc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (m, k))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def conv_model():
    """1x1 conv, 3x3 conv, depthwise 3x3, global pool, FC: one of each float16 kernel."""
    rng = np.random.default_rng(3)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32) / np.float32(np.sqrt(np.prod(shape[1:])))
    inits = [numpy_helper.from_array(w(16, 8, 1, 1), "w1"), numpy_helper.from_array(w(16, 16, 3, 3), "w3"),
             numpy_helper.from_array(w(16, 1, 3, 3), "wd"), numpy_helper.from_array(w(16, 10), "wf")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"]), helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "w3"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["b", "wd"], ["c"], pads=[1, 1, 1, 1], group=16),
             helper.make_node("GlobalAveragePool", ["c"], ["d"]),
             helper.make_node("Flatten", ["d"], ["e"]), helper.make_node("MatMul", ["e", "wf"], ["y"])]
    g = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 8, 12, 20))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def compile_for(path, shapes, out, ioc16=True):
    b = compile_bundle([ModelSpec("m", path, [shapes], enable_ioc16=ioc16)], str(out),
                       save_c_array=False, isa=TARGET)
    return b, b.models[0].plans[0]


def run(bundle, inputs):
    runner = build_runner(bundle.files["kernels_c"], target=TARGET)
    return run_blob(runner, bundle.files["m.tiny"], inputs, emulator=emulator_of(TARGET))


def assert_all_float16(plan):
    ops = {o: op for op in plan.graph.ops for o in op.outputs}
    for ins in plan.instrs:
        op = ops.get(ins.outputs[0])
        if op is not None and op.type in COMPUTE:
            assert ins.impl.endswith("_f16") or "neon64fp16_f16" in ins.impl, (op.type, ins.impl)
    assert conversion_count(plan.instrs, plan.graph) == 2


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo")


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "resnet18", "shufflenet_v2"])
def test_zoo_model_in_float16(name, zoo, tmp_path, summary):
    require_target(TARGET)
    path = mge_zoo.dump_model(name, str(zoo / f"{name}.mge"), True, input_shape=ZOO_SHAPE)
    x = np.random.default_rng(0).standard_normal(ZOO_SHAPE).astype(np.float32)
    (ref,) = mge_zoo.reference_output(path, {"data": x})
    bundle, plan = compile_for(path, {"data": x.shape}, tmp_path)
    assert_all_float16(plan)
    (y,) = run(bundle, [x])
    scale_err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    rule_err = float(np.max(np.abs(y - ref) / np.maximum(1, np.abs(ref))))
    summary(f"ioc16 {name} {ZOO_SHAPE} on {TARGET}: max|ours-ref|/max|ref| {scale_err:.2e}, "
            f"max|ours-ref|/max(1,|ref|) {rule_err:.2e}, top-1 {int(np.argmax(y))} "
            f"(MegEngine fp32 {int(np.argmax(ref))}), 2 conversions")
    assert int(np.argmax(y)) == int(np.argmax(ref))
    assert scale_err <= ZOO_TOL


def test_digits_in_float16(tmp_path, summary):
    require_target(TARGET)
    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    data = np.load(os.path.join(ROOT, "samples", "digits", "digits_test.npz"))
    images, labels = data["x"], data["y"]
    (ref,) = mge_zoo.reference_output(model, {"data": images})
    b = compile_bundle([ModelSpec("m", model, [{"data": images.shape}], enable_ioc16=True)],
                       str(tmp_path), save_c_array=False, isa=TARGET)
    plan = b.models[0].plans[0]
    assert_all_float16(plan)  # its 3x3 convs on the direct kernel, its FC, its max pool
    assert "conv.direct3x3_neon64fp16_f16" in {i.impl for i in plan.instrs}
    (got,) = run(b, [images])
    err = float(np.max(np.abs(got - ref) / np.maximum(1, np.abs(ref))))
    acc, acc_ref = (float(np.mean(np.argmax(v, 1) == labels)) for v in (got, ref))
    summary(f"ioc16 digits ({len(labels)} real images) on {TARGET}: accuracy {acc:.2%} "
            f"(MegEngine fp32 {acc_ref:.2%}), max error {err:.2e}, "
            f"{conversion_count(plan.instrs, plan.graph)} conversions")
    np.testing.assert_array_equal(np.argmax(got, 1), np.argmax(ref, 1))


def _functions(disassembly: str):
    """function name -> its instruction lines (objdump -d)."""
    out, cur = {}, None
    for line in disassembly.splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            cur = out.setdefault(m.group(1), [])
        elif cur is not None and "\t" in line:
            cur.append(line.split("\t", 2)[-1].strip())
    return out


def test_inner_loops_are_8_lane_fp16_fma(tmp_path, summary):
    t = require_target(TARGET)
    path = str(tmp_path / "m.onnx")
    onnx.save(conv_model(), path)
    bundle, plan = compile_for(path, {"x": (1, 8, 12, 20)}, tmp_path / "out")
    impls = {i.impl for i in plan.instrs}
    assert {"conv.gemm_neon64fp16_f16", "conv.direct3x3_neon64fp16_f16",
            "conv.depthwise_neon64fp16_f16",
            "matmul.fc_neon64fp16_f16", "pool.global_neon64fp16_f16.mean"} <= impls, impls
    obj = str(tmp_path / "k.o")
    subprocess.run([t.cc, *t.compile_flags(), "-O2", "-I", os.path.join(ROOT, "runtime", "include"),
                    "-c", bundle.files["kernels_c"], "-o", obj], check=True)
    dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", obj], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    funcs = _functions(dis)
    # by lane (`v.h[i]`) or, where GCC hoists the lane broadcasts out of the 16 FMAs of a
    # k step, by a vector; either way 8 halves per FMA
    fma8 = r"fmla\s+v\d+\.8h, v\d+\.8h, v\d+\.(8h|h\[\d\])"
    for prefix in ("conv2d_1x1_gemm8x16", "conv2d_direct3x3_s1", "conv2d_dw_k3x3", "fc_f16"):
        names = [n for n in funcs if n.startswith(prefix)]
        assert names, (prefix, sorted(funcs))
        fmla = [ins for ins in funcs[names[0]] if re.search(fma8, ins)]
        summary(f"ioc16 {names[0]}: {len(fmla)} x fp16 FMA, e.g. " + "; ".join(fmla[:4]))
        # a k step of the GEMM tile: 16 FMAs; a tap of the direct tile: 8; depthwise: 1 per tap
        least = {"conv2d_1x1_gemm8x16": 16, "conv2d_direct3x3_s1": 8 * 9}.get(prefix, 1)
        assert len(fmla) >= least, (names[0], fmla)


def test_fc_chain_is_one_region(tmp_path, summary):
    require_target(TARGET)
    model = fc_model([(200, 1, True, True), (120, 0, True, True), (10, 1, False, False)], 2, 300, 5)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    x = np.random.default_rng(9).standard_normal((2, 300)).astype(np.float32)
    bundle, plan = compile_for(path, {"x": x.shape}, tmp_path / "f16")
    assert conversion_count(plan.instrs, plan.graph) == 2
    assert sum(i.impl == "matmul.fc_neon64fp16_f16" for i in plan.instrs) == 3
    (y,) = run(bundle, [x])
    b32, _ = compile_for(path, {"x": x.shape}, tmp_path / "f32", ioc16=False)
    (y32,) = run(b32, [x])
    err = float(np.max(np.abs(y - y32) / np.maximum(1, np.abs(y32))))
    summary(f"ioc16 3-layer FC chain: 2 conversions; vs the float32 build {err:.2e}")
    assert err <= 1e-2


def test_mgb_to_tinynn_arm64_enable_ioc16(tmp_path):
    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    code = ("import sys; from megcc_builder.cli import mgb_to_tinynn_main; "
            "sys.exit(mgb_to_tinynn_main(sys.argv[1:]))")
    p = subprocess.run([sys.executable, "-c", code, model, str(tmp_path / "o"), "--arm64",
                        "--enable_ioc16"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "arm64-fp16" in p.stdout
    with open(tmp_path / "o" / "kernels.c") as f:
        src = f.read()
    assert "conv2d_direct3x3_s1_oc4x16_f16_relu_neon64fp16" in src and "vfmaq_lane_f16" in src


@pytest.mark.parametrize("isa", ["generic", "x86_64-v3", "arm64-neon", "armv7-neon"])
def test_ioc16_refused_without_fp16_arithmetic(tmp_path, isa):
    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    p = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile", model, "-o",
                        str(tmp_path / "o"), "--isa", isa, "--enable-ioc16"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"'{isa}'" in lines[0] and "float16" in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_config_enable_ioc16_with_mgb_to_tinynn_arm64(tmp_path):
    """The JSON config form: enable_ioc16 in a model entry, --arm64 builds for arm64-fp16."""
    import json

    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"dump_dir": str(tmp_path / "out"), "models": [
        {"model_name": "d16", "model_path": model, "enable_ioc16": True}]}))
    code = ("import sys; from megcc_builder.cli import mgb_to_tinynn_main; "
            "sys.exit(mgb_to_tinynn_main(sys.argv[1:]))")
    p = subprocess.run([sys.executable, "-c", code, f"--json={cfg}", "--arm64"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    with open(tmp_path / "out" / "manifest.json") as f:
        manifest = json.load(f)
    assert manifest["models"][0]["options"]["enable_ioc16"] is True
    with open(tmp_path / "out" / "kernels.c") as f:
        assert "conv2d_direct3x3_s1_oc4x16_f16_relu_neon64fp16" in f.read()


def test_nchw44_region_stays_float32_under_ioc16(tmp_path):
    """enable_nchw44 with enable_ioc16: the NCHW44 region keeps its float32 kernels (no
    float16 NCHW88 yet) and is not cut into float16 islands; the FC still runs in float16."""
    from megcc_builder.compiler import compile_model

    path = mge_zoo.dump_model("mobilenet_v2", str(tmp_path / "m.mge"), True, input_shape=ZOO_SHAPE)
    plan = compile_model(ModelSpec("m", path, [{"data": ZOO_SHAPE}], isa=TARGET, enable_ioc16=True,
                                   enable_nchw44=True)).plans[0]
    impls = [i.impl for i in plan.instrs]
    assert conversion_count(plan.instrs, plan.graph) == 2
    assert "matmul.fc_neon64fp16_f16" in impls
    assert not [i for i in impls if i.startswith(("conv.", "elementwise.")) and "fp16" in i], impls


def _float16_model(dtype):
    """Conv+ReLU, depthwise conv, max pool, global pool, Gemm; tensors of `dtype`."""
    rng = np.random.default_rng(16)
    np_dt = np.float16 if dtype == TensorProto.FLOAT16 else np.float32

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float16).astype(np_dt)
    inits = [numpy_helper.from_array(w(16, 3, 3, 3), "w1"), numpy_helper.from_array(w(16).astype(np_dt), "b1"),
             numpy_helper.from_array(w(16, 1, 3, 3), "wd"), numpy_helper.from_array(w(10, 16), "wf")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "wd"], ["c"], pads=[1, 1, 1, 1], group=16, strides=[2, 2]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["d"]),
             helper.make_node("Flatten", ["d"], ["e"]),
             helper.make_node("Gemm", ["e", "wf"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "f16", [helper.make_tensor_value_info("x", dtype, (1, 3, 20, 24))],
                          [helper.make_tensor_value_info("y", dtype, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_float16_onnx_model_computes_in_float16(tmp_path, summary):
    """A float16 ONNX model on arm64-fp16 (no flag): computed in float16 by the float16
    kernels, no conversion at all; against onnxruntime on the same model in float32."""
    import onnxruntime as ort

    require_target(TARGET)
    path = str(tmp_path / "m16.onnx")
    onnx.save(_float16_model(TensorProto.FLOAT16), path)
    b = compile_bundle([ModelSpec("m", path, [{"x": (1, 3, 20, 24)}])], str(tmp_path / "o"),
                       save_c_array=False, isa=TARGET)
    plan = b.models[0].plans[0]
    impls = {i.impl for i in plan.instrs}
    assert conversion_count(plan.instrs, plan.graph) == 0
    assert {"conv.direct3x3_neon64fp16_f16", "conv.depthwise_neon64fp16_f16",
            "matmul.fc_neon64fp16_f16"} <= impls, impls
    x = np.random.default_rng(1).standard_normal((1, 3, 20, 24)).astype(np.float16)
    (y,) = run(b, [x])
    ref = ort.InferenceSession(_float16_model(TensorProto.FLOAT).SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x.astype(np.float32)})[0]
    assert y.dtype == np.float16
    err = float(np.max(np.abs(y.astype(np.float32) - ref)) / np.max(np.abs(ref)))
    summary(f"float16 ONNX model on {TARGET}: 0 conversions, vs onnxruntime float32 {err:.2e} "
            "of the output scale")
    assert err <= 1e-2
