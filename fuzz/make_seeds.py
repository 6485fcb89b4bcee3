"""Seed models for the loader fuzzer: real compiled blobs and the kernels.c they share.

    python fuzz/make_seeds.py [--families] [--isa LEVEL] OUT_DIR

writes OUT_DIR/kernels.c, OUT_DIR/seeds/<model>.tiny (fuzz_loader) and
OUT_DIR/lite_seeds/<model>-<k>.bin (fuzz_lite: a script in front of each blob).

--families adds one model per group of the kernel test cases (tests/kernels/<family>/
cases.py: every operator and kernel family the compiler emits, 900+ cases), so the
fuzzers start from every kernel in the bundle, not only the handful the small models
below reach; --isa compiles those at a level (e.g. x86_64-v3: build the fuzzer with
FUZZ_CFLAGS="-mavx2 -mfma").

compiles, as one bundle (so one kernels.c links with every seed), the digits sample (fp32
and its MegEngine-quantized int8 version) and a few tiny ONNX models chosen to reach many kernel families (conv/pool/gemm, broadcasting
element-wise, data movement with runtime indices, reductions, norms, batched MatMul), some
with two input-shape plans. Writes OUT_DIR/kernels.c and OUT_DIR/seeds/<model>.tiny.
Everything is small (8x8 images, a few hundred weights) so the fuzzer runs thousands of
forwards a second.
"""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
DIGITS_INT8 = os.path.join(ROOT, "samples", "digits", "digits_int8.mge")
F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "seed", inputs, outputs,
                              [numpy_helper.from_array(a, n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _w(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3


def cnn():
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["a"], ["f"]),
             helper.make_node("Gemm", ["f", "g", "gb"], ["y0"], transB=1),
             helper.make_node("Softmax", ["y0"], ["y"], axis=1)]
    return _model(nodes, [vi("x", F, [1, 2, 8, 8])], [vi("y", F, [1, 5])],
                  [("w", _w(4, 2, 3, 3)), ("b", _w(4, seed=1)), ("g", _w(5, 64, seed=2)),
                   ("gb", _w(5, seed=3))])


def eltwise():
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Add", ["x", "b"], ["s"]),
             helper.make_node("Mul", ["s", "x"], ["m"]),
             helper.make_node("Sigmoid", ["m"], ["g"]),
             helper.make_node("Tanh", ["x"], ["t"]),
             helper.make_node("Sub", ["g", "t"], ["d"]),
             helper.make_node("Clip", ["d"], ["y"], min=-0.5, max=0.5)]
    return _model(nodes, [vi("x", F, [2, 3, 4])], [vi("y", F, [2, 3, 4])], [("b", _w(3, 1))])


def movement():
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
             helper.make_node("Concat", ["t", "t"], ["c"], axis=1),
             helper.make_node("Slice", ["c", "st", "en", "ax", "sp"], ["s"]),
             helper.make_node("Pad", ["s", "pads"], ["p"], mode="constant"),
             helper.make_node("Gather", ["p", "idx"], ["g"], axis=2),
             helper.make_node("Reshape", ["g", "shape"], ["y"])]
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    return _model(nodes, [vi("x", F, [1, 3, 4]), vi("idx", TensorProto.INT64, [2])],
                  [vi("y", F, [-1])],
                  [("st", i64(1)), ("en", i64(7)), ("ax", i64(1)), ("sp", i64(2)),
                   ("pads", i64(0, 1, 0, 0, 0, 1)), ("shape", i64(-1))])


def reduce_norm():
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("InstanceNormalization", ["x", "sc", "bi"], ["n"]),
             helper.make_node("ReduceMean", ["n"], ["m"], axes=[2], keepdims=0),
             helper.make_node("ArgMax", ["n"], ["a"], axis=1, keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["y"])]
    return _model(nodes, [vi("x", F, [2, 3, 4])],
                  [vi("y", F, [2, 2]), vi("a", TensorProto.INT64, [2, 4])],
                  [("sc", _w(3)), ("bi", _w(3, seed=4)), ("w", _w(3, 2, seed=5))])


def batched_matmul():
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"])]
    return _model(nodes, [vi("a", F, [2, 1, 3, 4]), vi("b", F, [3, 4, 2])],
                  [vi("y", F, [2, 3, 3, 2])])


def control():
    """If on a run-time condition around a Scan, and a Loop with a run-time condition: the
    runtime's control-flow records (jumps, branches) and the loop kernels."""
    vi = helper.make_tensor_value_info
    scan_body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "u"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "u"], ["o"])], "scan_body",
        [vi("s_in", F, [3]), vi("u", F, [3])], [vi("s_out", F, [3]), vi("o", F, [3])])
    then = helper.make_graph(
        [helper.make_node("Scan", ["s0", "x"], ["s", "ys"], body=scan_body, num_scan_inputs=1,
                          scan_input_directions=[1])], "then", [], [vi("s", F, [3])])
    other = helper.make_graph([helper.make_node("Neg", ["s0"], ["n"])], "else", [],
                              [vi("n", F, [3])])
    loop_body = helper.make_graph(
        [helper.make_node("Add", ["y_in", "w"], ["y_out"]),
         helper.make_node("ReduceSum", ["y_out"], ["t"], keepdims=0),
         helper.make_node("Less", ["t", "lim"], ["c_out"])], "loop_body",
        [vi("i", TensorProto.INT64, []), vi("c_in", TensorProto.BOOL, []), vi("y_in", F, [3])],
        [vi("c_out", TensorProto.BOOL, []), vi("y_out", F, [3])])
    nodes = [helper.make_node("If", ["c"], ["z"], then_branch=then, else_branch=other),
             helper.make_node("Loop", ["M", "c", "z"], ["y"], body=loop_body)]
    return _model(nodes, [vi("x", F, [4, 3]), vi("s0", F, [3]), vi("c", TensorProto.BOOL, [])],
                  [vi("y", F, [3])],
                  [("w", _w(3, seed=4)), ("lim", np.array(20.0, np.float32)),
                   ("M", np.array(5, np.int64))])


def dynamic_cnn():
    """Symbolic batch, height and width (docs/dynamic-shapes.md): compiled into a dynamic
    plan, which the fuzzers also run at random shapes."""
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Add", ["p", "p"], ["s"]),
             helper.make_node("GlobalAveragePool", ["s"], ["a"]),
             helper.make_node("Flatten", ["a"], ["f"]),
             helper.make_node("Gemm", ["f", "g", "gb"], ["y"], transB=1)]
    return _model(nodes, [vi("x", F, ["N", 2, "H", "W"])], [vi("y", F, ["N", 5])],
                  [("w", _w(4, 2, 3, 3)), ("b", _w(4, seed=1)), ("g", _w(5, 4, seed=2)),
                   ("gb", _w(5, seed=3))])


ONNX_SEEDS = {"cnn": (cnn, []),
              "control": (control, []),
              "dynamic_cnn": (dynamic_cnn, []),
              "eltwise": (eltwise, [{"x": (2, 3, 4)}, {"x": (1, 3, 2)}]),
              "movement": (movement, []),
              "reduce_norm": (reduce_norm, []),
              "batched_matmul": (batched_matmul, [])}


FUZZ_ARENA_CAP = 8 << 20  # fuzz_loader.c's ARENA_CAP


def family_specs(src: str, isa: str = "") -> list:
    """One ModelSpec per (family, opset, layout, batch tag) group of the kernel test cases:
    each model holds that group's cases as independent branches (tests/kernels/harness)."""
    import importlib

    from megcc_builder.compiler import ModelSpec

    tests = os.path.join(ROOT, "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from kernels.harness import build_model, shapes_of

    specs = []
    kernel_tests = os.path.join(tests, "kernels")
    for family in sorted(os.listdir(kernel_tests)):
        if not os.path.isfile(os.path.join(kernel_tests, family, "cases.py")):
            continue
        book = importlib.import_module(f"kernels.{family}.cases").BOOK
        for k, group in enumerate(sorted({c.group for c in book.cases}, key=str)):
            cases = [c for c in book.cases if c.group == group]
            path = os.path.join(src, f"family_{family}_{k}.onnx")
            onnx.save(build_model(cases), path)
            specs.append(ModelSpec(f"family_{family}_{k}", path, [shapes_of(cases)],
                                   isa=isa, enable_nchw44=group[1]))
    return specs


def build(out_dir: str, digits: bool = True, families: bool = False, isa: str = "") -> list:
    """Compile every seed model into out_dir; returns the blob paths. digits=False skips
    the MegEngine model (tests that only need ONNX seeds avoid importing MegEngine);
    families=True adds the kernel-family models (family_specs)."""
    from megcc_builder.compiler import ModelSpec, compile_bundle

    src = os.path.join(out_dir, "src")
    os.makedirs(src, exist_ok=True)
    specs = [ModelSpec("digits", DIGITS, [{"data": (1, 1, 8, 8)}, {"data": (2, 1, 8, 8)}]),
             ModelSpec("digits_int8", DIGITS_INT8, [{"data": (1, 1, 8, 8)}])]  # int8 kernels
    if not digits:
        specs = []
    for name, (make, shapes) in ONNX_SEEDS.items():
        path = os.path.join(src, name + ".onnx")
        onnx.save(make(), path)
        specs.append(ModelSpec(name, path, shapes))
    if families:
        specs += family_specs(src, isa)
    bundle = compile_bundle(specs, os.path.join(out_dir, "bundle"), save_c_array=False)
    shutil.copy(bundle.files["kernels_c"], os.path.join(out_dir, "kernels.c"))
    seeds = os.path.join(out_dir, "seeds")
    os.makedirs(seeds, exist_ok=True)
    paths = []
    for m in bundle.models:
        # the fuzzers run plans whose arena fits ARENA_CAP (8 MiB, fuzz/fuzz_loader.c): a
        # bigger kernel-family model would only be loaded, never run, so it is left out
        if m.spec.name.startswith("family_") and \
                min(p.memory.arena_size for p in m.plans) > FUZZ_ARENA_CAP:
            continue
        p = os.path.join(seeds, m.spec.name + ".tiny")
        with open(p, "wb") as f:
            f.write(m.blob)
        paths.append(p)
    return paths


# fuzz_lite.c scripts (its header comment): load mode, actions, layout index/dim, layout
# delta, caller-memory size delta, fill seed (odd: integer inputs zeroed, in range).
LITE_SCRIPTS = [bytes([0, 0, 0, 0, 0, 5, 0, 0]),     # from memory, arena I/O, one forward
                bytes([1, 2, 0, 0, 0, 5, 0, 0]),     # in place, caller input memory
                bytes([2, 15, 0, 0, 0, 5, 0, 0]),    # from a path, layout + caller memory
                bytes([4, 63, 0, 0, 0, 5, 0, 0]),    # config network, every action
                bytes([0, 17, 0, 0, 0, 5, 0, 0])]    # second network sharing the arena


def lite_seeds(blob_paths: list, out_dir: str) -> list:
    """Inputs for fuzz/fuzz_lite.c: each blob behind each script (blobs over 256 KiB
    behind the first only, to keep the corpus small). Returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for blob_path in blob_paths:
        with open(blob_path, "rb") as f:
            blob = f.read()
        scripts = LITE_SCRIPTS if len(blob) <= 256 << 10 else LITE_SCRIPTS[:1]
        for k, script in enumerate(scripts):
            p = os.path.join(out_dir, f"{os.path.basename(blob_path)[:-5]}-{k}.bin")
            with open(p, "wb") as f:
                f.write(script + blob)
            paths.append(p)
    return paths


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, ROOT)  # this checkout's megcc_builder, not an installed one

    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("out_dir")
    ap.add_argument("--families", action="store_true")
    ap.add_argument("--isa", default="")
    a = ap.parse_args()
    blobs = build(a.out_dir, families=a.families, isa=a.isa)
    lite_seeds(blobs, os.path.join(a.out_dir, "lite_seeds"))
    for p in blobs:
        print(p, os.path.getsize(p))
