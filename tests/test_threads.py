"""The multi-threaded runtime (runtime/src/threads.c, megcc/parallel.h): outputs bitwise
identical for 1, 2 and 3 threads on real models (the split GEMM, packing, Winograd,
depthwise, fully connected and element-wise kernels all run), two networks forwarding at once each with its own two-worker
pool, a ThreadSanitizer-clean forward, and the thread count through the native API, the
session and `megcc run`."""
import os
import subprocess
import sys
import threading

import numpy as np
import onnx
import pytest

from megcc_builder.host import RUNTIME_DIR, build_runner, run_blob
from megcc_builder.isa import host_level
from megcc_builder.native import MegccRuntimeError
from megcc_builder.session import InferenceSession
from tool_support import need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def light(name: str) -> str:
    return os.path.join(LIGHT, f"light_{name}.onnx")


def feeds_of(sess, seed=0):
    rng = np.random.default_rng(seed)
    return {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in sess.get_inputs()}


def kernels_ran(sess) -> set:
    net = sess.native_network()
    return set(net.model.instruction_kernels(net.plan))


@pytest.fixture(scope="module")
def mobilenet_v2(tmp_path_factory):
    import mge_zoo

    d = tmp_path_factory.mktemp("mbv2")
    return mge_zoo.dump_model("mobilenet_v2", str(d / "mobilenet_v2.mge"), True,
                              input_shape=(1, 3, 96, 96), fuse_conv_bias=True)


@pytest.mark.parametrize("model", ["squeezenet", "shufflenet", "mobilenet_v2", "resnet50"])
def test_outputs_are_bitwise_identical_for_1_2_3_threads(model, request):
    need_tool("gcc")
    path = request.getfixturevalue("mobilenet_v2") if model == "mobilenet_v2" else light(model)
    sessions = {n: InferenceSession(path, threads=n) for n in (1, 2, 3)}
    assert [s.native_network().threads for s in sessions.values()] == [1, 2, 3]
    kernels = kernels_ran(sessions[1])
    # the split kernels really run (on the host's vector ISA level)
    assert any("gemm" in k or "conv2d_pw" in k or "_simd" in k or "avx2" in k or "sse" in k
               for k in kernels), kernels
    if model == "mobilenet_v2":
        assert any(k.startswith("conv2d_depthwise") for k in kernels), kernels
    if model == "resnet50" and host_level() in ("x86_64-v3", "x86_64-v4", "x86_64-vnni"):
        assert any("winograd" in k for k in kernels), kernels  # its GEMMs split by xi
    feeds = feeds_of(sessions[1])
    want = sessions[1].run(None, feeds)
    assert all(np.isfinite(w).all() for w in want)
    for n in (2, 3):
        for _ in range(2):  # a second forward on the same pool
            got = sessions[n].run(None, feeds)
            for g, w in zip(got, want):
                assert g.tobytes() == w.tobytes(), f"{model}: {n} threads differ from 1"


def test_two_networks_forward_concurrently_each_with_two_workers():
    """Two sessions (two networks, two pools of two threads) forwarding at the same time
    from two Python threads (ctypes drops the GIL): each gives its one-thread result."""
    need_tool("gcc")
    path = light("squeezenet")
    one = InferenceSession(path)
    pair = [InferenceSession(path, threads=2) for _ in range(2)]
    inputs = [feeds_of(one, seed) for seed in (1, 2)]
    wants = [one.run(None, f) for f in inputs]
    errors = []
    start = threading.Barrier(2)

    def loop(sess, feeds, want):
        try:
            start.wait()
            for _ in range(6):
                for g, w in zip(sess.run(None, feeds), want):
                    assert g.tobytes() == w.tobytes()
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=args) for args in zip(pair, inputs, wants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_thread_count_errors_and_changes(tmp_path):
    need_tool("gcc")
    sess = InferenceSession(light("squeezenet"), threads=2)
    net = sess.native_network()
    feeds = feeds_of(sess)
    want = sess.run(None, feeds)
    with pytest.raises(MegccRuntimeError, match=r"thread count 0 out of range"):
        net._check(net.lib.megcc_network_set_threads(net._handle, 0), "threads")
    for n in (3, 1, 2):  # restart the pool with another size, stop it, start it again
        net.set_threads(n)
        assert net.lib.megcc_network_threads(net._handle) == n
        assert all(g.tobytes() == w.tobytes() for g, w in zip(sess.run(None, feeds), want))
    with pytest.raises(ValueError, match="at least 1"):
        InferenceSession(light("squeezenet"), threads=0)


def _tsan_runner(kernels_c: str) -> str:
    flags = ["-std=c99", "-O1", "-g", "-march=native", "-fno-strict-aliasing",
             "-fsanitize=thread", "-fno-omit-frame-pointer"]
    return build_runner(kernels_c, cflags=flags)


def test_multithreaded_forward_is_threadsanitizer_clean(tmp_path):
    need_tool("gcc")
    from megcc_builder.compiler import ModelSpec, compile_bundle

    bundle = compile_bundle([ModelSpec("net", light("squeezenet"), [])], str(tmp_path),
                            save_c_array=False)
    runner = _tsan_runner(bundle.files["kernels_c"])
    assert "__tsan_" in subprocess.run(["nm", runner], capture_output=True, text=True).stdout
    plan = bundle.models[0].plans[0]
    x = np.random.default_rng(3).standard_normal(plan.graph.tensors[plan.graph.inputs[0]].shape
                                                 ).astype(np.float32)
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    out_dir.mkdir()
    x.tofile(str(in_dir / "input_0.bin"))
    for threads in ("2", "3"):
        r = subprocess.run([runner, bundle.files["net.tiny"], str(in_dir), str(out_dir),
                            "--threads", threads, "-w", "1", "-t", "2"],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0 and "ThreadSanitizer" not in r.stderr, r.stderr[-4000:]
    y = np.fromfile(str(out_dir / "output_0.bin"), np.float32)
    want = run_blob(build_runner(bundle.files["kernels_c"]), bundle.files["net.tiny"], [x])[0]
    assert y.tobytes() == want.tobytes()


def test_megcc_run_threads_flag(tmp_path):
    need_tool("gcc")
    outs = []
    for threads in ("1", "2"):
        d = tmp_path / threads
        r = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "run",
                            light("squeezenet"), "--output-dir", str(d), "--threads", threads,
                            "-n", "2"], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "latency_ms min=" in r.stdout
        outs.append(np.load(str(d / "outputs.npz")))
    for k in outs[0].files:
        assert outs[0][k].tobytes() == outs[1][k].tobytes()


def test_bare_metal_build_has_no_pool(tmp_path):
    """MEGCC_NO_THREADS: the runtime compiles without pthreads and refuses threads > 1 with
    MEGCC_ERR_UNSUPPORTED, keeping one-thread forwards."""
    need_tool("gcc")
    src = tmp_path / "t.c"
    src.write_text(r"""
#include <stdio.h>
#include "internal.h"
int main(void) {
    megcc_hooks h;
    mgc_pool *pool = (mgc_pool *)1;
    megcc_default_hooks(&h);
    if (mgc_pool_create(&h, 2, &pool) != MEGCC_ERR_UNSUPPORTED || pool) return 1;
    printf("ok\n");
    return 0;
}
""")
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-DMEGCC_NO_THREADS",
                    "-I", os.path.join(RUNTIME_DIR, "include"),
                    "-I", os.path.join(RUNTIME_DIR, "src"), str(src),
                    os.path.join(RUNTIME_DIR, "src", "threads.c"),
                    os.path.join(RUNTIME_DIR, "src", "hooks.c"),
                    os.path.join(RUNTIME_DIR, "src", "util.c"), "-o", str(exe)], check=True)
    nm = subprocess.run(["nm", str(exe)], capture_output=True, text=True).stdout
    assert "pthread_create" not in nm
    assert subprocess.run([str(exe)], capture_output=True, text=True).stdout == "ok\n"


def _split_kernels_model(nhwc: bool = True):
    """A model whose every kernel is one of the newly split ones: an NHWC input folded into
    a 3x3 conv with a PReLU epilogue (padding copy of an NHWC image), a 3x3 conv on 32x48x48
    (the packed GEMM's zero-padding copy by channels), max and average plane pooling (by
    ranges of planes), a depthwise and a 1x1 conv (NCHW44 when compiled so: by output
    channel blocks), a softmax over 128 channels (by ranges of positions)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv(x, y, cin, cout, k, s=1, g=1):
        w = rng.standard_normal((cout, cin // g, k, k)) * np.sqrt(2.0 / (cin // g * k * k))
        nodes.append(helper.make_node("Conv", [x, const(f"{y}_w", w),
                                               const(f"{y}_b", rng.normal(0, 0.1, cout))], [y],
                                      kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4,
                                      group=g))

    shape = [1, 96, 96, 4] if nhwc else [1, 4, 96, 96]
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]))
    conv("xt" if nhwc else "x", "c1", 4, 32, 3, 2)
    nodes.append(helper.make_node("PRelu", ["c1", const("slope", rng.uniform(0.1, 0.3, (32, 1, 1)))],
                                  ["p1"]))
    conv("p1", "c2", 32, 32, 3)
    nodes.append(helper.make_node("Relu", ["c2"], ["r2"]))
    nodes.append(helper.make_node("MaxPool", ["r2"], ["m"], kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("AveragePool", ["m"], ["a"], kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1]))
    conv("a", "d", 32, 32, 3, 1, 32)
    conv("d", "e", 32, 128, 1)
    nodes.append(helper.make_node("Softmax", ["e"], ["y"], axis=1))
    graph = helper.make_graph(nodes, "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("isa,nchw44", [("native", False), ("native", True), ("generic", True)])
def test_split_pooling_padding_nchw44_prelu_nhwc_bitwise_identical(isa, nchw44):
    """The kernels split by part 3 of issue 14 give the one-thread bytes on 2 and 3 threads;
    their output matches onnxruntime."""
    need_tool("gcc")
    import onnxruntime as ort

    model = _split_kernels_model()
    sessions = {n: InferenceSession(model, threads=n, isa=isa, enable_nchw44=nchw44)
                for n in (1, 2, 3)}
    kernels = kernels_ran(sessions[1])
    assert any("_prelu" in k for k in kernels), kernels
    if nchw44:
        assert any(k.startswith("conv_nchw44_dense") for k in kernels), kernels
        assert any(k.startswith("conv_nchw44_depthwise") for k in kernels), kernels
    else:
        assert any("_nhwc" in k for k in kernels), kernels
        if host_level() in ("x86_64-v3", "x86_64-v4", "x86_64-vnni"):
            assert any(k.startswith("maxpool") and "avx2" in k for k in kernels), kernels
            assert any(k.startswith("avgpool") and "avx2" in k for k in kernels), kernels
            assert any(k.startswith("conv2d_gemm") for k in kernels), kernels
            assert any(k.startswith("softmax_f32_strided") for k in kernels), kernels
    feeds = feeds_of(sessions[1], seed=4)
    want = sessions[1].run(None, feeds)
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(want[0], ref[0], rtol=1e-4, atol=1e-5)
    for n in (2, 3):
        for _ in range(2):
            got = sessions[n].run(None, feeds)
            assert got[0].tobytes() == want[0].tobytes(), f"{n} threads differ from 1"


def test_portable_depthwise_split_bitwise_identical():
    """The portable depthwise loop (level generic) split by ranges of output channels."""
    need_tool("gcc")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((48, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=48, pads=[1, 1, 1, 1])], "dw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 48, 40, 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sessions = {n: InferenceSession(model, threads=n, isa="generic") for n in (1, 2, 3)}
    assert any(k.startswith("conv2d_depthwise") for k in kernels_ran(sessions[1]))
    feeds = feeds_of(sessions[1], seed=9)
    want = sessions[1].run(None, feeds)[0]
    for n in (2, 3):
        assert sessions[n].run(None, feeds)[0].tobytes() == want.tobytes()
