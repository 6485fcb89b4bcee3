"""MegEngine int8 frontend: quantized .mge dumps -> IR integer operators, checked bit-exactly
against MegEngine's own run of the same file.

Oracle: MegEngine executes the dumped .mge (mge_quant_zoo.reference_output). Ours: load_mge's
graph evaluated by tests/int8_semantics.py, a numpy reading of the IR contract (MegEngine's
float32 requantization, rounding half away from zero). This pins the frontend's translation
(scales, zero points, biases, activations, layouts) independently of the C kernels, which
tests/test_int8_mge_models.py checks against the same oracle.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mge_quant_zoo as zoo
from int8_semantics import run_graph
from megcc_builder.frontend.mge import load_mge
from megcc_builder.ir import CompileError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {"plain": False, "optimized": True}
# fully int8 nets (their *_float_head twins differ only in a float head: tests/test_int8_mge_models)
INT8_NETS = [n for n in zoo.NET_NAMES if not n.endswith("_float_head")]
# IR ops a quantized MegEngine opr may become; MegEngine names must never leak through
INTEGER_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearAdd", "QLinearMul",
               "QLinearSigmoid", "QLinearAveragePool", "MatMulInteger"}


@pytest.fixture(scope="session")
def qzoo_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mge_quant_zoo"))


def _feeds(name, seed=0):
    inputs = zoo.op_inputs(name, seed) if name in zoo.OPS else [zoo.net_input(name, 100 + seed)]
    return dict(zip(zoo.input_names(name), inputs))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", zoo.OP_NAMES)
def test_single_operator_bit_exact(qzoo_dir, name, mode):
    path = zoo.dump(name, qzoo_dir, MODES[mode])
    graph = load_mge(path)
    # two Gaussian inputs, then one at and next to the rounding ties of the input scales
    for feeds in (_feeds(name, 0), _feeds(name, 1), zoo.near_tie_inputs(graph)):
        (ref,) = zoo.reference_output(path, feeds)
        (ours,) = run_graph(graph, feeds).values()
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        diff = np.flatnonzero(ours != ref)
        assert diff.size == 0, (f"{name}/{mode}: {diff.size} of {ref.size} elements differ, "
                                f"first at {diff[0]}: ours {ours.flat[diff[0]]}, "
                                f"MegEngine {ref.flat[diff[0]]}")
    types = {op.type for op in graph.ops}
    # every requantizing op rounds the way MegEngine does
    for op in graph.ops:
        if op.type in INTEGER_OPS - {"DequantizeLinear", "MatMulInteger"}:
            assert op.attrs.get("rounding") == "half_away", op
    assert not types & {"Conv", "Gemm", "AveragePool", "TypeCvt", "ElemwiseMultiType"}, types


NCHW44_OPS = ["conv3x3_relu", "conv1x1_s2_relu", "group_conv_g2_relu", "depthwise_relu",
              "conv_first_layer_c3", "maxpool_3x3_s2_p1", "avgpool_2x2"]


@pytest.mark.parametrize("mode", ["nchw44", "nchw44_dot"])
@pytest.mark.parametrize("name", NCHW44_OPS + list(INT8_NETS))
def test_nchw44_dumps_bit_exact(qzoo_dir, name, mode):
    """MegCC's ARM flow dumps int8 models with enable_nchw44 / enable_nchw44_dot: 5-D
    activations and re-laid-out weights (NCHW44_DOT keeps each output channel's 4 input
    channels together)."""
    path = zoo.dump(name, qzoo_dir, mode)
    graph = load_mge(path)
    feeds = _feeds(name)
    (ref,) = zoo.reference_output(path, feeds)
    (ours,) = run_graph(graph, feeds).values()
    assert np.array_equal(ours, ref), f"{name}/{mode}: {np.sum(ours != ref)} elements differ"


def test_nchw44_dot_dump_has_dot_layout(qzoo_dir):
    """The dot-layout case above is real: MegEngine did write NCHW44_DOT convolutions."""
    from megengine.utils.network import Network

    net = Network.load(zoo.dump("group_conv_g2_relu", qzoo_dir, "nchw44_dot"))
    formats = {json.loads(o._opr.params)["format"] for o in net.all_oprs if o.type == "ConvBias"}
    sparse = {json.loads(o._opr.params)["sparse"] for o in net.all_oprs if o.type == "ConvBias"}
    assert formats == {"NCHW44_DOT"} and sparse == {"GROUP"}


def test_translation_of_a_quantized_conv(qzoo_dir):
    """Scales, bias and activation land where the contract puts them."""
    graph = load_mge(zoo.dump("depthwise_h_swish", qzoo_dir, True))
    (conv,) = [op for op in graph.ops if op.type == "QLinearConv"]
    assert conv.attrs["group"] == 8 and conv.attrs["activation"] == "HSwish"
    x, sx, zx, w, sw, zw, sy, zy, b = (graph.tensor(n) for n in conv.inputs)
    assert (x.dtype, w.dtype, b.dtype, graph.tensor(conv.outputs[0]).dtype) == (
        "int8", "int8", "int32", "int8")
    assert w.shape == (8, 1, 3, 3) and b.shape == (8,)
    assert zx.data == 0 and zw.data == 0 and zy.data == 0
    assert np.isclose(float(sx.data) * float(sw.data), b.quant.scale, rtol=1e-6)
    assert x.quant.scale == pytest.approx(float(sx.data))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", INT8_NETS)
def test_whole_net_bit_exact(qzoo_dir, name, mode, summary):
    path = zoo.dump(name, qzoo_dir, MODES[mode])
    graph = load_mge(path)
    for seed in range(3):
        feeds = _feeds(name, seed)
        (ref,) = zoo.reference_output(path, feeds)
        (ours,) = run_graph(graph, feeds).values()
        assert np.array_equal(ours, ref), f"{name}/{mode} seed {seed}: max |diff| " \
            f"{np.max(np.abs(ours - ref))}"
    counts = {t: sum(op.type == t for op in graph.ops) for t in sorted(INTEGER_OPS)}
    summary(f"int8 mge {name} [{mode}]: IR ops " +
            ", ".join(f"{t} {n}" for t, n in counts.items() if n))
    assert counts["QLinearConv"] >= 3


def test_digits_int8_accuracy_beside_fp32(qzoo_dir, summary):
    """Post-training quantization of the digits CNN keeps its accuracy on the real held-out
    digits, in MegEngine and in our translation (which must agree image by image)."""
    float_net = zoo.digits_float()
    _, _, x_test, y_test = zoo.digits_data()
    import megengine as mge
    fp32 = float(np.mean(np.argmax(float_net(mge.tensor(x_test)).numpy(), 1) == y_test))
    path = zoo.dump("digits", qzoo_dir, True)
    graph = load_mge(path, {"data": x_test.shape})
    (ref,) = zoo.reference_output(path, {"data": x_test})
    (ours,) = run_graph(graph, {"data": x_test}).values()
    assert np.array_equal(ours, ref)
    int8 = float(np.mean(np.argmax(ours, 1) == y_test))
    summary(f"digits accuracy on {len(y_test)} held-out images: fp32 {fp32:.2%}, "
            f"int8 (MegEngine PTQ) {int8:.2%}")
    assert fp32 >= 0.95 and int8 >= fp32 - 0.02


@pytest.mark.parametrize("name", zoo.BAD_MODELS)
def test_malformed_quantization_gives_one_line_error(qzoo_dir, tmp_path, name):
    path, mention = zoo.dump_bad(name, qzoo_dir)
    with pytest.raises(CompileError) as err:
        load_mge(path)
    for word in mention:
        assert word in str(err.value), (word, str(err.value))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile", path,
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"megcc: error: {path}: node '") and "Traceback" not in proc.stderr
    assert all(word in lines[0] for word in mention), lines[0]
    assert not out.exists() or not any(out.iterdir())
