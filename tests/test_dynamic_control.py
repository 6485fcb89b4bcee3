"""Control flow and run-time dimensions in one plan (issue 12, gap 4): an If on a computed
condition, a Loop with a run-time trip count and a Scan over a symbolic axis, inside
models whose N, H and W are symbolic. One compile, one runner, several sizes (and both
branches / several trip counts at each), against onnxruntime on the same file."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dynamic_e2e import Compiled, onnxruntime_outputs, rel_err
from megcc_builder.compiler import ModelSpec
from megcc_builder.frontend.dims import SymbolSpec

TOL = 1e-4
_N = helper.make_node
F = TensorProto.FLOAT
SIZES = [(1, 4, 8, 8), (2, 4, 6, 14), (3, 4, 16, 10)]


def _vi(name, t, shape):
    return helper.make_tensor_value_info(name, t, shape)


def _c(name, v, dt=np.float32):
    return numpy_helper.from_array(np.array(v, dt), name)


def _save(tmp_path, name, nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(m, path)
    return path


def if_model(tmp_path):
    """If (sum(x) > 0) then relu(x) else -2x, branches reading x from the outer graph,
    then a convolution on the result."""
    then_g = helper.make_graph([_N("Relu", ["x"], ["t_out"])], "then", [], [_vi("t_out", F, None)])
    else_g = helper.make_graph([_N("Mul", ["x", "two"], ["e_out"])], "else", [],
                               [_vi("e_out", F, None)])
    w = np.random.default_rng(0).standard_normal((3, 4, 3, 3))
    nodes = [_N("ReduceSum", ["x"], ["s"], keepdims=0), _N("Greater", ["s", "zero"], ["cond"]),
             _N("If", ["cond"], ["b"], then_branch=then_g, else_branch=else_g),
             _N("Conv", ["b", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    return _save(tmp_path, "if_model", nodes, [_vi("x", F, ["N", 4, "H", "W"])],
                 [_vi("y", F, None)], [_c("zero", 0.0), _c("two", -2.0), _c("w", w)])


def loop_model(tmp_path):
    """v = x; repeat M times: v = v / 2 + x; then a 2x2 max pool."""
    body = helper.make_graph(
        [_N("Identity", ["cond_in"], ["cond_out"]), _N("Mul", ["v_in", "half"], ["h"]),
         _N("Add", ["h", "x"], ["v_out"])], "body",
        [_vi("i", TensorProto.INT64, []), _vi("cond_in", TensorProto.BOOL, []),
         _vi("v_in", F, None)],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("v_out", F, None)])
    nodes = [_N("Loop", ["M", "", "x"], ["v"], body=body),
             _N("MaxPool", ["v"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    return _save(tmp_path, "loop_model", nodes,
                 [_vi("x", F, ["N", 4, "H", "W"]), _vi("M", TensorProto.INT64, [])],
                 [_vi("y", F, None)], [_c("half", 0.5)])


def scan_model(tmp_path):
    """A running sum over the width: a Scan whose length is the symbolic W."""
    body = helper.make_graph(
        [_N("Add", ["acc_in", "col"], ["acc_out"]), _N("Identity", ["acc_out"], ["col_out"])],
        "body", [_vi("acc_in", F, None), _vi("col", F, None)],
        [_vi("acc_out", F, None), _vi("col_out", F, None)])
    nodes = [_N("ReduceMean", ["x"], ["z0"], axes=[3], keepdims=0), _N("Mul", ["z0", "zf"], ["z"]),
             _N("Scan", ["z", "x"], ["acc", "cols"], body=body, num_scan_inputs=1,
                scan_input_axes=[3], scan_output_axes=[3])]
    return _save(tmp_path, "scan_model", nodes, [_vi("x", F, ["N", 4, "H", "W"])],
                 [_vi("acc", F, None), _vi("cols", F, None)],
                 [_c("zf", 0.0)])


def _check(c: Compiled, path, feeds_list):
    before = c.files()
    for feeds in feeds_list:
        ours = c.run(list(feeds.values()))
        ref = onnxruntime_outputs(path, feeds)
        assert [o.shape for o in ours] == [r.shape for r in ref]
        for o, r in zip(ours, ref):
            assert rel_err(o, r) <= TOL
    assert c.files() == before  # one compile for every size


def _x(k, size, sign=1.0):
    return (sign * np.abs(np.random.default_rng(k).standard_normal(size))).astype(np.float32)


def _compiled(tmp_path, path, isa="native"):
    c = Compiled(ModelSpec("m", path, symbols=SymbolSpec()), str(tmp_path / "out"), isa=isa)
    plan = c.info["plans"][0]
    assert len(c.info["plans"]) == 1 and plan["dynamic"] is not None
    assert {s.name for s in plan["dynamic"].symbols} == {"N", "H", "W"}
    return c, plan


def test_if_on_a_computed_condition_with_symbolic_dims(tmp_path):
    path = if_model(tmp_path)
    c, plan = _compiled(tmp_path, path)
    assert any(i["kernel"] == "<branch_if_zero>" for i in plan["instrs"])
    _check(c, path, [{"x": _x(k, s, sign)} for k, s in enumerate(SIZES) for sign in (1, -1)])


def test_loop_with_run_time_trip_count_and_symbolic_dims(tmp_path):
    path = loop_model(tmp_path)
    c, plan = _compiled(tmp_path, path)
    assert any(i["kernel"] == "<jump>" for i in plan["instrs"])
    _check(c, path, [{"x": _x(k, s), "M": np.array(m, np.int64)}
                     for k, s in enumerate(SIZES) for m in (0, 3)])


def test_scan_over_a_symbolic_axis(tmp_path):
    """The trip count is W itself: a loop test whose bound is a param recomputed for each
    shape (loop_continue_n), the slices' extents too."""
    path = scan_model(tmp_path)
    c, plan = _compiled(tmp_path, path)
    assert any(i["kernel"] == "loop_continue_n" for i in plan["instrs"])
    _check(c, path, [{"x": _x(k, s)} for k, s in enumerate(SIZES)])


def test_control_flow_with_symbolic_dims_on_arm64_under_qemu(tmp_path):
    import os
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from build_support import require_target
    from megcc_builder.compiler import compile_bundle
    from megcc_builder.host import build_runner, emulator_of, run_blob

    require_target("arm64")
    for make, feeds_list in [
            (if_model, [{"x": _x(k, s, sign)} for k, s in enumerate(SIZES[:2])
                        for sign in (1, -1)]),
            (loop_model, [{"x": _x(k, s), "M": np.array(3, np.int64)}
                          for k, s in enumerate(SIZES[:2])]),
            (scan_model, [{"x": _x(k, s)} for k, s in enumerate(SIZES[:2])])]:
        path = make(tmp_path)
        out = tmp_path / ("arm_" + make.__name__)
        compile_bundle([ModelSpec("m", path, symbols=SymbolSpec())], str(out),
                       save_c_array=False, isa="arm64-neon")
        runner = build_runner(str(out / "kernels.c"), target="arm64")
        for feeds in feeds_list:
            ours = run_blob(runner, str(out / "m.tiny"), list(feeds.values()),
                            emulator=emulator_of("arm64"), shapes=True)
            ref = onnxruntime_outputs(path, feeds)
            assert [o.shape for o in ours] == [r.shape for r in ref]
            for o, r in zip(ours, ref):
                assert rel_err(o, r) <= TOL


def test_silero_vad_with_a_symbolic_batch_and_the_if_on_sr(tmp_path):
    """A real model nobody here wrote: Silero VAD keeps its whole network in the branches of
    an If on the run-time sample rate (nested Ifs, an LSTM inside). One compile holds a
    dynamic plan per frame length (512 samples at 16 kHz, 256 at 8 kHz), each with a
    symbolic batch N and the If at run time; every batch runs on the same files."""
    from megcc_builder.config import parse_input_shapes
    from pypi_models import model_path

    path = model_path("silero_vad")
    symbols = SymbolSpec()
    instances = parse_input_shapes("input=(N,512);state=(2,N,128);N<=8:"
                                   "input=(N,256);state=(2,N,128);N<=8", "test", symbols.bounds)
    c = Compiled(ModelSpec("m", path, instances, symbols=symbols), str(tmp_path / "out"))
    assert len(c.info["plans"]) == 2 and all(p["dynamic"] for p in c.info["plans"])
    before = c.files()
    rng = np.random.default_rng(5)
    for plan, (sr, n) in enumerate(((16000, 512), (8000, 256))):
        for batch in (1, 3, 2):
            state = ref_state = np.zeros((2, batch, 128), np.float32)
            for _ in range(2):  # feeding the state back
                x = (rng.standard_normal((batch, n)) * 0.2).astype(np.float32)
                sr_a = np.array(sr, np.int64)
                prob, state = c.run([x, state, sr_a], plan=plan)
                rprob, ref_state = onnxruntime_outputs(
                    path, {"input": x, "state": ref_state, "sr": sr_a})
                assert prob.shape == rprob.shape == (batch, 1)
                assert rel_err(prob, rprob) <= TOL and rel_err(state, ref_state) <= TOL
    assert c.files() == before
