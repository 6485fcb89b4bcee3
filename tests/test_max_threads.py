"""The max_threads compile option (issue 14): a model compiled for at most N threads sizes
the per-thread workspace areas of its kernels (codegen/parallel.scratch_parts) for N, and
those kernels never make more parts, whatever threads the network is given. Outputs are
the same bytes as the default build's on any thread count (parts never split a reduction)
and within DESIGN.md's float32 rule of onnxruntime."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from build_support import require_target
from reference import assert_close
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import build_runner, run_blob
from megcc_builder.isa import host_level
from megcc_builder.session import InferenceSession
from tool_support import need_tool

X86_AVX2 = ("x86_64-v3", "x86_64-v4", "x86_64-vnni")


def scratch_model():
    """x (1, 3, 64, 64): a 3-channel 3x3 conv (direct few-channel kernel), max pooling, a 3x3
    conv on 32x32 (Winograd on AVX2: 64 tiles, cut into tile ranges on threads), a depthwise
    conv, average pooling, a 1x1 conv and a 3x3 stride-2 conv with many K (packed GEMM)."""
    rng = np.random.default_rng(3)
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv(x, y, cin, cout, k, s=1, g=1, relu=True):
        w = rng.standard_normal((cout, cin // g, k, k)) * np.sqrt(2.0 / (cin // g * k * k))
        nodes.append(helper.make_node("Conv", [x, const(f"{y}_w", w),
                                               const(f"{y}_b", rng.normal(0, 0.1, cout))],
                                      [y + "c" if relu else y], kernel_shape=[k, k],
                                      strides=[s, s], pads=[k // 2] * 4, group=g))
        if relu:
            nodes.append(helper.make_node("Relu", [y + "c"], [y]))

    conv("x", "c1", 3, 16, 3)
    nodes.append(helper.make_node("MaxPool", ["c1"], ["m"], kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    conv("m", "c2", 16, 32, 3)
    conv("c2", "d", 32, 32, 3, g=32)
    nodes.append(helper.make_node("AveragePool", ["d"], ["a"], kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1]))
    conv("a", "e", 32, 96, 1)
    conv("e", "y", 96, 40, 3, s=2, relu=False)
    graph = helper.make_graph(nodes, "scratch", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 64, 64])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def compile_for(model_path, out_dir, isa, max_threads=0):
    bundle = compile_bundle([ModelSpec("m", model_path, [], max_threads=max_threads)],
                            str(out_dir), save_c_array=False, isa=isa)
    return bundle, bundle.models[0].plans[0]


def onnxruntime_of(model, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def check_smaller(default_plan, one_plan):
    """The one-thread build: the same instructions, none with a larger workspace, the
    per-part kernels renamed (_t1) and cut into one part, and a smaller arena."""
    assert len(default_plan.instrs) == len(one_plan.instrs)
    renamed = 0
    for d, o in zip(default_plan.instrs, one_plan.instrs):
        assert o.workspace_bytes <= d.workspace_bytes, (o.kernel.name, o.workspace_bytes,
                                                        d.workspace_bytes)
        if o.kernel.name != d.kernel.name:
            assert o.kernel.name == d.kernel.name + "_t1"
            assert "par->threads < 4" in d.kernel.source
            assert "par->threads <" not in o.kernel.source  # no parts beyond one
            # (smaller, unless it has none: an NCHW44 1x1 conv copies no padded input)
            assert o.workspace_bytes < d.workspace_bytes or d.workspace_bytes == 0
            renamed += 1
    assert one_plan.memory.arena_size < default_plan.memory.arena_size, (
        one_plan.memory.arena_size, default_plan.memory.arena_size)
    return renamed


def test_one_thread_build_is_smaller_and_bitwise_identical_on_threads(tmp_path):
    need_tool("gcc")
    model = scratch_model()
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    isa = host_level()
    builds = {mt: compile_for(path, tmp_path / f"t{mt}", isa, mt) for mt in (0, 1, 2)}
    plans = {mt: plan for mt, (_, plan) in builds.items()}
    kernels = {i.kernel.name for i in plans[0].instrs}
    if isa in X86_AVX2:  # the kernels with a workspace area per part
        for prefix in ("conv2d_direct_c3", "maxpool_", "conv2d_winograd_f43", "avgpool_",
                       "conv2d_depthwise", "conv2d_gemm"):
            assert any(k.startswith(prefix) for k in kernels), (prefix, sorted(kernels))
        assert check_smaller(plans[0], plans[1]) >= 5
    else:
        check_smaller(plans[0], plans[1])
    # two threads: between the two (Winograd's and the planes' areas for 2 parts, not 4)
    assert plans[1].memory.arena_size <= plans[2].memory.arena_size \
        <= plans[0].memory.arena_size
    x = np.random.default_rng(7).standard_normal((1, 3, 64, 64)).astype(np.float32)
    outs = {}
    for mt in (0, 1, 2):
        for n in (1, 2, 3):
            sess = InferenceSession(str(tmp_path / f"t{mt}"), threads=n)
            outs[mt, n] = [sess.run(None, {"x": x})[0] for _ in range(2)]
    want = outs[0, 1][0]
    assert_close(want, onnxruntime_of(model, x), what="default build, 1 thread")
    for key, got in outs.items():
        for y in got:
            assert y.tobytes() == want.tobytes(), f"max_threads, threads = {key} differ"


def test_session_option_gives_the_compiled_build():
    """InferenceSession(max_threads=1) compiles the same kernels as ModelSpec's option."""
    need_tool("gcc")
    model = scratch_model()
    sess = InferenceSession(model, threads=2, max_threads=1, isa="x86_64-v3"
                            if host_level() in X86_AVX2 else "native")
    net = sess.native_network()
    names = net.model.instruction_kernels(net.plan)
    assert any(k.endswith("_t1") for k in names), names
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    assert_close(sess.run(None, {"x": x})[0], onnxruntime_of(model, x))


def test_arm64_gemm_area_shrinks_and_outputs_match_under_qemu(tmp_path):
    """On arm64 the packed GEMM's threaded area (B packed whole) is what one thread does
    not need: smaller arena, same bytes on 1 and 2 threads as the default build."""
    require_target("arm64")
    model = scratch_model()
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    builds = {mt: compile_for(path, tmp_path / f"t{mt}", "arm64-neon", mt) for mt in (0, 1)}
    check_smaller(builds[0][1], builds[1][1])
    x = np.random.default_rng(7).standard_normal((1, 3, 64, 64)).astype(np.float32)
    outs = {}
    for mt, (bundle, _) in builds.items():
        runner = build_runner(bundle.files["kernels_c"], target="arm64")
        for n in (1, 2):
            outs[mt, n] = run_blob(runner, bundle.files["m.tiny"], [x],
                                   extra_args=["--threads", str(n)], target="arm64")[0]
    want = outs[0, 1]
    assert_close(want, onnxruntime_of(model, x))
    for key, got in outs.items():
        assert got.tobytes() == want.tobytes(), f"max_threads, threads = {key} differ"


def megcc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_cli_flag_and_config_key(tmp_path):
    """--max-threads N (and MegCC's --max_threads spelling), the config's per-model
    "max_threads": the option in the manifest, the same generated files either way; bad
    values are one-line errors."""
    model = scratch_model()
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    outs = {}
    for tag, flags in (("default", []), ("flag", ["--max-threads", "1"]),
                       ("megcc", ["--max_threads=1"])):
        r = megcc("compile", path, "-o", str(tmp_path / tag), "--isa", "x86_64-v3", *flags)
        assert r.returncode == 0, r.stderr
        outs[tag] = r.stdout
    config = {"dump_dir": "cfg", "models": [{"model_name": "m", "model_path": "m.onnx",
                                             "max_threads": 1}]}
    (tmp_path / "c.json").write_text(json.dumps(config))
    r = megcc("compile", "--json", str(tmp_path / "c.json"), "--isa", "x86_64-v3")
    assert r.returncode == 0, r.stderr

    def arena(stdout):
        return int(stdout.split(" arena ")[1].split()[0])

    assert arena(outs["flag"]) < arena(outs["default"])
    for d in ("flag", "megcc", "cfg"):
        manifest = json.loads((tmp_path / d / "manifest.json").read_text())
        assert manifest["models"][0]["options"]["max_threads"] == 1
        for f in ("kernels.c", "m.tiny", "manifest.json"):
            assert (tmp_path / d / f).read_bytes() == (tmp_path / "flag" / f).read_bytes(), (d, f)
    default = json.loads((tmp_path / "default" / "manifest.json").read_text())
    assert "max_threads" not in default["models"][0]["options"]
    assert "_t1(" in (tmp_path / "flag" / "kernels.c").read_text()
    for bad in ("0", "-2", "two"):
        r = megcc("compile", path, "-o", str(tmp_path / "bad"), "--max-threads", bad)
        assert r.returncode == 2 and "--max-threads" in r.stderr and "whole number" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for bad in (0, True, "1", 1.5):
        config["models"][0]["max_threads"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(config))
        r = megcc("compile", "--json", str(tmp_path / "bad.json"))
        assert r.returncode == 1, r.stderr
        assert r.stderr.strip().splitlines() == [r.stderr.strip()]
        assert "models[0]: field 'max_threads' must be a whole number >= 1" in r.stderr
    assert not os.path.exists(tmp_path / "bad")


def test_bare_metal_levels_size_one_part(tmp_path):
    """The Cortex-M levels build for bare metal only, where the runtime has no pool: unset,
    max_threads is 1 there (NCHW44's per-part padded copies were 4 before). The portable
    level builds for hosted targets too and keeps the default."""
    model = scratch_model()
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)

    def build(isa, mt, tag):
        return compile_bundle([ModelSpec("m", path, [], enable_nchw44=True, max_threads=mt)],
                              str(tmp_path / tag), save_c_array=False, isa=isa).models[0].plans[0]

    default, one = build("cortex-m-dsp", 0, "m0"), build("cortex-m-dsp", 1, "m1")
    assert [i.kernel.name for i in default.instrs] == [i.kernel.name for i in one.instrs]
    assert any(i.kernel.name.startswith("conv_nchw44") and i.kernel.name.endswith("_t1")
               for i in default.instrs)
    assert default.memory.arena_size == one.memory.arena_size
    hosted, hosted_one = build("generic", 0, "g0"), build("generic", 1, "g1")
    check_smaller(hosted, hosted_one)
    assert hosted_one.memory.arena_size == one.memory.arena_size
