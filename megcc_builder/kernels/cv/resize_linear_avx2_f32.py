"""cv2.resize(INTER_LINEAR) on f32 with AVX2, bit-identical to resize_linear_generic's f32
core (a strided core of the same signature, shared by resize_linear, crop_and_resize,
letterbox and resize_area's enlargement).

Per strip of destination columns, the element offsets of both taps and their float
weights; per destination row, 8 elements at a time: four gathers (two taps of two source
rows), then the portable code's operations in its order, each rounded to float:
h0 = S0[i0] * a0 + S0[i1] * a1, h1 likewise, dst = h0 * b0 + h1 * b1 (multiplies and
adds, never fused: a fused multiply-add would round differently)."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, ir_dtypes, op_types
from .resize_linear_avx2_ui8 import avx2_cost
from .resize_linear_generic import ANY_TAP, COEF, resize_linear_function

CORE = ("tinycv_resize_linear_f32_core_avx2", r"""
static void tinycv_resize_linear_f32_core_avx2(const float* s, int sw, int sh,
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
            __m256 b0v, b1v;
            tinycv_linear_row_tap(dy, scale_y, sh, area, &r0, &r1, &b0, &b1);
            b0v = _mm256_set1_ps(b0);
            b1v = _mm256_set1_ps(b1);
            s0 = s + (size_t)r0 * s_stride;
            s1 = s + (size_t)r1 * s_stride;
            for (e = 0; e + 8 <= ne; e += 8) {
                const __m256i i0 = _mm256_loadu_si256((const __m256i*)(off0 + e));
                const __m256i i1 = _mm256_loadu_si256((const __m256i*)(off1 + e));
                const __m256 a0 = _mm256_loadu_ps(a0s + e), a1 = _mm256_loadu_ps(a1s + e);
                const __m256 h0 = _mm256_add_ps(
                    _mm256_mul_ps(_mm256_i32gather_ps(s0, i0, 4), a0),
                    _mm256_mul_ps(_mm256_i32gather_ps(s0, i1, 4), a1));
                const __m256 h1 = _mm256_add_ps(
                    _mm256_mul_ps(_mm256_i32gather_ps(s1, i0, 4), a0),
                    _mm256_mul_ps(_mm256_i32gather_ps(s1, i1, 4), a1));
                _mm256_storeu_ps(o + e, _mm256_add_ps(_mm256_mul_ps(h0, b0v),
                                                      _mm256_mul_ps(h1, b1v)));
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

AVX2_F32_CORE = ("tinycv_resize_linear_f32_core_avx2", (ROUND, COEF, ANY_TAP, CORE))


@implements(*op_types("resize_linear"), dtypes=ir_dtypes("f32"), requires="avx2",
            cost=avx2_cost, label="AVX2")
def emit(op: Op, graph: Graph):
    return resize_linear_function(op, graph, {"f32": AVX2_F32_CORE}, "avx2")
