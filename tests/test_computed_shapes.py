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
