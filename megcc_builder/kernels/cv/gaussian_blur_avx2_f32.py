"""GaussianBlur f32 with AVX2: the portable blur's loops (gaussian_blur_generic) with 8
columns per vector, multiply then add in the scalar code's order (no FMA), so the results
are bit-identical to it."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes
from .gaussian_blur_generic import BLUR_OPS, blur_function, core_f32

VERT = r"""
                    {
                        const __m256 wv = _mm256_set1_ps(w);
                        for (; e + 8 <= L; e += 8)
                            _mm256_storeu_ps(colq + e, _mm256_add_ps(_mm256_loadu_ps(colq + e),
                                             _mm256_mul_ps(wv, _mm256_loadu_ps(q + e))));
                    }"""

HORIZ = r"""
            for (; e + 8 <= n * cn; e += 8) {
                __m256 a = _mm256_setzero_ps();
                for (k = 0; k < kw; ++k)
                    a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(wx[k]),
                                                       _mm256_loadu_ps(col + e + k * cn)));
                _mm256_storeu_ps(o + e, a);
            }"""

CORE = core_f32("_avx2", VERT, HORIZ)


@implements(*BLUR_OPS, dtypes=ir_dtypes("f32"), requires="avx2", cost=lambda o, g, i: 0.2,
            label="AVX2")
def emit(op: Op, graph: Graph):
    return blur_function(op, graph, CORE, "avx2")
