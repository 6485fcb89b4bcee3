"""QLinearConv on AVX512-VNNI: conv_u8s8_avx2_s8's quad GEMM with `vpdpbusd` (256-bit,
AVX512VL) as its reduction step, for every dense / group convolution (1x1, strided, 3x3,
7x7 stems) whose centred weights are int8.

`vpdpbusd` multiplies four u8 activations by four s8 weights and adds the four products to
an int32 lane without intermediate saturation (the non-saturating form), so the int32
accumulator is exact mod 2^32 like the portable kernel's, for any int8 weight: there is no
saturation-free condition as for `vpmaddubsw`. One instruction does 32 multiply-adds where
AVX2 needs vpmaddubsw + vpmaddwd + vpaddd (or vpmaddwd + vpaddd for 16). The packing,
the int8 activation shift by 128 (xor 0x80, the zero point corrected through the weight
column sums) and the requantizing epilogue are the AVX2 kernel's, so outputs are
bit-identical to it and to the portable kernel."""
from __future__ import annotations

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .conv_generic_s8 import QTYPES
from .conv_u8s8_avx2_s8 import MR, _quads, emit_u8s8, quad_gemm_cost, quad_gemm_refusal

DPBUSD_STEP = "{c} = _mm256_dpbusd_epi32({c}, {b}, av);"

# the 16 int32 of a 512-bit accumulator as the two 8-position halves the epilogue takes
LO, HI = "_mm512_castsi512_si256({z})", "_mm512_extracti64x4_epi64({z}, 1)"


def zmm_micro_kernel(groups: int) -> str:
    """MR x (16 * groups) int32 accumulators z{r}{v} (512-bit: 16 positions each) over KQ
    quads: activations from bj (rows of NBS positions x 4 bytes: 16 positions are one
    64-byte vector), weight quads from ap (MR per quad)."""
    ind = "                        "
    lines = [f"{ind}__m512i " + ", ".join(f"z{r}{v} = _mm512_setzero_si512()"
                                          for v in range(groups)) + ";" for r in range(MR)]
    lines += [f"{ind}const uint8_t *bk = bj;",
              f"{ind}const int32_t *aq = (const int32_t *)(const void *)ap;",
              f"{ind}for (kq = 0; kq < KQ; ++kq, bk += NBS * 4, aq += {MR}) {{"]
    lines += [f"{ind}    const __m512i b{v} = _mm512_loadu_si512((const void *)(bk + {64 * v}));"
              for v in range(groups)]
    for r in range(MR):
        lines.append(f"{ind}    {{ const __m512i av = _mm512_set1_epi32(aq[{r}]);")
        lines += [f"{ind}      z{r}{v} = _mm512_dpbusd_epi32(z{r}{v}, b{v}, av);"
                  for v in range(groups)]
        lines.append(f"{ind}    }}")
    lines.append(f"{ind}}}")
    return "\n".join(lines) + "\n"


def _quads_store(shift: int, load: str, dst: str, count: str = "") -> str:
    """C: 16 positions of the four planes s0..s3 (`load` formats {c} to a 16-byte vector of
    plane c) interleaved into byte quads at dst; only `count` quads (masked) if given."""
    flip = "_mm_xor_si128({v}, _mm_set1_epi8((char)0x80))" if shift else "{v}"
    lines = [f"const __m128i a{c} = {flip.format(v=load.format(c=c))};" for c in range(4)]
    lines += ["const __m128i l01 = _mm_unpacklo_epi8(a0, a1), h01 = _mm_unpackhi_epi8(a0, a1);",
              "const __m128i l23 = _mm_unpacklo_epi8(a2, a3), h23 = _mm_unpackhi_epi8(a2, a3);",
              f"uint8_t *q = {dst};"]
    parts = ["_mm_unpacklo_epi16(l01, l23)", "_mm_unpackhi_epi16(l01, l23)",
             "_mm_unpacklo_epi16(h01, h23)", "_mm_unpackhi_epi16(h01, h23)"]
    for i, v in enumerate(parts):
        if count:
            lines.append(f"_mm_mask_storeu_epi8(q + {16 * i}, (__mmask16)(qm >> {16 * i}), {v});")
        else:
            lines.append(f"_mm_storeu_si128((__m128i *)(void *)(q + {16 * i}), {v});")
    return "\n                            ".join(lines)


def masked_runs(shift: int, scalar: str):
    """The packing's runs with AVX-512BW byte masks: stride 1 tails by masked loads and
    stores (no scalar loop), stride 2 by the even bytes of 31 (vpmovwb; masked, so no byte
    past the last one used is read), other strides scalar."""
    ld1 = "_mm_loadu_si128((const __m128i *)(const void *)(s{c} + (row + t)))"
    ld1m = "_mm_maskz_loadu_epi8(lm, (const void *)(s{c} + (row + t)))"
    ld2 = "_mm256_cvtepi16_epi8(_mm256_maskz_loadu_epi8(lm, (const void *)(s{c} + (row + 2 * t))))"
    tail_masks = """const int32_t n = END - t;
                            const __mmask16 lm = (__mmask16)((1u << n) - 1u);
                            const __mmask64 qm = n == 16 ? ~(__mmask64)0 : (((__mmask64)1 << (4 * n)) - 1);"""

    def stride1(end, dst):
        return f"""for (; t + 16 <= {end}; t += 16) {{
                            {_quads_store(shift, ld1, dst + " + 4 * t")}
                        }}
                        if (t < {end}) {{
                            {tail_masks.replace("END", end)}
                            {_quads_store(shift, ld1m, dst + " + 4 * t", "n")}
                            t = {end};
                        }}"""
    stride2 = f"""for (; t < t_hi; t += 16) {{
                            const int32_t n = t_hi - t < 16 ? t_hi - t : 16;
                            const __mmask32 lm = (__mmask32)((1u << (2 * n - 1)) - 1u);
                            const __mmask64 qm = n == 16 ? ~(__mmask64)0 : (((__mmask64)1 << (4 * n)) - 1);
                            {_quads_store(shift, ld2, "d + 4 * t", "n")}
                        }}"""
    runs = f"""if (SW == 1) {{
                            {stride1("t_hi", "d")}
                        }} else if (SW == 2) {{
                            {stride2}
                        }}
                        {scalar.replace("END", "t_hi").replace("DST", "d")}"""
    return stride1("nb", "dst"), runs


class WideTile:
    """512-bit strips for emit_u8s8: 6 x 32 positions (two zmm per row: vpdpbusd zmm runs
    ~1.45x the multiply-adds per cycle of the ymm form on this AMD core, measured on 6x16
    ymm against 6x32 zmm tiles in L1), the block's last <= 16 positions on a 6 x 16 tile."""

    @staticmethod
    def strips(epilogue) -> str:
        def loop(groups):
            halves = [(LO.format(z=f"z{{r}}{v}"), HI.format(z=f"z{{r}}{v}"), str(16 * v))
                      for v in range(groups)]
            return f"""                        for (o0 = 0; o0 < OCG; o0 += {MR}) {{
                        const int8_t *ap = ag + (int64_t)o0 * KQ * 4;
{zmm_micro_kernel(groups)}{epilogue(halves)}                        }}"""
        return f"""                for (j = 0; j < nb; j += 32) {{
                    const uint8_t *bj = bp + (int64_t)j * 4;
                    if (nb - j > 16) {{  /* 32 positions (the packed block is zero to 16k) */
{loop(2)}
                    }} else {{
{loop(1)}
                    }}
                }}"""


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = quad_gemm_refusal(op, graph)
    if why:
        return why
    wq = _quads(graph, op)
    if wq.size and (wq.min() < -128 or wq.max() > 127):
        return "centred weights outside int8 (uint8 weights with a zero point far from 128)"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 32 multiply-adds per vpdpbusd: a 6x16 tile measured ~165 per ns against ~115 for
    # vpmaddubsw + vpmaddwd (conv_u8s8_avx2_s8, costed macs / 48) and ~90 for the int16
    # pairs (conv_gemm_avx2_s8): macs / 64 (48 * 165 / 115 = 69, a little kept for the
    # tile's loads); the packing and the epilogue as in the AVX2 quad kernel
    return quad_gemm_cost(op, graph, 64.0)


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="vnni",
            applies=_applies, cost=cost, label="vnni u8 x s8 quads (vpdpbusd, exact)")
def lower_qlinear_conv_u8s8_vnni(op: Op, graph: Graph):
    return emit_u8s8(op, graph, "vnni", DPBUSD_STEP, "",
                     "AVX512-VNNI u8 x s8 GEMM {MR}x32 (vpdpbusd zmm)", wide=WideTile,
                     masked=masked_runs)
