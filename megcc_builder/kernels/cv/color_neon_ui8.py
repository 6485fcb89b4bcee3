"""rgb2bgr, rgb2gray and rgb2yuv with NEON (ARMv7 and AArch64), bit-identical to
color_generic (OpenCV's coefficients): 16 pixels per step with vld3q/vst3q, the rounding
shifts as vrshrn (x + 2^(n-1)) >> n; the remaining pixels in scalar."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .color_generic import NV21_CHECKS, NV21_PAIR, _checks
from .common import SAT_U8, function, ir_dtypes, op_types

_LOOP_HEAD = """
    {
        const size_t n = src->rows * src->cols;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i = 0;
"""

# (R*cr + G*cg + B*cb + 2^(shift-1)) >> shift for 8 pixels (u16 lanes) -> u16x8
_WEIGHTED = """
static uint16x8_t tinycv_weighted_neon(uint16x8_t r, uint16x8_t g, uint16x8_t b, uint16_t cr,
                                       uint16_t cg, uint16_t cb, int shift)
{
    uint32x4_t lo = vmull_n_u16(vget_low_u16(r), cr), hi = vmull_n_u16(vget_high_u16(r), cr);
    lo = vmlal_n_u16(lo, vget_low_u16(g), cg);
    hi = vmlal_n_u16(hi, vget_high_u16(g), cg);
    lo = vmlal_n_u16(lo, vget_low_u16(b), cb);
    hi = vmlal_n_u16(hi, vget_high_u16(b), cb);
    if (shift == 15) return vcombine_u16(vrshrn_n_u32(lo, 15), vrshrn_n_u32(hi, 15));
    return vcombine_u16(vrshrn_n_u32(lo, 14), vrshrn_n_u32(hi, 14));
}

/* sat_u8(((x - y) * c + (128 << 14) + (1 << 13)) >> 14) for 8 pixels */
static uint8x8_t tinycv_chroma_neon(uint16x8_t x, uint16x8_t y, int32_t c)
{
    const int32x4_t delta = vdupq_n_s32((128 << 14) + (1 << 13));
    const int16x8_t diff = vsubq_s16(vreinterpretq_s16_u16(x), vreinterpretq_s16_u16(y));
    int32x4_t lo = vmlaq_n_s32(delta, vmovl_s16(vget_low_s16(diff)), c);
    int32x4_t hi = vmlaq_n_s32(delta, vmovl_s16(vget_high_s16(diff)), c);
    return vqmovn_u16(vcombine_u16(vqmovun_s32(vshrq_n_s32(lo, 14)),
                                   vqmovun_s32(vshrq_n_s32(hi, 14))));
}
"""
WEIGHTED = ("tinycv_weighted_neon", _WEIGHTED)


@implements(*op_types("rgb2bgr"), dtypes=ir_dtypes("ui8"), requires="neon",
            cost=lambda o, g, i: 0.25, label="NEON")
def emit_rgb2bgr_neon(op: Op, graph: Graph):
    return function(op, graph, _checks(3, 3) + _LOOP_HEAD + """
        for (; i + 16 <= n; i += 16, s += 48, d += 48) {
            uint8x16x3_t p = vld3q_u8(s);
            const uint8x16_t t = p.val[0];
            p.val[0] = p.val[2];
            p.val[2] = t;
            vst3q_u8(d, p);
        }
        for (; i < n; ++i, s += 3, d += 3) {
            uint8_t r = s[0], g = s[1], b = s[2];
            d[0] = b; d[1] = g; d[2] = r;
        }
    }
""", (), "neon")


@implements(*op_types("rgb2gray"), dtypes=ir_dtypes("ui8"), requires="neon",
            cost=lambda o, g, i: 0.25, label="NEON")
def emit_rgb2gray_neon(op: Op, graph: Graph):
    return function(op, graph, _checks(3, 1) + _LOOP_HEAD + """
        for (; i + 16 <= n; i += 16, s += 48) {
            const uint8x16x3_t p = vld3q_u8(s);
            const uint16x8_t lo = tinycv_weighted_neon(
                vmovl_u8(vget_low_u8(p.val[0])), vmovl_u8(vget_low_u8(p.val[1])),
                vmovl_u8(vget_low_u8(p.val[2])), 9798, 19235, 3735, 15);
            const uint16x8_t hi = tinycv_weighted_neon(
                vmovl_u8(vget_high_u8(p.val[0])), vmovl_u8(vget_high_u8(p.val[1])),
                vmovl_u8(vget_high_u8(p.val[2])), 9798, 19235, 3735, 15);
            vst1q_u8(d + i, vcombine_u8(vmovn_u16(lo), vmovn_u16(hi)));
        }
        for (; i < n; ++i, s += 3)
            d[i] = (uint8_t)((s[0] * 9798 + s[1] * 19235 + s[2] * 3735 + (1 << 14)) >> 15);
    }
""", (WEIGHTED,), "neon")


@implements(*op_types("rgb2yuv"), dtypes=ir_dtypes("ui8"), requires="neon",
            cost=lambda o, g, i: 0.25, label="NEON")
def emit_rgb2yuv_neon(op: Op, graph: Graph):
    return function(op, graph, _checks(3, 3) + _LOOP_HEAD + """
        for (; i + 16 <= n; i += 16, s += 48, d += 48) {
            const uint8x16x3_t p = vld3q_u8(s);
            uint8x16x3_t o;
            uint8x8_t y8[2], u8[2], v8[2];
            int h;
            for (h = 0; h < 2; ++h) {
                const uint16x8_t r = vmovl_u8(h ? vget_high_u8(p.val[0]) : vget_low_u8(p.val[0]));
                const uint16x8_t g = vmovl_u8(h ? vget_high_u8(p.val[1]) : vget_low_u8(p.val[1]));
                const uint16x8_t b = vmovl_u8(h ? vget_high_u8(p.val[2]) : vget_low_u8(p.val[2]));
                const uint16x8_t y = tinycv_weighted_neon(r, g, b, 4899, 9617, 1868, 14);
                y8[h] = vqmovn_u16(y);
                u8[h] = tinycv_chroma_neon(b, y, 8061);
                v8[h] = tinycv_chroma_neon(r, y, 14369);
            }
            o.val[0] = vcombine_u8(y8[0], y8[1]);
            o.val[1] = vcombine_u8(u8[0], u8[1]);
            o.val[2] = vcombine_u8(v8[0], v8[1]);
            vst3q_u8(d, o);
        }
        for (; i < n; ++i, s += 3, d += 3) {
            int r = s[0], g = s[1], b = s[2];
            int y = (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14;
            d[0] = tinycv_sat_u8(y);
            d[1] = tinycv_sat_u8(((b - y) * 8061 + (128 << 14) + (1 << 13)) >> 14);
            d[2] = tinycv_sat_u8(((r - y) * 14369 + (128 << 14) + (1 << 13)) >> 14);
        }
    }
""", (SAT_U8, WEIGHTED), "neon")


_NV21 = """
/* B, G, R of 4 pixels from Y - 16 (clamped), V - 128, U - 128 in 32-bit lanes */
static void tinycv_nv21_neon(int32x4_t y, int32x4_t v, int32x4_t u, int32x4_t* b,
                             int32x4_t* g, int32x4_t* r)
{
    const int32x4_t half = vdupq_n_s32(1 << 19);
    const int32x4_t y32 = vmulq_n_s32(y, 1220542);
    *r = vshrq_n_s32(vaddq_s32(y32, vmlaq_n_s32(half, v, 1673527)), 20);
    *g = vshrq_n_s32(vaddq_s32(y32, vmlaq_n_s32(vmlaq_n_s32(half, v, -852492), u, -409993)), 20);
    *b = vshrq_n_s32(vaddq_s32(y32, vmlaq_n_s32(half, u, 2116026)), 20);
}

static uint8x8_t tinycv_narrow_neon(int32x4_t lo, int32x4_t hi)
{
    return vqmovn_u16(vcombine_u16(vqmovun_s32(lo), vqmovun_s32(hi)));
}
"""
NV21 = ("tinycv_nv21_neon", _NV21)


@implements(*op_types("yuv2bgr_nv21"), dtypes=ir_dtypes("ui8"), requires="neon",
            cost=lambda o, g, i: 0.25, label="NEON")
def emit_yuv2bgr_nv21_neon(op: Op, graph: Graph):
    return function(op, graph, NV21_CHECKS + r"""
    {
        const size_t H = dst->rows, W = dst->cols;
        const uint8_t* ys = (const uint8_t*)src->data;
        const uint8_t* vus = ys + H * W;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i, j;
        for (i = 0; i < H; ++i) {
            const uint8_t* y = ys + i * W;
            const uint8_t* vu = vus + (i / 2) * W;
            uint8_t* o = d + i * W * 3;
            for (j = 0; j + 16 <= W; j += 16, o += 48) {
                const uint8x8x2_t vu2 = vld2_u8(vu + j);          /* 8 V, 8 U */
                const uint8x8x2_t vv = vzip_u8(vu2.val[0], vu2.val[0]);  /* per pixel */
                const uint8x8x2_t uu = vzip_u8(vu2.val[1], vu2.val[1]);
                const uint8x16_t y8 = vqsubq_u8(vld1q_u8(y + j), vdupq_n_u8(16));
                uint8x16x3_t out;
                uint8x8_t bh[2], gh[2], rh[2];
                int h;
                for (h = 0; h < 2; ++h) {  /* pixels 0-7, then 8-15 */
                    const int16x8_t Y = vreinterpretq_s16_u16(
                        vmovl_u8(h ? vget_high_u8(y8) : vget_low_u8(y8)));
                    const int16x8_t V = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vv.val[h])),
                                                  vdupq_n_s16(128));
                    const int16x8_t U = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(uu.val[h])),
                                                  vdupq_n_s16(128));
                    int32x4_t b0, g0, r0, b1, g1, r1;
                    tinycv_nv21_neon(vmovl_s16(vget_low_s16(Y)), vmovl_s16(vget_low_s16(V)),
                                     vmovl_s16(vget_low_s16(U)), &b0, &g0, &r0);
                    tinycv_nv21_neon(vmovl_s16(vget_high_s16(Y)), vmovl_s16(vget_high_s16(V)),
                                     vmovl_s16(vget_high_s16(U)), &b1, &g1, &r1);
                    bh[h] = tinycv_narrow_neon(b0, b1);
                    gh[h] = tinycv_narrow_neon(g0, g1);
                    rh[h] = tinycv_narrow_neon(r0, r1);
                }
                out.val[0] = vcombine_u8(bh[0], bh[1]);
                out.val[1] = vcombine_u8(gh[0], gh[1]);
                out.val[2] = vcombine_u8(rh[0], rh[1]);
                vst3q_u8(o, out);
            }
            for (; j < W; j += 2, o += 6) {
                NV21_PAIR
            }
        }
    }
""".replace("NV21_PAIR", NV21_PAIR), (SAT_U8, NV21), "neon")
