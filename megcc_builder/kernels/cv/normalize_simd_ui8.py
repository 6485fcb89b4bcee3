"""normalize (interleaved ui8 -> planar float, (x - mean[c]) / std[c]) with NEON and AVX2,
bit-identical to extra_generic's portable loop: the same two float operations per element,
(float)x - mean then * (1 / std), no fused multiply-add. 16 pixels per step for 1, 3 and 4
channels (NEON: vld1q/vld3q/vld4q deinterleave; AVX2: one SSSE3 48-byte shuffle for 3
channels, a 4-byte transpose for 4); other channel counts and the tail in scalar."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import function, ir_dtypes, op_types
from .shuffle48 import DEINTERLEAVE, shuffle_code

_CHECKS = r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4) && mean && std);
    TINYCV_CHECK(FN, dst->rows == src->rows && dst->cols == src->cols &&
                     dst->channels == src->channels);
"""

_HEAD = r"""
    {
        const size_t n = src->rows * src->cols, cn = src->channels;
        const uint8_t* s = (const uint8_t*)src->data;
        float* d = (float*)dst->data;
        float m[4], inv[4];
        size_t i = 0, c;
        for (c = 0; c < cn; ++c) {
            m[c] = mean[c];
            inv[c] = 1.0f / std[c];
        }
"""

_TAIL = r"""
        for (; i < n; ++i)
            for (c = 0; c < cn; ++c) d[c * n + i] = ((float)s[i * cn + c] - m[c]) * inv[c];
    }
"""

NEON_PLANE = ("tinycv_norm16_neon", r"""
/* 16 bytes of one channel -> 16 floats ((x - m) * inv) at out */
static void tinycv_norm16_neon(uint8x16_t v, float m, float inv, float* out)
{
    const float32x4_t vm = vdupq_n_f32(m), vi = vdupq_n_f32(inv);
    const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_u8(vget_high_u8(v));
    vst1q_f32(out, vmulq_f32(vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), vm), vi));
    vst1q_f32(out + 4, vmulq_f32(vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo))), vm), vi));
    vst1q_f32(out + 8, vmulq_f32(vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), vm), vi));
    vst1q_f32(out + 12, vmulq_f32(vsubq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi))), vm), vi));
}
""")

AVX2_PLANE = ("tinycv_norm16_avx2", r"""
/* 16 bytes of one channel -> 16 floats ((x - m) * inv) at out */
static void tinycv_norm16_avx2(__m128i v, float m, float inv, float* out)
{
    const __m256 vm = _mm256_set1_ps(m), vi = _mm256_set1_ps(inv);
    const __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    const __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_sub_ps(a, vm), vi));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_sub_ps(b, vm), vi));
}
""")

_NEON_BODY = r"""
        if (cn == 1) {
            for (; i + 16 <= n; i += 16) tinycv_norm16_neon(vld1q_u8(s + i), m[0], inv[0], d + i);
        } else if (cn == 3) {
            for (; i + 16 <= n; i += 16) {
                const uint8x16x3_t p = vld3q_u8(s + 3 * i);
                for (c = 0; c < 3; ++c) tinycv_norm16_neon(p.val[c], m[c], inv[c], d + c * n + i);
            }
        } else if (cn == 4) {
            for (; i + 16 <= n; i += 16) {
                const uint8x16x4_t p = vld4q_u8(s + 4 * i);
                for (c = 0; c < 4; ++c) tinycv_norm16_neon(p.val[c], m[c], inv[c], d + c * n + i);
            }
        }
"""

_AVX2_BODY = r"""
        if (cn == 1) {
            for (; i + 16 <= n; i += 16)
                tinycv_norm16_avx2(_mm_loadu_si128((const __m128i*)(s + i)), m[0], inv[0], d + i);
        } else if (cn == 3) {
            for (; i + 16 <= n; i += 16) {
                const __m128i a = _mm_loadu_si128((const __m128i*)(s + 3 * i));
                const __m128i b = _mm_loadu_si128((const __m128i*)(s + 3 * i + 16));
                const __m128i e = _mm_loadu_si128((const __m128i*)(s + 3 * i + 32));
                __m128i p0, p1, p2;
                DEINTERLEAVE3
                tinycv_norm16_avx2(p0, m[0], inv[0], d + i);
                tinycv_norm16_avx2(p1, m[1], inv[1], d + n + i);
                tinycv_norm16_avx2(p2, m[2], inv[2], d + 2 * n + i);
            }
        } else if (cn == 4) {
            /* 4 pixels per 16 bytes: gather channel c of 16 pixels from 4 loads */
            const __m128i t = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            for (; i + 16 <= n; i += 16) {
                __m128i q[4], r0, r1, r2, r3;
                int k;
                for (k = 0; k < 4; ++k)  /* each: c0 x4, c1 x4, c2 x4, c3 x4 */
                    q[k] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i*)(s + 4 * i + 16 * k)), t);
                r0 = _mm_unpacklo_epi32(q[0], q[1]);  /* c0 p0-7 | c1 p0-7 (as 4-byte groups) */
                r1 = _mm_unpackhi_epi32(q[0], q[1]);
                r2 = _mm_unpacklo_epi32(q[2], q[3]);
                r3 = _mm_unpackhi_epi32(q[2], q[3]);
                tinycv_norm16_avx2(_mm_unpacklo_epi64(r0, r2), m[0], inv[0], d + i);
                tinycv_norm16_avx2(_mm_unpackhi_epi64(r0, r2), m[1], inv[1], d + n + i);
                tinycv_norm16_avx2(_mm_unpacklo_epi64(r1, r3), m[2], inv[2], d + 2 * n + i);
                tinycv_norm16_avx2(_mm_unpackhi_epi64(r1, r3), m[3], inv[3], d + 3 * n + i);
            }
        }
""".replace("DEINTERLEAVE3", shuffle_code(DEINTERLEAVE, ["a", "b", "e"], ["p0", "p1", "p2"])
            .replace("\n", "\n                "))


@implements(*op_types("normalize"), dtypes=ir_dtypes("ui8"), requires="neon",
            cost=lambda o, g, i: 0.3, label="NEON")
def emit_normalize_neon(op: Op, graph: Graph):
    return function(op, graph, _CHECKS + _HEAD + _NEON_BODY + _TAIL, (NEON_PLANE,), "neon")


@implements(*op_types("normalize"), dtypes=ir_dtypes("ui8"), requires="avx2",
            cost=lambda o, g, i: 0.3, label="AVX2")
def emit_normalize_avx2(op: Op, graph: Graph):
    return function(op, graph, _CHECKS + _HEAD + _AVX2_BODY + _TAIL, (AVX2_PLANE,), "avx2")
