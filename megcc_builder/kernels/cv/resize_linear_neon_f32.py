"""cv2.resize(INTER_LINEAR) on f32 with NEON (ARMv7 and AArch64), bit-identical to
resize_linear_generic's f32 core (a strided core of the same signature, shared by
resize_linear, crop_and_resize, letterbox and resize_area's enlargement).

NEON has no gather: per destination row, four elements at a time, the four taps are loaded
lane by lane (vld1q_lane_f32), then the portable code's operations in its order, each
rounded to float: h0 = S0[i0] * a0 + S0[i1] * a1, h1 likewise, dst = h0 * b0 + h1 * b1
(vmulq + vaddq, never vmla/vfma: a fused multiply-add would round differently)."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, ir_dtypes, op_types
from .resize_linear_generic import ANY_TAP, COEF, resize_linear_function
from .resize_linear_neon_ui8 import neon_cost

GATHER = ("tinycv_gather4_f32_neon", r"""
static float32x4_t tinycv_gather4_f32_neon(const float* row, const int32_t* off)
{
    float32x4_t v = vld1q_dup_f32(row + off[0]);
    v = vld1q_lane_f32(row + off[1], v, 1);
    v = vld1q_lane_f32(row + off[2], v, 2);
    return vld1q_lane_f32(row + off[3], v, 3);
}
""")

CORE = ("tinycv_resize_linear_f32_core_neon", r"""
static void tinycv_resize_linear_f32_core_neon(const float* s, int sw, int sh,
                                               size_t s_stride, float* d, int dw, int dh,
                                               size_t d_stride, int cn, int area)
{
    const double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    int32_t off0[TINYCV_RESIZE_STRIP * 4], off1[TINYCV_RESIZE_STRIP * 4];
    float a0s[TINYCV_RESIZE_STRIP * 4], a1s[TINYCV_RESIZE_STRIP * 4];
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
                a0s[k * cn + c] = w0;
                a1s[k * cn + c] = w1;
            }
        }
        for (dy = 0; dy < dh; ++dy) {
            int r0, r1;
            float b0, b1;
            const float *s0, *s1;
            float* o = d + (size_t)dy * d_stride + (size_t)x0 * cn;
            float32x4_t b0v, b1v;
            tinycv_linear_row_tap(dy, scale_y, sh, area, &r0, &r1, &b0, &b1);
            b0v = vdupq_n_f32(b0);
            b1v = vdupq_n_f32(b1);
            s0 = s + (size_t)r0 * s_stride;
            s1 = s + (size_t)r1 * s_stride;
            for (e = 0; e + 4 <= ne; e += 4) {
                const float32x4_t a0 = vld1q_f32(a0s + e), a1 = vld1q_f32(a1s + e);
                const float32x4_t h0 = vaddq_f32(
                    vmulq_f32(tinycv_gather4_f32_neon(s0, off0 + e), a0),
                    vmulq_f32(tinycv_gather4_f32_neon(s0, off1 + e), a1));
                const float32x4_t h1 = vaddq_f32(
                    vmulq_f32(tinycv_gather4_f32_neon(s1, off0 + e), a0),
                    vmulq_f32(tinycv_gather4_f32_neon(s1, off1 + e), a1));
                vst1q_f32(o + e, vaddq_f32(vmulq_f32(h0, b0v), vmulq_f32(h1, b1v)));
            }
            for (; e < ne; ++e) {
                const float h0 = s0[off0[e]] * a0s[e] + s0[off1[e]] * a1s[e];
                const float h1 = s1[off0[e]] * a0s[e] + s1[off1[e]] * a1s[e];
                o[e] = h0 * b0 + h1 * b1;
            }
        }
    }
}
""")

NEON_F32_CORE = ("tinycv_resize_linear_f32_core_neon", (ROUND, COEF, ANY_TAP, GATHER, CORE))


@implements(*op_types("resize_linear"), dtypes=ir_dtypes("f32"), requires="neon",
            cost=neon_cost, label="NEON")
def emit(op: Op, graph: Graph):
    return resize_linear_function(op, graph, {"f32": NEON_F32_CORE}, "neon")
