"""The ISA levels around the optimised (x86-64-v3: AVX2+FMA) kernels: the level guard,
warning-free builds with gcc and clang, deterministic packed builds. The kernels' cases
(every implementation against numpy) are in tests/kernels/<family>/cases.py.
"""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.isa import host_level

RNG = np.random.default_rng(4321)
HOST = host_level()


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def model_of(nodes, inputs, consts, out="y"):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()]
    graph = helper.make_graph(nodes, "t", vi, [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_isa_levels_and_guard(tmp_path):
    """Unknown levels are refused; AVX2 kernels.c refuses to compile without AVX2."""
    import subprocess

    from megcc_builder.compiler import ModelSpec, compile_bundle
    from megcc_builder.ir import CompileError
    import onnx

    x, wt = f32(1, 3, 8, 8), f32(4, 3, 3, 3)
    path = str(tmp_path / "c.onnx")
    onnx.save(model_of([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                       {"x": x}, {"w": wt}), path)
    with pytest.raises(CompileError, match="unknown ISA level"):
        compile_bundle([ModelSpec("m", path)], str(tmp_path / "bad"), isa="x86_64-v9")
    bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / "v3"), isa="x86_64-v3")
    src = open(bundle.files["kernels_c"]).read()
    assert "#error" in src and "_avx2" in src
    from megcc_builder.host import RUNTIME_DIR
    proc = subprocess.run(["gcc", "-std=c99", "-march=x86-64", "-I", RUNTIME_DIR + "/include",
                           "-c", bundle.files["kernels_c"], "-o", str(tmp_path / "k.o")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "compile kernels.c with -mavx2 -mfma" in proc.stderr
    generic = compile_bundle([ModelSpec("m", path)], str(tmp_path / "g"), isa="generic")
    assert "_avx2" not in open(generic.files["kernels_c"]).read()


def every_family_model():
    """A small network with one kernel of every vector family (5 input channels: with at most
    4 the first conv would run the direct few-channel kernel): im2col and 1x1 GEMM conv
    (fused ReLU, sigmoid pass), depthwise stride 2, average and max pooling, fully connected,
    a fused element-wise chain."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "wd"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], group=8),
             helper.make_node("AveragePool", ["c2"], ["av"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["av"], ["m"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Conv", ["m", "w3"], ["c3"]),
             helper.make_node("Sigmoid", ["c3"], ["s"]),
             helper.make_node("Flatten", ["s"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["g"], transB=1),
             helper.make_node("Mul", ["g", "g"], ["sq"]),
             helper.make_node("Relu", ["sq"], ["y"])]
    # (the 1x1 conv has 24 filters: with fewer, its ~5k MACs are cheaper on the portable
    # loop than the packed GEMM's per-call set-up, kernels/cost.py PACKED_CONV_CALL)
    consts = {"w1": f32(8, 5, 3, 3), "b1": f32(8), "wd": f32(8, 1, 3, 3), "w3": f32(24, 8, 1, 1),
              "wf": f32(10, 24 * 3 * 3), "bf": f32(10)}
    return model_of(nodes, {"x": f32(1, 5, 14, 14)}, consts)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_avx2_kernels_compile_warning_free(cc, tmp_path):
    """A kernel set with every AVX2 kernel family: -std=c99 -Wall -Wextra -Werror -pedantic."""
    import subprocess

    import onnx

    from megcc_builder.compiler import ModelSpec, compile_bundle
    from megcc_builder.host import RUNTIME_DIR

    from build_support import require_tools

    require_tools(cc)  # a skip locally, a failure in CI
    path = str(tmp_path / "m.onnx")
    onnx.save(every_family_model(), path)
    bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / "out"), isa="x86_64-v3")
    names = [k.name for k in bundle.kernels]
    assert sum(n.endswith("_avx2") for n in names) >= 5, names
    assert any(n.startswith("avgpool_") and n.endswith("_avx2") for n in names), names
    proc = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                           "-mavx2", "-mfma", "-I", RUNTIME_DIR + "/include", "-c",
                           bundle.files["kernels_c"], "-o", str(tmp_path / "k.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_packed_build_is_deterministic(tmp_path):
    """Same model and options: byte-identical kernels.c and model (packed weights included)."""
    import onnx

    from megcc_builder.compiler import ModelSpec, compile_bundle

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "wf"], ["y"], transB=1)]
    path = str(tmp_path / "m.onnx")
    # (8 input channels: convs with at most 4 run the direct few-channel kernel, unpacked)
    onnx.save(model_of(nodes, {"x": f32(1, 8, 6, 6)}, {"w": f32(7, 8, 3, 3), "wf": f32(40, 252)}),
              path)
    outs = []
    for d in ("a", "b"):
        bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / d), isa="x86_64-v3")
        outs.append((open(bundle.files["kernels_c"], "rb").read(),
                     open(bundle.files["m.tiny"], "rb").read()))
    assert outs[0] == outs[1]
    # the packed weights replace the originals in the model (nothing stored twice)
    plan = bundle.models[0].plans[0]
    consts = {n for i in plan.instrs for n in i.inputs if n and plan.graph.tensors[n].is_const}
    assert consts and all("__avx2_" in n for n in consts), consts


def test_native_under_valgrind_stays_within_avx2(monkeypatch):
    """valgrind does not decode AVX-512: with MEGCC_VALGRIND set, `native` is the best level
    without it (a model compiled for `native` then builds with the capped flags of
    host._with_sanitizers instead of stopping at the AVX-512 level's #error)."""
    from megcc_builder.isa import resolve, spec

    monkeypatch.setenv("MEGCC_VALGRIND", "1")
    level = resolve("native")
    assert not any(f.startswith("avx512") for f in spec(level).features)
    monkeypatch.delenv("MEGCC_VALGRIND")
    assert resolve("native") == HOST
    if any(f.startswith("avx512") for f in spec(HOST).features):
        assert level == "x86_64-v3"  # this machine: AVX2+FMA is the best valgrind runs
