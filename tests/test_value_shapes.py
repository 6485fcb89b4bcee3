"""Value-dependent output shapes (docs/dynamic-shapes.md, "Value symbols"): NonZero, Range,
TopK with a computed K, Compress and NonMaxSuppression sitting mid-graph, compiled once and
run at several input *values* (so several output sizes) against onnxruntime, on the host
under ASan/UBSan and on arm64 under qemu; a computed size above its cap is a clean runtime
error naming the node; the loader and the Python reader refuse malformed value records."""
from __future__ import annotations

import os
import struct
import subprocess
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from dynamic_e2e import onnxruntime_outputs, rel_err
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.emit.dynamic import VALUE_INPUT, VALUE_SIZE
from megcc_builder.emit.model_blob import read_model
from megcc_builder.host import DEFAULT_CFLAGS, build_runner, emulator_of, run_blob

SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
SAN_ENV = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:exitcode=86",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def _save(path, nodes, inputs, outputs, inits=()):
    g = h.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return str(path)


def _vi(name, elem, shape):
    return h.make_tensor_value_info(name, elem, shape)


RNG = np.random.default_rng(7)
THR = nh.from_array(np.array(0.0, np.float32), "thr")


def model_nonzero_conv(path):
    """scores -> Greater -> NonZero -> Squeeze -> Gather (rows of a batch) -> Conv -> Relu"""
    w = nh.from_array(RNG.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = nh.from_array(RNG.standard_normal(4).astype(np.float32), "b")
    ax = nh.from_array(np.array([0], np.int64), "ax")
    return _save(path, [h.make_node("Greater", ["s", "thr"], ["m"]),
                        h.make_node("NonZero", ["m"], ["nz"]),
                        h.make_node("Squeeze", ["nz", "ax"], ["idx"]),
                        h.make_node("Gather", ["f", "idx"], ["g"], axis=0),
                        h.make_node("Conv", ["g", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                        h.make_node("Relu", ["c"], ["y"])],
                 [_vi("s", T.FLOAT, [8]), _vi("f", T.FLOAT, [8, 3, 6, 6])],
                 [_vi("y", T.FLOAT, None), _vi("nz", T.INT64, None)], [w, b, THR, ax])


def model_nonzero_2d(path):
    """NonZero of a 2-D mask, its coordinates used by GatherND, then a Mul."""
    two = nh.from_array(np.array(2.0, np.float32), "two")
    return _save(path, [h.make_node("Greater", ["x", "thr"], ["m"]),
                        h.make_node("NonZero", ["m"], ["nz"]),
                        h.make_node("Transpose", ["nz"], ["nzt"], perm=[1, 0]),
                        h.make_node("GatherND", ["x", "nzt"], ["g"]),
                        h.make_node("Mul", ["g", "two"], ["y"])],
                 [_vi("x", T.FLOAT, [5, 7])], [_vi("y", T.FLOAT, None)], [THR, two])


def model_range(path):
    """Range(0, count of positives) indexes columns, and scales them."""
    one = nh.from_array(np.array(1, np.int64), "one")
    zero = nh.from_array(np.array(0, np.int64), "zero")
    return _save(path, [h.make_node("Greater", ["s", "thr"], ["m"]),
                        h.make_node("Cast", ["m"], ["mi"], to=T.INT64),
                        h.make_node("ReduceSum", ["mi"], ["n"], keepdims=0),
                        h.make_node("Range", ["zero", "n", "one"], ["r"]),
                        h.make_node("Gather", ["f", "r"], ["g"], axis=1),
                        h.make_node("Cast", ["r"], ["rf"], to=T.FLOAT),
                        h.make_node("Mul", ["g", "rf"], ["y"])],
                 [_vi("s", T.FLOAT, [8]), _vi("f", T.FLOAT, [3, 8])],
                 [_vi("y", T.FLOAT, None)], [THR, one, zero])


def model_range_input(path):
    """Range with every operand a graph input (float): its length only known at run time."""
    return _save(path, [h.make_node("Range", ["a", "b", "d"], ["r"]),
                        h.make_node("Neg", ["r"], ["y"])],
                 [_vi("a", T.FLOAT, []), _vi("b", T.FLOAT, []), _vi("d", T.FLOAT, [])],
                 [_vi("y", T.FLOAT, None)])


def model_topk(path):
    """TopK with K = number of positive scores, then arithmetic on both outputs."""
    two = nh.from_array(np.array(2.0, np.float32), "two")
    return _save(path, [h.make_node("Greater", ["s", "thr"], ["m"]),
                        h.make_node("Cast", ["m"], ["mi"], to=T.INT64),
                        h.make_node("ReduceSum", ["mi"], ["k"], keepdims=1),
                        h.make_node("TopK", ["f", "k"], ["v", "i"], axis=1),
                        h.make_node("Mul", ["v", "two"], ["y"])],
                 [_vi("s", T.FLOAT, [8]), _vi("f", T.FLOAT, [3, 8])],
                 [_vi("y", T.FLOAT, None), _vi("i", T.INT64, None)], [THR, two])


def model_topk_input(path):
    return _save(path, [h.make_node("TopK", ["f", "k"], ["v", "i"], axis=-1, largest=0)],
                 [_vi("f", T.FLOAT, [2, 9]), _vi("k", T.INT64, [1])],
                 [_vi("v", T.FLOAT, None), _vi("i", T.INT64, None)])


def model_compress(path):
    return _save(path, [h.make_node("Greater", ["s", "thr"], ["m"]),
                        h.make_node("Compress", ["f", "m"], ["c"], axis=1),
                        h.make_node("Relu", ["c"], ["y"])],
                 [_vi("s", T.FLOAT, [8]), _vi("f", T.FLOAT, [4, 8])],
                 [_vi("y", T.FLOAT, None)], [THR])


def model_nms_head(path):
    """A tiny detector head: conv -> sigmoid scores and conv box offsets on a 4x4 grid of
    anchors, NonMaxSuppression, then the kept boxes gathered (the box index column)."""
    ws = nh.from_array(RNG.standard_normal((2, 4, 1, 1)).astype(np.float32), "ws")
    wb = nh.from_array(0.3 * RNG.standard_normal((4, 4, 1, 1)).astype(np.float32), "wb")
    ys, xs = np.meshgrid(np.arange(4, dtype=np.float32), np.arange(4, dtype=np.float32),
                         indexing="ij")
    anchors = np.stack([ys, xs, ys + 1.5, xs + 1.5], -1).reshape(1, 16, 4)
    anc = nh.from_array(anchors.astype(np.float32), "anc")
    s_shape = nh.from_array(np.array([1, 2, 16], np.int64), "s_shape")
    b_shape = nh.from_array(np.array([1, 4, 16], np.int64), "b_shape")
    mo = nh.from_array(np.array([6], np.int64), "mo")
    iou = nh.from_array(np.array([0.3], np.float32), "iou")
    st = nh.from_array(np.array([0.6], np.float32), "st")
    col = nh.from_array(np.array(2, np.int64), "col")
    return _save(path, [h.make_node("Conv", ["feat", "ws"], ["sc"]),
                        h.make_node("Sigmoid", ["sc"], ["sg"]),
                        h.make_node("Reshape", ["sg", "s_shape"], ["scores"]),
                        h.make_node("Conv", ["feat", "wb"], ["bc"]),
                        h.make_node("Reshape", ["bc", "b_shape"], ["bt"]),
                        h.make_node("Transpose", ["bt"], ["off"], perm=[0, 2, 1]),
                        h.make_node("Add", ["anc", "off"], ["boxes"]),
                        h.make_node("NonMaxSuppression", ["boxes", "scores", "mo", "iou", "st"],
                                    ["sel"]),
                        h.make_node("Gather", ["sel", "col"], ["bi"], axis=1),
                        h.make_node("Squeeze", ["boxes"], ["b2"]),
                        h.make_node("Gather", ["b2", "bi"], ["kept"], axis=0)],
                 [_vi("feat", T.FLOAT, [1, 4, 4, 4])],
                 [_vi("sel", T.INT64, None), _vi("kept", T.FLOAT, None)],
                 [ws, wb, anc, s_shape, b_shape, mo, iou, st, col])


def _mask_feeds(shapes, seed):
    """Feeds whose score input `s` has a different number of positives per seed (none, all
    and in between)."""
    rng = np.random.default_rng(seed)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    if "s" in feeds:
        p = [0.0, 1.0, 0.5, 0.2, 0.8][seed % 5]
        feeds["s"] = np.where(rng.random(shapes["s"]) < p, 1.0, -1.0).astype(np.float32) * \
            (1 + rng.random(shapes["s"]).astype(np.float32))
    if "feat" in feeds:  # the detector's scores from all low to all high
        feeds["feat"] *= np.float32([0.1, 1.2, 0.6, 0.3, 0.9][seed % 5])  # no saturated ties
    return feeds


MODELS = {
    "nonzero_conv": (model_nonzero_conv, {"s": (8,), "f": (8, 3, 6, 6)}),
    "nonzero_2d": (model_nonzero_2d, {"x": (5, 7)}),
    "range": (model_range, {"s": (8,), "f": (3, 8)}),
    "topk": (model_topk, {"s": (8,), "f": (3, 8)}),
    "compress": (model_compress, {"s": (8,), "f": (4, 8)}),
    "nms_head": (model_nms_head, {"feat": (1, 4, 4, 4)}),
}


class Build:
    def __init__(self, path, out_dir, isa="native", target=None):
        spec = ModelSpec(path=path, name="m")
        compile_bundle([spec], str(out_dir), save_c_array=False, isa=isa)
        self.blob = os.path.join(str(out_dir), "m.tiny")
        kernels_c = os.path.join(str(out_dir), "kernels.c")
        self.target = target
        self.runner = build_runner(kernels_c, target=target) if target else \
            build_runner(kernels_c, cflags=[*DEFAULT_CFLAGS, *SAN])

    def run(self, arrays):
        env = None if self.target else SAN_ENV
        old = dict(os.environ)
        try:
            if env:
                os.environ.update(env)
            return run_blob(self.runner, self.blob, arrays, shapes=True,
                            emulator=emulator_of(self.target))
        finally:
            os.environ.clear()
            os.environ.update(old)


def _check(build, path, feeds):
    ours = build.run(list(feeds.values()))
    ref = onnxruntime_outputs(path, feeds)
    for o, r in zip(ours, ref):
        assert o.shape == r.shape, (o.shape, r.shape)
        if r.dtype.kind in "iu":
            np.testing.assert_array_equal(o, r)
        else:
            assert rel_err(o, r) <= 1e-5
    return [r.shape for r in ref]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_value_dependent_shapes_match_onnxruntime_host(name, tmp_path):
    make, shapes = MODELS[name]
    path = make(tmp_path / f"{name}.onnx")
    build = Build(path, tmp_path / "out")
    seen = set()
    for seed in range(5):
        out_shapes = _check(build, path, _mask_feeds(shapes, seed))
        seen.add(tuple(out_shapes))
    assert len(seen) >= 3, seen  # the values really changed the output sizes


@pytest.mark.parametrize("name", ["nonzero_conv", "nms_head", "range", "topk"])
def test_value_dependent_shapes_match_onnxruntime_arm64(name, tmp_path):
    from build_support import require_target

    require_target("arm64")
    make, shapes = MODELS[name]
    path = make(tmp_path / f"{name}.onnx")
    build = Build(path, tmp_path / "out", isa="arm64-neon", target="arm64")
    for seed in range(4):
        _check(build, path, _mask_feeds(shapes, seed))


def test_range_and_topk_of_graph_inputs(tmp_path):
    path = model_range_input(tmp_path / "r.onnx")
    build = Build(path, tmp_path / "out")
    for a, b, d in ((0.0, 5.0, 1.0), (1.0, 2.0, 0.25), (3.0, -1.0, -0.5), (2.0, 1.0, 1.0),
                    (0.5, 100.0, 0.7)):
        _check(build, path, {"a": np.array(a, np.float32), "b": np.array(b, np.float32),
                             "d": np.array(d, np.float32)})
    path = model_topk_input(tmp_path / "k.onnx")
    build = Build(path, tmp_path / "out2")
    f = np.random.default_rng(3).standard_normal((2, 9)).astype(np.float32)
    for k in (1, 4, 9, 0):
        _check(build, path, {"f": f, "k": np.array([k], np.int64)})


def model_if_nonzero(path):
    """NonZero inside the taken branch of an If on a run-time condition: the body's value
    symbol is defined by an instruction of the one instruction stream."""
    then_g = h.make_graph([h.make_node("Greater", ["x", "thr"], ["m"]),
                           h.make_node("NonZero", ["m"], ["nz"]),
                           h.make_node("Cast", ["nz"], ["nzf"], to=T.FLOAT),
                           h.make_node("ReduceSum", ["nzf"], ["y1"], keepdims=0)],
                          "then", [], [_vi("y1", T.FLOAT, [])])
    else_g = h.make_graph([h.make_node("ReduceSum", ["x"], ["y2"], keepdims=0)], "else", [],
                          [_vi("y2", T.FLOAT, [])])
    return _save(path, [h.make_node("If", ["c"], ["y"], then_branch=then_g,
                                    else_branch=else_g)],
                 [_vi("c", T.BOOL, []), _vi("x", T.FLOAT, [3, 4])], [_vi("y", T.FLOAT, [])],
                 [THR])


def test_value_symbol_inside_an_if_branch(tmp_path):
    path = model_if_nonzero(tmp_path / "if.onnx")
    build = Build(path, tmp_path / "out")
    rng = np.random.default_rng(5)
    for cond, scale in ((True, 1.0), (False, 1.0), (True, -1.0), (True, 0.0)):
        x = (scale * np.abs(rng.standard_normal((3, 4)))).astype(np.float32)
        x[0, 0] = 1.0 if scale else 0.0
        _check(build, path, {"c": np.array(cond), "x": x})


def test_value_symbol_capped_by_an_input_symbol(tmp_path):
    """NonZero of an input with a run-time length N: its cap is the expression N (evaluated
    when the shapes are set), one compiled plan for every N and every mask."""
    path = model_nonzero_conv(tmp_path / "m.onnx")
    m = onnx.load(path)
    for vi in m.graph.input:
        dim = vi.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    onnx.save(m, str(tmp_path / "sym.onnx"))
    build = Build(str(tmp_path / "sym.onnx"), tmp_path / "out")
    dyn = read_model(open(build.blob, "rb").read())["plans"][0]["dynamic"]
    (val,) = dyn.values
    assert dyn.exprs[val.bound] == (2, 0)  # SYM N: the cap follows the input length
    for n, seed in ((8, 0), (3, 1), (20, 2), (1, 3), (64, 4)):
        _check(build, str(tmp_path / "sym.onnx"),
               _mask_feeds({"s": (n,), "f": (n, 3, 6, 6)}, seed))


def test_counts_above_their_cap_are_refused_naming_the_node(tmp_path):
    path = model_range_input(tmp_path / "r.onnx")
    build = Build(path, tmp_path / "out")
    with pytest.raises(RuntimeError) as err:
        build.run([np.array(0, np.float32), np.array(20000, np.float32),
                   np.array(1, np.float32)])
    msg = str(err.value)
    assert "Range_" in msg and "20000" in msg and "outside [0, 16384]" in msg, msg
    assert "AddressSanitizer" not in msg and "runtime error" not in msg
    path = model_topk_input(tmp_path / "k.onnx")
    build = Build(path, tmp_path / "out2")
    with pytest.raises(RuntimeError) as err:
        build.run([np.zeros((2, 9), np.float32), np.array([10], np.int64)])
    assert "TopK_" in str(err.value) and "outside [0, 9]" in str(err.value), str(err.value)


def test_manifest_and_blob_carry_the_value_symbols(tmp_path):
    path = model_nonzero_conv(tmp_path / "m.onnx")
    compile_bundle([ModelSpec(path=path, name="m")], str(tmp_path / "out"),
                   save_c_array=False)
    info = read_model((tmp_path / "out" / "m.tiny").read_bytes())
    assert info["version"][:2] == (1, 1) if "version" in info else True
    dyn = info["plans"][0]["dynamic"]
    (sym,) = [s for s in dyn.symbols if s.input == VALUE_INPUT]
    assert (sym.min, sym.max) == (0, 8)  # at most every score
    (val,) = dyn.values
    assert dyn.symbols[val.symbol] == sym
    assert info["plans"][0]["tensors"][val.tensor]["name"].endswith(":count")


# --- loader and reader agree on malformed value records --------------------------------

def _values_at(blob: bytes):
    info = read_model(blob)
    dyn_table = struct.unpack_from("<I", blob, 60)[0]
    rec = struct.unpack_from("<I", blob, dyn_table)[0]
    n, off = struct.unpack_from("<2I", blob, rec + 56)
    return info, rec, n, off


def _fix_crc(b: bytearray) -> bytes:
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return bytes(b)


def test_malformed_value_records_are_refused_by_both_readers(tmp_path):
    path = model_nonzero_conv(tmp_path / "m.onnx")
    build = Build(path, tmp_path / "out")
    blob = open(build.blob, "rb").read()
    info, rec, n, off = _values_at(blob)
    assert n == 1
    plan = info["plans"][0]
    cases = {
        "symbol out of range": (off, 7),
        "instruction out of range": (off + 4, len(plan["instrs"]) + 5),
        "tensor not written by the instruction": (off + 8, plan["inputs"][0]),
        "element outside the tensor": (off + 12, 1),
        "bound expression out of range": (off + 16, 1 << 20),
        "count without offset": (rec + 60, 0),
    }
    feeds = _mask_feeds(MODELS["nonzero_conv"][1], 2)
    for what, (at, value) in cases.items():
        b = bytearray(blob)
        struct.pack_into("<I", b, at, value)
        data = _fix_crc(b)
        with pytest.raises(ValueError):
            read_model(data)
            print("not refused by read_model:", what)
        bad = tmp_path / "bad.tiny"
        bad.write_bytes(data)
        d = tmp_path / "io"
        (d / "in").mkdir(parents=True, exist_ok=True)
        (d / "out").mkdir(exist_ok=True)
        for i, a in enumerate(feeds.values()):
            a.tofile(d / "in" / f"input_{i}.bin")
        r = subprocess.run([build.runner, str(bad), str(d / "in"), str(d / "out")],
                           capture_output=True, text=True, env=SAN_ENV, timeout=120)
        assert r.returncode not in (0, 86), what
        assert "dynamic" in r.stderr and "AddressSanitizer" not in r.stderr, (what, r.stderr)
    assert VALUE_SIZE == 20


def test_in_process_session_runs_growing_and_shrinking_counts(tmp_path):
    """One in-process network, forwards whose counts go up and down (each forward starts at
    the caps again), outputs cut to the computed shapes; caller output memory smaller than
    an output's cap is refused before any kernel writes into it."""
    import ctypes

    from megcc_builder.session import InferenceSession

    path = model_nonzero_conv(tmp_path / "m.onnx")
    compile_bundle([ModelSpec(path=path, name="m")], str(tmp_path / "out"),
                   save_c_array=False)
    shapes = MODELS["nonzero_conv"][1]
    with InferenceSession(str(tmp_path / "out")) as sess:
        for seed in (3, 1, 0, 2, 1, 4):  # 20 %, all, none, half, all, 80 % positives
            feeds = _mask_feeds(shapes, seed)
            ours = sess.run(None, feeds)
            for o, r in zip(ours, onnxruntime_outputs(path, feeds)):
                assert o.shape == r.shape
                assert rel_err(o, r) <= 1e-5
        net = sess.native_network()
        lib, hnd = net.lib, net._handle
        sess.run(None, _mask_feeds(shapes, 0))  # no positives: output 0 is empty now
        small = (ctypes.c_float * 16)()
        assert lib.megcc_network_set_output_memory(hnd, 0, small, 64) == 0
        assert lib.megcc_network_forward(hnd) != 0
        msg = lib.megcc_network_last_error(hnd)
        msg = msg if isinstance(msg, bytes) else ctypes.string_at(msg)
        assert b"give memory for its cap" in msg, msg
