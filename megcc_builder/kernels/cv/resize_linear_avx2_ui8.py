"""cv2.resize(INTER_LINEAR) on ui8 with AVX2, bit-identical to resize_linear_generic, as a
strided core (tinycv_resize_linear_u8_core_avx2, the portable core's signature) that
resize_linear, crop_and_resize, letterbox and resize_area's enlargement share.

Per strip of destination columns, a table per element (column x channel): the byte
offset of its first tap and the weights as one (a0, a1) int16 pair. For 1..3 channels the
second tap is `cn` bytes further, in the same 32-bit word: one 32-bit load per element
and source row (8 per vector), a byte shuffle makes the (S0, S1) pairs, _mm256_madd_epi16 gives the exact
horizontal sums, then OpenCV's vertical rounding exactly as its vector code does it
(pack h >> 4 to int16, mulhi by the 16-bit weights, (+2) >> 2). A load reads 4 bytes:
elements whose load would pass the end of the image's last row (of the box, for a
strided source) are done in scalar, as are 4-channel images (the taps are 4 bytes apart).
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, ir_dtypes, op_types
from .resize_linear_generic import ANY_TAP, COEF, resize_linear_function

TAPS = ("tinycv_resize_taps", r"""
/* S[off] * a0 + S[off + cn] * a1 for 8 elements: 8 unaligned 32-bit loads (faster than
   _mm256_i32gather_epi32 here, on AMD EPYC: 105 vs 133 us for 1920x1080 -> 224x224), the
   pair picked by `pick`, _mm256_madd_epi16 with the (a0, a1) pairs */
static __m256i tinycv_resize_taps(const uint8_t* row, const int32_t* off, const int32_t* w,
                                  __m256i pick)
{
    uint32_t v0, v1, v2, v3, v4, v5, v6, v7;
    __m256i g;
    memcpy(&v0, row + off[0], 4); memcpy(&v1, row + off[1], 4);
    memcpy(&v2, row + off[2], 4); memcpy(&v3, row + off[3], 4);
    memcpy(&v4, row + off[4], 4); memcpy(&v5, row + off[5], 4);
    memcpy(&v6, row + off[6], 4); memcpy(&v7, row + off[7], 4);
    g = _mm256_setr_epi32((int)v0, (int)v1, (int)v2, (int)v3, (int)v4, (int)v5, (int)v6,
                          (int)v7);
    return _mm256_madd_epi16(_mm256_shuffle_epi8(g, pick),
                             _mm256_loadu_si256((const __m256i*)w));
}
""")

CORE = ("tinycv_resize_linear_u8_core_avx2", r"""
/* wider strips than the portable core's: a 224-column row in one sweep (12 KB of tables) */
#define TINYCV_RESIZE_AVX2_STRIP 256

static void tinycv_resize_linear_u8_core_avx2(const uint8_t* s, int sw, int sh,
                                              size_t s_stride, uint8_t* d, int dw, int dh,
                                              size_t d_stride, int cn, int area)
{
    const int row_len = sw * cn;
    const double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    int32_t off0[TINYCV_RESIZE_AVX2_STRIP * 4], off1[TINYCV_RESIZE_AVX2_STRIP * 4];
    int32_t wpair[TINYCV_RESIZE_AVX2_STRIP * 4];
    const __m256i two16 = _mm256_set1_epi16(2);
    /* per 32-bit lane: bytes 0 and cn as two 16-bit values (the taps' pair) */
    const __m256i pick = _mm256_setr_epi8(0, -1, cn, -1, 4, -1, 4 + cn, -1, 8, -1, 8 + cn, -1,
        12, -1, 12 + cn, -1, 0, -1, cn, -1, 4, -1, 4 + cn, -1, 8, -1, 8 + cn, -1, 12, -1,
        12 + cn, -1);
    int x0, k, c, dy, e;
    for (x0 = 0; x0 < dw; x0 += TINYCV_RESIZE_AVX2_STRIP) {
        const int n = dw - x0 < TINYCV_RESIZE_AVX2_STRIP ? dw - x0 : TINYCV_RESIZE_AVX2_STRIP;
        const int ne = n * cn;
        for (k = 0; k < n; ++k) {
            int i0, i1;
            float w0, w1;
            uint16_t a0, a1;
            tinycv_any_tap(x0 + k, scale_x, sw, area, &i0, &i1, &w0, &w1);
            a0 = (uint16_t)tinycv_round(w0 * 2048.f);
            a1 = (uint16_t)tinycv_round(w1 * 2048.f);
            for (c = 0; c < cn; ++c) {
                off0[k * cn + c] = i0 * cn + c;
                off1[k * cn + c] = i1 * cn + c;
                wpair[k * cn + c] = (int32_t)((uint32_t)a0 | ((uint32_t)a1 << 16));
            }
        }
        for (dy = 0; dy < dh; ++dy) {
            int r0, r1, b0, b1, limit;
            float w0, w1;
            const uint8_t *s0, *s1;
            uint8_t* o = d + (size_t)dy * d_stride + (size_t)x0 * cn;
            __m256i b0h, b1h;
            size_t room;
            tinycv_linear_row_tap(dy, scale_y, sh, area, &r0, &r1, &w0, &w1);
            b0 = tinycv_round(w0 * 2048.f);
            b1 = tinycv_round(w1 * 2048.f);
            b0h = _mm256_set1_epi16((short)b0);
            b1h = _mm256_set1_epi16((short)b1);
            s0 = s + (size_t)r0 * s_stride;
            s1 = s + (size_t)r1 * s_stride;
            /* bytes readable from s1 (r0 <= r1: s0 has more): up to the last row's end */
            room = (size_t)(sh - 1 - r1) * s_stride + (size_t)row_len;
            for (limit = ne; limit > 0 && (size_t)off0[limit - 1] + 4 > room; --limit) {}
            e = 0;
            if (cn <= 3) {
                /* one 32-bit load holds both taps (bytes 0 and cn); 16 at a time */
                for (; e + 16 <= limit; e += 16) {
                    const __m256i hA0 = tinycv_resize_taps(s0, off0 + e, wpair + e, pick);
                    const __m256i hB0 = tinycv_resize_taps(s0, off0 + e + 8, wpair + e + 8, pick);
                    const __m256i hA1 = tinycv_resize_taps(s1, off0 + e, wpair + e, pick);
                    const __m256i hB1 = tinycv_resize_taps(s1, off0 + e + 8, wpair + e + 8, pick);
                    /* OpenCV's v_pack(h >> 4) and v_mul_hi, in element order */
                    const __m256i p0 = _mm256_permute4x64_epi64(_mm256_packs_epi32(
                        _mm256_srai_epi32(hA0, 4), _mm256_srai_epi32(hB0, 4)), 0xD8);
                    const __m256i p1 = _mm256_permute4x64_epi64(_mm256_packs_epi32(
                        _mm256_srai_epi32(hA1, 4), _mm256_srai_epi32(hB1, 4)), 0xD8);
                    const __m256i v = _mm256_srai_epi16(_mm256_add_epi16(_mm256_add_epi16(
                        _mm256_mulhi_epi16(p0, b0h), _mm256_mulhi_epi16(p1, b1h)), two16), 2);
                    _mm_storeu_si128((__m128i*)(o + e),
                                     _mm_packus_epi16(_mm256_castsi256_si128(v),
                                                      _mm256_extracti128_si256(v, 1)));
                }
            }
            for (; e < ne; ++e) {
                const int a0 = wpair[e] & 0xFFFF, a1 = (int)((uint32_t)wpair[e] >> 16);
                const int h0 = s0[off0[e]] * a0 + s0[off1[e]] * a1;
                const int h1 = s1[off0[e]] * a0 + s1[off1[e]] * a1;
                const int v = ((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2;
                o[e] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}
""")

AVX2_U8_CORE = ("tinycv_resize_linear_u8_core_avx2", (ROUND, COEF, ANY_TAP, TAPS, CORE))


def avx2_cost(op, graph, isa) -> float:
    return 0.3


@implements(*op_types("resize_linear"), dtypes=ir_dtypes("ui8"), requires="avx2",
            cost=avx2_cost, label="AVX2")
def emit(op: Op, graph: Graph):
    return resize_linear_function(op, graph, {"ui8": AVX2_U8_CORE}, "avx2")
