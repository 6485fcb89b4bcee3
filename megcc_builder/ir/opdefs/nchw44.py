"""Ops of the NCHW44 layout (passes/layout_nchw44.py). An NCHW44 tensor of logical shape
(N, C, H, W) is stored as (N, C/4, H, W, 4) and carries layout "nchw44"."""
from __future__ import annotations

from typing import List

from ..graph import Graph, Op, Tensor
from .base import Attr, define

NCHW44 = "nchw44"
LANES = 4


def nchw44_shape(shape) -> tuple:
    n, c, h, w = shape
    return (n, c // LANES, h, w, LANES)


def nchw_shape(shape) -> tuple:
    n, cb, h, w, lanes = shape
    return (n, cb * lanes, h, w)


def _window_out(size: int, k: int, stride: int, dilation: int, pad_begin: int, pad_end: int,
                ceil_mode: int = 0) -> int:
    """Output extent of a sliding window, as ONNX's Conv/Pool shape inference computes it
    (with ceil_mode, a last window starting in the end padding is dropped)."""
    span = size + pad_begin + pad_end - ((k - 1) * dilation + 1)
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def _spatial(op: Op, h: int, w: int, kh: int, kw: int, ceil_mode: int = 0):
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pt, pl, pb, pr = op.attrs.get("pads", [0, 0, 0, 0])
    return (_window_out(h, kh, sh, dh, pt, pb, ceil_mode),
            _window_out(w, kw, sw, dw, pl, pr, ceil_mode))


def infer_relayout(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    if op.attrs["to"] == NCHW44:
        return [Tensor(op.outputs[0], nchw44_shape(x.shape), x.dtype, layout=NCHW44)]
    return [Tensor(op.outputs[0], nchw_shape(x.shape), x.dtype)]


def infer_conv(graph: Graph, op: Op) -> List[Tensor]:
    """Inputs: x (NCHW44; NCHW for the hybrid kind), packed weights (see
    passes/layout_nchw44.pack_conv_weights), optional bias, optional PReLU slope."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    kh, kw = w.shape[1:3] if op.attrs["kind"] == "depthwise" else w.shape[2:4]
    oh, ow = _spatial(op, x.shape[2], x.shape[3], kh, kw)
    return [Tensor(op.outputs[0], (x.shape[0], w.shape[0], oh, ow, LANES), x.dtype,
                   layout=NCHW44)]


def infer_pool(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    oh, ow = _spatial(op, x.shape[2], x.shape[3], kh, kw, int(op.attrs.get("ceil_mode", 0)))
    return [Tensor(op.outputs[0], (x.shape[0], x.shape[1], oh, ow, LANES), x.dtype,
                   layout=NCHW44)]


def infer_global_pool(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    return [Tensor(op.outputs[0], (x.shape[0], x.shape[1], 1, 1, LANES), x.dtype,
                   layout=NCHW44)]


_WINDOW = [Attr("strides", "window step per spatial axis", [1, 1]),
           Attr("dilations", "tap spacing per spatial axis", [1, 1]),
           Attr("pads", "[top, left, bottom, right] zero padding", [0, 0, 0, 0]),
           Attr("auto_pad", "ONNX auto_pad; only NOTSET or VALID reach here", "NOTSET")]

RELAYOUT = define(
    "Relayout", "the same logical tensor in the other layout (NCHW <-> NCHW44)",
    [Attr("to", "the output's layout: 'nchw44' or 'nchw'")],
    infer_relayout)

CONV_NCHW44 = define(
    "ConvNCHW44", "ONNX Conv on NCHW44 tensors with packed weights",
    [Attr("kind", "'dense', 'depthwise' or 'hybrid' (NCHW input, IC < 4): the weight packing"),
     Attr("kernel_shape", "[KH, KW]; the packed weights say the same", None),
     Attr("group", "ONNX group (1, or C for depthwise)", 1),
     Attr("activation", "epilogue expression over ('in', 0) (ir/expr.py), or None", None),
     Attr("prelu", "a fused per-channel PReLU: input 3 holds one slope per output channel "
          "(passes/fuse.py)", False),
     *_WINDOW],
    infer_conv)

POOL_NCHW44 = define(
    "PoolNCHW44", "ONNX MaxPool or AveragePool on an NCHW44 tensor",
    [Attr("mode", "the ONNX op: 'MaxPool' or 'AveragePool'"),
     Attr("kernel_shape", "[KH, KW]"),
     Attr("ceil_mode", "ONNX ceil_mode: round the output extent up", 0),
     Attr("count_include_pad", "AveragePool: padded cells count in the divisor", 0),
     Attr("storage_order", "ONNX MaxPool storage_order (no effect without indices)", 0),
     *_WINDOW],
    infer_pool)

GLOBAL_POOL_NCHW44 = define(
    "GlobalPoolNCHW44", "ONNX GlobalAveragePool or GlobalMaxPool on an NCHW44 tensor",
    [Attr("mode", "the ONNX op: 'GlobalAveragePool' or 'GlobalMaxPool'")],
    infer_global_pool)
