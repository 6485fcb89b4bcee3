"""onnxruntime's com.microsoft quantized operators (the QOperator format's contrib ops),
carried under their bare names. ONNX's own quantized ops (QLinearConv, QLinearMatMul,
ConvInteger, MatMulInteger, QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear) need no
entry: ONNX's schemas define them.

Every op here that requantizes also takes megcc's `rounding` and `activation` attributes
(docs: /work/coord/int8.md): the MegEngine frontend sets them, ONNX models never do.
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..graph import Graph, Op, Tensor
from .base import Attr, define
from .nchw44 import _window_out
from ..symbolic import broadcast_shapes

# megcc-only attributes of every requantizing op
ROUNDING = Attr("rounding", "'half_even' (onnxruntime) or 'half_away' (MegEngine): how the "
                "requantized value is rounded", "half_even")
ACTIVATION = Attr("activation", "'' or an activation applied in float before rounding "
                  "('Relu', 'Clip', 'Sigmoid', 'HSwish')", "")
ACT_BOUNDS = Attr("activation_bounds", "activation 'Clip': [min, max] in real units", None)
REQUANT = (ROUNDING, ACTIVATION, ACT_BOUNDS)


def _same_as_input(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    return [Tensor(op.outputs[0], x.shape, x.dtype)]


def _binary(graph: Graph, op: Op) -> List[Tensor]:
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    shape = broadcast_shapes(a.shape, b.shape)
    return [Tensor(op.outputs[0], shape, a.dtype)]


def _global_pool(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    if op.attrs.get("channels_last", 0):
        shape = (x.shape[0],) + (1,) * (len(x.shape) - 2) + (x.shape[-1],)
    else:
        shape = tuple(x.shape[:2]) + (1,) * (len(x.shape) - 2)
    return [Tensor(op.outputs[0], shape, x.dtype)]


def _avg_pool(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise graph.error(f"auto_pad {op.attrs['auto_pad']} is not supported", op)
    if op.attrs.get("channels_last", 0):
        raise graph.error("channels_last pooling is not supported", op)
    ks = list(op.attrs["kernel_shape"])
    r = len(ks)
    st = list(op.attrs.get("strides", [1] * r))
    pads = list(op.attrs.get("pads", [0] * 2 * r))
    ceil = int(op.attrs.get("ceil_mode", 0))
    spatial = tuple(_window_out(x.shape[2 + i], ks[i], st[i], 1, pads[i], pads[r + i], ceil)
                    for i in range(r))
    return [Tensor(op.outputs[0], tuple(x.shape[:2]) + spatial, x.dtype)]


def _concat(graph: Graph, op: Op) -> List[Tensor]:
    xs = [graph.tensors[op.inputs[k]] for k in range(2, len(op.inputs), 3)]
    rank = len(xs[0].shape)
    axis = int(op.attrs["axis"])
    axis = axis + rank if axis < 0 else axis
    shape = list(xs[0].shape)
    shape[axis] = sum(t.shape[axis] for t in xs)
    return [Tensor(op.outputs[0], tuple(shape), graph.tensors[op.inputs[1]].dtype)]


def _gemm(graph: Graph, op: Op) -> List[Tensor]:
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    m = a.shape[1] if op.attrs.get("transA", 0) else a.shape[0]
    n = b.shape[0] if op.attrs.get("transB", 0) else b.shape[1]
    has_y = len(op.inputs) > 7 and op.inputs[7]
    if has_y:
        zp = op.inputs[8] if len(op.inputs) > 8 and op.inputs[8] else None
        dtype = graph.tensors[zp].dtype if zp else a.dtype
    else:
        dtype = "float32"
    return [Tensor(op.outputs[0], (m, n), dtype)]


def _matmul_float(graph: Graph, op: Op) -> List[Tensor]:
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2]) if len(a.shape) > 1 and \
        len(b.shape) > 1 else ()
    if len(b.shape) == 1:
        shape = tuple(a.shape[:-1])
    elif len(a.shape) == 1:
        shape = tuple(b.shape[:-2]) + (b.shape[-1],)
    else:
        shape = tuple(batch) + (a.shape[-2], b.shape[-1])
    return [Tensor(op.outputs[0], shape, "float32")]


_IO = "inputs: X, X_scale, X_zero_point, Y_scale, Y_zero_point"

define("QLinearAdd", "C = quantize(dequantize(A) + dequantize(B)), numpy broadcasting; "
       "inputs: A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp", REQUANT, _binary)
define("QLinearMul", "C = quantize(dequantize(A) * dequantize(B)), numpy broadcasting; "
       "inputs as QLinearAdd", REQUANT, _binary)
define("QLinearSigmoid", "Y = quantize(sigmoid(dequantize(X))); " + _IO, REQUANT,
       _same_as_input)
define("QLinearLeakyRelu", "Y = quantize(leaky_relu(dequantize(X))); " + _IO,
       (Attr("alpha", "slope for x < 0", 0.01),) + REQUANT, _same_as_input)
define("QLinearGlobalAveragePool", "Y = quantize(mean over the spatial axes); " + _IO,
       (Attr("channels_last", "1: NHWC input", 0),) + REQUANT, _global_pool)
define("QLinearAveragePool", "Y = quantize(AveragePool(dequantize(X))); " + _IO,
       (Attr("kernel_shape", "window extents"), Attr("strides", "steps", None),
        Attr("pads", "begin and end paddings", None),
        Attr("ceil_mode", "round the output extent up", 0),
        Attr("count_include_pad", "padded cells count in the divisor", 0),
        Attr("auto_pad", "NOTSET or VALID", "NOTSET"),
        Attr("channels_last", "1: NHWC input (not supported)", 0)) + REQUANT, _avg_pool)
define("QLinearConcat", "Y = Concat of the inputs requantized to Y's scale; inputs: "
       "Y_scale, Y_zp, then (X, X_scale, X_zp) per input",
       (Attr("axis", "the concatenation axis"),) + REQUANT, _concat)
define("QGemm", "Y = alpha * A' B' + C, A and B quantized, C int32 (scale a_s * b_s); "
       "quantized output when y_scale is given, else float; inputs: A, a_scale, a_zp, B, "
       "b_scale, b_zp, C, y_scale, y_zp",
       (Attr("alpha", "scale of the product", 1.0), Attr("transA", "A is transposed", 0),
        Attr("transB", "B is transposed", 0)) + REQUANT, _gemm)
define("MatMulIntegerToFloat", "Y = (A - a_zp)(B - b_zp) * a_scale * b_scale (+ bias), "
       "float; inputs: A, B, a_scale, b_scale, a_zp, b_zp, bias", (), _matmul_float)
define("QLinearSoftmax", "Y = quantize(Softmax(dequantize(X))) by onnxruntime's table "
       "kernel; " + _IO,
       (Attr("axis", "the softmax axis (onnxruntime's default -1 whatever the opset)", -1),
        Attr("opset", "the Softmax opset it stands for: below 13 the input is coerced to 2-D "
             "at `axis` (the row is everything from `axis` on), from 13 one axis")),
       _same_as_input)
define("DynamicQuantizeMatMul", "Y = MatMulIntegerToFloat(DynamicQuantizeLinear(A), B) (+ bias), "
       "float; inputs: A (float), B, b_scale, b_zp, bias; passes/dynamic_quant.py expands it "
       "into those two ops", (), _matmul_float,
       expanded_by="passes.dynamic_quant.expand_dynamic_quantize_matmul")


def _dynamic_quantize_lstm(graph: Graph, op: Op) -> List[Tensor]:
    """Y [seq, dirs, batch, hidden], Y_h and Y_c [dirs, batch, hidden] (W is [dirs, ...])."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    seq, batch, dirs, hidden = x.shape[0], x.shape[1], w.shape[0], int(op.attrs["hidden_size"])
    shapes = ((seq, dirs, batch, hidden), (dirs, batch, hidden), (dirs, batch, hidden))
    return [Tensor(name, shape, "float32") for name, shape in zip(op.outputs, shapes) if name]


define("DynamicQuantizeLSTM", "onnxruntime's LSTM with 8-bit W [dirs, input, 4H] and R "
       "[dirs, H, 4H] (transposed, gates i o f c) and per-call uint8 quantization of X and of "
       "each step's hidden state; inputs: X, W, R, B, sequence_lens, initial_h, initial_c, P, "
       "W_scale, W_zero_point, R_scale, R_zero_point",
       (Attr("hidden_size", "hidden units"), Attr("direction", "forward, reverse or "
                                                  "bidirectional", "forward"),
        Attr("activations", "f, g, h per direction (only Sigmoid, Tanh, Tanh)", None),
        Attr("activation_alpha", "unused by the supported activations", None),
        Attr("activation_beta", "unused by the supported activations", None),
        Attr("clip", "cell clip threshold", None),
        Attr("input_forget", "couple the input and forget gates", 0)), _dynamic_quantize_lstm)
