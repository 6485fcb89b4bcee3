"""The threaded paths of the packed-GEMM convolutions and of Winograd (issue 14,
kernels/conv/gemm_simd_f32.py, codegen/packed_gemm.py, kernels/conv/winograd_avx2_f32.py),
each hit on purpose by a one-conv model: outputs bitwise identical on 1, 2 and 3 threads and
within tolerance of onnxruntime, on the host (InferenceSession) and on arm64 / armv7 under
qemu (the C runner's --threads).

Which path runs is decided at run time inside one kernel (same kernel name), so each case
also checks the kernel's parameters against the selection written in the generated code:
B packed whole and one job cut by rows when `(panels < 4 * threads || K > KC) && K * panels
* NR <= BF`, else column units (BF / (KC * NR) panel slots)."""
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from build_support import require_target
from reference import assert_close
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import build_runner, run_blob
from megcc_builder.isa import host_level
from megcc_builder.kernels.conv.gemm_simd_f32 import PARAMS as GEMM_PARAMS
from megcc_builder.session import InferenceSession
from tool_support import need_tool

X86_AVX2 = ("x86_64-v3", "x86_64-v4", "x86_64-vnni")
THREADS = (1, 2, 3)


def conv_model(cin, cout, k, hw, stride=1, residual=False, relu=False, seed=0):
    """x (1, cin, hw, hw) -> Conv k x k (pads k // 2, bias) [+ r] [-> Relu]."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
    inits = [numpy_helper.from_array(w.astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, cout).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k],
                              strides=[stride, stride], pads=[k // 2] * 4)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])]
    out = "c"
    if residual:
        oh = (hw + 2 * (k // 2) - k) // stride + 1
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, cout, oh, oh]))
        nodes.append(helper.make_node("Add", ["c", "r"], ["a"]))
        out = "a"
    if relu:
        nodes.append(helper.make_node("Relu", [out], ["y"]))
        out = "y"
    graph = helper.make_graph(nodes, "conv", inputs,
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


# name: (model arguments, path on threads: "rows" | "units" | "winograd")
CASES = {
    # 7x7 maps, K = 401 (two K blocks), 37 output channels: B packed whole, rows
    "1x1_7x7_many_k": (dict(cin=401, cout=37, k=1, hw=7), "rows"),
    "3x3s2_7x7_many_k": (dict(cin=45, cout=37, k=3, hw=14, stride=2), "rows"),
    # 14x14 maps with several K blocks: rows over B packed whole too
    "1x1_14x14_many_k": (dict(cin=401, cout=37, k=1, hw=14), "rows"),
    "3x3s2_14x14_many_k": (dict(cin=45, cout=37, k=3, hw=28, stride=2), "rows"),
    # stride 1 (the im2col packing's one-row vector loads): on arm only, x86 takes Winograd
    "3x3s1_7x7_many_k": (dict(cin=45, cout=37, k=3, hw=7), "rows"),
    "3x3s1_14x14_many_k": (dict(cin=45, cout=37, k=3, hw=14), "rows"),
    # fused residual + Relu, a wide map: column units (short K: several panels per unit)
    "1x1_residual_relu_units": (dict(cin=27, cout=41, k=1, hw=38, residual=True, relu=True),
                                "units"),
    # the same with several K blocks (the residual accumulated over every K block)
    # (more than 32 output channels: fewer run the direct few-output-channel 1x1)
    "1x1_residual_units_many_k": (dict(cin=333, cout=37, k=1, hw=21, residual=True), "units"),
    # Winograd F(4,3) on 64+ tiles: cut into tile ranges with a workspace area per thread
    "3x3_winograd_tile_ranges": (dict(cin=19, cout=29, k=3, hw=33), "winograd"),
}
# 3x3 stride-1 convs are Winograd on x86 (a kernel of their own, not these paths)
ARM_ONLY = {"3x3s1_7x7_many_k", "3x3s1_14x14_many_k"}


def compile_case(model, isa, tmp_path):
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    bundle = compile_bundle([ModelSpec("m", path, [])], str(tmp_path), save_c_array=False, isa=isa)
    return bundle, bundle.models[0].plans[0]


def conv_instr(plan):
    convs = [i for i in plan.instrs if i.kernel.name.startswith("conv2d")]
    assert len(convs) == 1, [i.kernel.name for i in plan.instrs]
    return convs[0]


def gemm_path(ins, threads: int) -> str:
    """The path the packed-GEMM conv takes on `threads` threads, from its parameters and the
    selection as generated (which this asserts is still the one written in the kernel)."""
    p = dict(zip(GEMM_PARAMS.names, ins.params))
    nr = int(re.search(r"gemm\d+x(\d+)", ins.kernel.name).group(1))
    src = ins.kernel.source
    assert f"(panels < 4 * par->threads || K > KC) && (int64_t)K * panels * {nr} <= BF" in src
    assert "gemm_rows_par(" in src and "_units_par(" in src
    k = p["C"] // p["G"] * (1 if "_1x1_" in ins.kernel.name else 9)
    panels = -(-p["OH"] * p["OW"] // nr)
    if (panels < 4 * threads or k > p["KC"]) and k * panels * nr <= p["BF"]:
        return "rows"
    slots = p["BF"] // (p["KC"] * nr)
    assert min(panels, slots) >= 2 * threads, "too few column units to share"
    return "units"


def check_path(plan, path: str, isa: str):
    ins = conv_instr(plan)
    if path == "winograd":
        assert "winograd_f43" in ins.kernel.name, ins.kernel.name
        # tile ranges when N * T >= TILE_PARALLEL_MIN (12) * parts (min(threads, 4))
        from megcc_builder.kernels.conv.winograd_avx2_f32 import TILE_PARALLEL_MIN
        oh = plan.graph.tensors[ins.outputs[0]].shape[2]
        tiles = (-(-oh // 4)) ** 2
        assert tiles >= TILE_PARALLEL_MIN * 3, tiles
        return
    assert ins.impl == "conv.gemm_simd_f32", (ins.impl, ins.kernel.name)
    assert ("_residual" in ins.kernel.name) == (path == "units")
    assert all(gemm_path(ins, n) == path for n in (2, 3)), (isa, ins.params)
    p = dict(zip(GEMM_PARAMS.names, ins.params))
    assert p["C"] * (1 if "_1x1_" in ins.kernel.name else 9) > p["KC"] or path == "units"


def inputs_of(plan, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(plan.graph.tensors[n].shape).astype(np.float32)
            for n in plan.graph.inputs]


def onnxruntime_of(model, plan, xs):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(plan.graph.inputs, xs)))[0]


def check_outputs(outs: dict, ref):
    want = outs[1]
    np.testing.assert_allclose(want, ref, rtol=1e-4, atol=1e-5)
    for n in THREADS[1:]:
        assert outs[n].tobytes() == want.tobytes(), f"{n} threads differ from 1"


@pytest.mark.parametrize("case", sorted(set(CASES) - ARM_ONLY))
def test_host_paths_bitwise_identical_on_threads(case, tmp_path):
    need_tool("gcc")
    if host_level() not in X86_AVX2:
        pytest.skip("the AVX2 kernels: this host runs another level")
    args, path = CASES[case]
    model = conv_model(**args)
    isa = "x86_64-v3"
    if path != "winograd":  # on x86 the 3x3 stride-1 convs take Winograd, not the GEMM
        assert args.get("stride", 1) == 2 or args["k"] == 1
    _, plan = compile_case(model, isa, tmp_path)
    check_path(plan, path, isa)
    sessions = {n: InferenceSession(model, threads=n, isa=isa) for n in THREADS}
    assert [s.native_network().threads for s in sessions.values()] == list(THREADS)
    net = sessions[1].native_network()
    assert conv_instr(plan).kernel.name in net.model.instruction_kernels(net.plan)
    xs = inputs_of(plan)
    feeds = dict(zip(plan.graph.inputs, xs))
    outs = {}
    for n, s in sessions.items():
        got = [s.run(None, feeds)[0] for _ in range(2)]  # a second forward on the same pool
        assert got[0].tobytes() == got[1].tobytes()
        outs[n] = got[0]
    check_outputs(outs, onnxruntime_of(model, plan, xs))


ARM = {"arm64": "arm64-neon", "armv7": "armv7-neon"}


@pytest.mark.parametrize("target", sorted(ARM))
@pytest.mark.parametrize("case", sorted(c for c, (_, p) in CASES.items() if p != "winograd"))
def test_arm_paths_bitwise_identical_on_threads(case, target, tmp_path):
    require_target(target)
    args, path = CASES[case]
    model = conv_model(**args)
    bundle, plan = compile_case(model, ARM[target], tmp_path)
    check_path(plan, path, ARM[target])
    runner = build_runner(bundle.files["kernels_c"], target=target)
    xs = inputs_of(plan)
    outs = {n: run_blob(runner, bundle.files["m.tiny"], xs, extra_args=["--threads", str(n)],
                        target=target)[0] for n in THREADS}
    check_outputs(outs, onnxruntime_of(model, plan, xs))


# One plan compiled with run-time H and W (a dynamic plan): BF and the Winograd tile areas
# are expressions of the extents, so the path each size takes follows its own size (rows
# for small maps, units for large ones, tile ranges for many tiles) in the one plan.
DYNAMIC_CASES = {
    "1x1_many_k": (dict(cin=401, cout=37, k=1, hw=7),
                   [((7, 7), "rows"), ((14, 14), "rows"), ((24, 30), "units")]),
    "3x3s2_many_k": (dict(cin=45, cout=37, k=3, hw=14, stride=2),
                     [((14, 14), "rows"), ((27, 26), "rows"), ((64, 50), "units")]),
    "3x3_winograd": (dict(cin=19, cout=29, k=3, hw=33),
                     [((9, 9), "blocks"), ((33, 30), "winograd"), ((50, 61), "winograd")]),
}


def with_runtime_extents(model):
    """The model with its input's H and W as run-time dimensions (ONNX dim_params)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for axis, name in ((2, "H"), (3, "W")):
        dims[axis].ClearField("dim_value")
        dims[axis].dim_param = name
    return model


def path_at(ins, h: int, w: int, threads: int) -> str:
    """The path the conv takes at input size h x w, from its params evaluated there."""
    from types import SimpleNamespace
    from megcc_builder.ir import symbolic

    params = [symbolic.evaluate(v, {"H": h, "W": w}) if symbolic.is_sym(v) else v
              for v in ins.params]
    at = SimpleNamespace(params=params, kernel=ins.kernel)
    if "winograd" in ins.kernel.name:
        from megcc_builder.kernels.conv.winograd_avx2_f32 import TILE_PARALLEL_MIN, PARAMS
        p = dict(zip(PARAMS.names, params))
        tiles = -(-p["OH"] // 4) * -(-p["OW"] // 4)
        return "winograd" if tiles >= TILE_PARALLEL_MIN * min(threads, 4) else "blocks"
    return gemm_path(at, threads)


@pytest.mark.parametrize("case", sorted(DYNAMIC_CASES))
def test_dynamic_plan_paths_bitwise_identical_on_threads(case, tmp_path):
    need_tool("gcc")
    if host_level() not in X86_AVX2:
        pytest.skip("the AVX2 kernels: this host runs another level")
    args, sizes = DYNAMIC_CASES[case]
    model = with_runtime_extents(conv_model(**args))
    isa = "x86_64-v3"
    _, plan = compile_case(model, isa, tmp_path)
    ins = conv_instr(plan)
    assert any(hasattr(v, "poly") for v in ins.params), "the plan has no run-time extents"
    assert ("winograd" in case) == ("winograd_f43" in ins.kernel.name), ins.kernel.name
    sessions = {n: InferenceSession(model, threads=n, isa=isa) for n in THREADS}
    import onnxruntime as ort
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    for (h, w), path in sizes:
        assert all(path_at(ins, h, w, n) == path for n in (2, 3)), (h, w, path)
        x = rng.standard_normal((1, args["cin"], h, w)).astype(np.float32)
        outs = {n: s.run(None, {"x": x})[0] for n, s in sessions.items()}
        # (DESIGN.md's float32 rule: Winograd F(4,3) on the larger maps is off by ~1e-5
        # absolute where the output is near 0, beyond check_outputs' atol)
        assert_close(outs[1], ref.run(None, {"x": x})[0], what=f"{case} at {h}x{w}")
        for n in THREADS[1:]:
            assert outs[n].tobytes() == outs[1].tobytes(), f"{case} at {h}x{w}: {n} threads differ"
