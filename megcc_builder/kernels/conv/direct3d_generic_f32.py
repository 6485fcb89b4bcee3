"""3-D convolution (NCDHW, float32), portable direct loops: groups, strides, dilations,
padding, bias, a fused activation and residual (passes/fuse.py); float32 weights
(passes/compress_fp16.py leaves 3-D filters float32). Kernel size, stride and dilation
are compiled in; extents and padding arrive in params. The 1-D and 2-D convolutions have
their own implementations (direct_generic_f32.py and the vector ones)."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, int_constants, schema
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..elementwise.activation import activation_code, activation_tag


PARAMS = schema(*(i32(n, c) for n, c in [
    ("N", "batch"), ("C", "input channels"), ("D", "input depth"), ("H", "input height"),
    ("W", "input width"), ("OC", "output channels"), ("OD", "output depth"),
    ("OH", "output height"), ("OW", "output width"), ("G", "groups"),
    ("PD", "front padding"), ("PT", "top padding"), ("PL", "left padding")]))


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return None if len(graph.tensors[op.inputs[0]].shape) == 5 else "not 3-D"


def geometry3d(op: Op, graph: Graph):
    """(kernel, strides, dilations, leading pads) of a 3-D Conv, each (d, h, w)."""
    w = graph.tensors[op.inputs[1]]
    k = list(w.shape[2:])
    strides = list(op.attrs.get("strides", [1, 1, 1]))
    dil = list(op.attrs.get("dilations", [1, 1, 1]))
    pads = list(op.attrs.get("pads", [0] * 6))
    if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") and "pads" not in op.attrs:
        raise graph.error("auto_pad must be resolved before lowering", op)
    return k, strides, dil, pads[:3]


def emit_3d(op: Op, graph: Graph):
    """Conv on (N, C, D, H, W): called by the portable Conv implementation
    (direct_generic_f32.lower_conv), which handles every rank."""
    reason = _applies(op, graph, None)
    if reason:
        raise graph.error(f"3-D Conv: {reason}", op)
    x, w, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if w.dtype != "float32":
        raise graph.error(f"3-D Conv weights of {w.dtype} are not supported (float32 are)", op)
    (kd, kh, kw), (sd, sh, sw), (dd, dh, dw), (pd, pt, pl) = geometry3d(op, graph)
    group = int(op.attrs.get("group", 1))
    c, oc = x.shape[1], y.shape[1]
    if group < 1 or c % group or w.shape[1] * group != c or oc % group:
        raise graph.error(f"input has {c} channels but the weights expect "
                          f"{w.shape[1]} x group {group}", op)
    has_bias = len(op.inputs) > 2 and bool(op.inputs[2])
    residual = bool(op.attrs.get("residual"))
    act = op.attrs.get("activation")
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if has_bias else ""]
    if residual:
        inputs.append(op.inputs[3])
    name = (f"conv3d_direct_k{kd}x{kh}x{kw}_s{sd}x{sh}x{sw}_d{dd}x{dh}x{dw}"
            f"_f32{'_bias' if has_bias else ''}"
            f"{'_residual' if residual else ''}{activation_tag(act)}")
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    float *y = (float *)out_ptrs[0];
    {"const float *bias = (const float *)in_ptrs[2];" if has_bias else ""}
    {"const float *res = (const float *)in_ptrs[3];" if residual else ""}
    const int32_t CG = C / G, OCG = OC / G;
    int32_t b, o, oz, oy, ox, ci, kz, ky, kx;
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o) {{
            const int32_t g = o / OCG;
            for (oz = 0; oz < OD; ++oz)
                for (oy = 0; oy < OH; ++oy)
                    for (ox = 0; ox < OW; ++ox) {{
                        float v = {"bias[o]" if has_bias else "0.0f"};
                        const int64_t out = (((int64_t)b * OC + o) * OD + oz) * OH * OW
                                            + (int64_t)oy * OW + ox;
                        for (ci = 0; ci < CG; ++ci) {{
                            const float *xc = x + ((int64_t)b * C + g * CG + ci) * D * H * W;
                            const float *wo = w + ((int64_t)o * CG + ci) * KD * KH * KW;
                            for (kz = 0; kz < KD; ++kz) {{
                                const int32_t iz = oz * SD - PD + kz * DD;
                                if (iz < 0 || iz >= D) continue;
                                for (ky = 0; ky < KH; ++ky) {{
                                    const int32_t iy = oy * SH - PT + ky * DH;
                                    if (iy < 0 || iy >= H) continue;
                                    for (kx = 0; kx < KW; ++kx) {{
                                        const int32_t ix = ox * SW - PL + kx * DW;
                                        const int32_t q = (kz * KH + ky) * KW + kx;
                                        if (ix >= 0 && ix < W)
                                            v += xc[((int64_t)iz * H + iy) * W + ix] * wo[q];
                                    }}
                                }}
                            }}
                        }}
                        {"v += res[out];" if residual else ""}
                        y[out] = {activation_code(act, "v")};
                    }}
        }}
"""
    consts = dict(KD=kd, KH=kh, KW=kw, SD=sd, SH=sh, SW=sw, DD=dd, DH=dh, DW=dw)
    kernel = make_kernel(name, int_constants(body, **consts) + body, PARAMS, ("math",))
    params = PARAMS.pack(N=x.shape[0], C=c, D=x.shape[2], H=x.shape[3], W=x.shape[4], OC=oc,
                         OD=y.shape[2], OH=y.shape[3], OW=y.shape[4], G=group, PD=pd, PT=pt,
                         PL=pl)
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  note=f"3-D direct, group {group}")]
