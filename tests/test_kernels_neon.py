"""The NEON kernels (armv7-neon: 6x8 GEMM tile; arm64-neon: 8x12 lane-FMA tile) against the
same numpy references as the portable and AVX2 ones, cross-built and run under qemu-user.

Every case of a test is one branch of a single model (own input, weights and output), so a
target costs one cross build and one emulator run per model; each branch still checks
which kernel computed its output, so no case can silently fall back to portable C.

Shapes are chosen for the vector code's edges on both tiles: output-channel counts leaving
every row tail of the 6- and 8-row tiles, spatial sizes whose column count leaves narrow
(<= 4) and wide (5..11) right-edge panels of the 8- and 12-column tiles, K above the
K-block (320), padding, stride 1/2/3, dilation, groups, channel multipliers and every
epilogue (none, bias, ReLU, Clip, a scalar activation).
"""
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from build_support import require_target
from megcc_builder.compiler import ModelSpec, build_plan, compile_bundle
from megcc_builder.options import CompileOptions
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import RUNTIME_DIR, run_onnx
from reference import assert_close
from test_kernels_isa import every_family_model, f32

# (target, ISA level, kernel suffix of the packed GEMM, its tile)
TARGETS = [("arm64", "arm64-neon", "_neon64", "8x12"), ("armv7", "armv7-neon", "_neon", "6x8")]
IDS = [t[0] for t in TARGETS]

def multi_model(nodes, inputs, consts, outputs):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph(nodes, "t", vi, outs,
                              [numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def kernel_of_output(model, isa):
    """{graph output: the kernel of the instruction that writes it}."""
    plan = build_plan(load_onnx(model), "t", CompileOptions(isa=isa))
    return {o: i.kernel.name for i in plan.instrs for o in i.outputs}


class Batch:
    """Cases as independent branches of one model: inputs, constants, outputs, references."""

    def __init__(self):
        self.nodes, self.inputs, self.consts = [], {}, {}
        self.outputs, self.refs, self.expect, self.what = [], [], [], []

    def add(self, nodes, inputs, consts, ref, expect, what):
        out = f"y{len(self.outputs)}"
        for node in nodes:  # the branch's final tensor 'y' becomes its own output
            node.output[:] = [out if o == "y" else o for o in node.output]
        self.nodes += nodes
        self.inputs.update(inputs)
        self.consts.update(consts)
        self.outputs.append(out)
        self.refs.append(ref)
        self.expect.append(expect)
        self.what.append(what)

    def run_and_check(self, target, isa, suffix):
        require_target(target)
        model = multi_model(self.nodes, self.inputs, self.consts, self.outputs)
        kernels = kernel_of_output(model, isa)
        for out, expect, what in zip(self.outputs, self.expect, self.what):
            name = kernels[out]
            if expect is not None:
                assert name.startswith(expect[0]) and name.endswith(expect[1]), (what, name)
        ys = run_onnx(model, self.inputs, isa=isa, target=target)
        for y, ref, what in zip(ys, self.refs, self.what):
            assert_close(y, ref, what=f"{what} on {target}")


@pytest.mark.parametrize("target,isa,suffix,tile", TARGETS, ids=IDS)
def test_kernels_compile_warning_free_and_guarded(target, isa, suffix, tile, tmp_path):
    """Every NEON kernel family with -std=c99 -Wall -Wextra -Werror -pedantic for its target;
    AArch64-only kernels refuse (#error) to compile for ARMv7."""
    t = require_target(target)
    path = str(tmp_path / "m.onnx")
    onnx.save(every_family_model(), path)
    bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / "out"), isa=isa)
    names = [k.name for k in bundle.kernels]
    assert sum(n.endswith(suffix) for n in names) >= 3 and any("depthwise" in n for n in names)
    assert any(n.startswith("ew_") for n in names)
    if target == "armv7":
        assert any(n.startswith("ew_") and n.endswith("_neon") for n in names), names
    assert "#include <arm_neon.h>" in open(bundle.files["kernels_c"]).read()

    def compile_for(tgt):
        return subprocess.run([tgt.cc, *tgt.compile_flags(), "-std=c99", "-Wall", "-Wextra",
                               "-Werror", "-pedantic", "-O2", "-I",
                               os.path.join(RUNTIME_DIR, "include"), "-c",
                               bundle.files["kernels_c"], "-o", str(tmp_path / "k.o")],
                              capture_output=True, text=True)

    proc = compile_for(t)
    assert proc.returncode == 0, proc.stderr
    if target == "arm64":
        proc = compile_for(require_target("armv7"))
        assert proc.returncode != 0 and "these kernels use NEON64" in proc.stderr


@pytest.mark.parametrize("name,target,isa", [("mobilenet_v2", "arm64", "arm64-neon"),
                                             ("resnet18", "arm64", "arm64-neon"),
                                             ("mobilenet_v2", "armv7", "armv7-neon")])
def test_zoo_network_matches_megengine(name, target, isa, tmp_path, summary):
    """Real networks (MegEngine zoo, seeded weights, BN folded, small input) end to end on
    the NEON kernels, against MegEngine running the same file."""
    import mge_zoo
    from megcc_builder.compiler import compile_model
    from megcc_builder.host import compile_and_run

    require_target(target)
    shape = (1, 3, 64, 64)
    path = mge_zoo.dump_model(name, str(tmp_path / f"{name}.mge"), True, input_shape=shape,
                              fuse_conv_bias=True)
    kernels = [i.kernel.name for i in compile_model(ModelSpec(name, path, isa=isa)).plans[0].instrs]
    neon = [k for k in kernels if k.endswith(("_neon", "_neon64"))]
    convs = [k for k in kernels if k.startswith("conv2d")]
    assert convs and all(k in neon for k in convs), kernels  # every conv runs on NEON
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)
    refs = mge_zoo.reference_output(path, {"data": x})
    ours = compile_and_run(path, {"data": x}, isa=isa, target=target)
    assert len(ours) == len(refs)
    for got, ref in zip(ours.values(), refs):
        err = assert_close(got, ref, what=f"{name} on {target}")
        summary(f"{name} on {target} ({isa}, {len(neon)}/{len(kernels)} NEON kernels): "
                f"max normalised error {err:.2e}")


@pytest.mark.parametrize("isa", ["arm64-neon", "armv7-neon"])
def test_packed_build_is_deterministic(isa, tmp_path):
    """Same model and options: byte-identical kernels.c and model (packed weights included),
    and the packed weights replace the originals (nothing stored twice)."""
    path = str(tmp_path / "m.onnx")
    onnx.save(every_family_model(), path)
    outs = []
    for d in ("a", "b"):
        bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / d), isa=isa)
        outs.append((open(bundle.files["kernels_c"], "rb").read(),
                     open(bundle.files["m.tiny"], "rb").read()))
    assert outs[0] == outs[1]
    plan = bundle.models[0].plans[0]
    weights = {n for i in plan.instrs if "gemm" in i.kernel.name
               and i.kernel.name.endswith(("_neon", "_neon64")) for n in i.inputs[1:2]}
    assert len(weights) >= 2 and all("__neon" in n for n in weights), weights
    assert not any(n in ("w1", "w3") for i in plan.instrs for n in i.inputs)


def _nan_at(x, *flat):
    x = x.copy()
    x.flat[list(flat)] = np.nan
    return x


def test_elementwise_armv7():
    """Flat float32 element-wise ops and fused chains (lengths leaving 1..3-element tails,
    scalar operands, NaN), and the broadcasts/ops the NEON kernel leaves to portable C.
    Only ARMv7 has them for these ops (simd_elementwise.py): AArch64 compilers vectorise
    portable C (exp/sigmoid/tanh: tests/test_kernels_vmath.py)."""
    target, isa, suffix = "armv7", "armv7-neon", "_neon"
    batch = Batch()
    neon, portable = ("ew_", "_neon"), None
    a, b = _nan_at(f32(3, 5, 7), 4), _nan_at(f32(3, 5, 7), 9)
    batch.add([helper.make_node("Add", ["ea", "eb"], ["y"])], {"ea": a, "eb": b}, {},
              a.astype(np.float64) + b, neon, "add")
    c, d = f32(2, 3, 5, 5), f32(2, 3, 5, 5)
    batch.add([helper.make_node("Add", ["ec", "ed"], ["s0"]), helper.make_node("Relu", ["s0"], ["y"])],
              {"ec": c, "ed": d}, {}, np.maximum(c.astype(np.float64) + d, 0), neon, "add+relu")
    e = f32(4, 6)
    batch.add([helper.make_node("Mul", ["ee", "k3"], ["y"])], {"ee": e},
              {"k3": np.array([1.5], np.float32)}, e * 1.5, neon, "mul by a constant scalar")
    f, g = f32(2, 9), f32(1)
    batch.add([helper.make_node("Sub", ["eg", "ef"], ["y"])], {"ef": f, "eg": g}, {},
              g.astype(np.float64) - f, neon, "scalar input minus vector")
    h, i = _nan_at(f32(31), 2), _nan_at(f32(31), 7)
    batch.add([helper.make_node("Max", ["eh", "ei"], ["y"])], {"eh": h, "ei": i}, {},
              np.maximum(h, i), neon, "max with NaN")
    batch.add([helper.make_node("Min", ["ej", "ek"], ["y"])], {"ej": h + 1, "ek": i}, {},
              np.minimum(h + 1, i), neon, "min with NaN")
    j = _nan_at(f32(5, 11), 3)
    batch.add([helper.make_node("Clip", ["el", "clo", "chi"], ["y"])], {"el": j},
              {"clo": np.array(-0.5, np.float32), "chi": np.array(0.75, np.float32)},
              np.clip(j, -0.5, 0.75), neon, "clip with NaN")
    k = _nan_at(f32(3, 13), 1)
    batch.add([helper.make_node("LeakyRelu", ["em"], ["y"], alpha=0.1)], {"em": k}, {},
              np.where(k >= 0, k, k * np.float32(0.1)), neon, "leaky relu")
    m = f32(2, 2, 3)
    batch.add([helper.make_node("Neg", ["en"], ["s1"]), helper.make_node("Abs", ["s1"], ["s2"]),
               helper.make_node("Mul", ["s2", "en"], ["y"])], {"en": m}, {},
              np.abs(-m) * m, neon, "abs(neg(x)) * x")
    batch.add([helper.make_node("Sin", ["eo"], ["y"])], {"eo": f32(17)}, {},
              None, portable, "sin stays portable")
    q, r = f32(2, 3, 4, 5), f32(1, 3, 1, 1)
    batch.add([helper.make_node("Add", ["eq", "er"], ["s3"]), helper.make_node("Relu", ["s3"], ["y"])],
              {"eq": q, "er": r}, {}, np.maximum(q.astype(np.float64) + r, 0), neon,
              "per-channel broadcast add + relu")
    t, u = f32(3, 4, 7), f32(7)
    batch.add([helper.make_node("Mul", ["et", "eu"], ["y"])], {"et": t, "eu": u}, {},
              t.astype(np.float64) * u, neon, "row vector broadcast")
    v, w = f32(2, 3, 4, 5), f32(2, 1, 4, 1)
    batch.add([helper.make_node("Add", ["ev", "ew"], ["y"])], {"ev": v, "ew": w}, {},
              v.astype(np.float64) + w, portable, "4-D broadcast pattern stays portable")
    sigmoid = batch.what.index("sin stays portable")
    batch.refs[sigmoid] = np.sin(batch.inputs["eo"].astype(np.float64))
    batch.run_and_check(target, isa, suffix)
    kernels = kernel_of_output(multi_model(batch.nodes, batch.inputs, batch.consts,
                                           batch.outputs), isa)
    assert not kernels[batch.outputs[-1]].endswith("_neon")
    assert not kernels[batch.outputs[sigmoid]].endswith("_neon")
