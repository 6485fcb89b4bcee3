"""The geometry of a Conv op: kernel, strides, dilations, pads (1-D convs as 2-D with
height 1), as every convolution implementation reads it."""
from __future__ import annotations

from typing import Optional

from ...codegen.params import ParamSchema, i32, schema
from ...ir import Graph, Op
from ..elementwise.activation import activation_code


# The params every NCHW convolution kernel starts with (kernel size, stride and dilation are
# compiled into the code); conv_schema() appends an implementation's own.
CONV_HEAD = (i32("N", "batch"), i32("C", "input channels"), i32("H", "input height"),
             i32("W", "input width"), i32("OC", "output channels"),
             i32("OH", "output height"), i32("OW", "output width"), i32("G", "groups"),
             i32("PT", "padding top"), i32("PL", "padding left"))


def conv_schema(*extra) -> ParamSchema:
    return schema(*CONV_HEAD, *extra)


def conv_head_values(geo: dict, group: int = None) -> dict:
    """The CONV_HEAD values of a conv_problem() geometry."""
    return dict(N=geo["n"], C=geo["c"], H=geo["h"], W=geo["w"], OC=geo["oc"], OH=geo["oh"],
                OW=geo["ow"], G=geo["group"] if group is None else group, PT=geo["pads"][0],
                PL=geo["pads"][1])


def conv_geometry(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    w = graph.tensors[op.inputs[1]]
    if len(x.shape) not in (3, 4):
        raise graph.error(f"{len(x.shape) - 2}-D convolution is not supported (1-D, 2-D and "
                          "3-D are)", op)
    one_d = len(x.shape) == 3
    kshape = list(w.shape[2:])
    strides = list(op.attrs.get("strides", [1] * len(kshape)))
    dil = list(op.attrs.get("dilations", [1] * len(kshape)))
    pads = list(op.attrs.get("pads", [0] * (2 * len(kshape))))
    if one_d:
        kshape, strides, dil = [1] + kshape, [1] + strides, [1] + dil
        pads = [0, pads[0], 0, pads[1]]
    return one_d, kshape, strides, dil, pads


def conv_problem(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    one_d, (kh, kw), (sh, sw), (dh, dw), pads = conv_geometry(op, graph)
    if op.attrs.get("input_nhwc"):  # the input is (N, H, W, C): passes/transposes.py
        n, h, wd, c = x.shape
    else:
        n, c = x.shape[0], x.shape[1]
        h, wd = (1, x.shape[2]) if one_d else x.shape[2:]
    oh, ow = (1, y.shape[2]) if one_d else y.shape[2:]
    geo = dict(n=n, c=c, h=h, w=wd, oc=y.shape[1], oh=oh, ow=ow, kh=kh, kw=kw, sh=sh, sw=sw,
               dh=dh, dw=dw, pads=pads, group=int(op.attrs.get("group", 1)))
    return geo


def vector_conv_rejection(op: Op, graph: Graph, isa=None, nhwc_ok: bool = False) -> Optional[str]:
    """Why no vector convolution (packed GEMM, Winograd, depthwise) can compute `op`, or
    None: they pack constant float32 weights (or float16 ones: passes/compress_fp16.py) and
    bias, and need resolved 1-D/2-D padding. Takes the registry's `applies` arguments, so it
    can be one itself."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if x.dtype != "float32" or w.dtype not in ("float32", "float16") or not w.is_const:
        return "weights not constant float32"
    if len(x.shape) not in (3, 4):
        return f"{len(x.shape) - 2}-D"
    if op.attrs.get("input_nhwc") and not nhwc_ok:
        return "reads an NHWC input (only the im2col convolutions do)"
    if len(op.inputs) > 2 and op.inputs[2] and not graph.tensors[op.inputs[2]].is_const:
        return "bias not constant"
    if op.attrs.get("auto_pad", "NOTSET") in ("NOTSET", "VALID") or "pads" in op.attrs:
        return None
    return "auto_pad unresolved"


def is_depthwise(geo) -> bool:
    """One group per input channel (a channel multiplier allowed): the depthwise kernels'
    case, and the portable kernel's slower scalar loop."""
    return geo["group"] == geo["c"] and geo["group"] > 1 and geo["oc"] % geo["c"] == 0


def bias_of(op: Op):
    has_bias = len(op.inputs) > 2 and bool(op.inputs[2])
    return has_bias, ("_bias" if has_bias else "")


def scalar_activation_pass(act, rows: str, count: str) -> str:
    """Scalar pass for activations the vector epilogue does not cover (sigmoid, ...)."""
    return f"""
            {{ float *yo = {rows}; int64_t q;
              for (q = 0; q < (int64_t){count}; ++q) {{ const float v = yo[q]; yo[q] = {activation_code(act, "v")}; }} }}"""


# Where a fused per-channel PReLU slope sits (passes/fuse.py _fold_prelu): after x, w, bias
# and the residual of a Conv; after x, w, bias of a ConvNCHW44 (which has no residual).
_PRELU_INPUT = {"Conv": 4, "ConvNCHW44": 3}


def prelu_slope(op: Op) -> str:
    """The name of the fused PReLU slope (one float per output channel), or ''."""
    if not op.attrs.get("prelu"):
        return ""
    k = _PRELU_INPUT[op.type]
    return op.inputs[k] if len(op.inputs) > k else ""


def prelu_tag(op: Op) -> str:
    return "_prelu" if op.attrs.get("prelu") else ""


def prelu_scalar(v: str, slope: str) -> str:
    """C expression: PReLU of float `v` with slope `slope` (ONNX: x < 0 ? slope * x : x)."""
    return f"({v} >= 0.0f ? {v} : {v} * {slope})"


def prelu_vector(s, v: str, slope: str, zero: str) -> str:
    """Vector expression: PReLU of `v` with the slope vector `slope`, as
    max(0, v) + slope * min(0, v), which is exactly v or the rounded slope * v (an FMA onto
    a zero) and keeps a NaN (max/min return their second operand's NaN)."""
    return s.fma(s.max(zero, v), slope, s.min(zero, v))
