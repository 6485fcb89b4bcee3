"""cv2.resize(INTER_AREA) with AVX2 and with NEON (ARMv7 and AArch64), bit-identical to
resize_area_generic on its three paths:

* integer shrink factors: ui8 2x2 with 1, 3 or 4 channels (OpenCV's own vector case,
  (a + b + c + d + 2) >> 2) in vectors: AVX2 pairs the bytes with a shuffle and sums them
  with _mm256_maddubs_epi16, NEON deinterleaves with vld1/vld3/vld4 and sums with vpaddl;
  the other factors and dtypes go to the portable block average.
* other shrinks (the area table): a destination column of 3 or 4 channels accumulates its
  weighted source pixels in one 4-lane float register (the scalar code's b + p * w per
  channel, same rounding; 3 channels store 3 lanes), the vertical accumulation
  sum (+)= beta * buf 8 (AVX2) or 4 (NEON) at a time.
* enlargements: the ISA's strided resize core in its area mode.
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, ir_dtypes, op_types
from .resize_area_generic import (_SCALAR_COLUMN, AREA_CELL, AREA_FAST, resize_area_function,
                                  table_source)
from .resize_boxes_simd import AVX2_CORES, NEON_CORES
from .resize_linear_avx2_ui8 import avx2_cost
from .resize_linear_neon_ui8 import neon_cost

_AVX2_FAST_UI8 = r"""
static void tinycv_resize_area_fast_ui8_avx2(const uint8_t* src, int sw, uint8_t* dst, int dw,
                                             int dh, int cn, int ix, int iy)
{
    const size_t sstride = (size_t)sw * cn;
    const int ne = dw * cn;  /* output elements per row */
    const __m256i ones = _mm256_set1_epi8(1), two = _mm256_set1_epi16(2);
    /* per 128-bit lane: the bytes of each 2x1 pair side by side */
    const __m256i order4 = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11,
        15, 0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    const __m256i order3 = _mm256_setr_epi8(0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, -1, -1, -1,
        -1, 0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, -1, -1, -1, -1);
    int dy, e;
    if (!(ix == 2 && iy == 2 && (cn == 1 || cn == 3 || cn == 4))) {
        tinycv_resize_area_fast_ui8(src, sw, dst, dw, dh, cn, ix, iy);
        return;
    }
    for (dy = 0; dy < dh; ++dy) {
        const uint8_t* r0 = src + (size_t)dy * 2 * sstride;
        const uint8_t* r1 = r0 + sstride;
        uint8_t* o = dst + (size_t)dy * dw * cn;
        e = 0;
        if (cn != 3) {
            /* 16 outputs from 32 bytes of each row (2 e + 32 <= 2 ne = the row's bytes) */
            for (; e + 16 <= ne; e += 16) {
                __m256i a = _mm256_loadu_si256((const __m256i*)(r0 + 2 * e));
                __m256i b = _mm256_loadu_si256((const __m256i*)(r1 + 2 * e));
                __m256i sum;
                if (cn == 4) {
                    a = _mm256_shuffle_epi8(a, order4);
                    b = _mm256_shuffle_epi8(b, order4);
                }
                sum = _mm256_add_epi16(_mm256_maddubs_epi16(a, ones), _mm256_maddubs_epi16(b, ones));
                sum = _mm256_srli_epi16(_mm256_add_epi16(sum, two), 2);
                _mm_storeu_si128((__m128i*)(o + e), _mm256_castsi256_si128(
                    _mm256_permute4x64_epi64(_mm256_packus_epi16(sum, sum), 0x08)));
            }
        } else {
            /* 4 output pixels (12 bytes) from 24 bytes of each row, 12 per 128-bit lane;
               the second lane's 16-byte load ends 4 bytes past them */
            for (; e + 12 <= ne && (size_t)(2 * e + 28) <= sstride; e += 12) {
                const __m256i a = _mm256_shuffle_epi8(_mm256_inserti128_si256(
                    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)(r0 + 2 * e))),
                    _mm_loadu_si128((const __m128i*)(r0 + 2 * e + 12)), 1), order3);
                const __m256i b = _mm256_shuffle_epi8(_mm256_inserti128_si256(
                    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)(r1 + 2 * e))),
                    _mm_loadu_si128((const __m128i*)(r1 + 2 * e + 12)), 1), order3);
                __m256i sum = _mm256_add_epi16(_mm256_maddubs_epi16(a, ones),
                                               _mm256_maddubs_epi16(b, ones));
                uint8_t tmp[32];
                sum = _mm256_srli_epi16(_mm256_add_epi16(sum, two), 2);
                _mm256_storeu_si256((__m256i*)tmp, _mm256_packus_epi16(sum, sum));
                memcpy(o + e, tmp, 6);
                memcpy(o + e + 6, tmp + 16, 6);
            }
        }
        for (; e < ne; ++e) {
            const uint8_t* p = r0 + (size_t)(e / cn) * 2 * cn + e % cn;
            o[e] = (uint8_t)((p[0] + p[cn] + p[sstride] + p[sstride + cn] + 2) >> 2);
        }
    }
}
"""

_NEON_FAST_UI8 = r"""
static void tinycv_resize_area_fast_ui8_neon(const uint8_t* src, int sw, uint8_t* dst, int dw,
                                             int dh, int cn, int ix, int iy)
{
    const size_t sstride = (size_t)sw * cn;
    const int ne = dw * cn;
    int dy, dx, e;
    if (!(ix == 2 && iy == 2 && (cn == 1 || cn == 3 || cn == 4))) {
        tinycv_resize_area_fast_ui8(src, sw, dst, dw, dh, cn, ix, iy);
        return;
    }
    for (dy = 0; dy < dh; ++dy) {
        const uint8_t* r0 = src + (size_t)dy * 2 * sstride;
        const uint8_t* r1 = r0 + sstride;
        uint8_t* o = dst + (size_t)dy * dw * cn;
        /* 8 output pixels from 16 source pixels of each row, channels deinterleaved */
        for (dx = 0; dx + 8 <= dw; dx += 8) {
            const size_t at = (size_t)dx * 2 * cn;
            if (cn == 1) {
                const uint16x8_t sum = vaddq_u16(vpaddlq_u8(vld1q_u8(r0 + at)),
                                                 vpaddlq_u8(vld1q_u8(r1 + at)));
                vst1_u8(o + dx, vrshrn_n_u16(sum, 2));
            } else if (cn == 3) {
                const uint8x16x3_t a = vld3q_u8(r0 + at), b = vld3q_u8(r1 + at);
                uint8x8x3_t v;
                int c;
                for (c = 0; c < 3; ++c)
                    v.val[c] = vrshrn_n_u16(vaddq_u16(vpaddlq_u8(a.val[c]), vpaddlq_u8(b.val[c])), 2);
                vst3_u8(o + dx * 3, v);
            } else {
                const uint8x16x4_t a = vld4q_u8(r0 + at), b = vld4q_u8(r1 + at);
                uint8x8x4_t v;
                int c;
                for (c = 0; c < 4; ++c)
                    v.val[c] = vrshrn_n_u16(vaddq_u16(vpaddlq_u8(a.val[c]), vpaddlq_u8(b.val[c])), 2);
                vst4_u8(o + dx * 4, v);
            }
        }
        for (e = dx * cn; e < ne; ++e) {
            const uint8_t* p = r0 + (size_t)(e / cn) * 2 * cn + e % cn;
            o[e] = (uint8_t)((p[0] + p[cn] + p[sstride] + p[sstride + cn] + 2) >> 2);
        }
    }
}
"""

# 4 elements of a pixel as floats (see _column): for 3 channels the load passes the pixel by
# one element, so the image's very last pixel (last row, last column) is done in scalar.
_LOAD4 = {
    ("avx2", "ui8"): "_mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(tinycv_load_u32(p))))",
    ("avx2", "f32"): "_mm_loadu_ps(p)",
    ("neon", "ui8"): "vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32("
                     "vdup_n_u32(tinycv_load_u32(p)))))))",
    ("neon", "f32"): "vld1q_f32(p)",
}


def _column(isa: str, dtype: str) -> str:
    """A destination column of a source row as one 4-lane accumulator (b starts at 0, so
    the scalar 0 + p * w and the vector's are the same), stored once."""
    load = _LOAD4[(isa, dtype)]
    if isa == "avx2":
        t, zero, fma = "__m128", "_mm_setzero_ps()", "_mm_add_ps(acc, _mm_mul_ps({p}, _mm_set1_ps({w})))"
        store = """if (cn == 4) _mm_storeu_ps(b, acc);
                        else _mm_maskstore_ps(b, _mm_setr_epi32(-1, -1, -1, 0), acc);"""
    else:
        t, zero, fma = "float32x4_t", "vdupq_n_f32(0.f)", "vaddq_f32(acc, vmulq_f32({p}, vdupq_n_f32({w})))"
        store = """if (cn == 4) {
                            vst1q_f32(b, acc);
                        } else {
                            vst1_f32(b, vget_low_f32(acc));
                            vst1q_lane_f32(b + 2, acc, 2);
                        }"""

    def step(at: str, w: str) -> str:
        return "acc = " + fma.format(p=load.replace("(p)", f"({at})"), w=w) + ";"
    return f"""
                    if (cn == 4 || (cn == 3 && !(last_row && x0 + k == dw - 1))) {{
                        {t} acc = {zero};
                        if (cell->has_first) {step("s + cell->first * cn", "cell->wf")}
                        for (sx = cell->s1; sx < cell->s2; ++sx) {step("s + sx * cn", "cell->wmid")}
                        if (cell->has_last) {step("s + cell->s2 * cn", "cell->wl")}
                        {store}
                    }} else {{""" + _SCALAR_COLUMN + """
                    }"""


_VERTICAL = {
    "avx2": ("""{ const __m256 bv = _mm256_set1_ps(beta);
                      for (; x + 8 <= width; x += 8)
                          _mm256_storeu_ps(sum + x, _mm256_mul_ps(bv, _mm256_loadu_ps(buf + x))); }""",
             """{ const __m256 bv = _mm256_set1_ps(beta);
                      for (; x + 8 <= width; x += 8)
                          _mm256_storeu_ps(sum + x, _mm256_add_ps(_mm256_loadu_ps(sum + x),
                              _mm256_mul_ps(bv, _mm256_loadu_ps(buf + x)))); }"""),
    "neon": ("""{ const float32x4_t bv = vdupq_n_f32(beta);
                      for (; x + 4 <= width; x += 4)
                          vst1q_f32(sum + x, vmulq_f32(bv, vld1q_f32(buf + x))); }""",
             """{ const float32x4_t bv = vdupq_n_f32(beta);
                      for (; x + 4 <= width; x += 4)
                          vst1q_f32(sum + x, vaddq_f32(vld1q_f32(sum + x),
                                                       vmulq_f32(bv, vld1q_f32(buf + x)))); }"""),
}

LOAD_U32 = ("tinycv_load_u32", r"""
static uint32_t tinycv_load_u32(const uint8_t* p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
""")


def _paths(isa: str):
    out = {}
    for dtype, ctype in (("ui8", "uint8_t"), ("f32", "float")):
        first, add = _VERTICAL[isa]
        table = (f"tinycv_resize_area_table_{dtype}_{isa}",
                 table_source(ctype, dtype, f"_{isa}", _column(isa, dtype), first, add))
        helpers = [ROUND, AREA_CELL, AREA_FAST[dtype], table]
        if dtype == "ui8":
            helpers.insert(2, LOAD_U32)
            fast_src = _AVX2_FAST_UI8 if isa == "avx2" else _NEON_FAST_UI8
            helpers.append((f"tinycv_resize_area_fast_ui8_{isa}", fast_src))
            fast = f"tinycv_resize_area_fast_ui8_{isa}"
        else:
            fast = "tinycv_resize_area_fast_f32"
        out[dtype] = (fast, table[0], tuple(helpers))
    return out


AVX2_AREA, NEON_AREA = _paths("avx2"), _paths("neon")


@implements(*op_types("resize_area"), dtypes=ir_dtypes("ui8", "f32"), requires="avx2",
            cost=avx2_cost, label="AVX2")
def emit_avx2(op: Op, graph: Graph):
    return resize_area_function(op, graph, AVX2_CORES, AVX2_AREA, "avx2")


@implements(*op_types("resize_area"), dtypes=ir_dtypes("ui8", "f32"), requires="neon",
            cost=neon_cost, label="NEON")
def emit_neon(op: Op, graph: Graph):
    return resize_area_function(op, graph, NEON_CORES, NEON_AREA, "neon")
