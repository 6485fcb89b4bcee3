"""enable_ioc16 accumulating in float32: level arm64-fp16fml (Armv8.2-A + FP16 + FHM, run
under qemu-aarch64 -cpu max). Its float16 convolutions (packed GEMM: 1x1 and im2col; direct
3x3) and FC layers accumulate in float32 through FMLAL/FMLAL2 and round to float16 once.

- each kernel against NumPy in the kernel's order with a float32 accumulator (bit-exact:
  the float16 products are exact in float32, each step rounds once), on the tile edges, the
  im2col geometries, residual and ReLU / ReLU6 epilogues, FC with and without bias;
- the inner loops are `fmlal`/`fmlal2` (disassembly);
- the MegEngine zoo models against MegEngine's float32 output: the error of float32
  accumulation next to float16 accumulation (arm64-fp16) on the same model, the first
  lower on ResNet-18 (the model whose large outputs made float16 accumulation miss the
  max(1, |ref|) form by most).
"""
import os
import re
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mge_zoo
from build_support import require_target
from kernels.f16_reference import conv_f16, fc_f16
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import build_runner, emulator_of, run_blob
from test_fp16_ioc16 import ZOO_SHAPE, _functions, assert_all_float16

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "arm64-fp16fml"

# (id, n, c, h, w, oc, kernel, stride, pads, dilation, group, bias, act, residual, impl)
CONVS = [
    ("1x1_edges", 1, 19, 7, 9, 21, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, None, False, "gemm"),
    ("1x1_nobias_residual_relu", 2, 24, 5, 5, 13, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, False, "relu", True, "gemm"),
    ("7x7_s2_p3_relu", 1, 3, 20, 18, 10, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, True, "relu", False, "gemm"),
    ("3x3_group2_dilated", 1, 6, 9, 9, 10, (3, 3), (1, 1), (2, 1, 2, 1), (2, 1), 2, True, None, False, "gemm"),
    ("3x3_s1_relu6_k576", 1, 64, 6, 21, 12, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "clip", False, "direct3x3"),
    ("3x3_s1_residual", 1, 16, 6, 6, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, None, True, "direct3x3"),
    ("3x3_s2_wide", 1, 5, 9, 40, 7, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 1, False, "relu", False, "direct3x3"),
]


def _out_hw(h, w, k, s, p, d):
    return ((h + p[0] + p[2] - (k[0] - 1) * d[0] - 1) // s[0] + 1,
            (w + p[1] + p[3] - (k[1] - 1) * d[1] - 1) // s[1] + 1)


def conv_bank(rng):
    """One model holding every case of CONVS as its own branch (one build, one qemu run):
    inputs x_<id> (and r_<id> for residuals), outputs y_<id>; with the references."""
    nodes, inits, ins, outs, feeds, refs = [], [], [], [], {}, {}
    for (cid, n, c, h, w, oc, k, s, p, d, g, bias, act, residual, _) in CONVS:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((oc, c // g, *k)) / np.sqrt(c // g * k[0] * k[1])).astype(np.float32)
        b = rng.standard_normal(oc).astype(np.float32) if bias else None
        oh, ow = _out_hw(h, w, k, s, p, d)
        res = rng.standard_normal((n, oc, oh, ow)).astype(np.float32) if residual else None
        inits.append(numpy_helper.from_array(wt, f"w_{cid}"))
        conv_in = [f"x_{cid}", f"w_{cid}"]
        if bias:
            inits.append(numpy_helper.from_array(b, f"b_{cid}"))
            conv_in.append(f"b_{cid}")
        ins.append(helper.make_tensor_value_info(f"x_{cid}", TensorProto.FLOAT, x.shape))
        feeds[f"x_{cid}"] = x
        cur = f"c_{cid}"
        nodes.append(helper.make_node("Conv", conv_in, [cur], kernel_shape=list(k), strides=list(s),
                                      pads=list(p), dilations=list(d), group=g))
        if residual:
            ins.append(helper.make_tensor_value_info(f"r_{cid}", TensorProto.FLOAT, res.shape))
            feeds[f"r_{cid}"] = res
            nodes.append(helper.make_node("Add", [cur, f"r_{cid}"], [f"a_{cid}"]))
            cur = f"a_{cid}"
        if act == "relu":
            nodes.append(helper.make_node("Relu", [cur], [f"y_{cid}"]))
        elif act == "clip":
            nodes.append(helper.make_node("Clip", [cur, "zero", "six"], [f"y_{cid}"]))
        else:
            nodes.append(helper.make_node("Identity", [cur], [f"y_{cid}"]))
        outs.append(helper.make_tensor_value_info(f"y_{cid}", TensorProto.FLOAT, None))
        refs[f"y_{cid}"] = conv_f16(x, wt, b, s, p, d, g, act, (0.0, 6.0), res, acc32=True)[0]
    inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6, np.float32), "six")]
    model = helper.make_model(helper.make_graph(nodes, "convs", ins, outs, inits),
                              opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model, feeds, refs


def fc_bank(rng):
    """FC layers (Gemm transB, MatMul, with / without bias, ReLU, N not a multiple of 32,
    K = 2304) in one model; with the references."""
    cases = [("bias_relu", 3, 300, 45, True, True), ("nobias", 2, 2304, 32, False, False),
             ("bias", 1, 70, 7, True, False)]
    nodes, inits, ins, outs, feeds, refs = [], [], [], [], {}, {}
    for cid, m, k, n, bias, relu in cases:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = (rng.standard_normal((n, k)) * np.sqrt(2.0 / k)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32) if bias else None
        inits.append(numpy_helper.from_array(w, f"w_{cid}"))
        gin = [f"x_{cid}", f"w_{cid}"]
        if bias:
            inits.append(numpy_helper.from_array(b, f"b_{cid}"))
            gin.append(f"b_{cid}")
        ins.append(helper.make_tensor_value_info(f"x_{cid}", TensorProto.FLOAT, x.shape))
        feeds[f"x_{cid}"] = x
        nodes.append(helper.make_node("Gemm", gin, [f"g_{cid}"], transB=1))
        nodes.append(helper.make_node("Relu" if relu else "Identity", [f"g_{cid}"], [f"y_{cid}"]))
        outs.append(helper.make_tensor_value_info(f"y_{cid}", TensorProto.FLOAT, None))
        refs[f"y_{cid}"] = fc_f16(x, w.T, b, relu, acc32=True)[0]
    model = helper.make_model(helper.make_graph(nodes, "fcs", ins, outs, inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, feeds, refs


def build(model, feeds, out, isa=TARGET):
    path = str(out / "m.onnx")
    os.makedirs(out, exist_ok=True)
    onnx.save(model, path)
    b = compile_bundle([ModelSpec("m", path, [{k: v.shape for k, v in feeds.items()}],
                                  enable_ioc16=True)], str(out / "o"), save_c_array=False, isa=isa)
    return b, b.models[0].plans[0]


def run(bundle, plan, feeds, isa=TARGET):
    runner = build_runner(bundle.files["kernels_c"], target=isa)
    outs = run_blob(runner, bundle.files["m.tiny"], [feeds[n] for n in plan.graph.inputs],
                    emulator=emulator_of(isa))
    return dict(zip(plan.output_names, outs))


@pytest.fixture(scope="module")
def convs(tmp_path_factory):
    require_target(TARGET)
    model, feeds, refs = conv_bank(np.random.default_rng(1717))
    bundle, plan = build(model, feeds, tmp_path_factory.mktemp("fml_convs"))
    return plan, run(bundle, plan, feeds), refs


@pytest.mark.parametrize("case", CONVS, ids=[c[0] for c in CONVS])
def test_conv_accumulates_in_float32(case, convs):
    plan, got, refs = convs
    cid, impl = case[0], case[-1]
    conv = [i for i in plan.instrs if i.impl.startswith("conv.")
            and any(o.startswith(f"c_{cid}") or o.startswith(f"a_{cid}") or o.startswith(f"y_{cid}")
                    for o in i.outputs)]
    assert len(conv) == 1, [(i.impl, i.outputs) for i in plan.instrs]
    assert conv[0].impl == f"conv.{impl}_neon64fp16_f16" and conv[0].kernel.name.endswith("_neon64fp16fml")
    assert "accumulating in float32" in conv[0].note
    np.testing.assert_array_equal(got[f"y_{cid}"], refs[f"y_{cid}"])


def test_fc_accumulates_in_float32(tmp_path):
    require_target(TARGET)
    model, feeds, refs = fc_bank(np.random.default_rng(1718))
    bundle, plan = build(model, feeds, tmp_path)
    fcs = [i for i in plan.instrs if i.impl == "matmul.fc_neon64fp16_f16"]
    assert len(fcs) == 3 and all(i.kernel.name.endswith("_neon64fp16fml") for i in fcs)
    got = run(bundle, plan, feeds)
    for name, ref in refs.items():
        np.testing.assert_array_equal(got[name], ref, err_msg=name)


def test_inner_loops_are_fmlal(tmp_path, summary):

    t = require_target(TARGET)
    model, feeds, _ = conv_bank(np.random.default_rng(1717))
    bundle, plan = build(model, feeds, tmp_path)
    fmodel, ffeeds, _ = fc_bank(np.random.default_rng(1718))
    fbundle, _ = build(fmodel, ffeeds, tmp_path / "fc")
    funcs = {}
    for k, src in enumerate((bundle.files["kernels_c"], fbundle.files["kernels_c"])):
        obj = str(tmp_path / f"k{k}.o")
        subprocess.run([t.cc, *t.compile_flags(), "-O2", "-I", os.path.join(ROOT, "runtime", "include"),
                        "-c", src, "-o", obj], check=True)
        funcs.update(_functions(subprocess.run(["aarch64-linux-gnu-objdump", "-d", obj], check=True,
                                               stdout=subprocess.PIPE, text=True).stdout))
    fmlal = r"fmlal2?\s+v\d+\.4s, v\d+\.4h, v\d+\.(4h|h\[\d\])"
    # per k step of a GEMM half-tile: 8 rows x (fmlal + fmlal2); per input channel of the
    # direct tile: 9 taps x 4 channels x 4; per k of the FC panel: 8
    for prefix, least in (("conv2d_1x1_gemm8x16", 16), ("conv2d_direct3x3_s1", 9 * 16),
                          ("fc_f16", 8)):
        names = [n for n in funcs if n.startswith(prefix) and n.endswith("fml")]
        assert names, (prefix, sorted(funcs))
        found = [ins for ins in funcs[names[0]] if re.search(fmlal, ins)]
        assert any(i.startswith("fmlal2") for i in found), names[0]
        summary(f"arm64-fp16fml {names[0]}: {len(found)} x fmlal/fmlal2, e.g. " + "; ".join(found[:4]))
        assert len(found) >= least, (names[0], found[:20])
        assert not [i for i in funcs[names[0]] if re.search(r"fmla\s+v\d+\.8h", i)], names[0]


ZOO = ["mobilenet_v1", "mobilenet_v2", "resnet18", "shufflenet_v2"]


def zoo_errors(name, workdir):
    """{level: (max|d|/max|ref|, max|d|/max(1,|ref|), top-1)} for both accumulations, and
    MegEngine's top-1."""
    path = mge_zoo.dump_model(name, str(workdir / f"{name}.mge"), True, input_shape=ZOO_SHAPE)
    x = np.random.default_rng(0).standard_normal(ZOO_SHAPE).astype(np.float32)
    (ref,) = mge_zoo.reference_output(path, {"data": x})
    out = {}
    for level in ("arm64-fp16", TARGET):
        b = compile_bundle([ModelSpec("m", path, [{"data": x.shape}], enable_ioc16=True)],
                           str(workdir / level), save_c_array=False, isa=level)
        plan = b.models[0].plans[0]
        assert_all_float16(plan)
        (y,) = run_blob(build_runner(b.files["kernels_c"], target=level), b.files["m.tiny"], [x],
                        emulator=emulator_of(level))
        d = np.abs(y.astype(np.float64) - ref)
        out[level] = (float(d.max() / np.abs(ref).max()),
                      float(np.max(d / np.maximum(1, np.abs(ref)))), int(np.argmax(y)))
    return out, int(np.argmax(ref))


def test_resnet18_float32_accumulation_is_closer(tmp_path, summary):
    """ResNet-18 (K up to 4608, outputs ~100): float32 accumulation lowers the error
    against MegEngine's float32 output; same top-1 with both."""
    require_target(TARGET)
    require_target("arm64-fp16")
    errs, top = zoo_errors("resnet18", tmp_path)
    for level, (scale, rule, t1) in errs.items():
        summary(f"ioc16 resnet18 {ZOO_SHAPE} on {level}: max|d|/max|ref| {scale:.2e}, "
                f"max|d|/max(1,|ref|) {rule:.2e}, top-1 {t1} (MegEngine fp32 {top})")
        assert t1 == top
    assert errs[TARGET][1] < errs["arm64-fp16"][1]
    assert errs[TARGET][0] < errs["arm64-fp16"][0]


@pytest.mark.parametrize("flags,expected", [
    ({"asimd", "fphp", "asimdhp", "asimdfhm"}, "arm64-fp16fml"),
    ({"asimd", "fphp", "asimdhp"}, "arm64-fp16"),
    # with the dot product too, native stays arm64-dotfp16 (float16 accumulation)
    ({"asimd", "asimddp", "fphp", "asimdhp", "asimdfhm"}, "arm64-dotfp16"),
])
def test_native_level_with_fhm(monkeypatch, flags, expected):
    from megcc_builder.isa import levels

    monkeypatch.setattr(levels, "_host_arch", lambda: "aarch64")
    monkeypatch.setattr(levels, "_cpu_flags", lambda: frozenset(flags))
    assert levels.host_level() == expected


def test_fml_level_is_a_float16_level(tmp_path):
    """enable_ioc16 is accepted on arm64-fp16fml and its toolchain passes the FHM flag."""
    from megcc_builder import targets
    from megcc_builder.isa import spec

    t = targets.load(TARGET)
    assert "-march=armv8.2-a+fp16+fp16fml" in t.machine_flags and t.isa == TARGET
    assert spec(TARGET).vec("f16").gemm is not None
