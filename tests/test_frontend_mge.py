"""MegEngine frontend: load_mge -> graph_to_onnx -> onnxruntime must reproduce
MegEngine's own output of the same dumped file.

Oracle: MegEngine runs the .mge (tests/mge_zoo.py: reference_output), onnxruntime
runs our IR exported as ONNX; the two share no code with each other or with our
kernels.  Tolerance: |ours - ref| / max(1, |ref|) <= 1e-4 everywhere.
"""
import os
import shutil
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import onnxruntime as ort  # noqa: E402  (a missing oracle must fail, not skip)

import mge_zoo  # noqa: E402
from megcc_builder.frontend.mge import load_mge  # noqa: E402
from megcc_builder.ir import CompileError  # noqa: E402
from megcc_builder.ir.to_onnx import graph_to_onnx  # noqa: E402

TOL = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = (1, 3, 64, 64)  # ImageNet nets at a size that keeps the suite fast
SHAPES = {name: SMALL for name in ("mobilenet_v1", "mobilenet_v2", "resnet18", "shufflenet_v2")}
SHAPES.update(digits=(1, 1, 8, 8), opzoo=(2, 8, 12, 12))
MEGENGINE_ONLY = {"ConvBias", "BatchNorm", "Elemwise", "Dimshuffle", "Subtensor",
                  "GetVarShape", "AxisAddRemove", "TypeCvt", "MatrixMul", "Broadcast"}


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mge_zoo"))


# How the model is dumped: plain graph; optimize_for_inference (BN folded, elemwise
# fused); and the same plus conv+bias+nonlinearity fusion into ConvBias.
DUMP_MODES = {"plain": (False, False), "optimized": (True, False), "fused": (True, True)}


def dumped(zoo_dir, name, mode):
    optimized, fuse = DUMP_MODES[mode]
    path = os.path.join(zoo_dir, f"{name}_{mode}.mge")
    return mge_zoo.dump_model(name, path, optimized, input_shape=SHAPES[name], fuse_conv_bias=fuse)


def run_onnx(graph, feeds):
    model = graph_to_onnx(graph)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def max_rel_err(ours, ref):
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    return float(np.max(np.abs(ours.astype(np.float64) - ref) / np.maximum(1.0, np.abs(ref))))


def check_against_megengine(path, shape, input_shapes=None, seed=0):
    graph = load_mge(path, input_shapes)
    x = np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)
    ours = run_onnx(graph, {"data": x})
    refs = mge_zoo.reference_output(path, {"data": x})
    assert len(ours) == len(refs)
    errs = [max_rel_err(o, r) for o, r in zip(ours, refs)]
    assert max(errs) <= TOL, errs
    return graph, max(errs)


# --------------------------------------------------------------- zoo vs MegEngine
@pytest.mark.parametrize("mode", DUMP_MODES)
@pytest.mark.parametrize("name", mge_zoo.MODELS)
def test_zoo_matches_megengine(zoo_dir, name, mode):
    path = dumped(zoo_dir, name, mode)
    graph, err = check_against_megengine(path, SHAPES[name])
    # The IR speaks ONNX only: no MegEngine opr name may leak through.
    assert not {op.type for op in graph.ops} & MEGENGINE_ONLY
    assert graph.inputs == ["data"] and graph.tensor("data").shape == SHAPES[name]
    print(f"{name} {mode}: max rel err {err:.2e}")


def test_input_shapes_override_reinfers_shape_subgraphs(zoo_dir):
    # ShuffleNet's channel shuffle computes reshape targets from GetVarShape, so a
    # new input shape must flow through the shape sub-graphs, not the traced one.
    path = dumped(zoo_dir, "shufflenet_v2", "plain")
    graph, _ = check_against_megengine(path, (2, 3, 96, 96), {"data": (2, 3, 96, 96)})
    assert graph.tensor("data").shape == (2, 3, 96, 96)
    assert graph.tensor(graph.outputs[0]).shape == (2, 1000)


def test_fused_dump_folds_bn_into_conv(zoo_dir):
    plain = load_mge(dumped(zoo_dir, "resnet18", "plain"))
    opt = load_mge(dumped(zoo_dir, "resnet18", "fused"))
    assert sum(op.type == "BatchNormalization" for op in plain.ops) == 20
    assert not any(op.type == "BatchNormalization" for op in opt.ops)
    convs = [op for op in opt.ops if op.type == "Conv"]
    assert len(convs) == 20
    # MegEngine's fusion gives 9 ConvBias+RELU with the BN shift as a (1, C, 1, 1)
    # bias (-> ONNX's 1-D B), 8 ConvBias+IDENTITY whose "bias" is the full-size
    # residual (-> Conv then Add) and 3 plain Convolutions.
    with_bias = [op for op in convs if len(op.inputs) == 3]
    assert len(with_bias) == 9
    for op in with_bias:
        out_channels = opt.tensor(op.inputs[1]).shape[0]
        assert opt.tensor(op.inputs[2]).shape == (out_channels,)
    conv_outputs = {op.outputs[0] for op in convs}
    residual_adds = [op for op in opt.ops if op.type == "Add" and conv_outputs & set(op.inputs)]
    assert len(residual_adds) == 8


def test_group_conv_weight_is_onnx_layout(zoo_dir):
    graph = load_mge(dumped(zoo_dir, "mobilenet_v1", "plain"))
    depthwise = [op for op in graph.ops if op.type == "Conv" and op.attrs["group"] > 1]
    assert len(depthwise) == 13
    for op in depthwise:
        w = graph.tensor(op.inputs[1])
        assert w.is_const and len(w.shape) == 4
        assert w.shape[0] == op.attrs["group"] and w.shape[1] == 1  # (OC, IC/G, KH, KW)


def test_digits_sample_classifies_real_images():
    path = os.path.join(ROOT, "samples", "digits", "digits.mge")
    data = np.load(os.path.join(ROOT, "samples", "digits", "digits_test.npz"))
    graph = load_mge(path)
    sess = ort.InferenceSession(graph_to_onnx(graph).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    preds, errs = [], []
    for img in data["x"]:
        feed = {"data": img[None].astype(np.float32)}
        (ours,) = sess.run(None, feed)
        (ref,) = mge_zoo.reference_output(path, feed)
        errs.append(max_rel_err(ours, ref))
        preds.append(int(ours.argmax()))
    assert max(errs) <= TOL
    assert len(data["y"]) == 100
    assert np.mean(np.array(preds) == data["y"]) > 0.95


def test_digits_trainer_reaches_accuracy():
    mge_zoo.build("digits")  # trains once per process; shared with the zoo tests
    assert mge_zoo.digits_accuracy > 0.95


# --------------------------------------------------------------- user errors
def test_garbage_file_is_a_compile_error(tmp_path):
    bad = tmp_path / "garbage.mge"
    bad.write_bytes(np.random.RandomState(0).bytes(3000))
    with pytest.raises(CompileError) as e:
        load_mge(str(bad))
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("keep", [0, 8, 1000, 40000])
def test_truncated_file_is_a_compile_error(tmp_path, keep):
    src = os.path.join(ROOT, "samples", "digits", "digits.mge")
    bad = tmp_path / "truncated.mge"
    bad.write_bytes(open(src, "rb").read()[:keep])
    with pytest.raises(CompileError) as e:
        load_mge(str(bad))
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_missing_file_is_a_compile_error(tmp_path):
    with pytest.raises(CompileError, match="no such model file"):
        load_mge(str(tmp_path / "nope.mge"))


def test_unknown_input_name_is_a_compile_error(tmp_path):
    path = str(tmp_path / "digits.mge")
    shutil.copy(os.path.join(ROOT, "samples", "digits", "digits.mge"), path)
    with pytest.raises(CompileError) as e:
        load_mge(path, {"image": (1, 1, 8, 8)})
    msg = str(e.value)
    assert path in msg and "'image'" in msg and "data" in msg


def test_unsupported_opr_names_file_and_node(tmp_path):
    import megengine as mge
    import megengine.functional as F
    from megengine.jit import trace

    @trace(symbolic=True, capture_as_const=True)
    def f(data):  # MegEngine's 3-D convolution has no converter
        return F.conv3d(data, mge.tensor(np.ones((2, 3, 1, 1, 1), np.float32)))

    f(mge.tensor(np.zeros((1, 3, 2, 2, 2), np.float32)))
    path = str(tmp_path / "conv3d.mge")
    f.dump(path, arg_names=["data"], optimize_for_inference=False)
    with pytest.raises(CompileError) as e:
        load_mge(path)
    msg = str(e.value)
    assert path in msg and "node '" in msg and "Convolution3D" in msg and "\n" not in msg
