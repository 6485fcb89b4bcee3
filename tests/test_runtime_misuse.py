"""Runtime misuse through the native and the Lite-C API (wrong input size/dtype/shape,
output read before forward, a model of another kernel set, too small or misaligned arenas,
NULL pointers): a clear status and message, no crash — tests/runtime/misuse_test.c built
with ASan + UBSan over real compiled models. Two networks (one model shared, and two
models) run concurrently from two threads and must give the single-threaded results;
that program is also built with ThreadSanitizer, which reports any hidden shared mutable
state the two threads touch.
"""
import os
import subprocess
import sys

import pytest

from tool_support import ASAN_UBSAN, need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RT = os.path.join(ROOT, "runtime")
sys.path.insert(0, os.path.join(ROOT, "fuzz"))
import make_seeds  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from megcc_builder.compiler import ModelSpec, compile_bundle

    d = tmp_path_factory.mktemp("misuse")
    make_seeds.build(str(d), digits=False)
    # the same model alone: another kernel set (fewer kernels), so the bundle's runtime
    # must refuse it
    other = compile_bundle([ModelSpec("other", str(d / "src" / "eltwise.onnx"))],
                           str(d / "other"), save_c_array=False)
    seeds = d / "seeds"
    return d, [str(seeds / "cnn.tiny"), str(seeds / "eltwise.tiny"),
               str(seeds / "movement.tiny"), other.files["other.tiny"]]


def build_misuse_test(d, cc, flags, name):
    """tests/runtime/misuse_test.c + the runtime + d/kernels.c (also used under valgrind)."""
    srcs = sorted(os.path.join(RT, "src", f) for f in os.listdir(os.path.join(RT, "src"))
                  if f.endswith(".c"))
    exe = str(d / name)
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", *flags, "-I",
                    os.path.join(RT, "include"), *srcs, str(d / "kernels.c"),
                    os.path.join(ROOT, "tests", "runtime", "misuse_test.c"), "-o", exe, "-lm",
                    "-lpthread"], check=True, capture_output=True)
    return exe


def test_misuse_gives_status_codes_and_threads_agree(models):
    need_tool("gcc")
    d, blobs = models
    exe = build_misuse_test(d, "gcc", ASAN_UBSAN, "misuse_asan")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    r = subprocess.run([exe, *blobs], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout[-4000:] + r.stderr[-4000:]


def test_two_threads_under_thread_sanitizer(models):
    need_tool("clang")
    d, blobs = models
    exe = build_misuse_test(d, "clang", ["-g", "-O1", "-fsanitize=thread"], "misuse_tsan")
    env = dict(os.environ, MISUSE_THREADS_ONLY="1", TSAN_OPTIONS="halt_on_error=1")
    r = subprocess.run([exe, *blobs], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout[-4000:] + r.stderr[-4000:]
    assert "ThreadSanitizer" not in r.stderr


def test_in_place_instructions_are_accepted_exactly_as_compiled(tmp_path):
    """The overlap rule must not refuse what the compiler does on purpose: element-wise ops
    computed in place over a dead input (alias words in the signatures). Moving such an
    output off its input makes the instruction one kernels.c was not generated for."""
    need_tool("gcc")
    import struct
    import zlib

    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from megcc_builder.compiler import ModelSpec, compile_bundle
    from megcc_builder.emit.model_blob import output_aliases, read_model
    from megcc_builder.host import build_runner, run_blob

    vi = helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["a"]),
                               helper.make_node("Sigmoid", ["a"], ["b"]),
                               helper.make_node("Neg", ["b"], ["y"])], "chain",
                              [vi("x", TensorProto.FLOAT, [4, 5])],
                              [vi("y", TensorProto.FLOAT, [4, 5])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              str(tmp_path / "chain.onnx"))
    b = compile_bundle([ModelSpec("chain", str(tmp_path / "chain.onnx"), [], False)],
                       str(tmp_path / "out"), save_c_array=False)
    blob = b.models[0].blob
    plan = read_model(blob)["plans"][0]
    aliases = [output_aliases(plan["tensors"], i["inputs"], i["outputs"], i["workspace"])
               for i in plan["instrs"]]
    assert [1] in aliases  # something is computed in place
    runner = build_runner(b.files["kernels_c"])
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    y = run_blob(runner, b.files["chain.tiny"], [x])[0]
    np.testing.assert_allclose(y, -1 / (1 + np.exp(-np.maximum(x, 0))), rtol=1e-6)

    # move the in-place output (a tensor record's arena offset) to a free, disjoint spot
    k = aliases.index([1])
    out_t = plan["instrs"][k]["outputs"][0]
    raw = bytearray(blob)
    plan_rec = struct.unpack_from("<I", raw, struct.unpack_from("<I", raw, 40)[0])[0]
    arena, _, tensors_off = struct.unpack_from("<3I", raw, plan_rec + 8)
    struct.pack_into("<I", raw, plan_rec + 8, arena + 128)  # room past every tensor...
    struct.pack_into("<I", raw, tensors_off + 64 * out_t + 40, arena)  # ...for the output
    struct.pack_into("<I", raw, 12, zlib.crc32(bytes(raw[16:])) & 0xFFFFFFFF)
    (tmp_path / "moved.tiny").write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="no matching signature"):
        run_blob(runner, str(tmp_path / "moved.tiny"), [x])
