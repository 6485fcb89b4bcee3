"""Pooling kernels (float32, NCHW): max/average with padding, stride, dilation, ceil mode."""
from __future__ import annotations

from ..ir import Graph, Op
from .base import Instr, Kernel, kernel_source, lowers


@lowers("MaxPool", "AveragePool")
def lower_pool(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "float32":
        raise graph.error(f"{op.type} on {x.dtype} is not supported (float32 is)", op)
    if len(x.shape) not in (3, 4):
        raise graph.error(f"{len(x.shape) - 2}-D pooling is not supported (1-D and 2-D are)", op)
    if len(op.outputs) > 1 and op.outputs[1]:
        raise graph.error("the Indices output of MaxPool is not supported", op)
    one_d = len(x.shape) == 3
    ks = list(op.attrs["kernel_shape"])
    st = list(op.attrs.get("strides", [1] * len(ks)))
    dl = list(op.attrs.get("dilations", [1] * len(ks)))
    pads = list(op.attrs.get("pads", [0] * 2 * len(ks)))
    if one_d:
        ks, st, dl, pads = [1] + ks, [1] + st, [1] + dl, [0, pads[0], 0, pads[1]]
    kh, kw = ks
    sh, sw = st
    dh, dw = dl
    h, w = (1, x.shape[2]) if one_d else x.shape[2:]
    oh, ow = (1, y.shape[2]) if one_d else y.shape[2:]
    is_max = op.type == "MaxPool"
    include_pad = int(op.attrs.get("count_include_pad", 0))
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    if is_max:
        name = f"maxpool_{geo}_f32"
        init, acc, fin = "-INFINITY", "v = xv > v || xv != xv ? xv : v;", "v"
    else:
        name = f"avgpool_{geo}_f32{'_incpad' if include_pad else ''}"
        init, acc = "0.0f", "v += xv;"
        # count_include_pad counts padded cells inside the padded input, not past it (ceil mode)
        fin = "v / (float)cnt_pad" if include_pad else "v / (float)(cnt > 0 ? cnt : 1)"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], PT = p[5], PL = p[6];
    const int32_t HP = H + PT + p[7], WP = W + PL + p[8];  /* padded extents */
    int32_t c, oy, ox, ky, kx;
    for (c = 0; c < NC; ++c) {{
        const float *xc = x + (int64_t)c * H * W;
        float *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy)
            for (ox = 0; ox < OW; ++ox) {{
                float v = {init};
                int32_t cnt = 0, cnt_pad = 0;
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy - (-PT) >= HP) break;
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const int32_t ix = ox * {sw} - PL + kx * {dw};
                        if (ix + PL >= WP) break;
                        ++cnt_pad;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        {{ const float xv = xc[(int64_t)iy * W + ix]; {acc} }}
                        ++cnt;
                    }}
                }}
                (void)cnt; (void)cnt_pad;
                yc[oy * OW + ox] = {fin};
            }}
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ())
    params = [x.shape[0] * x.shape[1], h, w, oh, ow, pads[0], pads[1], pads[2], pads[3]]
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params)]


@lowers("GlobalAveragePool", "GlobalMaxPool")
def lower_global_pool(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype != "float32":
        raise graph.error(f"{op.type} on {x.dtype} is not supported (float32 is)", op)
    is_max = op.type == "GlobalMaxPool"
    name = "global_maxpool_f32" if is_max else "global_avgpool_f32"
    step = "v = x[i] > v || x[i] != x[i] ? x[i] : v;" if is_max else "v += x[i];"
    fin = "v" if is_max else "v / (float)S"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], S = p[1];
    int32_t c, i;
    for (c = 0; c < NC; ++c, x += S) {{
        float v = {"-INFINITY" if is_max else "0.0f"};
        for (i = 0; i < S; ++i) {step}
        y[c] = {fin};
    }}
"""
    spatial = 1
    for d in x.shape[2:]:
        spatial *= d
    kernel = Kernel(name, kernel_source(name, body), ())
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], [x.shape[0] * x.shape[1], spatial])]
