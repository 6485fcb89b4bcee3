"""rgb2bgr, rgb2gray and rgb2yuv with AVX2, bit-identical to color_generic (OpenCV's
coefficients): 16 pixels per step, deinterleaved and re-interleaved with SSSE3 shuffles
(shuffle48), arithmetic in 32-bit lanes from _mm256_madd_epi16 pairs; the remaining
pixels in scalar."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .color_generic import NV21_CHECKS, NV21_PAIR, _checks
from .common import SAT_U8, function, ir_dtypes, op_types
from .shuffle48 import DEINTERLEAVE, INTERLEAVE, shuffle_code


def _indent(code: str, n: int = 12) -> str:
    return "\n".join(" " * n + line for line in code.splitlines())


_LOAD = _indent("""const __m128i a0 = _mm_loadu_si128((const __m128i*)s);
const __m128i a1 = _mm_loadu_si128((const __m128i*)(s + 16));
const __m128i a2 = _mm_loadu_si128((const __m128i*)(s + 32));
__m128i r, g, b;
""" + shuffle_code(DEINTERLEAVE, ["a0", "a1", "a2"], ["r", "g", "b"]))

# 16 x u8 -> two vectors of 8 x i32 (elements 0-3,8-11 and 4-7,12-15: the order
# _mm256_packus_epi32 undoes) of x*c0 + y*c1
_MADD = """
static __m256i tinycv_madd_lo(__m256i x, __m256i y, __m256i c) { return _mm256_madd_epi16(_mm256_unpacklo_epi16(x, y), c); }
static __m256i tinycv_madd_hi(__m256i x, __m256i y, __m256i c) { return _mm256_madd_epi16(_mm256_unpackhi_epi16(x, y), c); }
static __m128i tinycv_pack_u8(__m256i lo, __m256i hi)
{
    const __m256i p16 = _mm256_packs_epi32(lo, hi);
    return _mm_packus_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
}
"""
MADD = ("tinycv_madd_avx2", _MADD)


def _pair(c0: int, c1: int) -> str:
    return f"_mm256_set1_epi32({c0} | ({c1} << 16))"


@implements(*op_types("rgb2bgr"), dtypes=ir_dtypes("ui8"), requires="avx2",
            cost=lambda o, g, i: 0.2, label="AVX2")
def emit_rgb2bgr_avx2(op: Op, graph: Graph):
    swap = [3 * (j // 3) + 2 - j % 3 for j in range(48)]
    body = _checks(3, 3) + f"""
    {{
        const size_t n = src->rows * src->cols;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i = 0;
        for (; i + 16 <= n; i += 16, s += 48, d += 48) {{
            const __m128i a0 = _mm_loadu_si128((const __m128i*)s);
            const __m128i a1 = _mm_loadu_si128((const __m128i*)(s + 16));
            const __m128i a2 = _mm_loadu_si128((const __m128i*)(s + 32));
            __m128i o0, o1, o2;
{_indent(shuffle_code(swap, ["a0", "a1", "a2"], ["o0", "o1", "o2"]))}
            _mm_storeu_si128((__m128i*)d, o0);
            _mm_storeu_si128((__m128i*)(d + 16), o1);
            _mm_storeu_si128((__m128i*)(d + 32), o2);
        }}
        for (; i < n; ++i, s += 3, d += 3) {{
            uint8_t r = s[0], g = s[1], b = s[2];
            d[0] = b; d[1] = g; d[2] = r;
        }}
    }}
"""
    return function(op, graph, body, (), "avx2")


@implements(*op_types("rgb2gray"), dtypes=ir_dtypes("ui8"), requires="avx2",
            cost=lambda o, g, i: 0.2, label="AVX2")
def emit_rgb2gray_avx2(op: Op, graph: Graph):
    body = _checks(3, 1) + f"""
    {{
        const size_t n = src->rows * src->cols;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        const __m256i crg = {_pair(9798, 19235)}, cb = {_pair(3735, 16384)};
        const __m256i one = _mm256_set1_epi16(1);
        size_t i = 0;
        for (; i + 16 <= n; i += 16, s += 48) {{
{_LOAD}
            {{
                const __m256i R = _mm256_cvtepu8_epi16(r), G = _mm256_cvtepu8_epi16(g);
                const __m256i B = _mm256_cvtepu8_epi16(b);
                const __m256i lo = _mm256_srli_epi32(_mm256_add_epi32(
                    tinycv_madd_lo(R, G, crg), tinycv_madd_lo(B, one, cb)), 15);
                const __m256i hi = _mm256_srli_epi32(_mm256_add_epi32(
                    tinycv_madd_hi(R, G, crg), tinycv_madd_hi(B, one, cb)), 15);
                _mm_storeu_si128((__m128i*)(d + i), tinycv_pack_u8(lo, hi));
            }}
        }}
        for (; i < n; ++i, s += 3)
            d[i] = (uint8_t)((s[0] * 9798 + s[1] * 19235 + s[2] * 3735 + (1 << 14)) >> 15);
    }}
"""
    return function(op, graph, body, (MADD,), "avx2")


@implements(*op_types("rgb2yuv"), dtypes=ir_dtypes("ui8"), requires="avx2",
            cost=lambda o, g, i: 0.2, label="AVX2")
def emit_rgb2yuv_avx2(op: Op, graph: Graph):
    body = _checks(3, 3) + f"""
    {{
        const size_t n = src->rows * src->cols;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        const __m256i crg = {_pair(4899, 9617)}, cb = {_pair(1868, 8192)};
        const __m256i one = _mm256_set1_epi16(1), zero = _mm256_setzero_si256();
        const __m256i cu = _mm256_set1_epi32(8061), cv = _mm256_set1_epi32(14369);
        const __m256i delta = _mm256_set1_epi32((128 << 14) + (1 << 13));
        size_t i = 0;
        for (; i + 16 <= n; i += 16, s += 48, d += 48) {{
{_LOAD}
            {{
                const __m256i R = _mm256_cvtepu8_epi16(r), G = _mm256_cvtepu8_epi16(g);
                const __m256i B = _mm256_cvtepu8_epi16(b);
                const __m256i ylo = _mm256_srli_epi32(_mm256_add_epi32(
                    tinycv_madd_lo(R, G, crg), tinycv_madd_lo(B, one, cb)), 14);
                const __m256i yhi = _mm256_srli_epi32(_mm256_add_epi32(
                    tinycv_madd_hi(R, G, crg), tinycv_madd_hi(B, one, cb)), 14);
                const __m256i ulo = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(
                    _mm256_sub_epi32(_mm256_unpacklo_epi16(B, zero), ylo), cu), delta), 14);
                const __m256i uhi = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(
                    _mm256_sub_epi32(_mm256_unpackhi_epi16(B, zero), yhi), cu), delta), 14);
                const __m256i vlo = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(
                    _mm256_sub_epi32(_mm256_unpacklo_epi16(R, zero), ylo), cv), delta), 14);
                const __m256i vhi = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(
                    _mm256_sub_epi32(_mm256_unpackhi_epi16(R, zero), yhi), cv), delta), 14);
                const __m128i y8 = tinycv_pack_u8(ylo, yhi), u8 = tinycv_pack_u8(ulo, uhi);
                const __m128i v8 = tinycv_pack_u8(vlo, vhi);
                __m128i o0, o1, o2;
{_indent(shuffle_code(INTERLEAVE, ["y8", "u8", "v8"], ["o0", "o1", "o2"]), 16)}
                _mm_storeu_si128((__m128i*)d, o0);
                _mm_storeu_si128((__m128i*)(d + 16), o1);
                _mm_storeu_si128((__m128i*)(d + 32), o2);
            }}
        }}
        for (; i < n; ++i, s += 3, d += 3) {{
            int r = s[0], g = s[1], b = s[2];
            int y = (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14;
            d[0] = tinycv_sat_u8(y);
            d[1] = tinycv_sat_u8(((b - y) * 8061 + (128 << 14) + (1 << 13)) >> 14);
            d[2] = tinycv_sat_u8(((r - y) * 14369 + (128 << 14) + (1 << 13)) >> 14);
        }}
    }}
"""
    return function(op, graph, body, (SAT_U8, MADD), "avx2")



@implements(*op_types("yuv2bgr_nv21"), dtypes=ir_dtypes("ui8"), requires="avx2",
            cost=lambda o, g, i: 0.2, label="AVX2")
def emit_yuv2bgr_nv21_avx2(op: Op, graph: Graph):
    dup_v = ", ".join(str(2 * (j // 2)) for j in range(16))
    dup_u = ", ".join(str(2 * (j // 2) + 1) for j in range(16))
    return function(op, graph, NV21_CHECKS + f"""
    {{
        const size_t H = dst->rows, W = dst->cols;
        const uint8_t* ys = (const uint8_t*)src->data;
        const uint8_t* vus = ys + H * W;
        uint8_t* d = (uint8_t*)dst->data;
        const __m256i c128 = _mm256_set1_epi16(128), c16 = _mm256_set1_epi16(16);
        const __m256i zero = _mm256_setzero_si256(), half = _mm256_set1_epi32(1 << 19);
        const __m256i cy = _mm256_set1_epi32(1220542), cvr = _mm256_set1_epi32(1673527);
        const __m256i cvg = _mm256_set1_epi32(-852492), cug = _mm256_set1_epi32(-409993);
        const __m256i cub = _mm256_set1_epi32(2116026);
        const __m128i dup_v = _mm_setr_epi8({dup_v}), dup_u = _mm_setr_epi8({dup_u});
        size_t i, j;
        for (i = 0; i < H; ++i) {{
            const uint8_t* y = ys + i * W;
            const uint8_t* vu = vus + (i / 2) * W;
            uint8_t* o = d + i * W * 3;
            for (j = 0; j + 16 <= W; j += 16, o += 48) {{
                const __m128i vu8 = _mm_loadu_si128((const __m128i*)(vu + j));
                /* Y - 16 clamped at 0; V - 128, U - 128 per pixel (each pair serves two) */
                const __m256i Y = _mm256_max_epi16(_mm256_sub_epi16(_mm256_cvtepu8_epi16(
                    _mm_loadu_si128((const __m128i*)(y + j))), c16), zero);
                const __m256i V = _mm256_sub_epi16(_mm256_cvtepu8_epi16(
                    _mm_shuffle_epi8(vu8, dup_v)), c128);
                const __m256i U = _mm256_sub_epi16(_mm256_cvtepu8_epi16(
                    _mm_shuffle_epi8(vu8, dup_u)), c128);
                __m256i b32[2], g32[2], r32[2];
                __m128i b8, g8, r8, o0, o1, o2;
                int h;
                for (h = 0; h < 2; ++h) {{  /* lanes 0-3,8-11 then 4-7,12-15 */
                    const __m256i y32 = _mm256_mullo_epi32(
                        h ? _mm256_unpackhi_epi16(Y, zero) : _mm256_unpacklo_epi16(Y, zero), cy);
                    const __m256i vs = _mm256_srai_epi16(V, 15), us = _mm256_srai_epi16(U, 15);
                    const __m256i v32 = h ? _mm256_unpackhi_epi16(V, vs) : _mm256_unpacklo_epi16(V, vs);
                    const __m256i u32 = h ? _mm256_unpackhi_epi16(U, us) : _mm256_unpacklo_epi16(U, us);
                    const __m256i ruv = _mm256_add_epi32(half, _mm256_mullo_epi32(cvr, v32));
                    const __m256i guv = _mm256_add_epi32(_mm256_add_epi32(half,
                        _mm256_mullo_epi32(cvg, v32)), _mm256_mullo_epi32(cug, u32));
                    const __m256i buv = _mm256_add_epi32(half, _mm256_mullo_epi32(cub, u32));
                    b32[h] = _mm256_srai_epi32(_mm256_add_epi32(y32, buv), 20);
                    g32[h] = _mm256_srai_epi32(_mm256_add_epi32(y32, guv), 20);
                    r32[h] = _mm256_srai_epi32(_mm256_add_epi32(y32, ruv), 20);
                }}
                b8 = tinycv_pack_u8(b32[0], b32[1]);
                g8 = tinycv_pack_u8(g32[0], g32[1]);
                r8 = tinycv_pack_u8(r32[0], r32[1]);
{_indent(shuffle_code(INTERLEAVE, ["b8", "g8", "r8"], ["o0", "o1", "o2"]), 16)}
                _mm_storeu_si128((__m128i*)o, o0);
                _mm_storeu_si128((__m128i*)(o + 16), o1);
                _mm_storeu_si128((__m128i*)(o + 32), o2);
            }}
            for (; j < W; j += 2, o += 6) {{
                NV21_PAIR
            }}
        }}
    }}
""".replace("NV21_PAIR", NV21_PAIR), (SAT_U8, MADD), "avx2")
