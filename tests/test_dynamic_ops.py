"""Operators whose kernels take a table, index or bound from a run-time dimension (issue 12,
gap 3): Gather with constant indices on a symbolic axis, Slice whose bounds are computed
from the input's shape (`x[..., W // 2:]`), Concat along a symbolic axis, and operators
that had no symbolic shape rule (TopK, DepthToSpace/SpaceToDepth, GatherElements, GatherND,
ScatterElements, OneHot, LpNormalization, Einsum), and Resize to sizes computed from run-time
dimensions. Each model is compiled once with N, H and W
symbolic and run at three sizes by the same runner; the oracle is onnxruntime on the same
file (|ours - ref| / max(1, |ref|) <= 1e-4; integer outputs exactly)."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dynamic_e2e import Compiled, onnxruntime_outputs, rel_err
from megcc_builder.compiler import ModelSpec, compile_model
from megcc_builder.config import parse_input_shapes
from megcc_builder.emit.dynamic import EvalError
from megcc_builder.frontend.dims import SymbolSpec
from dynamic_twin import blob_of, instance

TOL = 1e-4
_N = helper.make_node
_RNG = np.random.default_rng(7)


def _i64(name, v):
    return numpy_helper.from_array(np.array(v, np.int64), name)


def _f32(name, v):
    return numpy_helper.from_array(np.asarray(v, np.float32), name)


SIZES = [(1, 4, 8, 8), (2, 4, 6, 14), (3, 4, 16, 10)]
OPS = {
    "gather_symbolic_axis": ([_N("Gather", ["x", "i"], ["y"], axis=3)],
                             [_i64("i", [[0, 2], [-1, 1]])]),
    "gather_symbolic_axis_then_conv": (
        [_N("Gather", ["x", "i"], ["g"], axis=2),
         _N("Conv", ["g", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        [_i64("i", [5, 0, -2, 1, 1]), _f32("w", _RNG.standard_normal((3, 4, 3, 3)))]),
    "gather_run_time_indices": (
        [_N("ArgMax", ["x"], ["a"], axis=3, keepdims=0), _N("Flatten", ["a"], ["f"], axis=0),
         _N("Squeeze", ["f", "z"], ["s"]), _N("Gather", ["x", "s"], ["y"], axis=3)],
        [_i64("z", [0])]),
    "slice_from_half_width": (
        [_N("Shape", ["x"], ["s"]), _N("Gather", ["s", "i3"], ["w"]),
         _N("Div", ["w", "two"], ["h"]), _N("Slice", ["x", "h", "big", "i3"], ["y"])],
        [_i64("i3", [3]), _i64("two", [2]), _i64("big", [1 << 40])]),
    "slice_to_height_minus_two": (
        [_N("Shape", ["x"], ["s"]), _N("Slice", ["s", "i2", "i3"], ["h"]),
         _N("Sub", ["h", "two"], ["e"]), _N("Slice", ["x", "one", "e", "i2", "st"], ["y"])],
        [_i64("i2", [2]), _i64("i3", [3]), _i64("two", [2]), _i64("one", [1]),
         _i64("st", [2])]),
    "concat_symbolic_axis": ([_N("Relu", ["x"], ["r"]), _N("Slice", ["x", "one", "big", "a3"],
                                                           ["s"]),
                              _N("Concat", ["r", "s", "x"], ["y"], axis=3)],
                             [_i64("one", [1]), _i64("big", [1 << 40]), _i64("a3", [3])]),
    "split_concat": ([_N("Split", ["x", "sp"], ["a", "b", "c"], axis=1),
                      _N("Concat", ["c", "a", "b"], ["y"], axis=1)], [_i64("sp", [1, 2, 1])]),
    "topk_width": ([_N("TopK", ["x", "k"], ["y", "yi"], axis=3)], [_i64("k", [3])]),
    "depth_to_space": ([_N("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")], []),
    "space_to_depth": ([_N("SpaceToDepth", ["x"], ["y"], blocksize=2)], []),
    "gather_elements": ([_N("ArgMax", ["x"], ["a"], axis=3, keepdims=1),
                         _N("GatherElements", ["x", "a"], ["y"], axis=3)], []),
    "gather_nd": ([_N("ArgMax", ["x"], ["a"], axis=1, keepdims=0),
                   _N("Unsqueeze", ["a", "ax"], ["u"]),
                   _N("GatherND", ["x", "u"], ["y"], batch_dims=1)], [_i64("ax", [-1])]),
    "scatter_elements": ([_N("ArgMax", ["x"], ["a"], axis=3, keepdims=1),
                          _N("ReduceMax", ["x"], ["m"], axes=[3], keepdims=1),
                          _N("Neg", ["m"], ["nm"]),
                          _N("ScatterElements", ["x", "a", "nm"], ["y"], axis=3)], []),
    "one_hot": ([_N("ArgMax", ["x"], ["a"], axis=1, keepdims=0),
                 _N("OneHot", ["a", "d", "v"], ["y"], axis=1)],
                [_i64("d", 5), _f32("v", [0.5, 2])]),
    "resize_to_twice_the_shape": (
        [_N("Shape", ["x"], ["s"]), _N("Mul", ["s", "k"], ["sz"]),
         _N("Resize", ["x", "", "", "sz"], ["y"], mode="nearest")], [_i64("k", [1, 1, 2, 2])]),
    # an FPN's interpolate(p, size=x.shape[2:]): H == 2 * (H // 2) becomes a guard
    "resize_to_another_tensor": (
        [_N("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
         _N("Shape", ["x"], ["sz"]),
         _N("Resize", ["p", "", "", "sz"], ["r"], mode="linear"),
         _N("Add", ["r", "x"], ["y"])], []),
    "einsum": ([_N("Einsum", ["x", "x"], ["y"], equation="nchw,nchv->nhwv")], []),
    "lp_normalization": ([_N("LpNormalization", ["x"], ["y"], axis=3, p=2)], []),
}


def _model(tmp_path, name) -> str:
    nodes, inits = OPS[name]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, "H", "W"])
    outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
            for o in nodes[-1].output]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], outs, inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    m = onnx.shape_inference.infer_shapes(m)
    for vi in m.graph.output:  # onnxruntime wants typed outputs
        vi.type.tensor_type.ClearField("shape")
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(m, path)
    return path


def _spec(path, shapes="") -> ModelSpec:
    symbols = SymbolSpec()
    return ModelSpec("m", path, parse_input_shapes(shapes, "test", symbols.bounds)
                     if shapes else [], symbols=symbols)


@pytest.mark.parametrize("name", sorted(OPS))
def test_operator_compiled_once_matches_onnxruntime_at_three_sizes(tmp_path, name):
    path = _model(tmp_path, name)
    c = Compiled(_spec(path), str(tmp_path / "out"))
    assert c.info["plans"][0]["dynamic"] is not None
    assert {s.name for s in c.info["plans"][0]["dynamic"].symbols} == {"N", "H", "W"}
    before = c.files()
    for k, size in enumerate(SIZES):
        x = np.random.default_rng(k).standard_normal(size).astype(np.float32)
        ours = c.run([x])
        ref = onnxruntime_outputs(path, {"x": x})
        assert [o.shape for o in ours] == [r.shape for r in ref], size
        for o, r in zip(ours, ref):
            if r.dtype.kind in "iub":
                np.testing.assert_array_equal(o, r)
            else:
                assert rel_err(o, r) <= TOL, (size, rel_err(o, r))
    assert c.files() == before


def test_gather_indices_outside_a_run_time_axis_are_refused_naming_the_node(tmp_path):
    """Index 5 on axis H: the plan records H > 5 and the runtime refuses smaller H."""
    path = _model(tmp_path, "gather_symbolic_axis_then_conv")
    blob, _ = blob_of(compile_model(_spec(path)))
    instance(blob, [(1, 4, 6, 9)])
    with pytest.raises(EvalError, match=r"node 'Gather_0' \(Gather\)"):
        instance(blob, [(1, 4, 5, 9)])


def test_resize_to_another_tensors_size_guards_the_ratio(tmp_path):
    """p = maxpool(x) resized back to x's size: the ratio 2 holds only for even H, W."""
    blob, _ = blob_of(compile_model(_spec(_model(tmp_path, "resize_to_another_tensor"))))
    instance(blob, [(1, 4, 6, 10)])
    with pytest.raises(EvalError, match=r"node 'Resize_2' \(Resize\)"):
        instance(blob, [(1, 4, 7, 10)])


@pytest.mark.parametrize("cell,layout", [("LSTM", 0), ("GRU", 0), ("RNN", 0)])
def test_recurrent_cell_with_symbolic_sequence_and_batch(tmp_path, cell, layout):
    """LSTM/GRU/RNN take their sizes as params: sequence length and batch stay symbolic."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[cell]
    hidden, feat = 6, 4
    rng = np.random.default_rng(3)
    dims = ["N", "S", feat] if layout else ["S", "N", feat]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    outs = ["y", "yh"] + (["yc"] if cell == "LSTM" else [])
    node = _N(cell, ["x", "w", "r", "b"], outs, hidden_size=hidden, layout=layout,
              direction="bidirectional" if cell == "GRU" else "forward")
    d = 2 if cell == "GRU" else 1
    inits = [_f32("w", rng.standard_normal((d, gates * hidden, feat)) * 0.5),
             _f32("r", rng.standard_normal((d, gates * hidden, hidden)) * 0.5),
             _f32("b", rng.standard_normal((d, 2 * gates * hidden)) * 0.1)]
    m = helper.make_model(helper.make_graph(
        [node], "g", [x], [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                           for o in outs], inits),
        opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8
    path = str(tmp_path / "rnn.onnx")
    onnx.save(m, path)
    c = Compiled(_spec(path), str(tmp_path / "out"))
    assert {s.name for s in c.info["plans"][0]["dynamic"].symbols} == {"S", "N"}
    for k, (s, n) in enumerate([(5, 1), (2, 3), (9, 2)]):
        shape = (n, s, feat) if layout else (s, n, feat)
        xv = np.random.default_rng(k).standard_normal(shape).astype(np.float32)
        ours, ref = c.run([xv]), onnxruntime_outputs(path, {"x": xv})
        assert [o.shape for o in ours] == [r.shape for r in ref]
        for o, r in zip(ours, ref):
            assert rel_err(o, r) <= TOL


def test_inspect_prints_a_dynamic_plans_expressions(tmp_path):
    """`megcc inspect` shows the symbols, guards, run-time params and buffer sizes as
    expressions of the input dimensions (the Gather reads axis 3 of a (N,4,H,W) input, so
    its axis extent is W; its indices 0, 2, -1, 1 need W > 2)."""
    import subprocess
    import sys

    path = _model(tmp_path, "gather_symbolic_axis")
    r = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "inspect", path,
                        "--input-shapes", "x=(N,4,H,W);N<=4", "--shape-hints", "W=10"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "== dynamic: N in [1, 4] (compiled for 1)" in out
    assert "W in [1, " in out and "(compiled for 10)" in out
    assert "guard: -W + 2 < 0   # node 'Gather_0' (Gather)" in out
    assert "axis_n=W " in out and "outer=4*H*N" in out
    assert "size 16*H*N*W" in out  # the input's buffer: N*4*H*W floats


def test_kernels_h_says_a_dynamic_models_arena_macro_is_the_hints(tmp_path):
    from megcc_builder.compiler import compile_bundle

    path = _model(tmp_path, "gather_symbolic_axis")
    compile_bundle([_spec(path)], str(tmp_path / "out"), save_c_array=False)
    text = (tmp_path / "out" / "kernels.h").read_text()
    assert "megcc_network_required_arena_size" in text.split("#define MEGCC_M_ARENA_SIZE")[0]
