"""cv2.warpAffine(INTER_LINEAR | WARP_INVERSE_MAP) on ui8 with NEON (ARMv7 and AArch64),
bit-identical to warp_affine_generic_ui8 (OpenCV's fixed point): 8 destination pixels at a
time when all of them and their 2x2 taps are inside the image (any of 1..4 channels); the
others, at borders, go through the portable per-pixel code.

The coordinates, 1/32-pixel fractions and weights q = (32 - fy)(32 - fx) ... (<= 1024;
OpenCV's are 32 q) are computed in vectors; NEON has no gather, so the 2x2 taps of each
pixel are loaded in scalar into channel-planar arrays; per channel, sum = p00 q00 + p01 q01
+ p10 q10 + p11 q11 exactly in 32 bits (vmull/vmlal_u16), (sum + 512) >> 10 (vrshrn_n_u32,
which equals OpenCV's (32 sum + 2^14) >> 15), stored interleaved with vst1/vst2/vst3/vst4."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes, op_types
from .warp_affine_generic_ui8 import warp_function

WARP8 = ("tinycv_warp8_neon", r"""
static inline uint32_t tinycv_all4_neon(uint32x4_t m)
{
    const uint32x2_t t = vand_u32(vget_low_u32(m), vget_high_u32(m));
    return vget_lane_u32(t, 0) & vget_lane_u32(t, 1);
}

/* 4 pixels' 1/32 coordinates -> fractions, offsets of the top-left tap; returns 0 unless
   every pixel's 2x2 neighbourhood is inside the image. */
static inline uint32_t tinycv_warp4_neon(int sw, int sh, int cn, int32x4_t X, int32x4_t Y,
                                  int32_t* base, uint16_t* fx16, uint16_t* fy16)
{
    const int32x4_t lo = vdupq_n_s32(-32768), hi = vdupq_n_s32(32767), m31 = vdupq_n_s32(31);
    /* OpenCV keeps the integer part in int16 (saturated) */
    const int32x4_t sx = vminq_s32(vmaxq_s32(vshrq_n_s32(X, 5), lo), hi);
    const int32x4_t sy = vminq_s32(vmaxq_s32(vshrq_n_s32(Y, 5), lo), hi);
    const uint32x4_t inside = vandq_u32(
        vcltq_u32(vreinterpretq_u32_s32(sx), vdupq_n_u32((uint32_t)(sw - 1))),
        vcltq_u32(vreinterpretq_u32_s32(sy), vdupq_n_u32((uint32_t)(sh - 1))));
    vst1q_s32(base, vmlaq_s32(vmulq_s32(sx, vdupq_n_s32(cn)), sy, vdupq_n_s32(sw * cn)));
    vst1_u16(fx16, vmovn_u32(vreinterpretq_u32_s32(vandq_s32(X, m31))));
    vst1_u16(fy16, vmovn_u32(vreinterpretq_u32_s32(vandq_s32(Y, m31))));
    return tinycv_all4_neon(inside);
}

/* 8 pixels at source coordinates X[8], Y[8] (1/32 pixel). Returns 0 (writing nothing)
   unless all 8 pixels' taps are inside the image. */
static inline int tinycv_warp8_xy_neon(const uint8_t* s, int sw, int sh, int cn,
                                       const int32x4_t* X, const int32x4_t* Y, uint8_t* o)
{
    const int sstep = sw * cn;
    int32_t base[8];
    uint16_t fxs[8], fys[8];
    uint8_t p00[32], p01[32], p10[32], p11[32];
    uint16x8_t fx, fy, ax, ay, q00, q01, q10, q11;
    uint8x8_t out[4];
    int i, c;
    if (!tinycv_warp4_neon(sw, sh, cn, X[0], Y[0], base, fxs, fys) ||
        !tinycv_warp4_neon(sw, sh, cn, X[1], Y[1], base + 4, fxs + 4, fys + 4))
        return 0;
    for (i = 0; i < 8; ++i) {
        const uint8_t* p = s + base[i];
        for (c = 0; c < cn; ++c) {
            p00[c * 8 + i] = p[c];
            p01[c * 8 + i] = p[c + cn];
            p10[c * 8 + i] = p[c + sstep];
            p11[c * 8 + i] = p[c + sstep + cn];
        }
    }
    fx = vld1q_u16(fxs);
    fy = vld1q_u16(fys);
    ax = vsubq_u16(vdupq_n_u16(32), fx);
    ay = vsubq_u16(vdupq_n_u16(32), fy);
    q00 = vmulq_u16(ay, ax);
    q01 = vmulq_u16(ay, fx);
    q10 = vmulq_u16(fy, ax);
    q11 = vmulq_u16(fy, fx);
    for (c = 0; c < cn; ++c) {
        const uint16x8_t v00 = vmovl_u8(vld1_u8(p00 + c * 8)), v01 = vmovl_u8(vld1_u8(p01 + c * 8));
        const uint16x8_t v10 = vmovl_u8(vld1_u8(p10 + c * 8)), v11 = vmovl_u8(vld1_u8(p11 + c * 8));
        uint32x4_t lo = vmull_u16(vget_low_u16(v00), vget_low_u16(q00));
        uint32x4_t hi = vmull_u16(vget_high_u16(v00), vget_high_u16(q00));
        lo = vmlal_u16(lo, vget_low_u16(v01), vget_low_u16(q01));
        hi = vmlal_u16(hi, vget_high_u16(v01), vget_high_u16(q01));
        lo = vmlal_u16(lo, vget_low_u16(v10), vget_low_u16(q10));
        hi = vmlal_u16(hi, vget_high_u16(v10), vget_high_u16(q10));
        lo = vmlal_u16(lo, vget_low_u16(v11), vget_low_u16(q11));
        hi = vmlal_u16(hi, vget_high_u16(v11), vget_high_u16(q11));
        out[c] = vmovn_u16(vcombine_u16(vrshrn_n_u32(lo, 10), vrshrn_n_u32(hi, 10)));
    }
    if (cn == 1) {
        vst1_u8(o, out[0]);
    } else if (cn == 2) {
        uint8x8x2_t v;
        v.val[0] = out[0]; v.val[1] = out[1];
        vst2_u8(o, v);
    } else if (cn == 3) {
        uint8x8x3_t v;
        v.val[0] = out[0]; v.val[1] = out[1]; v.val[2] = out[2];
        vst3_u8(o, v);
    } else {
        uint8x8x4_t v;
        v.val[0] = out[0]; v.val[1] = out[1]; v.val[2] = out[2]; v.val[3] = out[3];
        vst4_u8(o, v);
    }
    return 1;
}

/* X, Y in 1/32 pixel from OpenCV's 1/1024 affine coordinates */
static inline int tinycv_warp8_neon(const uint8_t* s, int sw, int sh, int cn, int X0, int Y0,
                                    const int* adelta, const int* bdelta, uint8_t* o)
{
    int32x4_t X[2], Y[2];
    int h;
    for (h = 0; h < 2; ++h) {
        X[h] = vshrq_n_s32(vaddq_s32(vdupq_n_s32(X0), vld1q_s32(adelta + 4 * h)), 5);
        Y[h] = vshrq_n_s32(vaddq_s32(vdupq_n_s32(Y0), vld1q_s32(bdelta + 4 * h)), 5);
    }
    return tinycv_warp8_xy_neon(s, sw, sh, cn, X, Y, o);
}
""")

VECTOR = r"""
                for (; k + 8 <= n; k += 8)
                    if (!tinycv_warp8_neon(s, sw, sh, cn, X0, Y0, adelta + k, bdelta + k,
                                           orow + k * cn)) {
                        int j;
                        for (j = k; j < k + 8; ++j)
                            PIXEL(s, sw, sh, cn, (X0 + adelta[j]) >> 5, (Y0 + bdelta[j]) >> 5,
                                  orow + j * cn, BOARD);
                    }"""


def neon_cost(op, graph, isa) -> float:
    return 0.5


@implements(*op_types("warp_affine_replicate_linear"), dtypes=ir_dtypes("ui8"),
            requires="neon", cost=neon_cost, label="NEON")
def emit_replicate(op: Op, graph: Graph):
    return warp_function(op, graph, "replicate", VECTOR, (WARP8,), "neon")


@implements(*op_types("warp_affine_constant_linear"), dtypes=ir_dtypes("ui8"),
            requires="neon", cost=neon_cost, label="NEON")
def emit_constant(op: Op, graph: Graph):
    return warp_function(op, graph, "constant", VECTOR, (WARP8,), "neon")
