"""Ops of the channel-blocked layouts (passes/layout_nchw44.py). An NCHW44 tensor of logical
shape (N, C, H, W) is stored as (N, C/4, H, W, 4) and carries layout "nchw44"; an NCHW88
tensor (float16, enable_nchw88) as (N, ceil(C/8), H, W, 8), layout "nchw88", the channels
past C zero-padded (kernels keep them finite; the next conv's weights for them are zero)."""
from __future__ import annotations

from typing import List

from ..graph import Graph, Op, Tensor
from .base import Attr, define

NCHW44 = "nchw44"
NCHW88 = "nchw88"
LANES = 4
# channels per block of each blocked layout
BLOCK_OF = {NCHW44: 4, NCHW88: 8}


def nchw44_shape(shape, layout: str = NCHW44) -> tuple:
    """The physical shape of an (N, C, H, W) tensor in a blocked layout (channels rounded up
    to whole blocks)."""
    n, c, h, w = shape
    lanes = BLOCK_OF[layout]
    return (n, -(-c // lanes), h, w, lanes)


def nchw_shape(shape, channels=None) -> tuple:
    n, cb, h, w, lanes = shape
    return (n, cb * lanes if channels is None else channels, h, w)


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
    to = op.attrs["to"]
    if to in BLOCK_OF:
        return [Tensor(op.outputs[0], nchw44_shape(x.shape, to), x.dtype, layout=to)]
    return [Tensor(op.outputs[0], nchw_shape(x.shape, op.attrs.get("channels")), x.dtype)]


def infer_conv(graph: Graph, op: Op) -> List[Tensor]:
    """Inputs: x (NCHW44; NCHW for the hybrid kind), packed weights (see
    passes/layout_nchw44.pack_conv_weights), optional bias, optional PReLU slope."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    kh, kw = w.shape[1:3] if op.attrs["kind"] == "depthwise" else w.shape[2:4]
    oh, ow = _spatial(op, x.shape[2], x.shape[3], kh, kw)
    layout = NCHW88 if op.type == "ConvNCHW88" else NCHW44
    return [Tensor(op.outputs[0], (x.shape[0], w.shape[0], oh, ow, BLOCK_OF[layout]), x.dtype,
                   layout=layout)]


def infer_pool(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    oh, ow = _spatial(op, x.shape[2], x.shape[3], kh, kw, int(op.attrs.get("ceil_mode", 0)))
    return [Tensor(op.outputs[0], (x.shape[0], x.shape[1], oh, ow, x.shape[4]), x.dtype,
                   layout=x.layout)]


def infer_global_pool(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    return [Tensor(op.outputs[0], (x.shape[0], x.shape[1], 1, 1, x.shape[4]), x.dtype,
                   layout=x.layout)]


_WINDOW = [Attr("strides", "window step per spatial axis", [1, 1]),
           Attr("dilations", "tap spacing per spatial axis", [1, 1]),
           Attr("pads", "[top, left, bottom, right] zero padding", [0, 0, 0, 0]),
           Attr("auto_pad", "ONNX auto_pad; only NOTSET or VALID reach here", "NOTSET")]

RELAYOUT = define(
    "Relayout", "the same logical tensor in the other layout (NCHW <-> NCHW44 / NCHW88)",
    [Attr("to", "the output's layout: 'nchw44', 'nchw88' or 'nchw'"),
     Attr("channels", "to 'nchw': the logical channel count when the blocks are padded "
          "(None: every lane is a channel)", None)],
    infer_relayout)

_CONV_ATTRS = [
     Attr("kind", "'dense', 'depthwise' or 'hybrid' (NCHW input, IC < block): the weight packing"),
     Attr("kernel_shape", "[KH, KW]; the packed weights say the same", None),
     Attr("group", "ONNX group (1, or C for depthwise)", 1),
     Attr("activation", "epilogue expression over ('in', 0) (ir/expr.py), or None", None),
     Attr("prelu", "a fused per-channel PReLU: input 3 holds one slope per output channel "
          "(passes/fuse.py)", False),
     *_WINDOW]

CONV_NCHW44 = define(
    "ConvNCHW44", "ONNX Conv on NCHW44 tensors with packed weights", _CONV_ATTRS, infer_conv)

CONV_NCHW88 = define(
    "ConvNCHW88", "ONNX Conv on float16 NCHW88 tensors with packed weights; input 3, when "
    "set, is a fused residual (NCHW88) added before the activation",
    [*_CONV_ATTRS, Attr("residual", "input 3 is a residual added before the activation "
                        "(passes/fuse.py)", False)],
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

POOL_NCHW88 = define(
    "PoolNCHW88", "ONNX MaxPool or AveragePool on a float16 NCHW88 tensor",
    POOL_NCHW44.attrs, infer_pool)

GLOBAL_POOL_NCHW44 = define(
    "GlobalPoolNCHW44", "ONNX GlobalAveragePool or GlobalMaxPool on an NCHW44 tensor",
    [Attr("mode", "the ONNX op: 'GlobalAveragePool' or 'GlobalMaxPool'")],
    infer_global_pool)

GLOBAL_POOL_NCHW88 = define(
    "GlobalPoolNCHW88", "ONNX GlobalAveragePool or GlobalMaxPool on a float16 NCHW88 tensor",
    GLOBAL_POOL_NCHW44.attrs, infer_global_pool)


def infer_unzip(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    n, cb, h, w, lanes = x.shape
    return [Tensor(o, (n, cb // 2, h, w, lanes), x.dtype, layout=x.layout) for o in op.outputs]


CHANNEL_UNZIP_NCHW88 = define(
    "ChannelUnzipNCHW88", "the even and the odd channels of an NCHW88 tensor (ShuffleNetV2's "
    "channel shuffle and split: Reshape, Transpose, Reshape, Gather), outputs 0 and 1",
    [], infer_unzip)
