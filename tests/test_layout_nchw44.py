"""The NCHW44 layout (`enable_nchw44`): the layout pass, the NCHW44 kernels, the option.

- the pass: where relayouts go (one per region boundary, none chained, none where a global
  pool makes both layouts the same bytes), which ops run in NCHW44, honest 5-D tensors;
- the kernels, against numpy references: every conv variant (dense 1x1 / 3x3 s1 / 3x3 s2 /
  generic, channel-wise 3x3 / 5x5 s1 / s2 / generic, hybrid first conv) with odd sizes,
  padding, strides, dilation, channels 4..20, every epilogue; pooling, element-wise with
  re-laid-out constants, concat; both relayouts. All cases of one kind are batched into
  one model per ISA (one build, one run: qemu is slow) at generic and native ISA on this
  machine and at arm64-neon / armv7-neon under qemu; each case checks which kernel ran;
- end to end: MegEngine MobileNetV1/V2 and ResNet-18 with and without enable_nchw44
  against MegEngine itself;
- the option: JSON config, CLI flags, manifest, errors, `megcc inspect`.
"""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from build_support import require_target
from megcc_builder import cli
from megcc_builder.options import CompileOptions
from megcc_builder.compiler import ModelSpec, build_plan, compile_bundle
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import RUNTIME_DIR, run_compiled
from kernels.conv.cases import NCHW44 as CONV_CASES, nchw44_case_id as conv_case_id
from reference import assert_close, conv2d, pool2d

RNG = np.random.default_rng(44)
# (isa level, hosted target or None for this machine)
PLATFORMS = {"generic": ("generic", None), "native": ("native", None),
             "arm64": ("arm64-neon", "arm64"), "armv7": ("armv7-neon", "armv7")}
C_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
           "-Wno-overlength-strings"]


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def make_model(nodes, inputs, outputs, consts):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()]
    graph = helper.make_graph(nodes, "t", vi,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                               for o in outputs],
                              [numpy_helper.from_array(a, n) for n, a in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def compile_and_run(model, inputs, platform, tmp_path, nchw44=True):
    """Compile with enable_nchw44, build for the platform, run: (outputs by name, plan,
    kernels.c text)."""
    isa, target = PLATFORMS[platform]
    if target:
        require_target(target)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    out_dir = str(tmp_path / f"out_{platform}_{nchw44}")
    bundle = compile_bundle([ModelSpec("model", path, enable_nchw44=nchw44)], out_dir,
                            save_c_array=False, isa=isa)
    plan = bundle.models[0].plans[0]
    outs = run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"],
                        [inputs[n] for n in plan.graph.inputs], target=target)
    with open(bundle.files["kernels_c"]) as f:
        return dict(zip(plan.output_names, outs)), plan, f.read()


def producer_kernel(plan, tensor: str) -> str:
    """Name of the kernel writing `tensor` (or its NCHW44 copy)."""
    for ins in plan.instrs:
        if tensor in ins.outputs or f"{tensor}_nchw44" in ins.outputs:
            return ins.kernel.name
    raise AssertionError(f"no instruction writes {tensor}")


def relayouts(plan, direction: str):
    tag = "relayout_nchw_to_nchw44" if direction == "to44" else "relayout_nchw44_to_nchw"
    return [i for i, ins in enumerate(plan.instrs) if ins.kernel.name.startswith(tag)]


def check_warning_free(kernels_c: str, platform: str, tmp_path) -> None:
    """The generated kernels.c compiles cleanly for the platform (C99, -Werror)."""
    src = tmp_path / f"kernels_{platform}.c"
    src.write_text(kernels_c)
    isa, target = PLATFORMS[platform]
    if target is None:
        ccs = [["gcc"], ["clang"]] + ([["gcc", "-march=native"]] if platform == "native" else [])
    else:
        from megcc_builder import targets

        ccs = [[targets.load(target).cc, *targets.load(target).compile_flags()]]
        if target == "arm64":
            ccs.append(["clang", "--target=aarch64-linux-gnu"])
    for cc in ccs:
        proc = subprocess.run([*cc, *C_FLAGS, "-I", os.path.join(RUNTIME_DIR, "include"), "-c",
                               str(src), "-o", str(tmp_path / "k.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cc)}:\n{proc.stderr[-3000:]}"


# ------------------------------------------------------------------ the pass (no C build)

def conv_node(x, w, y, k=3, pad=1, stride=1, group=1, bias=None):
    ins = [x, w] + ([bias] if bias else [])
    return helper.make_node("Conv", ins, [y], kernel_shape=[k, k], pads=[pad] * 4,
                            strides=[stride] * 2, group=group)


def plan_of(model, nchw44=True, isa="generic"):
    return build_plan(load_onnx(model), "t", CompileOptions(isa=isa, enable_nchw44=nchw44))


def test_conv_chain_has_one_relayout_at_each_boundary():
    nodes = [conv_node("x", "w1", "c1", bias="b1"), helper.make_node("Relu", ["c1"], ["r1"]),
             conv_node("r1", "w2", "c2", group=8), conv_node("c2", "w3", "y", k=1, pad=0)]
    consts = {"w1": f32(8, 8, 3, 3), "b1": f32(8), "w2": f32(8, 1, 3, 3), "w3": f32(12, 8, 1, 1)}
    plan = plan_of(make_model(nodes, {"x": f32(1, 8, 9, 7)}, ["y"], consts))
    names = [i.kernel.name for i in plan.instrs]
    assert relayouts(plan, "to44") == [0] and relayouts(plan, "from44") == [len(names) - 1]
    assert [n.split("_k")[0] for n in names[1:-1]] == [
        "conv_nchw44_dense", "conv_nchw44_depthwise", "conv_nchw44_dense"], names
    assert "_bias_relu" in names[1]  # the fused epilogue travels with the conv
    g = plan.graph
    for ins in plan.instrs[1:-1]:  # honest NCHW44 tensors: 5-D physical shape, same bytes
        for name in ins.outputs:
            t = g.tensors[name]
            assert t.layout == "nchw44" and len(t.shape) == 5 and t.shape[-1] == 4
    assert g.tensors["r1_nchw44"].shape == (1, 2, 9, 7, 4)
    assert g.tensors["y"].layout == "nchw" and g.tensors["y"].shape == (1, 12, 9, 7)


def test_without_the_option_nothing_changes():
    nodes = [conv_node("x", "w1", "y")]
    plan = plan_of(make_model(nodes, {"x": f32(1, 8, 9, 7)}, ["y"], {"w1": f32(8, 8, 3, 3)}),
                   nchw44=False)
    assert not any("nchw44" in i.kernel.name for i in plan.instrs)


def test_ineligible_convs_stay_nchw():
    # 6 channels (not a multiple of 4), a grouped conv, a channel multiplier of 2
    nodes = [conv_node("x", "w1", "c1"), conv_node("c1", "w2", "c2", group=2),
             conv_node("c2", "w3", "y", group=4)]
    consts = {"w1": f32(8, 6, 3, 3), "w2": f32(8, 4, 3, 3), "w3": f32(8, 2, 3, 3)}
    plan = plan_of(make_model(nodes, {"x": f32(1, 6, 9, 7)}, ["y"], consts))
    assert [i.kernel.name.split("_")[0] for i in plan.instrs].count("relayout") == 0
    assert not any("nchw44" in i.kernel.name for i in plan.instrs)


def test_region_boundaries_and_shared_relayouts():
    """An NCHW-only op (Softmax) splits the region: every tensor gets at most one copy per
    layout, no relayout reads a relayout, and the relayout before Flatten/Gemm at the end
    stays; a hybrid first conv reads the NCHW input directly."""
    nodes = [conv_node("x", "w0", "c0"),  # hybrid: 3 input channels
             conv_node("c0", "w1", "c1"),
             helper.make_node("Softmax", ["c1"], ["s"], axis=1),
             helper.make_node("Softmax", ["c1"], ["t"], axis=3),  # second NCHW consumer
             helper.make_node("Add", ["s", "t"], ["u"]),
             conv_node("u", "w2", "c2"),
             helper.make_node("Flatten", ["c2"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    consts = {"w0": f32(8, 3, 3, 3), "w1": f32(8, 8, 3, 3), "w2": f32(4, 8, 3, 3),
              "fc": f32(5, 4 * 5 * 6)}
    plan = plan_of(make_model(nodes, {"x": f32(1, 3, 5, 6)}, ["y"], consts))
    names = [i.kernel.name for i in plan.instrs]
    assert names[0].startswith("conv_nchw44_hybrid") and plan.instrs[0].inputs[0] == "x"
    to44, from44 = relayouts(plan, "to44"), relayouts(plan, "from44")
    assert len(to44) == 1 and len(from44) == 2, names  # c1 back once (shared), u in, c2 out
    assert plan.instrs[from44[0]].outputs == ["c1"]
    assert names[-1].startswith("gemm") and from44[1] == len(names) - 2
    relayout_outputs = {o for i in to44 + from44 for o in plan.instrs[i].outputs}
    assert not any(plan.instrs[i].inputs[0] in relayout_outputs for i in to44 + from44)


def test_shape_preserving_views_keep_the_layout():
    """Identity / a Reshape to the same shape between convs: no relayout pair around them;
    a Reshape that changes the shape needs NCHW."""
    nodes = [conv_node("x", "w1", "c1"), helper.make_node("Identity", ["c1"], ["i1"]),
             helper.make_node("Reshape", ["i1", "same"], ["r1"]), conv_node("r1", "w2", "c2"),
             helper.make_node("Reshape", ["c2", "other"], ["r2"]),
             helper.make_node("Relu", ["r2"], ["y"])]
    consts = {"w1": f32(8, 4, 3, 3), "w2": f32(4, 8, 3, 3),
              "same": np.array([1, 8, 5, 6], np.int64),
              "other": np.array([1, 2, 2, 5, 6], np.int64)}
    plan = plan_of(make_model(nodes, {"x": f32(1, 4, 5, 6)}, ["y"], consts))
    names = [i.kernel.name for i in plan.instrs]
    assert relayouts(plan, "to44") == [0] and relayouts(plan, "from44") == [3], names
    assert plan.root("r1_nchw44") == "c1_nchw44"
    assert plan.instrs[3].outputs == ["c2"] and names[-1].startswith("ew_relu")


def test_relayout_after_global_pool_is_a_view():
    nodes = [conv_node("x", "w", "c"), helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["y"])]
    plan = plan_of(make_model(nodes, {"x": f32(1, 4, 5, 5)}, ["y"], {"w": f32(8, 4, 3, 3)}))
    names = [i.kernel.name for i in plan.instrs]
    assert relayouts(plan, "from44") == [] and names[-1] == "global_avgpool_nchw44_f32", names
    assert plan.root("y") == "g_nchw44"


# ------------------------------------------------------------------ kernels vs numpy

ACTS = {  # ONNX activation node -> numpy
    None: lambda v: v,
    "Relu": lambda v: np.maximum(v, 0),
    "Clip": lambda v: np.clip(v, -0.5, 1.5),
    "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "LeakyRelu": lambda v: np.where(v >= 0, v, 0.01 * v),
}
ACT_TAG = {None: "", "Relu": "_relu", "Clip": "_clip", "Sigmoid": "_sigmoid",
           "LeakyRelu": "_leaky"}

# the cases: kernels/conv/cases.py (NCHW44), checked here for the layout pass's structure
def conv_cases_model():
    """All conv cases side by side in one model: input x<i>, output y<i>."""
    nodes, inputs, consts, refs = [], {}, {}, {}
    for i, (n, c, h, w, oc, k, s, p, d, g, bias, act, _, _) in enumerate(CONV_CASES):
        x, wt = f32(n, c, h, w), f32(oc, c // g, *k)
        inputs[f"x{i}"], consts[f"w{i}"] = x, wt
        ins = [f"x{i}", f"w{i}"]
        b = None
        if bias:
            b = consts[f"b{i}"] = f32(oc)
            ins.append(f"b{i}")
        conv_out = f"y{i}" if act is None else f"c{i}"
        nodes.append(helper.make_node("Conv", ins, [conv_out], kernel_shape=list(k),
                                      strides=list(s), pads=list(p), dilations=list(d), group=g))
        if act == "Clip":
            consts["lo"], consts["hi"] = np.array(-0.5, np.float32), np.array(1.5, np.float32)
            nodes.append(helper.make_node("Clip", [conv_out, "lo", "hi"], [f"y{i}"]))
        elif act is not None:
            nodes.append(helper.make_node(act, [conv_out], [f"y{i}"]))
        refs[f"y{i}"] = ACTS[act](conv2d(x, wt, b, s, p, d, g))
    return make_model(nodes, inputs, list(refs), consts), inputs, refs


@pytest.fixture(scope="module")
def conv_runs(tmp_path_factory):
    model, inputs, refs = conv_cases_model()
    cache = {}

    def run(platform):
        if platform not in cache:
            tmp = tmp_path_factory.mktemp(f"conv_{platform}")
            cache[platform] = compile_and_run(model, inputs, platform, tmp) + (refs, tmp)
        return cache[platform]
    return run


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_conv_kernels(conv_runs, platform):
    outs, plan, kernels_c, refs, tmp = conv_runs(platform)
    neon = platform in ("arm64", "armv7")
    for i, case in enumerate(CONV_CASES):
        kind, act, variant = case[12], case[11], case[13]
        name = producer_kernel(plan, f"y{i}")
        geo = f"k{case[5][0]}x{case[5][1]}_s{case[6][0]}x{case[6][1]}_d{case[8][0]}x{case[8][1]}"
        want = f"conv_nchw44_{kind}_{geo}_f32{'_bias' if case[10] else ''}{ACT_TAG[act]}"
        assert name.startswith(want) and name.endswith("_neon") == neon, (conv_case_id(case), name)
        assert act is not None or name == want + ("_neon" if neon else "")
        note = next(ins.note for ins in plan.instrs if ins.kernel.name == name)
        assert (f"NEON {variant}," in note) if neon else ("portable C" in note), note
        assert_close(outs[f"y{i}"], refs[f"y{i}"], what=f"{conv_case_id(case)} on {platform}")
    # every case: one relayout in (hybrid: none), one out
    assert len(relayouts(plan, "to44")) == sum(c[12] != "hybrid" for c in CONV_CASES)
    assert len(relayouts(plan, "from44")) == len(CONV_CASES)
    if neon:
        assert all(plan.instrs[i].kernel.name.endswith("_neon")
                   for i in relayouts(plan, "to44") + relayouts(plan, "from44"))
    check_warning_free(kernels_c, platform, tmp)


def followers_model():
    """A conv region with every follower: element-wise with a per-channel constant and a
    residual graph input, an Identity, max/average pools (padding, ceil mode,
    count_include_pad), global pools, a channel concat, a scalar multiply."""
    x, w1, w2 = f32(1, 8, 13, 11), f32(8, 8, 3, 3), f32(4, 8, 1, 1)
    scale = f32(8, 1, 1)
    nodes = [conv_node("x", "w1", "c1"),
             helper.make_node("Mul", ["c1", "scale"], ["m1"]),
             helper.make_node("Add", ["m1", "x"], ["a1"]),
             helper.make_node("Tanh", ["a1"], ["y_ew"]),
             helper.make_node("Identity", ["a1"], ["a1i"]),  # a view: stays NCHW44
             helper.make_node("MaxPool", ["a1i"], ["y_max"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], ceil_mode=1),
             helper.make_node("AveragePool", ["a1"], ["y_avg_inc"], kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 0, 1, 1], count_include_pad=1),
             helper.make_node("AveragePool", ["a1"], ["y_avg"], kernel_shape=[2, 2],
                              strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["a1"], ["y_gap"]),
             helper.make_node("GlobalMaxPool", ["a1"], ["y_gmp"]),
             conv_node("a1", "w2", "c2", k=1, pad=0),
             helper.make_node("Mul", ["c2", "half"], ["h2"]),
             helper.make_node("Concat", ["a1", "h2"], ["y_cat"], axis=1)]
    consts = {"w1": w1, "w2": w2, "scale": scale, "half": np.array(0.5, np.float32)}
    a1 = conv2d(x, w1, None, (1, 1), (1, 1, 1, 1)) * scale + x
    refs = {"y_ew": np.tanh(a1),
            "y_max": pool2d(a1, (3, 3), (2, 2), (1, 1, 1, 1), "max", ceil_mode=True),
            "y_avg_inc": pool2d(a1, (3, 3), (2, 2), (1, 0, 1, 1), "avg", count_include_pad=True),
            "y_avg": pool2d(a1, (2, 2), (2, 2), (1, 1, 1, 1), "avg"),
            "y_gap": a1.mean(axis=(2, 3), keepdims=True),
            "y_gmp": a1.max(axis=(2, 3), keepdims=True),
            "y_cat": np.concatenate([a1, 0.5 * conv2d(a1, w2)], axis=1)}
    return make_model(nodes, {"x": x}, list(refs), consts), {"x": x}, refs


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_followers_run_in_nchw44(platform, tmp_path):
    model, inputs, refs = followers_model()
    outs, plan, kernels_c, = compile_and_run(model, inputs, platform, tmp_path)
    for name, ref in refs.items():
        assert_close(outs[name], ref, what=f"{name} on {platform}")
    expect = {"y_ew": "ew_tanh", "y_max": "maxpool_nchw44_k3x3_s2x2",
              "y_avg_inc": "avgpool_nchw44_k3x3_s2x2_d1x1_f32_incpad",
              "y_avg": "avgpool_nchw44_k2x2", "y_gap": "global_avgpool_nchw44",
              "y_gmp": "global_maxpool_nchw44"}
    for name, prefix in expect.items():
        assert producer_kernel(plan, name).startswith(prefix), (name, producer_kernel(plan, name))
    # the channel concat runs in NCHW44 and costs no copy: its parts are computed in place
    # (N=1, whole channel blocks lie back to back; lowering.py)
    assert not any(i.kernel.name.startswith("concat") for i in plan.instrs)
    assert plan.root("a1_nchw44") == plan.root("h2_nchw44") == "y_cat_nchw44"
    g = plan.graph
    a1 = g.tensors["a1_nchw44"]
    assert a1.layout == "nchw44" and a1.shape == (1, 2, 13, 11, 4)
    # x is relaid out once and shared by the conv and the residual Add
    assert len(relayouts(plan, "to44")) == 1
    # out: y_ew, the three pools and the concat; the global pools' outputs are views
    assert len(relayouts(plan, "from44")) == 5
    assert plan.root("y_gap") == "y_gap_nchw44" and plan.root("y_gmp") == "y_gmp_nchw44"


# ------------------------------------------------------------------ end to end (MegEngine)

ZOO_SHAPE = (1, 3, 32, 32)
# relayout instructions expected with enable_nchw44: (to NCHW44, back to NCHW). The first
# conv is hybrid (reads NCHW), and at 32x32 the last feature map is 1x1, so the relayout
# before the global pool (MobileNetV1: ReduceMean in NCHW) or after it is a view.
# ShuffleNetV2's channel shuffle (reshape, transpose, indexing) runs in NCHW: each stride-1
# block takes its input out of the region (1 relayout) and both shuffle halves back in (2:
# one for the branch conv, one for the concat); stride-2 blocks stay inside. At 32x32 the
# 3 + 7 stride-1 blocks of stages 2 and 3 have pixels; stage 4's are 1x1 (views).
ZOO = {"mobilenet_v1": (0, 0), "mobilenet_v2": (0, 0), "resnet18": (0, 0),
       "shufflenet_v2": (2 * 10, 10)}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    import mge_zoo

    d = tmp_path_factory.mktemp("zoo")
    x = np.random.default_rng(3).uniform(-1, 1, ZOO_SHAPE).astype(np.float32)
    cache = {}

    def get(name):
        if name not in cache:
            path = mge_zoo.dump_model(name, str(d / f"{name}.mge"), True, input_shape=ZOO_SHAPE)
            cache[name] = (path, mge_zoo.reference_output(path, {"data": x}))
        return cache[name] + (x,)
    return get


def run_zoo(path, x, platform, nchw44):
    isa, target = PLATFORMS[platform]
    if target:
        require_target(target)
    out_dir = f"{path}.{platform}.{int(nchw44)}"
    bundle = compile_bundle([ModelSpec("model", path, enable_nchw44=nchw44)], out_dir,
                            save_c_array=False, isa=isa)
    plan = bundle.models[0].plans[0]
    return run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"], [x],
                        target=target), plan


# (the plain NCHW build is also checked here, at the native ISA, as the baseline the
# option must match; test_models_mge covers it further)
@pytest.mark.parametrize("platform,nchw44", [("generic", True), ("native", False),
                                             ("native", True), ("arm64", True)])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_models_match_megengine(zoo, name, platform, nchw44, summary):
    path, refs, x = zoo(name)
    outs, plan = run_zoo(path, x, platform, nchw44)
    for got, ref in zip(outs, refs):
        err = assert_close(got, ref, what=f"{name} {platform} nchw44={nchw44}")
        summary(f"{name} [{platform}, nchw44={nchw44}]: max normalised error {err:.2e}")
    names = [i.kernel.name for i in plan.instrs]
    convs = [n for n in names if n.startswith("conv")]
    if not nchw44:
        assert not any("nchw44" in n for n in names)
        return
    assert convs and all(n.startswith("conv_nchw44") for n in convs), convs
    assert all(n.endswith("_neon") for n in convs) == (platform == "arm64")
    to44, from44 = relayouts(plan, "to44"), relayouts(plan, "from44")
    assert (len(to44), len(from44)) == ZOO[name]
    made = {o for i in to44 + from44 for o in plan.instrs[i].outputs}
    assert not any(plan.instrs[i].inputs[0] in made for i in to44 + from44)  # none chained


# ------------------------------------------------------------------ the option

@pytest.fixture
def small_onnx(tmp_path):
    nodes = [conv_node("x", "w", "y")]
    path = str(tmp_path / "small.onnx")
    onnx.save(make_model(nodes, {"x": f32(1, 4, 6, 6)}, ["y"], {"w": f32(8, 4, 3, 3)}), path)
    return path


def manifest_of(out_dir):
    with open(os.path.join(out_dir, "manifest.json")) as f:
        return json.load(f)


def test_json_config_option_reaches_the_manifest(small_onnx, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"dump_dir": "out", "models": [
        {"model_name": "a", "model_path": "small.onnx", "enable_nchw44": True},
        {"model_name": "b", "model_path": "small.onnx"}]}))
    assert cli.main(["compile", "--json", str(cfg)]) == 0
    models = manifest_of(str(tmp_path / "out"))["models"]
    assert [m["options"]["enable_nchw44"] for m in models] == [True, False]
    a, b = (m["plans"][0]["instructions"] for m in models)
    assert a[0].startswith("relayout_nchw_to_nchw44") and a[1].startswith("conv_nchw44_dense")
    assert not any("nchw44" in k for k in b)


def test_cli_flags(small_onnx, tmp_path, capsys):
    assert cli.main(["compile", small_onnx, "-o", str(tmp_path / "c"), "--enable-nchw44"]) == 0
    assert manifest_of(str(tmp_path / "c"))["models"][0]["options"]["enable_nchw44"] is True
    assert cli.mgb_to_tinynn_main([small_onnx, str(tmp_path / "m"), "--enable_nchw44"]) == 0
    model = manifest_of(str(tmp_path / "m"))["models"][0]
    assert model["options"]["enable_nchw44"] is True
    assert any(k.startswith("conv_nchw44") for k in model["plans"][0]["instructions"])
    capsys.readouterr()
    assert cli.main(["inspect", small_onnx, "--enable-nchw44"]) == 0
    text = capsys.readouterr().out
    conv_line = next(line for line in text.splitlines() if "conv_nchw44_dense" in line)
    assert "x_nchw44[nchw44]" in conv_line and "-> y_nchw44[nchw44]" in conv_line
    assert cli.main(["inspect", small_onnx]) == 0
    assert "[nchw44]" not in capsys.readouterr().out.split("== instructions")[1]
    out = tmp_path / "run"
    x = f32(1, 4, 6, 6)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", small_onnx, "--output-dir", str(out), "--input",
                     f"x={tmp_path / 'x.npy'}", "--isa", "generic", "--enable-nchw44"]) == 0
    w = numpy_helper.to_array(onnx.load(small_onnx).graph.initializer[0])
    assert_close(np.load(out / "outputs.npz")["y"], conv2d(x, w, pads=(1, 1, 1, 1)))


def test_output_is_deterministic(small_onnx, tmp_path):
    outs = []
    for k in range(2):
        bundle = compile_bundle([ModelSpec("m", small_onnx, enable_nchw44=True)],
                                str(tmp_path / f"o{k}"), isa="arm64-neon")
        outs.append([open(bundle.files[f], "rb").read() for f in ("kernels_c", "m.tiny")])
    assert outs[0] == outs[1]


@pytest.mark.parametrize("value", ['"yes"', "2", "null"])
def test_bad_option_value_is_one_line(small_onnx, tmp_path, capsys, value):
    cfg = tmp_path / "bad.json"
    cfg.write_text('{"models": [{"model_name": "a", "model_path": "small.onnx", '
                   f'"enable_nchw44": {value}}}]}}')
    assert cli.main(["compile", "--json", str(cfg)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad.json" in err and "models[0]: option 'enable_nchw44' must be true or false" in err
