"""Compiling models with run-time dimensions into one dynamic plan (issue 12, items 1, 2, 5).

Oracles:
* the compiler's own static path: evaluating the dynamic plan at a size with the Python
  twin of the runtime (emit/dynamic.py, tests/dynamic_twin.py) must give exactly the
  tensor shapes, view offsets, workspace sizes, kernels and params of a static compile at
  that size (same implementation choices where several apply);
* onnxruntime: the one compiled directory, run by the C runner at three or more sizes,
  matches it within 1e-4 (|ours - ref| / max(1, |ref|)), and nothing is recompiled.
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dynamic_e2e import Compiled, onnxruntime_outputs, rel_err, with_symbolic_batch
from dynamic_twin import blob_of, compare_with_static, instance
from megcc_builder.compiler import ModelSpec, compile_bundle, compile_model
from megcc_builder.config import parse_input_shapes, parse_shape_hints
from megcc_builder.emit.dynamic import EvalError
from megcc_builder.frontend.dims import SymbolSpec
from megcc_builder.ir import CompileError
from pypi_models import model_path

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
TOL = 1e-4


def _spec(path, shapes="", hints="", **kw) -> ModelSpec:
    symbols = SymbolSpec(hints=parse_shape_hints(hints) if hints else {})
    instances = parse_input_shapes(shapes, "test", symbols.bounds) if shapes else []
    return ModelSpec("m", path, instances, symbols=symbols, **kw)


# (model, --input-shapes, --shape-hints, sizes): PP-OCRv4's detector keeps its (N,3,H,W)
# dim_params, the recognizer gets (N,3,48,W) with bounds, the classifier its (-1,3,?,?)
REAL = [
    ("ppocr_cls", "", "", [(1, 3, 48, 192), (3, 3, 48, 100), (2, 3, 33, 57)]),
    ("ppocr_rec", "x=(N,3,48,W);16<=W<=2048;N<=8", "W=320",
     [(1, 3, 48, 320), (2, 3, 48, 100), (1, 3, 48, 777)]),
    ("ppocr_det", "", "", [(1, 3, 64, 64), (2, 3, 128, 64), (1, 3, 320, 256)]),
]


@pytest.mark.parametrize("name,shapes,hints,sizes", REAL, ids=[r[0] for r in REAL])
def test_dynamic_plan_evaluates_to_the_static_plans(name, shapes, hints, sizes):
    path = model_path(name)
    model = compile_model(_spec(path, shapes, hints))
    blob, names = blob_of(model)
    assert blob.dynamic is not None
    for size in sizes:
        compare_with_static(path, model, blob, names, {"x": size})


def test_dynamic_plan_with_vector_kernels_evaluates_to_the_static_plans():
    path = model_path("ppocr_det")
    model = compile_model(_spec(path, isa="x86_64-v3"))
    blob, names = blob_of(model)
    for size in [(1, 3, 96, 160), (2, 3, 64, 224)]:
        compare_with_static(path, model, blob, names, {"x": size}, isa="x86_64-v3")


def test_guards_refuse_shapes_naming_the_node():
    """The detector's FPN adds upsampled maps to finer ones: sizes must divide by 32."""
    model = compile_model(_spec(model_path("ppocr_det")))
    blob, _ = blob_of(model)
    instance(blob, [(1, 3, 96, 128)])
    with pytest.raises(EvalError, match=r"node 'p2o\.Add\.\d+' \(Add\)"):
        instance(blob, [(1, 3, 100, 100)])
    with pytest.raises(EvalError, match="outside"):
        instance(blob, [(1, 3, 96, 100000)])


def test_bounds_and_hints_from_input_shapes():
    model = compile_model(_spec(model_path("ppocr_rec"), "x=(N,3,48,W);16<=W<=2048;N<=8",
                                "W=320"))
    blob, _ = blob_of(model)
    syms = {s.name: (s.min, s.max, s.axis) for s in blob.dynamic.symbols}
    assert syms == {"N": (1, 8, 0), "W": (16, 2048, 3)}
    assert blob.tensors[blob.inputs[0]].shape == (1, 3, 48, 320)  # the hint instance
    with pytest.raises(EvalError, match="W = 15 is outside"):
        instance(blob, [(1, 3, 48, 15)])
    with pytest.raises(EvalError, match="axis 2"):
        instance(blob, [(1, 3, 32, 320)])  # a static dimension differs


def test_a_dimension_the_model_fixes_is_refused_naming_the_node():
    """ResNet-50 flattens with Reshape(1, 2048): its batch cannot change."""
    path = os.path.join(LIGHT, "light_resnet50.onnx")
    with pytest.raises(CompileError, match=r"dimension N cannot stay dynamic: node 'n173' "
                                           r"\(Reshape\)"):
        compile_model(_spec(path, "gpu_0/data_0=(N,3,224,224)"))


def test_sizes_past_4_gib_at_the_bounds_are_refused_naming_the_tensor():
    path = model_path("ppocr_cls")
    with pytest.raises(CompileError, match=r"tensor 'x' .* can take \d+ bytes"):
        compile_model(_spec(path, "x=(N,3,H,W);N<=64;H<=65536;W<=65536"))


def test_default_bounds_shrink_until_every_tensor_fits():
    model = compile_model(_spec(model_path("ppocr_cls")))
    g = model.plans[0].graph
    tops = {n: hi for n, (lo, hi, h) in g.symbols.items()}
    assert all(hi < 16384 for hi in tops.values())
    from megcc_builder.ir.symbolic import upper_bound
    bounds = {n: (lo, hi) for n, (lo, hi, h) in g.symbols.items()}
    assert max(upper_bound(t.nbytes, bounds) for t in g.tensors.values()) < 1 << 32


def _tiny_resize_model(tmp_path, coord="asymmetric", nearest="floor", scale=2.0) -> str:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "s")
    roi = numpy_helper.from_array(np.array([], np.float32), "r")
    node = helper.make_node("Resize", ["x", "r", "s"], ["y"], mode="nearest",
                            coordinate_transformation_mode=coord, nearest_mode=nearest)
    m = helper.make_model(helper.make_graph([node], "g", [x], [y], [scales, roi]),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = str(tmp_path / f"resize_{coord}_{nearest}.onnx")
    onnx.save(m, path)
    return path


@pytest.mark.parametrize("coord,nearest,scale", [
    ("asymmetric", "floor", 2.0), ("half_pixel", "round_prefer_floor", 3.0),
    ("align_corners", "round_prefer_ceil", 2.0), ("asymmetric", "floor", 0.5)])
def test_resize_with_run_time_extents_matches_onnxruntime(tmp_path, coord, nearest, scale):
    path = _tiny_resize_model(tmp_path, coord, nearest, scale)
    c = Compiled(_spec(path), str(tmp_path / "out"))
    for shape in [(1, 3, 8, 8), (2, 3, 5, 7), (1, 3, 16, 4)]:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        (ours,) = c.run([x])
        (ref,) = onnxruntime_outputs(path, {"x": x})
        assert ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref)


def _run_sizes(c: Compiled, path: str, sizes, input_name="x"):
    before = c.files()
    runner = os.stat(c.runner).st_mtime_ns
    for k, size in enumerate(sizes):
        x = np.random.default_rng(k).standard_normal(size).astype(np.float32)
        ours = c.run([x])
        ref = onnxruntime_outputs(path, {input_name: x})
        assert [o.shape for o in ours] == [r.shape for r in ref]
        for o, r in zip(ours, ref):
            assert rel_err(o, r) <= TOL, (size, rel_err(o, r))
    # nothing was recompiled or rebuilt: the same files, the same runner
    assert c.files() == before
    assert os.stat(c.runner).st_mtime_ns == runner


@pytest.mark.parametrize("name,shapes,hints,sizes", REAL, ids=[r[0] for r in REAL])
def test_real_model_compiled_once_runs_at_three_sizes(tmp_path, name, shapes, hints, sizes):
    path = model_path(name)
    c = Compiled(_spec(path, shapes, hints), str(tmp_path / "out"))
    assert c.info["plans"][0]["dynamic"] is not None
    _run_sizes(c, path, sizes)


def test_light_model_with_a_symbolic_batch_runs_at_three_batches(tmp_path):
    path = with_symbolic_batch(os.path.join(LIGHT, "light_densenet121.onnx"),
                               str(tmp_path / "densenet121_n.onnx"))
    c = Compiled(ModelSpec("m", path, symbols=SymbolSpec(bounds={"N": (1, 8)})),
                 str(tmp_path / "out"))
    name = c.info["plans"][0]["tensors"][c.info["plans"][0]["inputs"][0]]["name"]
    _run_sizes(c, path, [(1, 3, 224, 224), (2, 3, 224, 224), (3, 3, 224, 224)], name)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", *args],
                          capture_output=True, text=True, timeout=900)


def test_cli_compile_keeps_dimensions_dynamic_and_shows_them(tmp_path):
    out = tmp_path / "out"
    r = _cli("compile", model_path("ppocr_rec"), "-o", str(out), "--input-shapes",
             "x=(N,3,48,W);16<=W<=2048;N<=8", "--shape-hints", "W=320")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    plan = manifest["models"][0]["plans"][0]
    assert plan["inputs"][0]["shape"] == ["N", 3, 48, "W"]
    assert plan["outputs"][0]["shape"] == ["N", "(W + 3)//8", 6625]
    assert plan["symbols"] == [{"name": "N", "min": 1, "max": 8, "hint": 1},
                               {"name": "W", "min": 16, "max": 2048, "hint": 320}]
    txt = (out / "ch_PP-OCRv4_rec_infer.tiny.txt").read_text()
    assert "input x float32 (N,3,48,W)" in txt and "symbol W in [16, 2048]" in txt


@pytest.mark.parametrize("args,message", [
    (["--input-shapes", "gpu_0/data_0=(N,3,224,224)"],
     "dimension N cannot stay dynamic: node 'n173' (Reshape)"),
    (["--input-shapes", "gpu_0/data_0=(N,3,224,224);N<=0"], "leaves N no value"),
    (["--input-shapes", "gpu_0/data_0=(N,3,224,224);N<<4"], "bad bound"),
    (["--input-shapes", "gpu_0/data_0=(N,3,224,224);Q<=3"], "'Q', which no input has"),
    (["--input-shapes", "gpu_0/data_0=(N,3,224,224);N<=4", "--shape-hints", "N=9"],
     "hint N=9 is outside the bounds [1, 4]"),
    (["--shape-hints", "N=x"], "bad shape hint"),
])
def test_cli_refusals_are_one_line_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    r = _cli("compile", os.path.join(LIGHT, "light_resnet50.onnx"), "-o", str(out), *args)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_json_config_accepts_symbolic_input_shapes(tmp_path):
    from megcc_builder.config import load_config

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"dump_dir": str(tmp_path / "out"), "models": [{
        "model_name": "rec", "model_path": model_path("ppocr_rec"),
        "input_shape_str": "x=(1,3,48,W);W<=1024", "shape_hints": "W=160"}]}))
    _, specs, _ = load_config(str(cfg))
    model = compile_model(specs[0])
    blob, _ = blob_of(model)
    assert [(s.name, s.min, s.max) for s in blob.dynamic.symbols] == [("W", 1, 1024)]
    assert blob.tensors[blob.inputs[0]].shape == (1, 3, 48, 160)


def test_static_instances_still_compile_their_own_plans():
    model = compile_model(_spec(model_path("ppocr_rec"), "x=(1,3,48,320):x=(1,3,48,W)"))
    assert [p.graph.symbols != {} for p in model.plans] == [False, True]


def test_two_compiles_are_byte_identical(tmp_path):
    path = model_path("ppocr_det")
    outs = []
    for k in range(2):
        out = tmp_path / f"o{k}"
        compile_bundle([_spec(path)], str(out))
        outs.append({n: (out / n).read_bytes() for n in sorted(os.listdir(out))})
    assert outs[0] == outs[1]


def test_an_extent_specialised_without_the_trace_seeing_is_caught(monkeypatch):
    """Simulates a kernel taking plain ints from its shapes (numpy would): the plan would
    be silently wrong at other sizes; the compile-time probe check refuses it instead."""
    from megcc_builder.codegen import params
    from megcc_builder.ir.symbolic import hint

    monkeypatch.setattr(params, "_word", hint)
    with pytest.raises(CompileError, match=r"cannot stay dynamic: node '.*' \(.*\) compiles"):
        compile_model(_spec(model_path("ppocr_cls")))


def test_probe_check_passes_quietly_on_a_traced_plan():
    from megcc_builder import dynamic_check

    model = compile_model(_spec(model_path("ppocr_det")))
    blob, _ = blob_of(model)
    dims = dynamic_check.probe_dims(blob)
    assert dims is not None and dims != [blob.tensors[blob.inputs[0]].shape]


# --- operators with run-time extents, one small model each, against onnxruntime -----------

_RNG = np.random.default_rng(0)


def _w(*shape):
    return _RNG.standard_normal(shape).astype(np.float32)


def _i64(name, v):
    return numpy_helper.from_array(np.array(v, np.int64), name)


def _f32(name, v):
    return numpy_helper.from_array(np.asarray(v, np.float32), name)


_N = helper.make_node
NCHW = [(1, 4, 8, 8), (2, 4, 5, 13), (3, 4, 16, 9)]
OPS = {
    # (rows shorter than a vector too: the vector kernel's scalar tail)
    "softmax_last": ([_N("Softmax", ["x"], ["y"], axis=-1)], [],
                     [(1, 4, 8, 8), (2, 4, 5, 3), (3, 4, 16, 9)]),
    "transpose": ([_N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [], NCHW),
    "concat": ([_N("Concat", ["x", "x"], ["y"], axis=3)], [], NCHW),
    "slice": ([_N("Slice", ["x", "s", "e", "a"], ["y"])],
              [_i64("s", [1, 0]), _i64("e", [-1, 1 << 30]), _i64("a", [2, 3])], NCHW),
    "split_add": ([_N("Split", ["x"], ["a", "b"], axis=1), _N("Add", ["a", "b"], ["y"])], [],
                  NCHW),
    "shape_reshape": ([_N("Shape", ["x"], ["s"]), _N("Gather", ["s", "i"], ["n"], axis=0),
                       _N("Concat", ["n", "m1"], ["t"], axis=0), _N("Reshape", ["x", "t"], ["y"])],
                      [_i64("i", [0]), _i64("m1", [-1])], NCHW),
    "flatten": ([_N("Flatten", ["x"], ["y"], axis=1)], [], NCHW),
    "maxpool": ([_N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                    pads=[1, 1, 1, 1])], [], NCHW),
    "avgpool_ceil": ([_N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                         ceil_mode=1)], [], NCHW),
    "global_pool": ([_N("GlobalAveragePool", ["x"], ["y"])], [], NCHW),
    "conv3x3": ([_N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
                [_f32("w", _w(8, 4, 3, 3)), _f32("b", _w(8))], NCHW),
    "conv_stride2": ([_N("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1])], [_f32("w", _w(8, 4, 3, 3))], NCHW),
    "conv_depthwise": ([_N("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                           group=4)], [_f32("w", _w(4, 1, 3, 3))], NCHW),
    "conv_transpose": ([_N("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[2, 2],
                           strides=[2, 2])], [_f32("w", _w(4, 3, 2, 2))], NCHW),
    "matmul_weights": ([_N("MatMul", ["x", "w"], ["y"])], [_f32("w", _w(5, 6))],
                       [(1, 3, 4, 5), (2, 3, 9, 5), (3, 3, 2, 5)]),
    "matmul_batched": ([_N("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]),
                        _N("MatMul", ["x", "t"], ["y"])], [], NCHW),
    "pad": ([_N("Pad", ["x", "p"], ["y"], mode="constant")],
            [_i64("p", [0, 0, 1, 2, 0, 0, 3, 4])], NCHW),
    "broadcast_mul": ([_N("ReduceMean", ["x"], ["m"], axes=[3], keepdims=1),
                       _N("Mul", ["x", "m"], ["y"])], [], NCHW),
    "layer_norm": ([_N("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
                   [_f32("g", _w(7)), _f32("b", _w(7))], [(1, 3, 4, 7), (2, 3, 9, 7)]),
    "pool_flatten_gemm": ([_N("GlobalAveragePool", ["x"], ["p"]), _N("Flatten", ["p"], ["f"]),
                           _N("Gemm", ["f", "w", "b"], ["y"], transB=1)],
                          [_f32("w", _w(6, 4)), _f32("b", _w(6))], NCHW),
    "expand_to_shape": ([_N("Shape", ["x"], ["s"]), _N("Expand", ["c", "s"], ["e"]),
                         _N("Add", ["x", "e"], ["y"])], [_f32("c", _w(1, 4, 1, 1))], NCHW),
}


def _op_model(tmp_path, name, nodes, inits, opset=17) -> str:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "C", "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(m, path)
    return path


@pytest.mark.parametrize("name", sorted(OPS))
def test_operator_with_run_time_extents_matches_onnxruntime(tmp_path, name):
    nodes, inits, sizes = OPS[name]
    opset = 13 if name == "broadcast_mul" else 17
    path = _op_model(tmp_path, name, nodes, inits, opset)
    # every dimension the weights do not fix stays symbolic (the model's N, C, H, W)
    fixed = {"matmul_weights": "x=(N,3,H,5)", "layer_norm": "x=(N,3,H,7)"}
    shapes = fixed.get(name, "x=(N,4,H,W)" if inits else "")
    c = Compiled(_spec(path, shapes), str(tmp_path / "out"))
    _run_sizes(c, path, sizes)


@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "asymmetric",
                                   "pytorch_half_pixel"])
@pytest.mark.parametrize("scale", [2.0, 0.5])
def test_linear_resize_with_run_time_extents_matches_onnxruntime(tmp_path, coord, scale):
    path = _op_model(tmp_path, "resize_linear",
                     [_N("Resize", ["x", "r", "s"], ["y"], mode="linear",
                         coordinate_transformation_mode=coord)],
                     [_f32("r", []), _f32("s", [1, 1, scale, scale])])
    c = Compiled(_spec(path), str(tmp_path / "out"))
    _run_sizes(c, path, NCHW)


def test_an_unsupported_run_time_resize_is_refused_naming_the_node(tmp_path):
    path = _op_model(tmp_path, "resize_crop",
                     [_N("Resize", ["x", "r", "s"], ["y"], mode="linear",
                         coordinate_transformation_mode="tf_crop_and_resize")],
                     [_f32("r", [0, 0, 0.1, 0.1, 1, 1, 0.9, 0.9]), _f32("s", [1, 1, 2, 2])])
    with pytest.raises(CompileError, match=r"node 'Resize_0': Resize: coordinate_transformation"
                                           r"_mode 'tf_crop_and_resize' with run-time extents"):
        compile_model(_spec(path))
