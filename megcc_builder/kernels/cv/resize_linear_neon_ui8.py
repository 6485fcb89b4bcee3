"""cv2.resize(INTER_LINEAR) on ui8 with NEON (ARMv7 and AArch64), bit-identical to
resize_linear_generic, as a strided core (tinycv_resize_linear_u8_core_neon, the portable
core's signature) that resize_linear, crop_and_resize, letterbox and resize_area's
enlargement share: per destination row, the exact horizontal sums of its two source rows
for a strip of elements (scalar: NEON has no gather), then OpenCV's vertical rounding as
its NEON code does it, 8 elements at a time: narrow h >> 4 to int16, multiply-high by the
16-bit weights (vmull + vshrn 16), add, rounding shift by 2, saturate to u8."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, ir_dtypes, op_types
from .resize_linear_generic import ANY_TAP, COEF, resize_linear_function

CORE = ("tinycv_resize_linear_u8_core_neon", r"""
static void tinycv_resize_linear_u8_core_neon(const uint8_t* s, int sw, int sh,
                                              size_t s_stride, uint8_t* d, int dw, int dh,
                                              size_t d_stride, int cn, int area)
{
    const double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    int32_t off0[TINYCV_RESIZE_STRIP * 4], off1[TINYCV_RESIZE_STRIP * 4];
    int16_t a0s[TINYCV_RESIZE_STRIP * 4], a1s[TINYCV_RESIZE_STRIP * 4];
    int32_t h0[TINYCV_RESIZE_STRIP * 4], h1[TINYCV_RESIZE_STRIP * 4];
    int x0, k, c, dy, e;
    for (x0 = 0; x0 < dw; x0 += TINYCV_RESIZE_STRIP) {
        const int n = dw - x0 < TINYCV_RESIZE_STRIP ? dw - x0 : TINYCV_RESIZE_STRIP;
        const int ne = n * cn;
        for (k = 0; k < n; ++k) {
            int i0, i1;
            float w0, w1;
            tinycv_any_tap(x0 + k, scale_x, sw, area, &i0, &i1, &w0, &w1);
            for (c = 0; c < cn; ++c) {
                off0[k * cn + c] = i0 * cn + c;
                off1[k * cn + c] = i1 * cn + c;
                a0s[k * cn + c] = (int16_t)tinycv_round(w0 * 2048.f);
                a1s[k * cn + c] = (int16_t)tinycv_round(w1 * 2048.f);
            }
        }
        for (dy = 0; dy < dh; ++dy) {
            int r0, r1, b0, b1;
            float w0, w1;
            const uint8_t *s0, *s1;
            uint8_t* o = d + (size_t)dy * d_stride + (size_t)x0 * cn;
            int16x4_t b0v, b1v;
            tinycv_linear_row_tap(dy, scale_y, sh, area, &r0, &r1, &w0, &w1);
            b0 = tinycv_round(w0 * 2048.f);
            b1 = tinycv_round(w1 * 2048.f);
            b0v = vdup_n_s16((int16_t)b0);
            b1v = vdup_n_s16((int16_t)b1);
            s0 = s + (size_t)r0 * s_stride;
            s1 = s + (size_t)r1 * s_stride;
            for (e = 0; e < ne; ++e) {
                h0[e] = s0[off0[e]] * a0s[e] + s0[off1[e]] * a1s[e];
                h1[e] = s1[off0[e]] * a0s[e] + s1[off1[e]] * a1s[e];
            }
            for (e = 0; e + 8 <= ne; e += 8) {
                const int16x8_t p0 = vcombine_s16(vqmovn_s32(vshrq_n_s32(vld1q_s32(h0 + e), 4)),
                                                  vqmovn_s32(vshrq_n_s32(vld1q_s32(h0 + e + 4), 4)));
                const int16x8_t p1 = vcombine_s16(vqmovn_s32(vshrq_n_s32(vld1q_s32(h1 + e), 4)),
                                                  vqmovn_s32(vshrq_n_s32(vld1q_s32(h1 + e + 4), 4)));
                const int16x8_t m0 = vcombine_s16(vshrn_n_s32(vmull_s16(vget_low_s16(p0), b0v), 16),
                                                  vshrn_n_s32(vmull_s16(vget_high_s16(p0), b0v), 16));
                const int16x8_t m1 = vcombine_s16(vshrn_n_s32(vmull_s16(vget_low_s16(p1), b1v), 16),
                                                  vshrn_n_s32(vmull_s16(vget_high_s16(p1), b1v), 16));
                vst1_u8(o + e, vqmovun_s16(vrshrq_n_s16(vaddq_s16(m0, m1), 2)));
            }
            for (; e < ne; ++e) {
                const int v = ((((h0[e] >> 4) * b0) >> 16) + (((h1[e] >> 4) * b1) >> 16) + 2) >> 2;
                o[e] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}
""")

NEON_U8_CORE = ("tinycv_resize_linear_u8_core_neon", (ROUND, COEF, ANY_TAP, CORE))


def neon_cost(op, graph, isa) -> float:
    return 0.5


@implements(*op_types("resize_linear"), dtypes=ir_dtypes("ui8"), requires="neon",
            cost=neon_cost, label="NEON")
def emit(op: Op, graph: Graph):
    return resize_linear_function(op, graph, {"ui8": NEON_U8_CORE}, "neon")
