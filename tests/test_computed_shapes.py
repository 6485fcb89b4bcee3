"""Shapes computed from tensor values at run time (docs/dynamic-shapes.md, "Value symbols"):
Slice with computed starts/ends/steps (alone and inside a Loop body, ONNX's test_loop11
pattern), compiled once and run at several input *values* against onnxruntime, on the host
runner under ASan/UBSan and on arm64 under qemu; a computed extent the plan cannot take is
a clean runtime error naming the node."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from test_value_shapes import Build, _check, _save, _vi

I64_MAX = np.iinfo(np.int64).max


def model_slice(path, index=T.INT64):
    """Slice of a 3-D input on axes (2, 0) with every start, end and step a graph input."""
    axes = nh.from_array(np.array([2, 0], np.int64 if index == T.INT64 else np.int32), "a")
    return _save(path, [h.make_node("Slice", ["x", "s", "e", "a", "p"], ["y"]),
                        h.make_node("Relu", ["y"], ["z"])],
                 [_vi("x", T.FLOAT, [4, 6, 5]), _vi("s", index, [2]), _vi("e", index, [2]),
                  _vi("p", index, [2])], [_vi("z", T.FLOAT, None)], [axes])


# (starts, ends, steps) on axes (2, 0) of a (4, 6, 5) input: full, reversed with clamping,
# empty, a start before the axis with a negative step (onnxruntime clamps it to 0), steps
# beyond the axis
SLICE_VALUES = [((0, 0), (5, 4), (1, 1)), ((-1, 3), (-100, -10), (-1, -2)),
                ((1, 1), (1, 1), (1, 1)), ((-10, 0), (-100, 100), (-1, 3)),
                ((9, -9), (-9, 9), (-I64_MAX, I64_MAX)), ((1, 1), (4, 3), (2, 1))]


def _slice_feeds(x, s, e, p, dtype=np.int64):
    if dtype == np.int32:
        s, e, p = (np.clip(v, -2**31, 2**31 - 1) for v in (s, e, p))
    return {"x": x, "s": np.array(s, dtype), "e": np.array(e, dtype), "p": np.array(p, dtype)}


@pytest.mark.parametrize("index", [T.INT64, T.INT32])
def test_slice_with_computed_bounds_matches_onnxruntime(index, tmp_path):
    path = model_slice(tmp_path / "s.onnx", index)
    build = Build(path, tmp_path / "out")
    x = np.random.default_rng(0).standard_normal((4, 6, 5)).astype(np.float32)
    dtype = np.int64 if index == T.INT64 else np.int32
    shapes = {tuple(_check(build, path, _slice_feeds(x, *v, dtype=dtype))[0])
              for v in SLICE_VALUES}
    assert (0, 6, 0) in shapes and (4, 6, 5) in shapes and len(shapes) >= 5, shapes


def test_slice_with_computed_bounds_arm64(tmp_path):
    from build_support import require_target

    require_target("arm64")
    path = model_slice(tmp_path / "s.onnx")
    build = Build(path, tmp_path / "out", isa="arm64-neon", target="arm64")
    x = np.random.default_rng(1).standard_normal((4, 6, 5)).astype(np.float32)
    for v in SLICE_VALUES[:4]:
        _check(build, path, _slice_feeds(x, *v))


def model_loop_running_sum(path, trips=5, n=5):
    """ONNX's test_loop11 with constant trip count: y += x[i:i + 1] per iteration, the
    partial sums as scan output. The slice's length is computed (1 while i < len(x))."""
    x = nh.from_array(np.arange(1, n + 1, dtype=np.float32), "x")
    one = nh.from_array(np.array(1, np.int64), "one")
    ax = nh.from_array(np.array([0], np.int64), "ax")
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]),
         h.make_node("Add", ["iter", "one"], ["end"]),
         h.make_node("Unsqueeze", ["iter", "ax"], ["start1"]),
         h.make_node("Unsqueeze", ["end", "ax"], ["end1"]),
         h.make_node("Slice", ["x", "start1", "end1"], ["part"]),
         h.make_node("Add", ["y_in", "part"], ["y_out"]),
         h.make_node("Identity", ["y_out"], ["scan"])],
        "body", [_vi("iter", T.INT64, []), _vi("cond_in", T.BOOL, []),
                 _vi("y_in", T.FLOAT, [1])],
        [_vi("cond_out", T.BOOL, []), _vi("y_out", T.FLOAT, [1]), _vi("scan", T.FLOAT, [1])],
        [x, one, ax])
    m = nh.from_array(np.array(trips, np.int64), "m")
    c = nh.from_array(np.array(True), "c")
    return _save(path, [h.make_node("Loop", ["m", "c", "y"], ["res_y", "res_scan"],
                                    body=body)],
                 [_vi("y", T.FLOAT, [1])],
                 [_vi("res_y", T.FLOAT, [1]), _vi("res_scan", T.FLOAT, None)], [m, c])


def test_loop_body_slice_with_computed_start(tmp_path):
    """The carried value keeps its shape [1], so the slice's computed length is pinned to
    1: static shapes, and a count check right after the slice."""
    path = model_loop_running_sum(tmp_path / "l.onnx")
    build = Build(path, tmp_path / "out")
    for y in (-2.0, 0.0, 7.5):
        _check(build, path, {"y": np.array([y], np.float32)})


def test_loop_body_slice_of_the_wrong_length_is_refused(tmp_path):
    """Six iterations over five elements: the sixth slice is empty, so the carried value
    would change shape (onnxruntime fails too); ours refuses the count, naming the node."""
    path = model_loop_running_sum(tmp_path / "l.onnx", trips=6)
    build = Build(path, tmp_path / "out")
    with pytest.raises(RuntimeError) as err:
        build.run([np.array([1.0], np.float32)])
    msg = str(err.value)
    assert "Slice_" in msg and "= 0, outside [1, 1]" in msg, msg
    assert "AddressSanitizer" not in msg and "runtime error" not in msg
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception):
        sess.run(None, {"y": np.array([1.0], np.float32)})


# --- Reshape / Expand / Tile / ConstantOfShape with a computed shape ---------------------

def model_reshape(path, allowzero=0):
    """Reshape to a shape given as a graph input, then Relu (reads the computed shape)."""
    return _save(path, [h.make_node("Reshape", ["x", "s"], ["y"], allowzero=allowzero),
                        h.make_node("Relu", ["y"], ["z"])],
                 [_vi("x", T.FLOAT, [4, 6]), _vi("s", T.INT64, [3])],
                 [_vi("z", T.FLOAT, None)])


def model_expand_tile(path):
    """Expand of (3, 1) to a computed shape, plus Tile of a (2, 3) input by computed
    repeats; their results meet a static tensor in a broadcast Add (a guard on the
    computed extent, checked once it is known)."""
    b = nh.from_array(np.arange(3, dtype=np.float32).reshape(3, 1), "b")
    return _save(path, [h.make_node("Expand", ["x", "s"], ["e"]),
                        h.make_node("Add", ["e", "b"], ["y"]),
                        h.make_node("Tile", ["t", "r"], ["u"]),
                        h.make_node("Neg", ["u"], ["w"])],
                 [_vi("x", T.FLOAT, [3, 1]), _vi("s", T.INT64, [2]),
                  _vi("t", T.INT32, [2, 3]), _vi("r", T.INT64, [2])],
                 [_vi("y", T.FLOAT, None), _vi("w", T.INT32, None)], [b])


def model_constant_of_shape(path):
    """ConstantOfShape of a shape computed from an input's values (Cast of a float input),
    filled with 2.5, then Mul by a row of 4 (broadcast on the last, computed, extent)."""
    v = h.make_tensor("v", T.FLOAT, [1], [2.5])
    row = nh.from_array(np.array([1, 2, 3, 4], np.float32), "row")
    return _save(path, [h.make_node("Cast", ["f"], ["s"], to=T.INT64),
                        h.make_node("ConstantOfShape", ["s"], ["c"], value=v),
                        h.make_node("Mul", ["c", "row"], ["y"])],
                 [_vi("f", T.FLOAT, [2])], [_vi("y", T.FLOAT, None)], [row])


def test_reshape_to_a_computed_shape_matches_onnxruntime(tmp_path):
    path = model_reshape(tmp_path / "r.onnx")
    build = Build(path, tmp_path / "out")
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    seen = set()
    for s in [(2, 3, 4), (0, -1, 2), (-1, 2, 1), (24, 1, 1), (1, 4, -1)]:  # 0 copies, -1
        seen.add(tuple(_check(build, path, {"x": x, "s": np.array(s, np.int64)})[0]))
    assert len(seen) == 5, seen
    with pytest.raises(RuntimeError) as err:  # 1 x 6 x 6 != 24 elements
        build.run([x, np.array([1, 0, 6], np.int64)])
    assert "Reshape_" in str(err.value) and "rules reject" in str(err.value), str(err.value)


def test_reshape_allowzero_to_an_empty_shape(tmp_path):
    """allowzero Reshape (a 0 in the shape is a zero extent, not a copied one), also of an
    input with a run-time length N."""
    path = model_reshape(tmp_path / "r.onnx", allowzero=1)
    build = Build(path, tmp_path / "out")
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    _check(build, path, {"x": x, "s": np.array((3, 8, 1), np.int64)})
    path0 = _save(tmp_path / "z.onnx", [h.make_node("Reshape", ["x", "s"], ["y"], allowzero=1),
                                        h.make_node("Relu", ["y"], ["z"])],
                  [_vi("x", T.FLOAT, ["n", 6]), _vi("s", T.INT64, [3])],
                  [_vi("z", T.FLOAT, None)])
    build0 = Build(path0, tmp_path / "out0")
    for n, s in ((4, (8, 3, 1)), (1, (2, 3, 1)), (5, (-1, 10, 3))):
        xs = np.random.default_rng(n).standard_normal((n, 6)).astype(np.float32)
        _check(build0, path0, {"x": xs, "s": np.array(s, np.int64)})
    # 12 elements into (3, 0, -1): with allowzero the 0 is an extent, -1 cannot be inferred
    # (onnxruntime refuses it too)
    with pytest.raises(RuntimeError) as err:
        build0.run([np.zeros((2, 6), np.float32), np.array((3, 0, -1), np.int64)])
    assert "rules reject" in str(err.value), str(err.value)


def test_expand_and_tile_to_computed_shapes_match_onnxruntime(tmp_path):
    path = model_expand_tile(tmp_path / "e.onnx")
    build = Build(path, tmp_path / "out")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 1)).astype(np.float32)
    t = rng.integers(-50, 50, (2, 3)).astype(np.int32)
    seen = set()
    for s, r in [((3, 5), (1, 1)), ((1, 7), (3, 2)), ((3, 1), (2, 0)), ((3, 0), (0, 4)),
                 ((1, 1), (1, 5))]:
        seen.add(tuple(map(tuple, _check(build, path, {"x": x, "s": np.array(s, np.int64),
                                                       "t": t, "r": np.array(r, np.int64)}))))
    assert len(seen) == 5, seen
    with pytest.raises(RuntimeError) as err:  # 3 and 2 do not broadcast
        build.run([x, np.array([2, 4], np.int64), t, np.array([1, 1], np.int64)])
    assert "Expand_" in str(err.value) and "rules reject" in str(err.value), str(err.value)


def test_constant_of_shape_of_computed_values_matches_onnxruntime(tmp_path):
    path = model_constant_of_shape(tmp_path / "c.onnx")
    build = Build(path, tmp_path / "out")
    for f in ((2, 4), (1, 4), (5, 4), (0, 4), (7, 4)):
        _check(build, path, {"f": np.array(f, np.float32)})
    # A computed extent meeting a known one in a broadcast must equal it: (2, 3) * 4 is
    # invalid (onnxruntime fails too), and a computed 1 does not broadcast either (a known
    # limit: onnxruntime would broadcast it); both refused, naming the node.
    for f in ((2, 3), (3, 1)):
        with pytest.raises(RuntimeError) as err:
            build.run([np.array(f, np.float32)])
        assert "guard" in str(err.value) and "'Mul_2' (Mul)" in str(err.value), str(err.value)


# --- caps: --value-cap, JSON value_caps, ModelSpec.value_caps --------------------------

class CappedBuild(Build):
    """Build with ModelSpec.value_caps (the host runner under ASan/UBSan)."""

    def __init__(self, path, out_dir, caps, isa="native", target=None):
        import os

        from megcc_builder.compiler import ModelSpec, compile_bundle
        from megcc_builder.host import DEFAULT_CFLAGS, build_runner
        from test_value_shapes import SAN

        compile_bundle([ModelSpec(path=path, name="m", value_caps=caps)], str(out_dir),
                       save_c_array=False, isa=isa)
        self.blob = os.path.join(str(out_dir), "m.tiny")
        self.target = target
        kernels_c = os.path.join(str(out_dir), "kernels.c")
        self.runner = build_runner(kernels_c, target=target) if target else \
            build_runner(kernels_c, cflags=[*DEFAULT_CFLAGS, *SAN])


def test_a_computed_shape_over_its_byte_cap_is_refused(tmp_path):
    """Tile's output capped at 96 bytes (24 int32): 2 x 3 tiled (2, 2) fits, (2, 3) does
    not and is refused after the Tile, naming its tensor; the arena holds the caps."""
    path = model_expand_tile(tmp_path / "e.onnx")
    build = CappedBuild(path, tmp_path / "out", {"u": 96, "w": 96})
    x = np.zeros((3, 1), np.float32)
    t = np.arange(6, dtype=np.int32).reshape(2, 3)
    feeds = {"x": x, "s": np.array([3, 2], np.int64), "t": t, "r": np.array([2, 2], np.int64)}
    _check(build, path, feeds)
    with pytest.raises(RuntimeError) as err:
        build.run([x, np.array([3, 2], np.int64), t, np.array([2, 3], np.int64)])
    msg = str(err.value)
    assert "(u) needs 144 bytes, more than the 128 placed for it" in msg, msg
    assert "AddressSanitizer" not in msg and "runtime error" not in msg


def test_range_cap_option(tmp_path):
    from test_value_shapes import model_range_input

    path = model_range_input(tmp_path / "r.onnx")
    build = CappedBuild(path, tmp_path / "out", {"range": 100})
    _check(build, path, {"a": np.array(0, np.float32), "b": np.array(100, np.float32),
                         "d": np.array(1, np.float32)})
    with pytest.raises(RuntimeError) as err:
        build.run([np.array(0, np.float32), np.array(101, np.float32),
                   np.array(1, np.float32)])
    assert "= 101, outside [0, 100]" in str(err.value), str(err.value)


def test_value_cap_on_the_command_line_and_in_the_json_config(tmp_path):
    import json
    import subprocess
    import sys

    from megcc_builder.emit.model_blob import read_model

    path = model_expand_tile(tmp_path / "e.onnx")
    cli = [sys.executable, "-m", "megcc_builder.cli", "compile"]
    r = subprocess.run(cli + [path, "-o", str(tmp_path / "a"), "--value-cap", "u=4096;w=4096",
                              "--value-cap", "default=8192"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cfg = {"dump_dir": str(tmp_path / "b"),
           "models": [{"model_name": "e", "model_path": path,
                       "value_caps": "u=4096;w=4096;default=8192"}]}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    r = subprocess.run(cli + ["--json", str(tmp_path / "c.json")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    blobs = [read_model((tmp_path / d / "e.tiny").read_bytes()) for d in ("a", "b")]
    for info in blobs:
        dyn = info["plans"][0]["dynamic"]
        sizes = sorted(dyn.exprs[b.size] for b in dyn.buffers)
        assert (1, 4096) in sizes and (1, 8192) in sizes, sizes  # CONST 4096, CONST 8192
    assert (tmp_path / "a" / "e.tiny").read_bytes() == (tmp_path / "b" / "e.tiny").read_bytes()
    r = subprocess.run(cli + [path, "-o", str(tmp_path / "c"), "--value-cap", "nope=10"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no tensor 'nope'" in r.stderr and \
        "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    r = subprocess.run(cli + [path, "-o", str(tmp_path / "d"), "--value-cap", "u=-3"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "bad value cap 'u=-3'" in r.stderr, r.stderr


def test_computed_shapes_arm64(tmp_path):
    from build_support import require_target

    require_target("arm64")
    path = model_expand_tile(tmp_path / "e.onnx")
    build = Build(path, tmp_path / "out", isa="arm64-neon", target="arm64")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 1)).astype(np.float32)
    t = rng.integers(-50, 50, (2, 3)).astype(np.int32)
    for s, r in [((3, 5), (1, 1)), ((1, 7), (3, 2)), ((3, 0), (0, 4))]:
        _check(build, path, {"x": x, "s": np.array(s, np.int64), "t": t,
                             "r": np.array(r, np.int64)})
    path = model_reshape(tmp_path / "r.onnx")
    build = Build(path, tmp_path / "out_r", isa="arm64-neon", target="arm64")
    x = rng.standard_normal((4, 6)).astype(np.float32)
    for s in [(2, 3, 4), (0, -1, 2), (1, 4, -1)]:
        _check(build, path, {"x": x, "s": np.array(s, np.int64)})


def test_caller_output_memory_must_hold_the_byte_cap(tmp_path):
    """In process: an output shaped at run time stands empty until computed, so caller
    memory is checked against its byte cap before any kernel runs."""
    import ctypes

    from megcc_builder.compiler import ModelSpec, compile_bundle
    from megcc_builder.session import InferenceSession

    path = model_reshape(tmp_path / "r.onnx")
    compile_bundle([ModelSpec(path=path, name="m", value_caps={"z": 256})],
                   str(tmp_path / "out"), save_c_array=False)
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    with InferenceSession(str(tmp_path / "out")) as sess:
        for s in ((2, 3, 4), (6, 4, 1), (-1, 2, 3)):
            feeds = {"x": x, "s": np.array(s, np.int64)}
            (ours,) = sess.run(None, feeds)
            np.testing.assert_array_equal(ours, np.maximum(x.reshape(s), 0))
        net = sess.native_network()
        lib, hnd = net.lib, net._handle
        small = (ctypes.c_float * 32)()  # 128 bytes: the output (96 bytes) fits, its cap not
        assert lib.megcc_network_set_output_memory(hnd, 0, small, 128) == 0
        assert lib.megcc_network_forward(hnd) != 0
        msg = lib.megcc_network_last_error(hnd)
        msg = msg if isinstance(msg, bytes) else ctypes.string_at(msg)
        assert b"give memory for its cap" in msg and b"256" in msg, msg


def test_shape_value_symbols_in_the_blob_and_a_bad_axis_word(tmp_path):
    """Computed shape extents are value symbols with axis word 1 (stand at their min);
    any other axis word on a value symbol is refused by the C loader and the reader."""
    import struct
    import subprocess

    from megcc_builder.emit.dynamic import VALUE_INPUT, VALUE_SHAPE
    from megcc_builder.emit.model_blob import read_model
    from test_value_shapes import SAN_ENV, _fix_crc, _values_at

    path = model_reshape(tmp_path / "r.onnx")
    build = Build(path, tmp_path / "out")
    blob = open(build.blob, "rb").read()
    info, rec, n, _ = _values_at(blob)
    dyn = info["plans"][0]["dynamic"]
    shape_syms = [k for k, s in enumerate(dyn.symbols)
                  if s.input == VALUE_INPUT and s.axis == VALUE_SHAPE]
    assert n == 3 and len(shape_syms) == 3
    sym_off = struct.unpack_from("<I", blob, rec + 4)[0]
    b = bytearray(blob)
    struct.pack_into("<I", b, sym_off + 20 * shape_syms[0] + 16, 2)
    data = _fix_crc(b)
    with pytest.raises(ValueError, match="axis field is not 0 or 1"):
        read_model(data)
    bad = tmp_path / "bad.tiny"
    bad.write_bytes(data)
    d = tmp_path / "io"
    (d / "in").mkdir(parents=True)
    (d / "out").mkdir()
    np.zeros((4, 6), np.float32).tofile(d / "in" / "input_0.bin")
    np.array([2, 3, 4], np.int64).tofile(d / "in" / "input_1.bin")
    r = subprocess.run([build.runner, str(bad), str(d / "in"), str(d / "out")],
                       capture_output=True, text=True, env=SAN_ENV, timeout=120)
    assert r.returncode not in (0, 86) and "axis is not 0 or 1" in r.stderr, r.stderr
