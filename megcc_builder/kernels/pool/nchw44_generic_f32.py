"""Pooling in the NCHW44 layout (float32), portable C: PoolNCHW44 and GlobalPoolNCHW44."""
from __future__ import annotations

from ...codegen.kernel import Instr, Kernel, kernel_source
from ...ir import Graph, Op
from ..registry import implements


@implements("PoolNCHW44")
def lower_pool_nchw44(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    is_max = op.attrs["mode"] == "MaxPool"
    include_pad = int(op.attrs.get("count_include_pad", 0))
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    if is_max:
        name = f"maxpool_nchw44_{geo}_f32"
        init, acc, fin = "-INFINITY", "v[l] = xv[l] > v[l] || xv[l] != xv[l] ? xv[l] : v[l];", "v[l]"
    else:
        name = f"avgpool_nchw44_{geo}_f32{'_incpad' if include_pad else ''}"
        init, acc = "0.0f", "v[l] += xv[l];"
        # as pool.py: count_include_pad counts padded cells inside the padded input only
        fin = "v[l] / (float)cnt_pad" if include_pad else "v[l] / (float)(cnt > 0 ? cnt : 1)"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], PT = p[5], PL = p[6];
    const int32_t HP = H + PT + p[7], WP = W + PL + p[8];  /* padded extents */
    int32_t c, oy, ox, ky, kx, l;
    for (c = 0; c < NC; ++c) {{
        const float *xc = x + (int64_t)c * H * W * 4;
        float *yc = y + (int64_t)c * OH * OW * 4;
        for (oy = 0; oy < OH; ++oy)
            for (ox = 0; ox < OW; ++ox) {{
                float v[4];
                int32_t cnt = 0, cnt_pad = 0;
                for (l = 0; l < 4; ++l) v[l] = {init};
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy + PT >= HP) break;
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const int32_t ix = ox * {sw} - PL + kx * {dw};
                        if (ix + PL >= WP) break;
                        ++cnt_pad;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        {{
                            const float *restrict xv = xc + ((int64_t)iy * W + ix) * 4;
                            for (l = 0; l < 4; ++l) {acc}
                        }}
                        ++cnt;
                    }}
                }}
                (void)cnt; (void)cnt_pad;
                for (l = 0; l < 4; ++l) yc[(oy * OW + ox) * 4 + l] = {fin};
            }}
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ())
    params = [x.shape[0] * x.shape[1], x.shape[2], x.shape[3], y.shape[2], y.shape[3], *pads]
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note="nchw44 pooling")]


@implements("GlobalPoolNCHW44")
def lower_global_pool_nchw44(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    is_max = op.attrs["mode"] == "GlobalMaxPool"
    name = "global_maxpool_nchw44_f32" if is_max else "global_avgpool_nchw44_f32"
    step = ("v[l] = xv[l] > v[l] || xv[l] != xv[l] ? xv[l] : v[l];" if is_max
            else "v[l] += xv[l];")
    fin = "v[l]" if is_max else "v[l] / (float)S"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], S = p[1];
    int32_t c, i, l;
    for (c = 0; c < NC; ++c, x += (int64_t)S * 4) {{
        float v[4];
        for (l = 0; l < 4; ++l) v[l] = {"-INFINITY" if is_max else "0.0f"};
        for (i = 0; i < S; ++i) {{
            const float *restrict xv = x + (int64_t)i * 4;
            for (l = 0; l < 4; ++l) {step}
        }}
        for (l = 0; l < 4; ++l) y[c * 4 + l] = {fin};
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ())
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  [x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]], note="nchw44 global pooling")]
