"""enable_nchw88 with enable_ioc16 on Armv8.2-A + FP16 (level arm64-fp16, run under
qemu-aarch64 -cpu max): the float16 region in NCHW88 (8 channels per block, one float16x8_t;
passes/layout_nchw44.layout_nchw88, kernels/*/nchw88_neon64fp16_f16.py). The kernels are
checked case by case against NumPy float16 arithmetic in tests/kernels/ (n88_* cases);
here:

- MegEngine MobileNetV1/V2, ResNet-18 and ShuffleNetV2 (tests/mge_zoo.py, seeded weights,
  64x64 inputs) with every convolution on the NCHW88 kernels, against MegEngine's float32
  output with test_fp16_ioc16.py's criterion: the same top-1 and max|ours - ref| / max|ref|
  <= 3e-2; two fp16<->fp32 conversions; the relayouts each model needs (region edges only:
  all four run wholly in NCHW88: ShuffleNetV2's channel shuffle and split as one even/odd
  channel unzip, MobileNetV1's mean over W then H as one global mean);
- ShuffleNetV2 and MobileNetV2 give the same bits in NCHW88 as in the NCHW float16 build
  (their convs accumulate in the same order in both layouts);
- the digits sample classifies the real held-out images exactly as MegEngine's float32
  model does;
- a model with channel counts that are not a multiple of 8 (padded blocks), a channel
  Concat, pooling and element-wise followers: one region, no relayout inside it, against
  onnxruntime float32;
- the inner loops of the NCHW88 convs are 8-lane fp16 FMAs (`fmla vN.8h`);
- the option in every form (megcc compile, JSON config, mgb-to-tinynn, InferenceSession),
  `megcc inspect` showing the regions and conversions; refusals: a level without float16
  arithmetic, or no enable_ioc16 (NCHW88 is the layout of float16 compute).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
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
ZOO_TOL = 3e-2  # max|ours - ref| / max|ref| against MegEngine's float32 (test_fp16_ioc16.py)
# relayouts that move bytes, per model (a relayout of a 1x1 pooled tensor is a view)
RELAYOUTS = {"mobilenet_v1": 0, "mobilenet_v2": 0, "resnet18": 0, "shufflenet_v2": 0}
CLI = [sys.executable, "-m", "megcc_builder.cli"]
MGB = [sys.executable, "-c", "import sys; from megcc_builder.cli import mgb_to_tinynn_main; "
       "sys.exit(mgb_to_tinynn_main(sys.argv[1:]))"]


def compile_for(path, shapes, out, nchw88=True):
    b = compile_bundle([ModelSpec("m", path, [shapes], enable_ioc16=True, enable_nchw88=nchw88)],
                       str(out), save_c_array=False, isa=TARGET)
    return b, b.models[0].plans[0]


def run(bundle, inputs):
    runner = build_runner(bundle.files["kernels_c"], target=TARGET)
    return run_blob(runner, bundle.files["m.tiny"], inputs, emulator=emulator_of(TARGET))


def moving_relayouts(plan):
    return [i for i in plan.instrs if i.impl == "data.relayout_nchw88_f16.lower_relayout"]


def assert_convs_in_nchw88(plan):
    ops = {o: op for op in plan.graph.ops for o in op.outputs}
    convs = [ops[i.outputs[0]] for i in plan.instrs if i.outputs[0] in ops
             and ops[i.outputs[0]].type in ("Conv", "ConvNCHW88")]
    assert convs and all(op.type == "ConvNCHW88" for op in convs), \
        sorted({op.type for op in convs})
    assert all(i.impl == "conv.nchw88_neon64fp16_f16" for i in plan.instrs
               if ops.get(i.outputs[0]) is not None and ops[i.outputs[0]].type == "ConvNCHW88")
    assert conversion_count(plan.instrs, plan.graph) == 2
    return len(convs)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo")


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "resnet18", "shufflenet_v2"])
def test_zoo_model_in_nchw88(name, zoo, tmp_path, summary):
    require_target(TARGET)
    path = mge_zoo.dump_model(name, str(zoo / f"{name}.mge"), True, input_shape=ZOO_SHAPE)
    x = np.random.default_rng(0).standard_normal(ZOO_SHAPE).astype(np.float32)
    (ref,) = mge_zoo.reference_output(path, {"data": x})
    bundle, plan = compile_for(path, {"data": x.shape}, tmp_path)
    convs = assert_convs_in_nchw88(plan)
    relayouts = moving_relayouts(plan)
    (y,) = run(bundle, [x])
    scale_err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    rule_err = float(np.max(np.abs(y - ref) / np.maximum(1, np.abs(ref))))
    summary(f"nchw88 {name} {ZOO_SHAPE} on {TARGET}: {convs} NCHW88 convs, {len(relayouts)} "
            f"relayouts, 2 conversions; max|ours-ref|/max|ref| {scale_err:.2e}, "
            f"max|ours-ref|/max(1,|ref|) {rule_err:.2e}, top-1 {int(np.argmax(y))} "
            f"(MegEngine fp32 {int(np.argmax(ref))})")
    assert len(relayouts) == RELAYOUTS[name]
    assert int(np.argmax(y)) == int(np.argmax(ref))
    assert scale_err <= ZOO_TOL


@pytest.mark.parametrize("name", ["shufflenet_v2", "mobilenet_v2"])
def test_same_bits_as_the_nchw_float16_build(name, zoo, tmp_path):
    """1x1, depthwise and hybrid convs add their taps in the same order in both layouts, and
    pooling, element-wise ops, the channel unzip and the relayouts are exact; the global
    mean sums in float32 in another order (rounded to float16 once: the same bits on these
    seeded inputs). So the NCHW float16 build, checked op by op against NumPy float16, is
    this build's oracle bit for bit."""
    require_target(TARGET)
    path = mge_zoo.dump_model(name, str(zoo / f"{name}.mge"), True, input_shape=ZOO_SHAPE)
    x = np.random.default_rng(5).standard_normal(ZOO_SHAPE).astype(np.float32)
    outs = []
    for nchw88 in (False, True):
        bundle, plan = compile_for(path, {"data": x.shape}, tmp_path / str(nchw88), nchw88)
        outs.append(run(bundle, [x])[0])
    if name == "shufflenet_v2":
        assert sum(i.impl == "data.unzip_nchw88_f16" for i in plan.instrs) == 13
    np.testing.assert_array_equal(outs[1], outs[0])


def test_digits_in_nchw88(tmp_path, summary):
    require_target(TARGET)
    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    data = np.load(os.path.join(ROOT, "samples", "digits", "digits_test.npz"))
    images, labels = data["x"], data["y"]
    (ref,) = mge_zoo.reference_output(model, {"data": images})
    bundle, plan = compile_for(model, {"data": images.shape}, tmp_path)
    assert_convs_in_nchw88(plan)
    (got,) = run(bundle, [images])
    acc, acc_ref = (float(np.mean(np.argmax(v, 1) == labels)) for v in (got, ref))
    summary(f"nchw88 digits ({len(labels)} real images) on {TARGET}: accuracy {acc:.2%} "
            f"(MegEngine fp32 {acc_ref:.2%}), {len(moving_relayouts(plan))} relayouts")
    np.testing.assert_array_equal(np.argmax(got, 1), np.argmax(ref, 1))


def padded_concat_model():
    """Hybrid 3x3 stem (3 -> 12 channels: a padded block), 3x3 conv 12 -> 20 (padded in and
    out), a depthwise 3x3 branch and a 1x1 branch concatenated on channels (16 + 16), max
    pool, per-channel scale + HardSwish, global average pool."""
    rng = np.random.default_rng(88)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    inits = {"w0": w(12, 3, 3, 3), "b0": w(12), "w1": w(20, 12, 3, 3), "w2": w(16, 20, 1, 1),
             "wd": w(16, 1, 3, 3), "w3": w(16, 20, 1, 1), "s": w(1, 32, 1, 1) + 1,
             "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}
    n = helper.make_node
    nodes = [n("Conv", ["x", "w0", "b0"], ["a"], pads=[1, 1, 1, 1], strides=[2, 2]),
             n("Relu", ["a"], ["ar"]),
             n("Conv", ["ar", "w1"], ["b"], pads=[1, 1, 1, 1]), n("Clip", ["b", "lo", "hi"], ["br"]),
             n("Conv", ["br", "w2"], ["c1"]),
             n("Conv", ["c1", "wd"], ["c2"], pads=[1, 1, 1, 1], group=16),
             n("Conv", ["br", "w3"], ["d"]),
             n("Concat", ["c2", "d"], ["e"], axis=1),
             n("MaxPool", ["e"], ["f"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Mul", ["f", "s"], ["g"]), n("HardSwish", ["g"], ["h"]),
             n("GlobalAveragePool", ["h"], ["y"])]
    g = helper.make_graph(nodes, "padded", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 22, 30))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def test_padded_channels_concat_one_region(tmp_path, summary):
    require_target(TARGET)
    path = str(tmp_path / "m.onnx")
    model = padded_concat_model()
    onnx.save(model, path)
    x = np.random.default_rng(1).standard_normal((1, 3, 22, 30)).astype(np.float32)
    bundle, plan = compile_for(path, {"x": x.shape}, tmp_path / "out")
    assert_convs_in_nchw88(plan)
    layouts = {plan.graph.tensors[i.outputs[0]].layout for i in plan.instrs
               if i.impl.startswith(("pool.", "elementwise.", "data.copy_generic.lower_concat"))}
    assert layouts == {"nchw88"}, layouts  # the followers stayed in the region
    assert moving_relayouts(plan) == []  # in: the hybrid stem; out: a 1x1 view
    (y,) = run(bundle, [x])
    (ref,) = ort.InferenceSession(model.SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(None, {"x": x})
    err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    summary(f"nchw88 padded channels (12, 20) + concat model: 0 relayouts, "
            f"max|ours-ref|/max|ref| {err:.2e} vs onnxruntime fp32")
    assert err <= ZOO_TOL


def _functions(disassembly: str):
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
    onnx.save(padded_concat_model(), path)
    bundle, _ = compile_for(path, {"x": (1, 3, 22, 30)}, tmp_path / "out")
    obj = str(tmp_path / "k.o")
    subprocess.run([t.cc, *t.compile_flags(), "-O2", "-I", os.path.join(ROOT, "runtime", "include"),
                    "-c", bundle.files["kernels_c"], "-o", obj], check=True)
    dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", obj], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    funcs = _functions(dis)
    by_lane = r"fmla\s+v\d+\.8h, v\d+\.8h, v\d+\.h\[\d\]"
    by_vector = r"fmla\s+v\d+\.8h, v\d+\.8h, v\d+\.8h"
    either = r"fmla\s+v\d+\.8h, v\d+\.8h, v\d+\.(8h|h\[\d\])"  # (a loaded scalar: lane 0)
    # dense: a pixel block of 8 x 8 input lanes = 64 by-lane FMAs per tap; depthwise and
    # hybrid: one 8-lane FMA per pixel per tap (8 per block)
    for prefix, pattern, least in (("conv_nchw88_dense_k3x3", by_lane, 64),
                                   ("conv_nchw88_dense_k1x1", by_lane, 64),
                                   ("conv_nchw88_depthwise_k3x3", by_vector, 8),
                                   ("conv_nchw88_hybrid_k3x3", either, 8)):
        names = [n for n in funcs if n.startswith(prefix)]
        assert names, (prefix, sorted(funcs))
        fmla = [ins for ins in funcs[names[0]] if re.search(pattern, ins)]
        summary(f"nchw88 {names[0]}: {len(fmla)} x fp16 FMA, e.g. " + "; ".join(fmla[:4]))
        assert len(fmla) >= least, (names[0], len(fmla), fmla[:8])


def test_every_option_form_and_inspect(tmp_path):
    """megcc compile / inspect, the JSON config and mgb-to-tinynn --arm64: one NCHW88 build."""
    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    p = subprocess.run([*CLI, "compile", model, "-o", str(tmp_path / "c"), "--isa", TARGET,
                        "--enable-ioc16", "--enable-nchw88"], cwd=ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    with open(tmp_path / "c" / "kernels.c") as f:
        assert "conv_nchw88_" in f.read()
    p = subprocess.run([*CLI, "inspect", model, "--isa", TARGET, "--enable-ioc16",
                        "--enable-nchw88"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "== float16: 2 fp16<->fp32 conversions" in p.stdout
    m = re.search(r"== layouts: nchw88 (\d+) instructions; (\d+) relayouts", p.stdout)
    assert m and int(m.group(1)) >= 2, p.stdout[-2000:]
    assert "[nchw88]" in p.stdout
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"dump_dir": str(tmp_path / "j"), "models": [
        {"model_name": "d", "model_path": model, "enable_ioc16": True, "enable_nchw88": True}]}))
    p = subprocess.run([*MGB, f"--json={cfg}", "--arm64"], cwd=ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    with open(tmp_path / "j" / "manifest.json") as f:
        assert json.load(f)["models"][0]["options"]["enable_nchw88"] is True
    p = subprocess.run([*MGB, model, str(tmp_path / "m"), "--arm64", "--enable_ioc16",
                        "--enable_nchw88"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for d in ("j", "m"):
        with open(tmp_path / d / "kernels.c") as f:
            assert "conv_nchw88_" in f.read()


def test_inference_session_nchw88(tmp_path):
    require_target(TARGET)
    from megcc_builder.session import InferenceSession

    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    images = np.load(os.path.join(ROOT, "samples", "digits", "digits_test.npz"))["x"][:8]
    (ref,) = mge_zoo.reference_output(model, {"data": images})
    sess = InferenceSession(model, {"data": images.shape}, isa=TARGET, target=TARGET,
                            enable_ioc16=True, enable_nchw88=True)
    (got,) = sess.run(None, {"data": images})
    np.testing.assert_array_equal(np.argmax(got, 1), np.argmax(ref, 1))


@pytest.mark.parametrize("isa,flags,says", [
    ("arm64-neon", ["--enable-ioc16", "--enable-nchw88"], "'arm64-neon'"),
    ("x86_64-v3", ["--enable-nchw88"], "'x86_64-v3'"),
    (TARGET, ["--enable-nchw88"], "enable_ioc16")])
def test_nchw88_refused(tmp_path, isa, flags, says):
    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    p = subprocess.run([*CLI, "compile", model, "-o", str(tmp_path / "o"), "--isa", isa, *flags],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "enable_nchw88" in lines[0] and says in lines[0], lines
    assert "digits.mge" in lines[0]
    assert not (tmp_path / "o").exists()


def region_edges_model():
    """Two hybrid stems of 12 channels concatenated (not whole blocks: the Concat runs NCHW),
    a 1x1 conv 24 -> 12, a Div by a per-channel constant on the padded 12 channels (NCHW: a
    padded lane would divide by zero), a 3x3 conv 12 -> 16 with a residual-free ReLU6."""
    rng = np.random.default_rng(7)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    inits = {"wa": w(12, 3, 3, 3), "wb": w(12, 3, 1, 1), "wc": w(12, 24, 1, 1),
             "d": (np.abs(w(1, 12, 1, 1)) + 0.5).astype(np.float32), "we": w(16, 12, 3, 3),
             "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}
    n = helper.make_node
    nodes = [n("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]), n("Conv", ["x", "wb"], ["b"]),
             n("Concat", ["a", "b"], ["ab"], axis=1), n("Conv", ["ab", "wc"], ["c"]),
             n("Div", ["c", "d"], ["cd"]), n("Conv", ["cd", "we"], ["e"], pads=[1, 1, 1, 1]),
             n("Clip", ["e", "lo", "hi"], ["y"])]
    g = helper.make_graph(nodes, "edges", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 9, 13))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def test_relayouts_only_at_region_edges(tmp_path, summary):
    """Ops NCHW88 does not take cut the region: one relayout per tensor crossing an edge,
    never two relayouts in a row, and the answer is onnxruntime's."""
    require_target(TARGET)
    model = region_edges_model()
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    x = np.random.default_rng(2).standard_normal((1, 3, 9, 13)).astype(np.float32)
    bundle, plan = compile_for(path, {"x": x.shape}, tmp_path / "out")
    g = plan.graph
    producers = g.producers()
    relayouts = [op for op in g.ops if op.type == "Relayout"]
    for op in relayouts:  # between a region op and an NCHW op, never relayout -> relayout
        assert producers[op.inputs[0]].type != "Relayout", op.name
    crossings = [(g.tensors[op.inputs[0]].layout, producers[op.inputs[0]].type) for op in relayouts]
    # out of the region: the two stems (Concat), the 1x1 conv (Div); back in: the Concat's
    # output (1x1 conv) and the Div's (3x3 conv); out: the model's output
    assert sorted(crossings) == sorted([("nchw88", "ConvNCHW88")] * 4 + [("nchw", "Concat"),
                                                                          ("nchw", "Div")]), crossings
    (y,) = run(bundle, [x])
    (ref,) = ort.InferenceSession(model.SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(None, {"x": x})
    err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    summary(f"nchw88 region edges model: {len(relayouts)} relayouts (each tensor crossing once), "
            f"max|ours-ref|/max|ref| {err:.2e} vs onnxruntime fp32")
    assert err <= ZOO_TOL
