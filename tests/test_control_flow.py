"""ONNX control flow compiled into one plan: If on run-time conditions, Loop with run-time
trip counts and conditions, Scan forward and reverse, nested subgraphs reading tensors of
their enclosing graphs. Every model is built with onnx.helper and checked against
onnxruntime; each is compiled ONCE and run with several condition / trip-count values.
The loader's refusal of hostile jump targets and the allocation-free forward are checked on
the compiled blobs.
"""
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper as h

from megcc_builder import InferenceSession
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.emit.model_blob import CONTROL_KERNELS, read_model
from megcc_builder.ir import CompileError
from megcc_builder.native import MegccRuntimeError

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    m = h.make_model(h.make_graph(nodes, "g", inputs, outputs, list(inits)),
                     opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8  # onnxruntime's range
    onnx.checker.check_model(m, full_check=True)
    return m


def _vi(name, elem, shape):
    return h.make_tensor_value_info(name, elem, shape)


def _check(model, feeds_list, session=None, tol=1e-5):
    sess = session or InferenceSession(model)
    ref = ort.InferenceSession(model.SerializeToString())
    for feeds in feeds_list:
        ours, theirs = sess.run(None, feeds), ref.run(None, feeds)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape)
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    return sess


def _control_records(sess_dir_or_blob: bytes):
    info = read_model(sess_dir_or_blob)
    return [i["kernel"] for p in info["plans"] for i in p["instrs"]
            if i["kernel_index"] in CONTROL_KERNELS], len(info["plans"])


def _compile(model, tmp_path, name="m"):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    bundle = compile_bundle([ModelSpec(name, str(path))], str(tmp_path / "out"),
                            save_c_array=False)
    return bundle, Path(bundle.files[f"{name}.tiny"])


# ---------------------------------------------------------------------------------- If

def if_model():
    w = h.make_tensor("w", TP.FLOAT, [2, 3], np.arange(6, dtype=np.float32).tolist())
    then = h.make_graph([h.make_node("Add", ["x", "w"], ["t"]),
                         h.make_node("Relu", ["t"], ["to"])], "then", [],
                        [_vi("to", TP.FLOAT, [2, 3])])
    other = h.make_graph([h.make_node("Mul", ["x", "nx"], ["eo"])], "else", [],
                         [_vi("eo", TP.FLOAT, [2, 3])])
    return _model([h.make_node("Neg", ["x"], ["nx"]),
                   h.make_node("If", ["c"], ["y0"], then_branch=then, else_branch=other),
                   h.make_node("Add", ["y0", "nx"], ["y"])],
                  [_vi("x", TP.FLOAT, [2, 3]), _vi("c", TP.BOOL, [])],
                  [_vi("y", TP.FLOAT, [2, 3])], [w])


def test_if_on_a_runtime_condition_takes_both_branches_from_one_plan(tmp_path):
    m = if_model()
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    sess = _check(m, [{"x": x, "c": np.array(c)} for c in (True, False, True)])
    _, blob = _compile(m, tmp_path)
    kinds, n_plans = _control_records(blob.read_bytes())
    assert n_plans == 1  # not specialised on the condition's value
    assert sorted(kinds) == ["<branch_if_zero>", "<jump>"]
    sess.close()


def nested_if_model(dtype=TP.FLOAT, const_conds=False):
    """If(c1) { t = x * 2; If(c2) { Identity(t) } else { Identity(x) } } else { x - 1 }:
    the inner branches read a tensor of the outer branch (t) and of the main graph (x)."""
    inner_then = h.make_graph([h.make_node("Identity", ["t"], ["it"])], "inner_then", [],
                              [_vi("it", dtype, [4])])
    inner_else = h.make_graph([h.make_node("Identity", ["x"], ["ie"])], "inner_else", [],
                              [_vi("ie", dtype, [4])])
    outer_then = h.make_graph(
        [h.make_node("Add", ["x", "x"], ["t"]),
         h.make_node("If", ["c2"], ["ot"], then_branch=inner_then, else_branch=inner_else)],
        "outer_then", [], [_vi("ot", dtype, [4])])
    outer_else = h.make_graph([h.make_node("Sub", ["x", "one"], ["oe"])], "outer_else", [],
                              [_vi("oe", dtype, [4])])
    np_dt = np.float16 if dtype == TP.FLOAT16 else np.float32
    one = h.make_tensor("one", dtype, [1], np.array([1], np_dt).view(
        np.uint16 if dtype == TP.FLOAT16 else np.float32).tolist(), raw=False) \
        if dtype == TP.FLOAT else onnx.numpy_helper.from_array(np.array([1], np_dt), "one")
    nodes = [h.make_node("If", ["c1"], ["y"], then_branch=outer_then, else_branch=outer_else)]
    inputs = [_vi("x", dtype, [4])]
    inits = [one]
    if const_conds:
        inits += [onnx.numpy_helper.from_array(np.array(True), "c1"),
                  onnx.numpy_helper.from_array(np.array(True), "c2")]
    else:
        inputs += [_vi("c1", TP.BOOL, []), _vi("c2", TP.BOOL, [])]
    return _model(nodes, inputs, [_vi("y", dtype, [4])], inits)


@pytest.mark.parametrize("dtype", [TP.FLOAT, TP.FLOAT16])
def test_nested_if_reads_outer_scopes_at_run_time(dtype):
    x = RNG.standard_normal(4).astype(np.float16 if dtype == TP.FLOAT16 else np.float32)
    feeds = [{"x": x, "c1": np.array(a), "c2": np.array(b)}
             for a in (True, False) for b in (True, False)]
    _check(nested_if_model(dtype), feeds, tol=1e-3 if dtype == TP.FLOAT16 else 1e-5).close()


def test_backend_specialises_on_a_value_a_branch_needs_not_on_the_condition():
    """A branch reshapes by a graph input: the compiler needs that value (reported under
    the outer name, so the ONNX backend specialises on it) but keeps the If at run time."""
    from megcc_builder import onnx_backend

    then = h.make_graph([h.make_node("Reshape", ["x", "shp"], ["a"])], "t", [],
                        [_vi("a", TP.FLOAT, ["p", "q"])])
    other = h.make_graph([h.make_node("Reshape", ["nx", "shp"], ["b"])], "e", [],
                         [_vi("b", TP.FLOAT, ["p", "q"])])
    m = _model([h.make_node("Neg", ["x"], ["nx"]),
                h.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
               [_vi("x", TP.FLOAT, [6]), _vi("shp", TP.INT64, [2]), _vi("c", TP.BOOL, [])],
               [_vi("y", TP.FLOAT, ["p", "q"])])
    rep = onnx_backend.prepare(m)
    ref = ort.InferenceSession(m.SerializeToString())
    x = RNG.standard_normal(6).astype(np.float32)
    for c in (True, False):
        feeds = {"x": x, "shp": np.array([2, 3], np.int64), "c": np.array(c)}
        (ours,), (theirs,) = rep.run(feeds), ref.run(None, feeds)
        np.testing.assert_array_equal(ours, theirs)
    assert rep.value_inputs == ["shp"] and len(rep._plans) == 1


def test_nested_if_with_constant_conditions_float16_regression():
    """The issue's float16 model: nested Ifs whose inner branch is an Identity of a tensor
    of the enclosing branch failed with "not produced by any node"."""
    x = RNG.standard_normal(4).astype(np.float16)
    _check(nested_if_model(TP.FLOAT16, const_conds=True), [{"x": x}], tol=1e-3).close()


def test_if_branches_with_different_shapes_still_need_the_value():
    then = h.make_graph([h.make_node("Identity", ["x"], ["a"])], "t", [],
                        [_vi("a", TP.FLOAT, ["n"])])
    other = h.make_graph([h.make_node("Concat", ["x", "x"], ["b"], axis=0)], "e", [],
                         [_vi("b", TP.FLOAT, ["n"])])
    m = _model([h.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
               [_vi("x", TP.FLOAT, [2]), _vi("c", TP.BOOL, [])], [_vi("y", TP.FLOAT, ["n"])])
    with pytest.raises(CompileError, match="the condition.*shapes"):
        InferenceSession(m)


# ---------------------------------------------------------------------------------- Loop

def loop_model(with_scan=False, trips_const=None, cond_const=None):
    """Loop(M, cond) carrying (s, a, b): s += x * i; (a, b) = (b, a + 1) (a swap: the
    copies back into the carried slots must act at once); stops when s >= limit."""
    body = h.make_graph(
        [h.make_node("Cast", ["i"], ["fi"], to=TP.FLOAT),
         h.make_node("Mul", ["x", "fi"], ["xi"]),
         h.make_node("Add", ["s_in", "xi"], ["s_out"]),
         h.make_node("ReduceSum", ["s_out"], ["tot"], keepdims=0),
         h.make_node("Less", ["tot", "limit"], ["c_out"]),
         h.make_node("Identity", ["b_in"], ["a_out"]),
         h.make_node("Add", ["a_in", "onef"], ["b_out"]),
         *([h.make_node("Identity", ["s_out"], ["scan"])] if with_scan else [])],
        "body",
        [_vi("i", TP.INT64, []), _vi("c_in", TP.BOOL, []), _vi("s_in", TP.FLOAT, [3]),
         _vi("a_in", TP.FLOAT, [1]), _vi("b_in", TP.FLOAT, [1])],
        [_vi("c_out", TP.BOOL, []), _vi("s_out", TP.FLOAT, [3]), _vi("a_out", TP.FLOAT, [1]),
         _vi("b_out", TP.FLOAT, [1])] + ([_vi("scan", TP.FLOAT, [3])] if with_scan else []))
    inits = [onnx.numpy_helper.from_array(np.array([1.0], np.float32), "onef")]
    inputs = [_vi("x", TP.FLOAT, [3]), _vi("s0", TP.FLOAT, [3]), _vi("a0", TP.FLOAT, [1]),
              _vi("b0", TP.FLOAT, [1]), _vi("limit", TP.FLOAT, [])]
    if cond_const is None:
        inputs.append(_vi("cond", TP.BOOL, []))
    else:
        inits.append(onnx.numpy_helper.from_array(np.array(cond_const), "cond"))
    if trips_const is None:
        inputs.append(_vi("M", TP.INT64, []))
    else:
        inits.append(onnx.numpy_helper.from_array(np.array(trips_const, np.int64), "M"))
    outs = ["s", "a", "b"] + (["ys"] if with_scan else [])
    out_vi = [_vi("s", TP.FLOAT, [3]), _vi("a", TP.FLOAT, [1]), _vi("b", TP.FLOAT, [1])]
    if with_scan:
        out_vi.append(_vi("ys", TP.FLOAT, ["n", 3]))
    return _model([h.make_node("Loop", ["M", "cond", "s0", "a0", "b0"], outs, body=body)],
                  inputs, out_vi, inits)


def _loop_feeds(m_values, limits, conds=(True,)):
    x = np.array([1.0, 2.0, 0.5], np.float32)
    s0 = RNG.standard_normal(3).astype(np.float32)
    return [{"x": x, "s0": s0, "a0": np.array([3.0], np.float32),
             "b0": np.array([-2.0], np.float32), "limit": np.array(lim, np.float32),
             "cond": np.array(c), "M": np.array(mv, np.int64)}
            for mv in m_values for lim in limits for c in conds]


def test_loop_with_runtime_trip_count_and_condition(tmp_path):
    m = loop_model()
    _check(m, _loop_feeds([0, 1, 3, 7, 20], [5.0, 1e9], (True, False))).close()
    _, blob = _compile(m, tmp_path)
    assert _control_records(blob.read_bytes())[1] == 1  # one plan for every M and cond


def test_loop_scan_outputs_with_a_compile_time_trip_count():
    m = loop_model(with_scan=True, trips_const=4, cond_const=True)
    m.graph.node[0].attribute[0].g.node[4].CopyFrom(
        h.make_node("Identity", ["c_in"], ["c_out"]))  # the condition passes through
    feeds = _loop_feeds([0], [0.0])
    for f in feeds:
        del f["M"], f["cond"]
    _check(m, feeds).close()


def test_loop_scan_outputs_with_a_runtime_trip_count_are_refused(tmp_path):
    """Their length is the number of iterations: a value-dependent shape."""
    with pytest.raises(CompileError, match="trip count") as err:
        _compile(loop_model(with_scan=True), tmp_path)
    assert "\n" not in str(err.value)


def test_cli_refuses_runtime_scan_length_in_one_line(tmp_path):
    path = tmp_path / "loop.onnx"
    onnx.save(loop_model(with_scan=True), path)
    r = subprocess.run([os.sys.executable, "-m", "megcc_builder.cli", "compile", str(path),
                        "-o", str(tmp_path / "out")], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "trip count" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------------------------- Scan

def scan_model():
    """Two states (running sum, running max), two scan inputs (one along axis 1, one
    reversed), two scan outputs (one along axis 1, one reversed)."""
    body = h.make_graph(
        [h.make_node("Add", ["sum_in", "u"], ["sum_out"]),
         h.make_node("Max", ["max_in", "v"], ["max_out"]),
         h.make_node("Mul", ["sum_out", "v"], ["o1"]),
         h.make_node("Sub", ["max_out", "u"], ["o2"])],
        "body",
        [_vi("sum_in", TP.FLOAT, [2]), _vi("max_in", TP.FLOAT, [2]), _vi("u", TP.FLOAT, [2]),
         _vi("v", TP.FLOAT, [2])],
        [_vi("sum_out", TP.FLOAT, [2]), _vi("max_out", TP.FLOAT, [2]),
         _vi("o1", TP.FLOAT, [2]), _vi("o2", TP.FLOAT, [2])])
    node = h.make_node("Scan", ["s0", "m0", "U", "V"], ["s", "mx", "O1", "O2"], body=body,
                       num_scan_inputs=2, scan_input_axes=[1, 0],
                       scan_input_directions=[0, 1], scan_output_axes=[1, 0],
                       scan_output_directions=[0, 1])
    return _model([node], [_vi("s0", TP.FLOAT, [2]), _vi("m0", TP.FLOAT, [2]),
                           _vi("U", TP.FLOAT, [2, 5]), _vi("V", TP.FLOAT, [5, 2])],
                  [_vi("s", TP.FLOAT, [2]), _vi("mx", TP.FLOAT, [2]),
                   _vi("O1", TP.FLOAT, [2, 5]), _vi("O2", TP.FLOAT, [5, 2])])


def test_scan_forward_and_reverse_along_any_axis():
    feeds = [{"s0": RNG.standard_normal(2).astype(np.float32),
              "m0": np.full(2, -5, np.float32),
              "U": RNG.standard_normal((2, 5)).astype(np.float32),
              "V": RNG.standard_normal((5, 2)).astype(np.float32)} for _ in range(2)]
    _check(scan_model(), feeds).close()


# ---------------------------------------------------------------------------------- loader

def _jump_positions(blob: bytes):
    """(file offset of the params, record index) of every control record of plan 0."""
    info = read_model(blob)
    plan_off = struct.unpack_from("<I", blob, struct.unpack_from("<I", blob, 40)[0])[0]
    i_off = struct.unpack_from("<I", blob, plan_off + 24)[0]
    pos, found = i_off, []
    for k, ins in enumerate(info["plans"][0]["instrs"]):
        n = len(ins["inputs"]) + len(ins["outputs"])
        if ins["kernel_index"] in CONTROL_KERNELS:
            found.append((pos + 16 + 4 * n, k))
        pos += 16 + 4 * (n + len(ins["params"]))
    return found


def _patched(blob: bytes, at: int, offset: int, index: int) -> bytes:
    b = bytearray(blob)
    struct.pack_into("<II", b, at, offset & 0xFFFFFFFF, index & 0xFFFFFFFF)
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return bytes(b)


def _native_load_error(out_dir: Path, blob: bytes) -> str:
    from megcc_builder.native import NativeModel
    from megcc_builder.host import build_shared_library

    lib = build_shared_library(str(out_dir / "kernels.c"))
    try:
        NativeModel(lib, blob)
    except MegccRuntimeError as exc:
        return str(exc)
    return ""


def test_loader_refuses_hostile_jump_targets(tmp_path):
    bundle, blob_path = _compile(if_model(), tmp_path)
    blob = blob_path.read_bytes()
    (at, _), *_ = _jump_positions(blob)
    offset, index = struct.unpack_from("<II", blob, at)
    hostile = {
        "index out of range": _patched(blob, at, offset, 10_000),
        "offset out of range": _patched(blob, at, 1 << 30, index),
        "into the middle of a record": _patched(blob, at, offset + 4, index),
        "offset and index disagree": _patched(blob, at, 0, index),
    }
    for what, bad in hostile.items():
        with pytest.raises(ValueError, match="jump target"):
            read_model(bad)
        err = _native_load_error(blob_path.parent, bad)
        assert "jump target" in err and "not the start of a record" in err, (what, err)
    assert _native_load_error(blob_path.parent, blob) == ""  # the genuine blob loads
    # the branch's condition operand (just before its params) pointed at the float input x
    x_index = read_model(blob)["plans"][0]["inputs"][0]
    bad = bytearray(blob)
    struct.pack_into("<I", bad, at - 4, x_index)
    struct.pack_into("<I", bad, 12, zlib.crc32(bytes(bad[16:])) & 0xFFFFFFFF)
    with pytest.raises(ValueError, match="one-byte bool"):
        read_model(bytes(bad))
    assert "one-byte bool" in _native_load_error(blob_path.parent, bytes(bad))


# ---------------------------------------------------------------------------------- runtime

ALLOC_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "megcc/megcc.h"
static megcc_hooks base;
static long n_alloc;
static void *count_alloc(void *u, size_t size, size_t align) {
    n_alloc++;
    return base.alloc(u, size, align);
}
int main(int argc, char **argv) {
    megcc_model *m;
    megcc_network *net;
    megcc_hooks hk;
    long before;
    int v, k;
    (void)argc;
    megcc_default_hooks(&base);
    hk = base;
    hk.alloc = count_alloc;
    if (megcc_model_load_from_path_ex(argv[1], &hk, &m) != MEGCC_OK) return 2;
    if (megcc_network_create(m, NULL, 0, &net) != MEGCC_OK) return 3;
    before = n_alloc;
    for (v = 0; v < 4; v++) { /* bool inputs alternate 0/1: both branches run */
        for (k = 0; k < (int)megcc_network_num_inputs(net); k++) {
            megcc_tensor_info info;
            megcc_network_input_info(net, (uint32_t)k, &info);
            memset(megcc_network_input_data(net, (uint32_t)k), v & 1, info.nbytes);
        }
        if (megcc_network_forward(net) != MEGCC_OK) return 4;
    }
    printf("allocs during forward: %ld\n", n_alloc - before);
    megcc_network_destroy(net);
    megcc_model_free(m);
    return 0;
}
"""


@pytest.mark.parametrize("model", [if_model, nested_if_model, scan_model])
def test_forward_allocates_nothing(tmp_path, model):
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed to build the runtime")
    _, blob_path = _compile(model(), tmp_path)
    out = blob_path.parent
    (tmp_path / "harness.c").write_text(ALLOC_HARNESS)
    srcs = sorted(str(p) for p in (ROOT / "runtime" / "src").glob("*.c"))
    exe = tmp_path / "harness"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Werror", "-I",
                    str(ROOT / "runtime" / "include"), str(tmp_path / "harness.c"), *srcs,
                    str(out / "kernels.c"), "-o", str(exe), "-lm", "-lpthread"], check=True)
    r = subprocess.run([str(exe), str(blob_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "allocs during forward: 0"


def test_taking_a_branch_invalid_for_the_shapes_fails_the_forward():
    """The else branch only works for 4 elements (it adds a 4-vector); compiled for 3 it
    becomes a trap: taking it is a run-time error, as in onnxruntime."""
    four = onnx.numpy_helper.from_array(np.arange(4, dtype=np.float32), "four")
    then = h.make_graph([h.make_node("Neg", ["x"], ["a"])], "t", [], [_vi("a", TP.FLOAT, ["n"])])
    other = h.make_graph([h.make_node("Add", ["x", "four"], ["b"])], "e", [],
                         [_vi("b", TP.FLOAT, ["n"])])
    m = _model([h.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
               [_vi("x", TP.FLOAT, ["n"]), _vi("c", TP.BOOL, [])], [_vi("y", TP.FLOAT, ["n"])],
               [four])
    sess = InferenceSession(m, input_shapes={"x": (3,)})
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x, "c": np.array(True)})[0], -x)
    with pytest.raises(MegccRuntimeError, match="if_branch_invalid"):
        sess.run(None, {"x": x, "c": np.array(False)})
    sess.close()


def nested_loop_model():
    """Loop(M) { acc += Loop(K) { If(j < i) { t += x * j } else { t - w } } } with the inner
    bodies reading the outer iteration number (i), a main-graph input (x) and weight (w):
    nested back edges, outer-scope reads two levels up, a run-time If inside a loop."""
    inner_then = h.make_graph([h.make_node("Cast", ["j"], ["fj"], to=TP.FLOAT),
                               h.make_node("Mul", ["x", "fj"], ["xj"]),
                               h.make_node("Add", ["t_in", "xj"], ["bt"])], "it", [],
                              [_vi("bt", TP.FLOAT, [3])])
    inner_else = h.make_graph([h.make_node("Sub", ["t_in", "w"], ["be"])], "ie", [],
                              [_vi("be", TP.FLOAT, [3])])
    inner = h.make_graph(
        [h.make_node("Less", ["j", "i"], ["lt"]),
         h.make_node("If", ["lt"], ["t_out"], then_branch=inner_then, else_branch=inner_else),
         h.make_node("Identity", ["cj"], ["cj_out"])],
        "inner", [_vi("j", TP.INT64, []), _vi("cj", TP.BOOL, []), _vi("t_in", TP.FLOAT, [3])],
        [_vi("cj_out", TP.BOOL, []), _vi("t_out", TP.FLOAT, [3])])
    outer = h.make_graph(
        [h.make_node("Loop", ["K", "", "acc_in"], ["inner_t"], body=inner),
         h.make_node("Mul", ["inner_t", "half"], ["acc_out"]),
         h.make_node("Identity", ["ci"], ["ci_out"])],
        "outer", [_vi("i", TP.INT64, []), _vi("ci", TP.BOOL, []), _vi("acc_in", TP.FLOAT, [3])],
        [_vi("ci_out", TP.BOOL, []), _vi("acc_out", TP.FLOAT, [3])])
    inits = [onnx.numpy_helper.from_array(np.array([0.5, -1.0, 2.0], np.float32), "w"),
             onnx.numpy_helper.from_array(np.array([0.75], np.float32), "half")]
    return _model([h.make_node("Loop", ["M", "", "acc0"], ["acc"], body=outer)],
                  [_vi("x", TP.FLOAT, [3]), _vi("acc0", TP.FLOAT, [3]), _vi("M", TP.INT64, []),
                   _vi("K", TP.INT64, [])], [_vi("acc", TP.FLOAT, [3])], inits)


def test_nested_loops_with_a_runtime_if_and_outer_scope_reads():
    feeds = [{"x": np.array([1.0, -2.0, 0.25], np.float32),
              "acc0": RNG.standard_normal(3).astype(np.float32),
              "M": np.array(m, np.int64), "K": np.array(k, np.int64)}
             for m, k in ((0, 3), (1, 1), (3, 4), (5, 2))]
    _check(nested_loop_model(), feeds).close()


def test_inspect_shows_control_instructions(tmp_path):
    path = tmp_path / "if.onnx"
    onnx.save(if_model(), path)
    out = tmp_path / "out"
    r = subprocess.run([os.sys.executable, "-m", "megcc_builder.cli", "compile", str(path),
                        "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([os.sys.executable, "-m", "megcc_builder.cli", "inspect", str(path)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "branch_if_zero" in r.stdout and "jump" in r.stdout


def conv_if_model():
    """Conv -> If(c) { Conv + Relu } else { Relu } -> Conv: the layout pass (NCHW44) and the
    threaded kernels around and inside a branch."""
    rng = np.random.default_rng(0)
    w1 = onnx.numpy_helper.from_array(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), "w1")
    w2 = onnx.numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32), "w2")
    then = h.make_graph([h.make_node("Conv", ["y1", "w2"], ["a"], pads=[1, 1, 1, 1]),
                         h.make_node("Relu", ["a"], ["b"])], "t", [],
                        [_vi("b", TP.FLOAT, [1, 8, 8, 8])])
    other = h.make_graph([h.make_node("Relu", ["y1"], ["e"])], "e", [],
                         [_vi("e", TP.FLOAT, [1, 8, 8, 8])])
    return _model([h.make_node("Conv", ["x", "w1"], ["y1"], pads=[1, 1, 1, 1]),
                   h.make_node("If", ["c"], ["z"], then_branch=then, else_branch=other),
                   h.make_node("Conv", ["z", "w2"], ["out"], pads=[1, 1, 1, 1])],
                  [_vi("x", TP.FLOAT, [1, 4, 8, 8]), _vi("c", TP.BOOL, [])],
                  [_vi("out", TP.FLOAT, [1, 8, 8, 8])], [w1, w2])


@pytest.mark.parametrize("options", [{"isa": "generic"}, {"isa": "generic", "enable_nchw44": True},
                                     {"threads": 2}])
def test_if_around_convolutions_with_layout_and_threads(options):
    m = conv_if_model()
    feeds = [{"x": RNG.standard_normal((1, 4, 8, 8)).astype(np.float32), "c": np.array(c)}
             for c in (True, False)]
    _check(m, feeds, session=InferenceSession(m, **options), tol=1e-4).close()


@pytest.mark.parametrize("target, isa", [("arm64", "arm64-neon"), ("armv7", "armv7-neon")])
def test_control_flow_on_arm_under_qemu(target, isa):
    """The runtime's jumps and the loop kernels on 64- and 32-bit Arm (the runner under
    the target's emulator)."""
    from build_support import require_target

    require_target(target)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    m = if_model()
    _check(m, [{"x": x, "c": np.array(c)} for c in (True, False)],
           session=InferenceSession(m, target=target, isa=isa)).close()
    m = loop_model()
    _check(m, _loop_feeds([0, 4], [5.0], (True, False)),
           session=InferenceSession(m, target=target, isa=isa)).close()
    m = scan_model()
    feeds = [{"s0": RNG.standard_normal(2).astype(np.float32), "m0": np.zeros(2, np.float32),
              "U": RNG.standard_normal((2, 5)).astype(np.float32),
              "V": RNG.standard_normal((5, 2)).astype(np.float32)}]
    _check(m, feeds, session=InferenceSession(m, target=target, isa=isa)).close()


def test_megcc_run_profile_lists_only_the_branch_taken(tmp_path):
    path = tmp_path / "if.onnx"
    onnx.save(if_model(), path)
    np.save(tmp_path / "x.npy", RNG.standard_normal((2, 3)).astype(np.float32))
    np.save(tmp_path / "c.npy", np.array(False))
    r = subprocess.run([os.sys.executable, "-m", "megcc_builder.cli", "run", str(path),
                        "--input", f"x={tmp_path / 'x.npy'}", "--input",
                        f"c={tmp_path / 'c.npy'}", "--output-dir", str(tmp_path / "out"),
                        "--profile"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "ew_mul" in r.stdout and "relu" not in r.stdout  # else taken, then not run


def test_control_flow_output_is_deterministic(tmp_path):
    m = nested_loop_model()
    files = []
    for k in range(2):
        (tmp_path / str(k)).mkdir()
        bundle, blob = _compile(m, tmp_path / str(k))
        files.append((blob.read_bytes(), Path(bundle.files["kernels_c"]).read_bytes()))
    assert files[0] == files[1]


@pytest.mark.parametrize("form", ["for", "while"])
def test_loop_with_only_a_trip_count_or_only_a_condition(form):
    """Loop(M, "") ignores the body's condition; Loop("", cond) is a while loop."""
    m = loop_model()
    node = m.graph.node[0]
    drop = "cond" if form == "for" else "M"
    node.input[0 if form == "while" else 1] = ""
    keep = [vi for vi in m.graph.input if vi.name != drop]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    feeds = _loop_feeds([3, 9] if form == "for" else [0], [4.0, 30.0])
    for f in feeds:
        del f[drop]
    _check(m, feeds).close()
