"""cv2.warpPerspective(INTER_LINEAR | WARP_INVERSE_MAP) on ui8 with AVX2, bit-identical to
warp_perspective_generic_ui8: 8 columns of a block at a time, their 1/32-pixel coordinates
computed as the portable code computes them, in double (W = W0 + M6 x1, W = W != 0 ? 32 / W
: 0, X = (X0 + M0 x1) W clamped to int's range, rounded half to even by _mm256_cvtpd_epi32,
which is tinycv_round), then warp_affine_avx2_ui8's 8-pixel bilinear remap; pixels whose
taps leave the image go through the portable per-pixel code."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes, op_types
from .resize_linear_avx2_ui8 import avx2_cost
from .warp_affine_avx2_ui8 import WARP8
from .warp_perspective_generic_ui8 import perspective_function

COORDS = ("tinycv_persp_coords_avx2", r"""
/* 4 columns' source coordinate in 1/32 pixel: (A0 + a x) * W, as the portable code */
static __m128i tinycv_persp4_avx2(double A0, double a, __m256d x, __m256d Wv)
{
    const __m256d v = _mm256_mul_pd(_mm256_add_pd(_mm256_set1_pd(A0),
                                                  _mm256_mul_pd(_mm256_set1_pd(a), x)), Wv);
    return _mm256_cvtpd_epi32(_mm256_min_pd(_mm256_max_pd(v, _mm256_set1_pd(-2147483648.0)),
                                            _mm256_set1_pd(2147483647.0)));
}

static void tinycv_persp_coords_avx2(const double* M, double X0, double Y0, double W0, int x1,
                                     __m256i* X, __m256i* Y)
{
    __m128i xs[2], ys[2];
    int h;
    for (h = 0; h < 2; ++h) {
        const double b = x1 + 4 * h;
        const __m256d x = _mm256_setr_pd(b, b + 1, b + 2, b + 3);
        const __m256d W = _mm256_add_pd(_mm256_set1_pd(W0), _mm256_mul_pd(_mm256_set1_pd(M[6]), x));
        /* W != 0 ? 32 / W : 0 (unordered counts as != 0, as in C) */
        const __m256d Wv = _mm256_and_pd(_mm256_div_pd(_mm256_set1_pd(32.0), W),
                                         _mm256_cmp_pd(W, _mm256_setzero_pd(), _CMP_NEQ_UQ));
        xs[h] = tinycv_persp4_avx2(X0, M[0], x, Wv);
        ys[h] = tinycv_persp4_avx2(Y0, M[3], x, Wv);
    }
    *X = _mm256_inserti128_si256(_mm256_castsi128_si256(xs[0]), xs[1], 1);
    *Y = _mm256_inserti128_si256(_mm256_castsi128_si256(ys[0]), ys[1], 1);
}
""")

VECTOR = r"""
                for (; x1 + 8 <= bw && xb + x1 + 8 <= dw; x1 += 8) {
                    uint8_t* o = d + ((size_t)y * dw + xb + x1) * cn;
                    __m256i X, Y;
                    tinycv_persp_coords_avx2(trans, X0, Y0, W0, x1, &X, &Y);
                    if (!tinycv_warp8_xy_avx2(s, sw, sh, cn, X, Y, o)) {
                        int Xs[8], Ys[8], j;
                        _mm256_storeu_si256((__m256i*)Xs, X);
                        _mm256_storeu_si256((__m256i*)Ys, Y);
                        for (j = 0; j < 8; ++j)
                            PIXEL(s, sw, sh, cn, Xs[j], Ys[j], o + j * cn, BOARD);
                    }
                }"""


@implements(*op_types("warp_perspective_replicate_linear"), dtypes=ir_dtypes("ui8"),
            requires="avx2", cost=avx2_cost, label="AVX2")
def emit_replicate(op: Op, graph: Graph):
    return perspective_function(op, graph, "replicate", VECTOR, (WARP8, COORDS), "avx2")


@implements(*op_types("warp_perspective_constant_linear"), dtypes=ir_dtypes("ui8"),
            requires="avx2", cost=avx2_cost, label="AVX2")
def emit_constant(op: Op, graph: Graph):
    return perspective_function(op, graph, "constant", VECTOR, (WARP8, COORDS), "avx2")
