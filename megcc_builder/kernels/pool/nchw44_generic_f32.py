"""Pooling in the NCHW44 layout (float32), portable C: PoolNCHW44 and GlobalPoolNCHW44."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ..registry import implements
from .direct_generic_f32 import GLOBAL_POOL_PARAMS, POOL2D_PARAMS, window_counters


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
    count = window_counters(fin)
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t HP = H + PT + PB, WP = W + PL + PR;  /* padded extents */
    int32_t c, oy, ox, ky, kx, l;
    for (c = 0; c < NC; ++c) {{
        const float *xc = x + (int64_t)c * H * W * 4;
        float *yc = y + (int64_t)c * OH * OW * 4;
        for (oy = 0; oy < OH; ++oy)
            for (ox = 0; ox < OW; ++ox) {{
                float v[4];
                {count["decl"]}
                for (l = 0; l < 4; ++l) v[l] = {init};
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy + PT >= HP) break;
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const int32_t ix = ox * {sw} - PL + kx * {dw};
                        if (ix + PL >= WP) break;
                        {count["cnt_pad"]}
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        {{
                            const float *restrict xv = xc + ((int64_t)iy * W + ix) * 4;
                            for (l = 0; l < 4; ++l) {acc}
                        }}
                        {count["cnt"]}
                    }}
                }}
                for (l = 0; l < 4; ++l) yc[(oy * OW + ox) * 4 + l] = {fin};
            }}
    }}
"""
    kernel = make_kernel(name, body, POOL2D_PARAMS)
    params = POOL2D_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                OH=y.shape[2], OW=y.shape[3], PT=pads[0], PL=pads[1],
                                PB=pads[2], PR=pads[3])
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
    kernel = make_kernel(name, body, GLOBAL_POOL_PARAMS)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  GLOBAL_POOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], S=x.shape[2] * x.shape[3]),
                  note="nchw44 global pooling")]
