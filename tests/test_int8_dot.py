"""enable_nchw44_dot on its level, arm64-dot (Armv8.2-A dot product: `-march=armv8.2-a+dotprod`,
run under qemu-aarch64 -cpu max): int8 networks built with the option run their
convolutions on the `sdot` kernel (kernels/quant/conv_neon64dot_s8.py) and give exactly the
portable kernels' output; MegEngine's own run of the same .mge is the oracle for the whole
net (one quantization step, as tests/test_int8_mge_models.py); the generated code's inner
loop is `sdot` (checked on the cross-compiled object, printed in the report).

The kernel's per-case tests (odd channels, tails, saturation, both roundings, per-channel
scales, zero points) are in tests/kernels/quant/ on the `arm64dot` platform.
"""
import os
import re
import subprocess
import tempfile

import numpy as np
import pytest

import mge_quant_zoo as zoo
from build_support import require_target
from megcc_builder import targets
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.frontend.mge import load_mge
from megcc_builder.host import run_compiled

TARGET = "arm64-dot"
DOT_IMPL = "quant.conv_neon64dot_s8.lower_qlinear_conv_dot"
NEON64_IMPL = "quant.conv_gemm_neon_s8.lower_qlinear_conv_gemm_neon64"


@pytest.fixture(scope="module")
def qzoo_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mge_quant_dot"))


def _build(path, feeds, tmp, isa, nchw44_dot):
    shapes = {k: v.shape for k, v in feeds.items()}
    bundle = compile_bundle([ModelSpec("model", path, [shapes], True, isa,
                                       enable_nchw44_dot=nchw44_dot)],
                            tmp, save_c_array=False, isa=isa)
    return bundle, bundle.models[0].plans[0]


def _run(bundle, plan, feeds, target):
    outs = run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"],
                        [feeds[n] for n in plan.graph.inputs], target=target)
    return dict(zip(plan.output_names, outs))


@pytest.mark.parametrize("name", ["resnet18", "shufflenet_v2", "digits"])
def test_net_with_enable_nchw44_dot(qzoo_dir, name, summary):
    require_target(TARGET)
    path = zoo.dump(name, qzoo_dir, "nchw44_dot")  # as MegCC's ARM flow dumps it
    x = np.concatenate([zoo.net_input(name, 100 + s) for s in range(2)])
    feeds = {"data": x}
    with tempfile.TemporaryDirectory() as tmp:
        bundle, plan = _build(path, feeds, os.path.join(tmp, "dot"), "arm64-dot", True)
        dot = [i for i in plan.instrs if i.impl == DOT_IMPL]
        convs = [i for i in plan.instrs if i.kernel.name.startswith("qlinear_")
                 and "conv" in i.kernel.name and "dwconv" not in i.kernel.name]
        # every one on sdot, except where the cost model finds the int16 NEON GEMM cheaper:
        # digits' first layer, one input channel, which wastes 3 of sdot's 4 lanes
        others = [i for i in convs if i.impl != DOT_IMPL]
        assert dot and all(i.impl == NEON64_IMPL for i in others) and len(others) <= 1, \
            [i.kernel.name for i in convs]
        (ours,) = _run(bundle, plan, feeds, TARGET).values()
        gbundle, gplan = _build(path, feeds, os.path.join(tmp, "generic"), "generic", False)
        assert not any(i.impl == DOT_IMPL for i in gplan.instrs)
        (portable,) = _run(gbundle, gplan, feeds, None).values()
    # the same integers as the portable kernels, so the same output
    np.testing.assert_array_equal(ours, portable)
    (ref,) = zoo.reference_output(path, feeds)
    graph = load_mge(path)  # the step: the scale of the final DequantizeLinear
    (last,) = [op for op in graph.ops if op.outputs[0] == graph.outputs[0]]
    assert last.type == "DequantizeLinear", last.type
    step = float(graph.tensor(last.inputs[1]).data)
    steps = np.abs(ours.astype(np.float64) - ref) / step
    summary(f"int8 mge {name} [nchw44_dot dump, --enable-nchw44-dot, arm64-dot on qemu]: "
            f"{len(dot)} convolutions on sdot, identical to the portable build, "
            f"{np.mean(ours == ref):.2%} bit-exact against MegEngine, "
            f"{np.mean(steps <= 1 + 1e-6):.2%} within one step")
    assert np.mean(steps <= 1 + 1e-6) >= 0.99
    assert np.array_equal(np.argmax(ours, 1), np.argmax(ref, 1))


def test_inner_loop_is_sdot(qzoo_dir, tmp_path, summary):
    """The dot kernel's object code multiplies with `sdot` (by element: `sdot vA.4s, vB.16b,
    vC.4b[i]`), 24 of them per K quad."""
    require_target(TARGET)
    t = targets.load(TARGET)
    path = zoo.dump("resnet18", qzoo_dir, "nchw44_dot")
    bundle, plan = _build(path, {"data": zoo.net_input("resnet18")}, str(tmp_path / "out"),
                          "arm64-dot", True)
    name = next(i.kernel.name for i in plan.instrs if i.impl == DOT_IMPL)
    obj = str(tmp_path / "kernels.o")
    inc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime",
                       "include")
    subprocess.run([t.cc, *t.compile_flags(), "-I", inc, "-I", str(tmp_path / "out"), "-c",
                    bundle.files["kernels_c"], "-o", obj], check=True)
    objdump = t.cc.replace("gcc", "objdump")
    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", obj], check=True,
                         capture_output=True, text=True).stdout
    # the kernel is a static function: its own symbol, or inlined into its caller
    m = re.search(rf"<{name}[^>]*>:\n(.*?)\n\n", dis, re.S)
    assert m, f"{name} not in the object"
    body = m.group(1)
    sdots = re.findall(r"sdot\s+v\d+\.4s, v\d+\.16b, v\d+\.4b\[\d\]", body)
    assert len(sdots) >= 24, body[:2000]
    loop = [ln.split("\t", 1)[-1].strip() for ln in body.splitlines() if "sdot" in ln][:6]
    summary(f"arm64-dot {name}: {len(sdots)} sdot instructions, e.g. " + "; ".join(loop))
