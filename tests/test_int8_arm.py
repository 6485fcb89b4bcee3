"""int8 networks on the Arm application-processor levels, run under qemu: arm64-neon and
armv7-neon (the NEON `vmlal` kernels, conv_gemm_neon_s8.py) and arm64-i8mm (`smmla`,
conv_neon64i8mm_s8.py).

- MegEngine int8 nets (tests/mge_quant_zoo.py: MobileNetV2-, ResNet-18-, ShuffleNetV2-style
  and the digits CNN): every dense convolution on the level's kernel, the output identical
  to the portable build's on the host (whose own agreement with MegEngine is
  tests/test_int8_mge_models.py's), and within one step of MegEngine's run of the .mge;
- ONNX QOperator / QDQ models quantized by onnxruntime (tests/int8_models.py): identical to
  the portable build;
- the generated inner loops are `smlal` (by element) and `smmla` (checked on the
  cross-compiled objects, printed in the summary).

The kernels' per-case tests (odd channels, tails, saturation, both roundings, per-channel
scales, zero points) are in tests/kernels/quant/ on the arm64, armv7 and arm64i8mm
platforms.
"""
import os
import re
import subprocess
import tempfile

import numpy as np
import pytest

import int8_models
import mge_quant_zoo as zoo
from build_support import require_target
from megcc_builder import targets
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.frontend.mge import load_mge
from megcc_builder.host import run_compiled

NEON = "quant.conv_gemm_neon_s8.lower_qlinear_conv_gemm_neon"
NEON64 = "quant.conv_gemm_neon_s8.lower_qlinear_conv_gemm_neon64"
I8MM = "quant.conv_neon64i8mm_s8.lower_qlinear_conv_i8mm"
DOT = "quant.conv_neon64dot_s8.lower_qlinear_conv_dot"
# level -> (target, its headline int8 convolution kernel)
LEVELS = {"arm64-neon": ("arm64", NEON64), "armv7-neon": ("armv7", NEON),
          "arm64-i8mm": ("arm64-i8mm", I8MM)}
# the kernels the cost model may give a dense convolution on each level (per layer: a 6-row
# panel wastes less than an 8-row one for 10 output channels, sdot's quads less than smmla's
# octets for one input channel)
ARM_CONVS = {"arm64-neon": {NEON, NEON64}, "armv7-neon": {NEON},
             "arm64-i8mm": {NEON, NEON64, DOT, I8MM}}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return str(tmp_path_factory.mktemp("int8_arm"))


def _build(path, feeds, out, isa):
    shapes = {k: v.shape for k, v in feeds.items()}
    bundle = compile_bundle([ModelSpec("model", path, [shapes], True, isa)], out,
                            save_c_array=False, isa=isa)
    return bundle, bundle.models[0].plans[0]


def _run(bundle, plan, feeds, target):
    outs = run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"],
                        [feeds[n] for n in plan.graph.inputs], target=target)
    return list(outs)


def _dense_convs(plan):
    return [i for i in plan.instrs if i.kernel.name.startswith("qlinear_conv")]


_portable_cache = {}


def _portable(key, path, feeds, tmp):
    if key not in _portable_cache:
        bundle, plan = _build(path, feeds, os.path.join(tmp, "generic"), "generic")
        _portable_cache[key] = _run(bundle, plan, feeds, None)
    return _portable_cache[key]


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18", "shufflenet_v2", "digits"])
def test_mge_net_on_arm_level(work, name, level, summary):
    target, impl = LEVELS[level]
    require_target(target)
    path = zoo.dump(name, work, "optimized")
    x = np.concatenate([zoo.net_input(name, 100 + s) for s in range(2)])
    feeds = {"data": x}
    with tempfile.TemporaryDirectory() as tmp:
        bundle, plan = _build(path, feeds, os.path.join(tmp, level), level)
        convs = _dense_convs(plan)
        assert convs and all(i.impl in ARM_CONVS[level] for i in convs), \
            [(i.kernel.name, i.impl) for i in convs]
        on_headline = sum(i.impl == impl for i in convs)
        assert on_headline >= len(convs) // 2, [(i.kernel.name, i.impl) for i in convs]
        (ours,) = _run(bundle, plan, feeds, target)
        (portable,) = _portable(("mge", name), path, feeds, tmp)
    np.testing.assert_array_equal(ours, portable)
    (ref,) = zoo.reference_output(path, feeds)
    graph = load_mge(path)
    (last,) = [op for op in graph.ops if op.outputs[0] == graph.outputs[0]]
    assert last.type == "DequantizeLinear", last.type
    step = float(graph.tensor(last.inputs[1]).data)
    steps = np.abs(ours.astype(np.float64) - ref) / step
    summary(f"int8 mge {name} [optimized dump, {level} on qemu]: {on_headline} of {len(convs)} "
            f"convolutions on {impl.rsplit('.', 1)[-1]} (the rest on other NEON ones), identical to the portable build, "
            f"{np.mean(ours == ref):.2%} bit-exact against MegEngine, "
            f"{np.mean(steps <= 1 + 1e-6):.2%} within one step, largest {steps.max():.3g}")
    assert np.mean(steps <= 1 + 1e-6) >= 0.99
    assert np.array_equal(np.argmax(ours, 1), np.argmax(ref, 1))


def _onnx_model(name, work):
    model = int8_models.MODELS[name]()
    fp = int8_models.prepared(model, work, name)
    import onnxruntime as ort
    inp = ort.InferenceSession(fp, providers=["CPUExecutionProvider"]).get_inputs()[0]
    rng = np.random.default_rng(3)
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    x = rng.standard_normal(shape).astype(np.float32)
    return int8_models.quantize_all(fp, work, inp.name, calib,
                                    forms=("qoperator", "qdq_per_channel")), inp.name, x


@pytest.mark.parametrize("level", ["arm64-neon", "armv7-neon"])
@pytest.mark.parametrize("name,form", [("mobilenet_se", "qoperator"),
                                       ("mobilenet_se", "qdq_per_channel"),
                                       ("squeezenet", "qdq_per_channel")])
def test_onnx_quantized_model_on_arm_level(work, name, form, level, summary):
    target, impl = LEVELS[level]
    require_target(target)
    paths, inp, x = _onnx_model(name, work)
    feeds = {inp: x}
    with tempfile.TemporaryDirectory() as tmp:
        bundle, plan = _build(paths[form], feeds, os.path.join(tmp, level), level)
        convs = _dense_convs(plan)  # (depthwise ones have their own kernels)
        on_neon = [i for i in convs if i.impl == impl]
        assert on_neon and all(i.impl in ARM_CONVS[level] for i in convs), \
            [(i.kernel.name, i.impl) for i in convs]
        gemms = [i for i in plan.instrs if i.kernel.name.startswith(("qgemm", "qlinear_matmul"))]
        assert all(i.impl.startswith("quant.matmul_gemm_neon_s8.") for i in gemms), \
            [(i.kernel.name, i.impl) for i in gemms]
        ours = _run(bundle, plan, feeds, target)
        portable = _portable(("onnx", name, form), paths[form], feeds, tmp)
    for a, b in zip(ours, portable):
        np.testing.assert_array_equal(a, b)
    summary(f"int8 onnx {name} {form} [{level} on qemu]: {len(on_neon)} of {len(convs)} "
            f"convolutions on {impl.rsplit('.', 1)[-1]}, {len(gemms)} QGemm/QLinearMatMul on "
            "the NEON GEMM, identical to the portable build")


def _disassembly(path, feeds, isa, target, impl, tmp_path):
    t = targets.load(target)
    bundle, plan = _build(path, feeds, str(tmp_path / "out"), isa)
    name = next(i.kernel.name for i in plan.instrs if i.impl == impl)
    obj = str(tmp_path / "kernels.o")
    inc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime",
                       "include")
    subprocess.run([t.cc, *t.compile_flags(), "-I", inc, "-I", str(tmp_path / "out"), "-c",
                    bundle.files["kernels_c"], "-o", obj], check=True)
    objdump = t.cc.replace("gcc", "objdump")
    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", obj], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(rf"<{name}[^>]*>:\n(.*?)\n\n", dis, re.S)
    assert m, f"{name} not in the object"
    return name, m.group(1)


@pytest.mark.parametrize("level", list(LEVELS))
def test_inner_loop_instructions(work, tmp_path, level, summary):
    """The multiply-accumulate of each kernel's inner loop: `smlal` by element (vmlal_lane_s16:
    AArch64 `smlal vA.4s, vB.4h, vC.h[i]`, ARMv7 `vmlal.s16 qA, dB, dC[i]`), one per
    accumulator (8x12: 24, 6x8: 12), or `smmla` (16 per octet)."""
    target, impl = LEVELS[level]
    require_target(target)
    path = zoo.dump("resnet18", work, "optimized")
    name, body = _disassembly(path, {"data": zoo.net_input("resnet18")}, level, target, impl,
                              tmp_path)
    pattern, least = {
        "arm64-neon": (r"smlal2?\s+v\d+\.4s, v\d+\.[48]h, v\d+\.h\[\d\]", 24),
        "armv7-neon": (r"vmlal\.s16\s+q\d+, d\d+, d\d+\[\d\]", 12),
        "arm64-i8mm": (r"smmla\s+v\d+\.4s, v\d+\.16b, v\d+\.16b", 16)}[level]
    found = re.findall(pattern, body)
    assert len(found) >= least, body[:3000]
    summary(f"{level} {name}: {len(found)} x {found[0].split()[0]}, e.g. " + "; ".join(found[:4]))


@pytest.mark.parametrize("flags,expected", [
    ({"fp", "asimd"}, "arm64-neon"),
    ({"asimd", "asimddp"}, "arm64-dot"),
    ({"asimd", "fphp", "asimdhp"}, "arm64-fp16"),
    # Cortex-A55/A76-class: both; `native` used to be arm64-dot and lose the fp16 kernels
    ({"asimd", "asimddp", "fphp", "asimdhp"}, "arm64-dotfp16"),
    ({"asimd", "asimddp", "fphp", "asimdhp", "i8mm"}, "arm64-i8mm"),
])
def test_native_level_of_an_arm_host(monkeypatch, flags, expected):
    """What `native` resolves to on an AArch64 build host with these /proc/cpuinfo features."""
    from megcc_builder.isa import levels

    monkeypatch.setattr(levels, "_host_arch", lambda: "aarch64")
    monkeypatch.setattr(levels, "_cpu_flags", lambda: frozenset(flags))
    assert levels.host_level() == expected
    spec = levels.spec(expected)
    if "asimdhp" in flags:
        assert spec.vec("f16").gemm is not None  # the float16 kernels stay available
