"""cv2.warpAffine(INTER_LINEAR | WARP_INVERSE_MAP) on ui8 with AVX2, bit-identical to
warp_affine_generic_ui8 (OpenCV's fixed point): 8 destination pixels at a time when all of
them and their 2x2 taps are inside the image (1, 3 or 4 channels); the others, at borders,
go through the portable per-pixel code. Weights are the 1/32-pixel products q = (32 - fy)
(32 - fx) ... (<= 1024; OpenCV's are 32 q), so _mm256_madd_epi16 forms the exact sums and
(sum + 512) >> 10 equals OpenCV's (32 sum + 2^14) >> 15."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes, op_types
from .warp_affine_generic_ui8 import warp_function

WARP8 = ("tinycv_warp8_avx2", r"""
/* 8 pixels at source coordinates X, Y (1/32 pixel). Returns 0 (writing nothing) unless all
   8 are inside and every 4-byte gather stays inside the image. */
static inline int tinycv_warp8_xy_avx2(const uint8_t* s, int sw, int sh, int cn, __m256i X,
                                       __m256i Y, uint8_t* o)
{
    const int sstep = sw * cn;
    const __m256i m31 = _mm256_set1_epi32(31), c32 = _mm256_set1_epi32(32);
    const __m256i lo16 = _mm256_set1_epi32(-32768), hi16 = _mm256_set1_epi32(32767);
    const __m256i fx = _mm256_and_si256(X, m31), fy = _mm256_and_si256(Y, m31);
    const __m256i sx = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(X, 5), lo16), hi16);
    const __m256i sy = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(Y, 5), lo16), hi16);
    const __m256i minus1 = _mm256_set1_epi32(-1);
    const __m256i inside = _mm256_and_si256(
        _mm256_and_si256(_mm256_cmpgt_epi32(sx, minus1),
                         _mm256_cmpgt_epi32(_mm256_set1_epi32(sw - 1), sx)),
        _mm256_and_si256(_mm256_cmpgt_epi32(sy, minus1),
                         _mm256_cmpgt_epi32(_mm256_set1_epi32(sh - 1), sy)));
    __m256i base, g00, g01, g10, g11, qa, qb, v[4];
    const __m256i ff = _mm256_set1_epi32(0xFF), round = _mm256_set1_epi32(512);
    int c;
    if (cn == 2 || _mm256_movemask_epi8(inside) != -1) return 0;
    base = _mm256_add_epi32(_mm256_mullo_epi32(sy, _mm256_set1_epi32(sstep)),
                            _mm256_mullo_epi32(sx, _mm256_set1_epi32(cn)));
    /* the bottom-right gather reads 4 bytes from base + sstep + cn */
    if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(
            base, _mm256_set1_epi32(sh * sstep - sstep - cn - 4))) != 0)
        return 0;
    g00 = _mm256_i32gather_epi32((const int*)s, base, 1);
    g01 = _mm256_i32gather_epi32((const int*)s, _mm256_add_epi32(base, _mm256_set1_epi32(cn)), 1);
    g10 = _mm256_i32gather_epi32((const int*)s, _mm256_add_epi32(base, _mm256_set1_epi32(sstep)), 1);
    g11 = _mm256_i32gather_epi32((const int*)s,
                                 _mm256_add_epi32(base, _mm256_set1_epi32(sstep + cn)), 1);
    {
        const __m256i ax = _mm256_sub_epi32(c32, fx), ay = _mm256_sub_epi32(c32, fy);
        qa = _mm256_or_si256(_mm256_mullo_epi16(ay, ax),
                             _mm256_slli_epi32(_mm256_mullo_epi16(ay, fx), 16));
        qb = _mm256_or_si256(_mm256_mullo_epi16(fy, ax),
                             _mm256_slli_epi32(_mm256_mullo_epi16(fy, fx), 16));
    }
    for (c = 0; c < cn; ++c) {
        const __m128i sh8 = _mm_cvtsi32_si128(8 * c);
        const __m256i p0 = _mm256_or_si256(
            _mm256_and_si256(_mm256_srl_epi32(g00, sh8), ff),
            _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(g01, sh8), ff), 16));
        const __m256i p1 = _mm256_or_si256(
            _mm256_and_si256(_mm256_srl_epi32(g10, sh8), ff),
            _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(g11, sh8), ff), 16));
        v[c] = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(
            _mm256_madd_epi16(p0, qa), _mm256_madd_epi16(p1, qb)), round), 10);
    }
    if (cn == 1) {
        const __m256i t = _mm256_permute4x64_epi64(_mm256_packus_epi32(v[0], v[0]), 0x08);
        _mm_storel_epi64((__m128i*)o, _mm_packus_epi16(_mm256_castsi256_si128(t),
                                                       _mm256_castsi256_si128(t)));
    } else {
        __m256i w = _mm256_or_si256(v[0], _mm256_or_si256(_mm256_slli_epi32(v[1], 8),
                                                          _mm256_slli_epi32(v[2], 16)));
        if (cn == 4) {
            _mm256_storeu_si256((__m256i*)o, _mm256_or_si256(w, _mm256_slli_epi32(v[3], 24)));
        } else {  /* 3 channels: 3 bytes of each 4, 12 per 128-bit half */
            uint8_t tmp[32];
            w = _mm256_shuffle_epi8(w, _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14,
                -1, -1, -1, -1, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
            _mm256_storeu_si256((__m256i*)tmp, w);
            memcpy(o, tmp, 12);
            memcpy(o + 12, tmp + 16, 12);
        }
    }
    return 1;
}

/* X, Y in 1/32 pixel from OpenCV's 1/1024 affine coordinates */
static inline int tinycv_warp8_avx2(const uint8_t* s, int sw, int sh, int cn, int X0, int Y0,
                                    const int* adelta, const int* bdelta, uint8_t* o)
{
    return tinycv_warp8_xy_avx2(s, sw, sh, cn, _mm256_srai_epi32(_mm256_add_epi32(
        _mm256_set1_epi32(X0), _mm256_loadu_si256((const __m256i*)adelta)), 5),
        _mm256_srai_epi32(_mm256_add_epi32(
        _mm256_set1_epi32(Y0), _mm256_loadu_si256((const __m256i*)bdelta)), 5), o);
}
""")

VECTOR = r"""
                for (; k + 8 <= n; k += 8)
                    if (!tinycv_warp8_avx2(s, sw, sh, cn, X0, Y0, adelta + k, bdelta + k,
                                           orow + k * cn)) {
                        int j;
                        for (j = k; j < k + 8; ++j)
                            PIXEL(s, sw, sh, cn, (X0 + adelta[j]) >> 5, (Y0 + bdelta[j]) >> 5,
                                  orow + j * cn, BOARD);
                    }"""


@implements(*op_types("warp_affine_replicate_linear"), dtypes=ir_dtypes("ui8"),
            requires="avx2", cost=lambda o, g, i: 0.3, label="AVX2")
def emit_replicate(op: Op, graph: Graph):
    return warp_function(op, graph, "replicate", VECTOR, (WARP8,), "avx2")


@implements(*op_types("warp_affine_constant_linear"), dtypes=ir_dtypes("ui8"),
            requires="avx2", cost=lambda o, g, i: 0.3, label="AVX2")
def emit_constant(op: Op, graph: Graph):
    return warp_function(op, graph, "constant", VECTOR, (WARP8,), "avx2")
