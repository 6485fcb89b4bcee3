"""A pooling window that covers the whole map becomes global pooling
(passes/canonicalize.py): ResNet-50 and the Inception nets end in a 7x7 AveragePool on a 7x7
map. Checked against onnxruntime for strides, ceil_mode and count_include_pad variants, and
that windows that do not cover the map (padding, a smaller window, dilation, MaxPool's
indices) stay window pooling."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import run_onnx
from megcc_builder.options import CompileOptions


def _model(op, shape, outputs=("y",), **attrs):
    node = helper.make_node(op, ["x"], list(outputs), **attrs)
    graph = helper.make_graph(
        [node], "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT if o == "y" else TensorProto.INT64,
                                       None) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _ops(model):
    return [op.type for op in build_plan(load_onnx(model), "m", CompileOptions()).graph.ops]


GLOBAL = {
    "avg7": ("AveragePool", (1, 37, 7, 7), dict(kernel_shape=[7, 7])),
    "avg_strided_ceil": ("AveragePool", (2, 5, 6, 9),
                         dict(kernel_shape=[6, 9], strides=[2, 3], ceil_mode=1)),
    "avg_count_pad": ("AveragePool", (1, 3, 4, 4),
                      dict(kernel_shape=[4, 4], count_include_pad=1)),
    "max5": ("MaxPool", (1, 9, 5, 5), dict(kernel_shape=[5, 5], strides=[5, 5])),
    "max1d": ("MaxPool", (2, 4, 11), dict(kernel_shape=[11])),
}


@pytest.mark.parametrize("case", sorted(GLOBAL))
def test_whole_map_pool_is_global_and_matches_onnxruntime(case):
    op, shape, attrs = GLOBAL[case]
    model = _model(op, shape, **attrs)
    assert _ops(model) == ["Global" + op]
    x = np.random.default_rng(len(case)).standard_normal(shape).astype(np.float32)
    ours = run_onnx(model, {"x": x})[0]
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


WINDOW = {
    "padded": ("AveragePool", (1, 3, 7, 7), dict(kernel_shape=[7, 7], pads=[1, 1, 1, 1]), ("y",)),
    "smaller": ("AveragePool", (1, 3, 7, 7), dict(kernel_shape=[7, 6]), ("y",)),
    "dilated": ("MaxPool", (1, 3, 7, 7), dict(kernel_shape=[4, 4], dilations=[2, 2]), ("y",)),
    "indices": ("MaxPool", (1, 3, 5, 5), dict(kernel_shape=[5, 5]), ("y", "i")),
}


@pytest.mark.parametrize("case", sorted(WINDOW))
def test_other_windows_stay_window_pooling(case):
    op, shape, attrs, outputs = WINDOW[case]
    assert _ops(_model(op, shape, outputs, **attrs)) == [op]
