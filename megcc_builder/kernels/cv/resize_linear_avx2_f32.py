"""cv2.resize(INTER_LINEAR) on f32 with AVX2, bit-identical to resize_linear_generic's f32
core (a strided core of the same signature, shared by resize_linear, crop_and_resize,
letterbox and resize_area's enlargement).

Per strip of destination columns, the element offsets of both taps and their float
weights; per destination row, the horizontal sums of its two source rows h0 = S0[i0] * a0 +
S0[i1] * a1, h1 likewise, in scalar (AVX2 gathers were slower than scalar loads here, on
AMD EPYC), then dst = h0 * b0 + h1 * b1 8 at a time: the portable code's operations in its
order, each rounded to float (multiplies and adds, never fused: a fused multiply-add would
round differently)."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, ir_dtypes, op_types
from .resize_linear_avx2_ui8 import avx2_cost
from .resize_linear_generic import ANY_TAP, COEF, resize_linear_function

CORE = ("tinycv_resize_linear_f32_core_avx2", r"""
#define TINYCV_RESIZE_F32_H(CN)                                                               \
    for (k = 0, e = 0; k < n; ++k) {                                                          \
        const int i0 = off0[e], i1 = off1[e];                                                 \
        const float a0 = a0s[e], a1 = a1s[e];                                                 \
        for (c = 0; c < (CN); ++c, ++e) {                                                     \
            h0[e] = s0[i0 + c] * a0 + s0[i1 + c] * a1;                                        \
            h1[e] = s1[i0 + c] * a0 + s1[i1 + c] * a1;                                        \
        }                                                                                     \
    }

static void tinycv_resize_linear_f32_core_avx2(const float* s, int sw, int sh,
                                               size_t s_stride, float* d, int dw, int dh,
                                               size_t d_stride, int cn, int area)
{
    const double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    int32_t off0[TINYCV_RESIZE_STRIP * 4], off1[TINYCV_RESIZE_STRIP * 4];
    float a0s[TINYCV_RESIZE_STRIP * 4], a1s[TINYCV_RESIZE_STRIP * 4];
    float h0[TINYCV_RESIZE_STRIP * 4], h1[TINYCV_RESIZE_STRIP * 4];
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
            __m256 b0v, b1v;
            tinycv_linear_row_tap(dy, scale_y, sh, area, &r0, &r1, &b0, &b1);
            b0v = _mm256_set1_ps(b0);
            b1v = _mm256_set1_ps(b1);
            s0 = s + (size_t)r0 * s_stride;
            s1 = s + (size_t)r1 * s_stride;
            /* the horizontal sums in scalar (gathers are slower than loads on several
               AVX2 CPUs), the channel count a constant where it is common */
            switch (cn) {
            case 1: TINYCV_RESIZE_F32_H(1); break;
            case 3: TINYCV_RESIZE_F32_H(3); break;
            default: TINYCV_RESIZE_F32_H(cn); break;
            }
            for (e = 0; e + 8 <= ne; e += 8)
                _mm256_storeu_ps(o + e, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(h0 + e), b0v),
                                                      _mm256_mul_ps(_mm256_loadu_ps(h1 + e), b1v)));
            for (; e < ne; ++e) o[e] = h0[e] * b0 + h1[e] * b1;
        }
    }
}
""")

AVX2_F32_CORE = ("tinycv_resize_linear_f32_core_avx2", (ROUND, COEF, ANY_TAP, CORE))


@implements(*op_types("resize_linear"), dtypes=ir_dtypes("f32"), requires="avx2",
            cost=avx2_cost, label="AVX2")
def emit(op: Op, graph: Graph):
    return resize_linear_function(op, graph, {"f32": AVX2_F32_CORE}, "avx2")
