"""float16 pooling in the NCHW88 layout (enable_nchw88) on Armv8.2-A + FP16: PoolNCHW88
(MaxPool / AveragePool) and GlobalPoolNCHW88. One float16x8_t is one pixel's 8 channels,
so a window is one `fmax` / `fadd` (8 lanes) per tap. Averages sum the window in float16
over (ky, kx), as the NCHW float16 pooling does, then divide in float32 by the tap count
and round once; global averages widen to float32 (`fcvtl`) and sum there (a float16
running sum of a large plane would lose the small values); maxima stay float16 (exact).
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .direct_generic_f32 import GLOBAL_POOL_PARAMS, POOL2D_PARAMS

F16 = ("float16",)


def _pool_cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    y = graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    return y.numel / 8 * kh * kw + 20


@implements("PoolNCHW88", dtypes=F16, layout="nchw88", requires="f16.direct", cost=_pool_cost,
            label="NEON fp16 NCHW88 pooling")
def lower_pool(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    is_max = op.attrs["mode"] == "MaxPool"
    include_pad = int(op.attrs.get("count_include_pad", 0))
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    if is_max:
        name = f"maxpool_nchw88_{geo}_f16_neon64fp16"
        init, step = "vdupq_n_f16(-INFINITY)", "v = vmaxq_f16(v, xv);"
        fin = "v"
    else:
        name = f"avgpool_nchw88_{geo}_f16{'_incpad' if include_pad else ''}_neon64fp16"
        init, step = "vdupq_n_f16(0)", "v = vaddq_f16(v, xv);"
        # as the NCHW float16 pooling: the sum divided in float32, rounded once
        cnt = "cnt_pad" if include_pad else "(cnt > 0 ? cnt : 1)"
        fin = (f"vcombine_f16(vcvt_f16_f32(vdivq_f32(vcvt_f32_f16(vget_low_f16(v)), vdupq_n_f32((float){cnt}))), "
               f"vcvt_f16_f32(vdivq_f32(vcvt_high_f32_f16(v), vdupq_n_f32((float){cnt}))))")
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    float16_t *y = (float16_t *)out_ptrs[0];
    const int32_t HP = H + PT + PB, WP = W + PL + PR;  /* padded extents */
    int32_t c, oy, ox, ky, kx;
    for (c = 0; c < NC; ++c) {{
        const float16_t *xc = x + (int64_t)c * H * W * 8;
        float16_t *yc = y + (int64_t)c * OH * OW * 8;
        for (oy = 0; oy < OH; ++oy)
            for (ox = 0; ox < OW; ++ox) {{
                float16x8_t v = {init};
                int32_t cnt = 0, cnt_pad = 0;
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy + PT >= HP) break;
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const int32_t ix = ox * {sw} - PL + kx * {dw};
                        if (ix + PL >= WP) break;
                        ++cnt_pad;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        {{
                            const float16x8_t xv = vld1q_f16(xc + ((int64_t)iy * W + ix) * 8);
                            {step}
                        }}
                        ++cnt;
                    }}
                }}
                (void)cnt; (void)cnt_pad;
                vst1q_f16(yc + ((int64_t)oy * OW + ox) * 8, {fin});
            }}
    }}
"""
    kernel = make_kernel(name, body, POOL2D_PARAMS, (), isa="neon64fp16")
    params = POOL2D_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                OH=y.shape[2], OW=y.shape[3], PT=pads[0], PL=pads[1],
                                PB=pads[2], PR=pads[3])
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  note=f"nchw88 float16 {op.attrs['mode']}: 8 channels per fp16 vector")]


@implements("GlobalPoolNCHW88", dtypes=F16, layout="nchw88", requires="f16.direct",
            cost=lambda op, graph, isa: graph.tensors[op.inputs[0]].numel / 8 + 20,
            label="NEON fp16 NCHW88 global pooling")
def lower_global_pool(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    is_max = op.attrs["mode"] == "GlobalMaxPool"
    if is_max:
        name = "global_maxpool_nchw88_f16_neon64fp16"
        loop = """        float16x8_t m = vdupq_n_f16(-INFINITY);
        for (i = 0; i < S; ++i) m = vmaxq_f16(m, vld1q_f16(xc + (int64_t)i * 8));
        vst1q_f16(y + (int64_t)c * 8, m);"""
    else:
        name = "global_avgpool_nchw88_f16_f32acc_neon64fp16"
        loop = """        float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
        const float32x4_t n = vdupq_n_f32((float)S);
        for (i = 0; i < S; ++i) {
            const float16x8_t v = vld1q_f16(xc + (int64_t)i * 8);
            a0 = vaddq_f32(a0, vcvt_f32_f16(vget_low_f16(v)));
            a1 = vaddq_f32(a1, vcvt_high_f32_f16(v));
        }
        vst1q_f16(y + (int64_t)c * 8, vcombine_f16(vcvt_f16_f32(vdivq_f32(a0, n)),
                                                   vcvt_f16_f32(vdivq_f32(a1, n))));"""
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    float16_t *y = (float16_t *)out_ptrs[0];
    int32_t c, i;
    for (c = 0; c < NC; ++c) {{
        const float16_t *xc = x + (int64_t)c * S * 8;
{loop}
    }}
"""
    kernel = make_kernel(name, body, GLOBAL_POOL_PARAMS, (), isa="neon64fp16")
    spatial = x.shape[2] * x.shape[3]
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  GLOBAL_POOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], S=spatial),
                  note=f"nchw88 float16 {op.attrs['mode']}"
                       f"{'' if is_max else ' (sums widened to float32)'}")]
