"""enable_ioc16 on Armv8.2-A + FP16 (level arm64-fp16, run under qemu-aarch64 -cpu max):
what exists so far is the float16 fully-connected layer (passes/ioc16.py,
kernels/matmul/fc_neon64fp16_f16.py).

- the kernel against NumPy float16 arithmetic in the kernel's order (each FMA rounds its
  exact result to float16 once): bit-exact, over tile edges, bias, ReLU, several rows;
- the generated code uses 8-lane fp16 FMAs (`fmla vN.8h`), shown in the test report;
- a chain of FC layers is one float16 region: one conversion in, one out;
- the digits sample (its FC layer in float16) classifies the real held-out images as
  MegEngine's float32 model does;
- asking for ioc16 on a level without float16 arithmetic is a one-line error naming it.
"""
import os
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


def numpy_f16_fc(x16, w, b, relu):
    """float16 arithmetic in the kernel's order: acc = fl16(acc + a_k * b_k) for k = 0..K-1
    (float64 holds each product and sum exactly here), starting from the float16 bias."""
    w16 = w.astype(np.float16).astype(np.float64)
    acc = np.zeros((x16.shape[0], w.shape[1])) if b is None else \
        np.broadcast_to(b.astype(np.float16).astype(np.float64), (x16.shape[0], w.shape[1])).copy()
    xa = x16.astype(np.float64)
    for kk in range(w.shape[0]):
        acc = (acc + xa[:, kk:kk + 1] * w16[kk]).astype(np.float16).astype(np.float64)
    if relu:
        acc = np.maximum(acc, 0)
    return acc.astype(np.float16)


def build_and_run(model, x, tmp_path, isa=TARGET, ioc16=True):
    require_target(TARGET)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    b = compile_bundle([ModelSpec("m", path, [{"x": x.shape}], enable_ioc16=ioc16)],
                       str(tmp_path / "out"), save_c_array=False, isa=isa)
    plan = b.models[0].plans[0]
    runner = build_runner(b.files["kernels_c"], target=TARGET)
    (y,) = run_blob(runner, b.files["m.tiny"], [x], emulator=emulator_of(TARGET))
    return y, plan, b


# (N, transB, bias, relu), M, K: column edges (N % 32 = 1, 8, 17, 31), one and several rows
CASES = [([(40, 1, True, False)], 1, 64), ([(33, 0, False, True)], 3, 17),
         ([(8, 1, True, True)], 2, 5), ([(96, 1, False, False)], 5, 300),
         ([(17, 0, True, True)], 1, 1), ([(63, 1, True, False)], 4, 129)]


@pytest.mark.parametrize("layers,m,k", CASES, ids=[f"n{c[0][0][0]}_m{c[1]}_k{c[2]}" for c in CASES])
def test_fc_f16_kernel_matches_numpy_float16(tmp_path, layers, m, k, summary):
    model = fc_model(layers, m, k, seed=k)
    x = np.random.default_rng(m + k).standard_normal((m, k)).astype(np.float32)
    y, plan, _ = build_and_run(model, x, tmp_path)
    impls = {i.impl for i in plan.instrs}
    assert "matmul.fc_neon64fp16_f16" in impls, impls
    n, trans_b, bias, relu = layers[0]
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w = inits["w0"].T if trans_b else inits["w0"]
    ref16 = numpy_f16_fc(x.astype(np.float16), w, inits.get("b0"), relu)
    np.testing.assert_array_equal(y, ref16.astype(np.float32))
    exact = x.astype(np.float64) @ w + (inits["b0"] if bias else 0)
    exact = np.maximum(exact, 0) if relu else exact
    err = float(np.max(np.abs(y - exact) / np.maximum(1, np.abs(exact))))
    summary(f"ioc16 FC M={m} K={k} N={n}: bit-exact vs NumPy float16; vs float64 "
            f"{err:.2e} (float16 input rounding + float16 accumulation)")


def test_fc_chain_is_one_region_and_uses_fp16_fma(tmp_path, summary):
    model = fc_model([(200, 1, True, True), (120, 0, True, True), (10, 1, False, False)], 2, 300, 5)
    x = np.random.default_rng(9).standard_normal((2, 300)).astype(np.float32)
    y, plan, bundle = build_and_run(model, x, tmp_path)
    assert conversion_count(plan.instrs, plan.graph) == 2
    assert sum(i.impl == "matmul.fc_neon64fp16_f16" for i in plan.instrs) == 3
    (tmp_path / "f32").mkdir()
    y32, _, _ = build_and_run(model, x, tmp_path / "f32", ioc16=False)
    err = float(np.max(np.abs(y - y32) / np.maximum(1, np.abs(y32))))
    summary(f"ioc16 3-layer FC chain: 2 conversions; vs the float32 build {err:.2e}")
    assert err <= 1e-2
    t = require_target(TARGET)
    obj = str(tmp_path / "k.o")
    subprocess.run([t.cc, *t.compile_flags(), "-O2", "-I",
                    os.path.join(ROOT, "runtime", "include"), "-c", bundle.files["kernels_c"],
                    "-o", obj], check=True)
    dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", obj], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    fmla = [ln.split("\t", 2)[-1].strip() for ln in dis.splitlines() if "fmla" in ln and ".8h" in ln]
    summary("ioc16 FC inner loop: " + "; ".join(fmla[:4]))
    assert len(fmla) >= 4


def test_digits_fc_in_float16(tmp_path, summary):
    require_target(TARGET)
    model = os.path.join(ROOT, "samples", "digits", "digits.mge")
    data = np.load(os.path.join(ROOT, "samples", "digits", "digits_test.npz"))
    images, labels = data["x"], data["y"]
    (ref,) = mge_zoo.reference_output(model, {"data": images})
    b = compile_bundle([ModelSpec("d", model, [{"data": images.shape}], enable_ioc16=True)],
                       str(tmp_path), save_c_array=False, isa=TARGET)
    plan = b.models[0].plans[0]
    assert "matmul.fc_neon64fp16_f16" in {i.impl for i in plan.instrs}
    runner = build_runner(b.files["kernels_c"], target=TARGET)
    (got,) = run_blob(runner, b.files["d.tiny"], [images], emulator=emulator_of(TARGET))
    err = float(np.max(np.abs(got - ref) / np.maximum(1, np.abs(ref))))
    acc = float(np.mean(np.argmax(got, 1) == labels))
    summary(f"ioc16 digits (FC in float16) on {TARGET}: accuracy {acc:.2%} (MegEngine fp32 "
            f"{np.mean(np.argmax(ref, 1) == labels):.2%}), max error {err:.2e}")
    np.testing.assert_array_equal(np.argmax(got, 1), np.argmax(ref, 1))


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
