"""DeformConv (2-D, NCHW, float32), portable direct loops: every tap of every output
position reads the input at its regular place plus a learned (dy, dx) offset (per offset
group, kernel tap and output position), by bilinear interpolation with zeros outside the
map (each of the four corners separately, as onnx.reference's GridSample with
align_corners and torchvision do), optionally scaled by a mask; groups, strides,
dilations, padding, bias. Offsets and masks are read at run time."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, int_constants, schema
from ...ir import Graph, Op
from ..registry import F32, implements

PARAMS = schema(*(i32(n, c) for n, c in [
    ("N", "batch"), ("C", "input channels"), ("H", "input height"), ("W", "input width"),
    ("OC", "output channels"), ("OH", "output height"), ("OW", "output width"),
    ("G", "groups"), ("OG", "offset groups"), ("PT", "top padding"), ("PL", "left padding")]))


@implements("DeformConv", dtypes=F32)
def emit(op: Op, graph: Graph):
    x, w, off = (graph.tensors[n] for n in op.inputs[:3])
    y = graph.tensors[op.outputs[0]]
    if len(x.shape) != 4:
        raise graph.error(f"{len(x.shape) - 2}-D DeformConv is not supported (2-D is)", op)
    kh, kw = w.shape[2:]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    group, og = int(op.attrs.get("group", 1)), int(op.attrs.get("offset_group", 1))
    c, oc = x.shape[1], y.shape[1]
    if c % group or w.shape[1] * group != c or oc % group or c % og \
            or off.shape[1] != og * 2 * kh * kw:
        raise graph.error(f"channels {c}, weights {list(w.shape)}, offsets "
                          f"{list(off.shape)} do not fit group {group}, offset_group {og}", op)
    has_bias = len(op.inputs) > 3 and bool(op.inputs[3])
    has_mask = len(op.inputs) > 4 and bool(op.inputs[4])
    inputs = list(op.inputs[:3]) + [op.inputs[3] if has_bias else "",
                                    op.inputs[4] if has_mask else ""]
    name = (f"deform_conv2d_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_f32"
            f"{'_bias' if has_bias else ''}{'_mask' if has_mask else ''}")
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    const float *off = (const float *)in_ptrs[2];
    {"const float *bias = (const float *)in_ptrs[3];" if has_bias else ""}
    {"const float *mask = (const float *)in_ptrs[4];" if has_mask else ""}
    float *y = (float *)out_ptrs[0];
    const int32_t CG = C / G, OCG = OC / G, COG = C / OG, K = KH * KW;
    int32_t b, o, oy, ox, ci, ky, kx;
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o)
            for (oy = 0; oy < OH; ++oy)
                for (ox = 0; ox < OW; ++ox) {{
                    double acc = {"(double)bias[o]" if has_bias else "0.0"};
                    for (ci = 0; ci < CG; ++ci) {{
                        const int32_t ic = (o / OCG) * CG + ci, g = ic / COG;
                        const float *xc = x + ((int64_t)b * C + ic) * H * W;
                        for (ky = 0; ky < KH; ++ky)
                            for (kx = 0; kx < KW; ++kx) {{
                                const int32_t k = ky * KW + kx;
                                const int64_t at = (int64_t)oy * OW + ox;
                                const float *od = off + (((int64_t)b * OG + g) * 2 * K + 2 * k) * OH * OW;
                                const float hy = (float)(oy * SH - PT + ky * DH) + od[at];
                                const float wx = (float)(ox * SW - PL + kx * DW) + od[(int64_t)OH * OW + at];
                                float v = 0.0f;
                                if (hy > -1.0f && hy < (float)H && wx > -1.0f && wx < (float)W) {{
                                    const int32_t y0 = (int32_t)floorf(hy), x0 = (int32_t)floorf(wx);
                                    const float ly = hy - (float)y0, lx = wx - (float)x0;
                                    if (y0 >= 0 && x0 >= 0) v += (1.0f - ly) * (1.0f - lx) * xc[(int64_t)y0 * W + x0];
                                    if (y0 >= 0 && x0 + 1 < W) v += (1.0f - ly) * lx * xc[(int64_t)y0 * W + x0 + 1];
                                    if (y0 + 1 < H && x0 >= 0) v += ly * (1.0f - lx) * xc[(int64_t)(y0 + 1) * W + x0];
                                    if (y0 + 1 < H && x0 + 1 < W) v += ly * lx * xc[(int64_t)(y0 + 1) * W + x0 + 1];
                                }}
{"                                v *= mask[(((int64_t)b * OG + g) * K + k) * OH * OW + at];" + chr(10) if has_mask else ""}\
                                acc += (double)v * (double)w[(((int64_t)o * CG + ci) * KH + ky) * KW + kx];
                            }}
                    }}
                    y[(((int64_t)b * OC + o) * OH + oy) * OW + ox] = (float)acc;
                }}
"""
    consts = dict(KH=kh, KW=kw, SH=sh, SW=sw, DH=dh, DW=dw)
    kernel = make_kernel(name, int_constants(body, **consts) + body, PARAMS, ("math",))
    params = PARAMS.pack(N=x.shape[0], C=c, H=x.shape[2], W=x.shape[3], OC=oc, OH=y.shape[2],
                         OW=y.shape[3], G=group, OG=og, PT=pads[0], PL=pads[1])
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  note=f"group {group}, offset_group {og}")]
