"""QLinearGlobalAveragePool on int8 / uint8 with AVX2: the plane's exact int32 sum by
`vpsadbw` against zero (32 codes a step into four 64-bit lanes, a 16-code step, scalar
tail); int8 codes are flipped to uint8 (x ^ 0x80 = x + 128) and 128 per summed code taken
back. The requantization of the sum is the portable kernel's (pool_generic_s8), so the
result is bit-exact with it (onnxruntime's MLAS, or MegEngine's rounding)."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .pool_generic_s8 import QTYPES, global_avgpool_cost, lower_global_avgpool
from .requant import refuses_fixed

_FLIP = "\n            v = _mm256_xor_si256(v, flip);"
_FLIP16 = "\n            w = _mm_xor_si128(w, _mm256_castsi256_si128(flip));"


def plane_sum_avx2(signed: bool) -> str:
    """C statements: `int32_t sum` of the S codes at x (i counts the codes)."""
    back = "(uint32_t)i * 128u" if signed else "0u"
    f32, f16 = (_FLIP, _FLIP16) if signed else ("", "")
    return f"""        __m256i acc = _mm256_setzero_si256();
        __m128i h;
        int32_t sum;
        for (i = 0; i + 32 <= S; i += 32) {{
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));{f32}
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, zero));
        }}
        h = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        if (i + 16 <= S) {{
            __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(x + i));{f16}
            h = _mm_add_epi64(h, _mm_sad_epu8(w, _mm256_castsi256_si128(zero)));
            i += 16;
        }}
        h = _mm_add_epi64(h, _mm_unpackhi_epi64(h, h));
        sum = (int32_t)((uint32_t)_mm_cvtsi128_si32(h) - {back});
        for (; i < S; ++i) sum += (int32_t)x[i];
"""


@implements("QLinearGlobalAveragePool", dtypes=QTYPES, requires="avx2",
            applies=lambda op, graph, isa: refuses_fixed(op),
            cost=global_avgpool_cost(1.0 / 16.0),
            label="avx2 int8 global average pool (vpsadbw sums)")
def lower_qlinear_global_avgpool_avx2(op: Op, graph: Graph):
    signed = graph.tensors[op.inputs[0]].dtype == "int8"
    prelude = "    const __m256i zero = _mm256_setzero_si256();\n"
    if signed:
        prelude += "    const __m256i flip = _mm256_set1_epi8((char)0x80);\n"
    return lower_global_avgpool(op, graph, "qlinear_global_avgpool_avx2",
                                plane_sum_avx2(signed), "AVX2 int8 global average pool",
                                prelude, isa="avx2")
