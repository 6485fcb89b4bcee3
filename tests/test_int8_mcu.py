"""int8 models on the Cortex-M targets, each under qemu-system-arm (bare-metal runner,
files through semihosting): the digits CNN quantized by MegEngine's own flow
(samples/digits/digits_int8.mge) and by onnxruntime's QDQ quantizer, on the Cortex-M4
(level cortex-m-dsp: SMLAD kernels) and the Cortex-M55 (cortex-m-mve: Helium kernels).

- float requantization (the model's own): logits bit-exact against MegEngine for the .mge,
  and for the QDQ model equal to the host's portable build, with onnxruntime's top-1
  agreement and accuracy reported; every convolution / fully connected layer on the
  target's extension kernel (asserted from the plan);
- fixed-point requantization (enable_fixed_point_requant, Q31 multiplier + shift): the same
  integers on every platform (host portable = M4 = M55, bit for bit), and its measured
  deviation from the float mode reported: accuracy within one image of it and top-1
  agreement >= 97 % on the 100 held-out digits.
"""
from __future__ import annotations

import functools
import os

import numpy as np
import pytest

import mge_quant_zoo as zoo
from build_support import ROOT, require_target
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import run_compiled

DIGITS = os.path.join(ROOT, "samples", "digits")
INT8_MGE = os.path.join(DIGITS, "digits_int8.mge")
# target -> (ISA level, the modules its int8 convolutions and products must come from)
TARGETS = {"cortex-m4": ("cortex-m-dsp", {"conv_dsp_s8", "dwconv_dsp_s8", "matmul_dsp_s8"}),
           "cortex-m55": ("cortex-m-mve", {"conv_mve_s8", "dwconv_mve_s8", "matmul_mve_s8"})}
INT8_KERNELS = ("qlinear_conv", "qlinear_dwconv", "qlinear_matmul", "qgemm")


@functools.lru_cache(maxsize=None)
def _images():
    data = np.load(os.path.join(DIGITS, "digits_test.npz"))
    return data["x"].astype(np.float32), data["y"].astype(np.int64)


@functools.lru_cache(maxsize=None)
def _megengine_logits():
    x, _ = _images()
    return np.concatenate([zoo.reference_output(INT8_MGE, {"data": img[None]})[0] for img in x])


@functools.lru_cache(maxsize=None)
def _qdq_model(cache: str) -> str:
    import int8_models

    model, x_test, _ = int8_models.digits_cnn()
    float_path = int8_models.prepared(model, cache, "digits_mcu")
    calib = [x_test[i:i + 1] for i in range(0, 64)]
    return int8_models.quantize_all(float_path, cache, "data", calib, forms=("qdq_s8",))["qdq_s8"]


def _run(path: str, level: str, target, fixed: bool, tmp: str):
    """(logits of the 100 images as one batch, plan) of `path` built for `level`."""
    x, _ = _images()
    out = os.path.join(tmp, f"{level}_{int(fixed)}")
    spec = ModelSpec("m", path, [{"data": tuple(x.shape)}], True, level,
                     enable_fixed_point_requant=fixed)
    b = compile_bundle([spec], out, save_c_array=False, isa=level)
    plan = b.models[0].plans[0]
    (logits,) = run_compiled(b.files["kernels_c"], b.files["m.tiny"], [x], target=target)
    return logits, plan


def _assert_extension_kernels(plan, allowed):
    """Every int8 convolution / product instruction came from the target's kernels; returns
    {implementation: instruction count}."""
    used = {}
    for ins in plan.instrs:
        if ins.kernel.name.startswith(INT8_KERNELS):
            used[ins.impl] = used.get(ins.impl, 0) + 1
    assert used, "no int8 convolution or product in the plan"
    bad = [impl for impl in used if impl.split(".")[-2] not in allowed]
    assert not bad, f"int8 layers not on the extension's kernels: {bad}"
    return used


def _names(used) -> str:
    return ", ".join(f"{n} x {impl.split('.')[-2]}" for impl, n in sorted(used.items()))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_megengine_int8_digits_on_cortex_m(target, tmp_path, summary):
    require_target(target)
    level, wanted = TARGETS[target]
    x, labels = _images()
    ref = _megengine_logits()
    ours, plan = _run(INT8_MGE, level, target, False, str(tmp_path))
    used = _assert_extension_kernels(plan, wanted)
    assert np.array_equal(ours, ref), "float-mode logits differ from MegEngine's"

    host_fixed, _ = _run(INT8_MGE, "generic", None, True, str(tmp_path))
    fixed, fplan = _run(INT8_MGE, level, target, True, str(tmp_path))
    _assert_extension_kernels(fplan, wanted)
    assert any("_q31" in i.kernel.name for i in fplan.instrs), "no fixed-point kernel"
    assert np.array_equal(fixed, host_fixed), "fixed point differs between host and target"
    acc_float = float(np.mean(ours.argmax(1) == labels))
    acc_fixed = float(np.mean(fixed.argmax(1) == labels))
    agree = float(np.mean(ours.argmax(1) == fixed.argmax(1)))
    differ = float(np.mean(ours != fixed))
    summary(f"digits_int8.mge on {target} ({_names(used)}): "
            f"float-mode accuracy {acc_float:.0%} bit-exact with MegEngine; fixed point "
            f"{acc_fixed:.0%}, top-1 agreement {agree:.0%}, {differ:.1%} of logits differ, "
            f"largest |difference| {np.max(np.abs(ours - fixed)):.4g} "
            f"(logit range {np.ptp(ours):.3g})")
    assert abs(acc_fixed - acc_float) <= 0.01 and agree >= 0.97


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_onnx_qdq_digits_on_cortex_m(target, tmp_path_factory, summary):
    import onnxruntime as ort

    require_target(target)
    level, wanted = TARGETS[target]
    tmp = str(tmp_path_factory.mktemp("qdq"))
    path = _qdq_model(str(tmp_path_factory.getbasetemp()))
    x, labels = _images()
    so = ort.SessionOptions()
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    (ort_out,) = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(
        None, {"data": x})
    host, _ = _run(path, "generic", None, False, tmp)
    ours, plan = _run(path, level, target, False, tmp)
    used = _assert_extension_kernels(plan, wanted)
    assert np.array_equal(ours, host), "the target's int8 kernels differ from the portable ones"
    host_fixed, _ = _run(path, "generic", None, True, tmp)
    fixed, _ = _run(path, level, target, True, tmp)
    assert np.array_equal(fixed, host_fixed)
    acc = float(np.mean(ours.argmax(1) == labels))
    acc_ort = float(np.mean(ort_out.argmax(1) == labels))
    acc_fixed = float(np.mean(fixed.argmax(1) == labels))
    agree = float(np.mean(ours.argmax(1) == ort_out.argmax(1)))
    summary(f"digits QDQ (int8) on {target} ({_names(used)}): "
            f"accuracy {acc:.0%} (onnxruntime {acc_ort:.0%}, top-1 agreement {agree:.0%}, "
            f"max |logit difference| {np.max(np.abs(ours - ort_out)):.3g}); fixed point "
            f"{acc_fixed:.0%}, top-1 agreement with float mode "
            f"{np.mean(fixed.argmax(1) == ours.argmax(1)):.0%}")
    assert agree >= 0.99 and abs(acc - acc_ort) <= 0.01
    assert abs(acc_fixed - acc) <= 0.02


def test_fixed_point_flag_on_the_command_line(tmp_path):
    """`--enable-fixed-point-requant` reaches the kernels (Q31 epilogues, no float one for
    the convolutions) and the manifest; without it the model's float requantization."""
    import json
    import subprocess
    import sys

    model = os.path.join(DIGITS, "digits_int8_qdq.onnx")
    for flag in ([], ["--enable-fixed-point-requant"]):
        out = str(tmp_path / ("fixed" if flag else "float"))
        proc = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile", model,
                               "-o", out, "--input-shapes", "data=(1,1,8,8)", *flag],
                              cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        kernels = open(os.path.join(out, "kernels.c")).read()
        convs = [line for line in kernels.splitlines()
                 if line.startswith("static int qlinear_conv")]
        assert convs and all(("_q31" in line) == bool(flag) for line in convs), convs
        manifest = json.load(open(os.path.join(out, "manifest.json")))
        assert manifest["models"][0]["options"]["enable_fixed_point_requant"] == bool(flag)


@pytest.mark.parametrize("target, function, instruction, least, arch", [
    ("cortex-m4", "qlinear_conv_smlad_dsp_", "smlad", 8, []),
    ("cortex-m55", "qlinear_conv_vmladav_mve_", "vmlava.s8", 4, ["-m", "armv8.1-m.main"]),
])
def test_inner_loop_instructions(target, function, instruction, least, arch, tmp_path):
    """The kernels' object code: the 2 x 2 SMLAD tile (8 per 4 k) on the Cortex-M4, four
    VMLADAVA.S8 (binutils writes `vmlava.s8`) per 16 k on the Cortex-M55, in the
    convolution function itself (objdump told the architecture: MVE is not in its default)."""
    import subprocess

    t = require_target(target)
    level = TARGETS[target][0]
    b = compile_bundle([ModelSpec("m", INT8_MGE, [{"data": (1, 1, 8, 8)}], True, level)],
                       str(tmp_path / "out"), save_c_array=False, isa=level)
    obj = str(tmp_path / "kernels.o")
    subprocess.run([t.cc, *t.compile_flags(), "-O2", "-I", os.path.join(ROOT, "runtime", "include"),
                    "-c", b.files["kernels_c"], "-o", obj], check=True)
    dis = subprocess.run([t.cc[:-3] + "objdump", "-d", "--no-show-raw-insn", *arch, obj],
                         capture_output=True, text=True, check=True).stdout
    bodies = [block for block in dis.split("\n\n") if f"<{function}" in block.split("\n")[0]]
    assert bodies, f"no {function}* function in kernels.o"
    counts = [block.count(f"\t{instruction}") for block in bodies]
    assert min(counts) >= least, counts


def test_inspect_lists_ops_kept_in_float_requantization(tmp_path):
    """An integer convolution whose activation needs the real value (HSwish) keeps float
    requantization under --enable-fixed-point-requant, and `megcc inspect` names it; the
    plain one next to it goes fixed."""
    import subprocess
    import sys

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(np.array(v, dtype), n) for n, v, dtype in (
        ("xs", 0.05, np.float32), ("xz", 0, np.int8), ("ws", 0.01, np.float32),
        ("wz", 0, np.int8), ("ys", 0.04, np.float32), ("yz", 0, np.int8))]
    inits.append(numpy_helper.from_array(rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8),
                                         "w"))
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"],
                              [out], name=name, pads=[1, 1, 1, 1], **attrs)
             for name, out, attrs in (("plain", "y0", {}),
                                      ("with_hswish", "y1", {"activation": "HSwish"}))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.INT8, [1, 3, 6, 6])], [helper.make_tensor_value_info(
            y, TensorProto.INT8, None) for y in ("y0", "y1")], inits)
    path = str(tmp_path / "m.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    proc = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "inspect", path,
                           "--enable-fixed-point-requant"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("== enable_fixed_point_requant")[1].split("==")[0]
    assert "with_hswish (QLinearConv): activation HSwish" in notes and "plain" not in notes
    kernels = [line for line in proc.stdout.splitlines() if line.startswith("#")]
    assert any("_q31" in k and "-> y0" in k for k in kernels)
    assert any("_q31" not in k and "-> y1" in k for k in kernels)
