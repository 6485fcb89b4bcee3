"""GaussianBlur ui8 with AVX2: the portable blur's loops (gaussian_blur_generic) with 16
columns per vector; the same exact integer sums, so bit-identical to it and to OpenCV."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes
from .gaussian_blur_generic import BLUR_OPS, blur_function, core_ui8

VERT = r"""
                    {   /* colq[e..e+15] += w * q[e..e+15] in 16 bits (exact: <= 65280) */
                        const __m256i wv = _mm256_set1_epi16((short)w);
                        for (; e + 16 <= L; e += 16) {
                            const __m256i v = _mm256_cvtepu8_epi16(
                                _mm_loadu_si128((const __m128i*)(q + e)));
                            const __m256i a = _mm256_loadu_si256((const __m256i*)(colq + e));
                            _mm256_storeu_si256((__m256i*)(colq + e),
                                                _mm256_add_epi16(a, _mm256_mullo_epi16(v, wv)));
                        }
                    }"""

HORIZ = r"""
            {   /* 32-bit products from mullo/mulhi pairs; unpacklo/hi + packus keep order */
                const __m256i half = _mm256_set1_epi32(1 << 15);
                for (; e + 16 <= n * cn; e += 16) {
                    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
                    __m256i p16;
                    for (k = 0; k < kw; ++k) {
                        const __m256i wk = _mm256_set1_epi16((short)wx[k]);
                        const __m256i c16 = _mm256_loadu_si256((const __m256i*)(col + e + k * cn));
                        const __m256i pl = _mm256_mullo_epi16(c16, wk);
                        const __m256i ph = _mm256_mulhi_epu16(c16, wk);
                        lo = _mm256_add_epi32(lo, _mm256_unpacklo_epi16(pl, ph));
                        hi = _mm256_add_epi32(hi, _mm256_unpackhi_epi16(pl, ph));
                    }
                    lo = _mm256_srli_epi32(_mm256_add_epi32(lo, half), 16);
                    hi = _mm256_srli_epi32(_mm256_add_epi32(hi, half), 16);
                    p16 = _mm256_packus_epi32(lo, hi);
                    _mm_storeu_si128((__m128i*)(o + e),
                                     _mm_packus_epi16(_mm256_castsi256_si128(p16),
                                                      _mm256_extracti128_si256(p16, 1)));
                }
            }"""

CORE = core_ui8("_avx2", VERT, HORIZ)


@implements(*BLUR_OPS, dtypes=ir_dtypes("ui8"), requires="avx2", cost=lambda o, g, i: 0.2,
            label="AVX2")
def emit(op: Op, graph: Graph):
    return blur_function(op, graph, CORE, "avx2")
