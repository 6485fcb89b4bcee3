"""MaxPool on int8 / uint8 codes with AVX2: pool_sep_s8's separable form (the
window rows' maximum into a padded row buffer, then the maximum of kw cells of it per
output), 32 codes per instruction (`vpmaxub` / `vpmaxsb`), 16 or 8 for rows narrower than
32 (SqueezeNet's 27 and 13). Stride 2 takes the even bytes of twice as many
buffer cells (masked to 16-bit words and packed back: `vpackuswb` keeps the bit
patterns, so it serves int8 too). Other strides: scalar horizontal pass. The maximum of the
codes is the codes of the maximum (dequantization is monotonic): exact, as the portable
kernel."""
from __future__ import annotations

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .pool_generic_s8 import QTYPES, maxpool_s8_applies
from .pool_sep_s8 import ByteVectors, VectorWidth, lower_separable_maxpool


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return None if maxpool_s8_applies(op, graph) else "not a 2-D int8/uint8 MaxPool"


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    return (float(x.numel) * kh * y.shape[2] / max(1, x.shape[2]) + float(y.numel) * kw) / 16.0


@implements("MaxPool", dtypes=QTYPES, requires="avx2", applies=_applies, cost=cost,
            label="avx2 int8 max pool (separable, 32/16/8 codes per vpmax)")
def lower_maxpool_s8_avx2(op: Op, graph: Graph):
    sx = "i" if graph.tensors[op.inputs[0]].dtype == "int8" else "u"
    return lower_separable_maxpool(op, graph, ByteVectors("avx2", (
        VectorWidth(32, f"_mm256_max_ep{sx}8",
                    lambda p: f"_mm256_loadu_si256((const __m256i *)(const void *)({p}))",
                    lambda p, v: f"_mm256_storeu_si256((__m256i *)(void *)({p}), {v});",
                    lambda p: f"megcc_even_bytes({p})"),
        VectorWidth(16, f"_mm_max_ep{sx}8",
                    lambda p: f"_mm_loadu_si128((const __m128i *)(const void *)({p}))",
                    lambda p, v: f"_mm_storeu_si128((__m128i *)(void *)({p}), {v});",
                    lambda p: f"megcc_even_bytes16({p})"),
        VectorWidth(8, f"_mm_max_ep{sx}8",
                    lambda p: f"_mm_loadl_epi64((const __m128i *)(const void *)({p}))",
                    lambda p, v: f"_mm_storel_epi64((__m128i *)(void *)({p}), {v});",
                    lambda p: f"megcc_even_bytes8({p})")),
        (EVEN_BYTES, EVEN_BYTES16, EVEN_BYTES8), note="AVX2 int8 max pool (separable)"))


EVEN_BYTES = ("megcc_even_bytes", r"""
static inline __m256i megcc_even_bytes(const void *p) {
    /* the 32 even bytes of 64, in order: words masked to their low byte, packed (per
       128-bit lane), lanes put back in order */
    const __m256i mask = _mm256_set1_epi16(0xff);
    const __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)p), mask);
    const __m256i b = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)p + 1), mask);
    return _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8);
}
""")

EVEN_BYTES16 = ("megcc_even_bytes16", r"""
static inline __m128i megcc_even_bytes16(const void *p) {
    /* the 16 even bytes of 32, in order */
    const __m128i mask = _mm_set1_epi16(0xff);
    const __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)p), mask);
    const __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)p + 1), mask);
    return _mm_packus_epi16(a, b);
}
""")

EVEN_BYTES8 = ("megcc_even_bytes8", r"""
static inline __m128i megcc_even_bytes8(const void *p) {
    /* the 8 even bytes of 16, in the low half */
    const __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi16(0xff));
    return _mm_packus_epi16(a, a);
}
""")
