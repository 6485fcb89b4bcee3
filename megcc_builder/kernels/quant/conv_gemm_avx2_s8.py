"""QLinearConv on AVX2 as a packed int16-pair GEMM with the requantization in registers.

The arithmetic is conv_avx2_s8's (both operands centred on their zero points and widened
to int16, `vpmaddwd` pair sums exact in int32: the accumulators equal the portable
kernel's, so outputs are bit-identical; `vpmaddubsw` would saturate its int16 pair sums
for u8 x s8 operands, see docs/int8.md). What makes it faster:

- the reduction runs over (tap, channel pair): each int16 pair holds two input channels
  at the same input cell, so both share one validity range, and for stride 1 a run of 16
  output positions is two 16-byte loads, widened, centred and interleaved
  (`vpunpck[lh]wd`), instead of 32 scalar stores; 1x1 stride-1 convolutions pack whole
  channel planes with no window arithmetic (no im2col);
- the weights are centred, reordered to that K order and stored as MR-row panels of int16
  pairs at compile time;
- the activations are packed once per block of NB output positions (every K); each
  16-column strip of the block then meets every output-channel panel while it is in L1;
- the MR x 16 tile is requantized in registers (requant_avx2: the same float operations
  and rounding as the scalar epilogue) and stored as 16 bytes per row.

Dense and grouped 2-D / 1-D convolutions (depthwise ones go to dwconv_avx2_s8), constant
weights and weight zero points, activations that are bounds (none, Relu, Clip)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..conv.geometry import conv_schema
from ..registry import implements
from . import requant_avx2, tile_avx2
from .conv_generic_s8 import QTYPES, qlinear_conv_parts
from .weights import centred_weights, is_depthwise, not_constant

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("K2", "reduction length in int16 pairs (KH * KW * ICH)"),
                     i32("ICH", "channel pairs per tap (input channels per group / 2, "
                         "rounded up)"),
                     i32("OCGP", "output channels per group rounded up to MR"),
                     i32("NB", "output positions per packed block (multiple of 16)"))

MR = 6  # 12 accumulators + 2 B vectors + 1 broadcast A: 15 of the 16 ymm registers
# bytes of packed activations per block: the block stays in L2 while every output-channel
# panel passes over it
BLOCK_BYTES = 192 * 1024


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
    x = graph.tensors[op.inputs[0]]
    if len(x.shape) not in (3, 4):
        return "not 1-D or 2-D"
    if is_depthwise(op, graph):
        return "depthwise (dwconv kernels)"
    why = not_constant(op, graph)
    if why:
        return why
    if op.attrs.get("activation") not in requant_avx2.BOUND_ACTIVATIONS:
        return "real-valued activation"
    return None


def _geometry_k(graph: Graph, op: Op):
    w = graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    icg, taps = w.shape[1], int(np.prod(w.shape[2:]))
    ich = (icg + 1) // 2
    return group, icg, taps, ich, taps * ich


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 16 multiply-adds per vpmaddwd and about two per cycle with their adds; packing one
    # int16 pair per (position, K pair); the epilogue ~1 cycle per output
    y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[3]]
    macs = float(np.prod(y.shape)) * float(np.prod(w.shape[1:]))
    group, _, _, _, k2 = _geometry_k(graph, op)
    positions = float(np.prod(y.shape)) / max(1, y.shape[1])
    return macs / 24.0 + 0.5 * positions * k2 * group + 1.0 * float(np.prod(y.shape))


def _packed_weights(op: Op, graph: Graph, oc: int) -> str:
    """[G][OCGP/MR][K2][MR][2] int16: centred weights, K ordered (tap, channel pair)."""
    group, icg, taps, ich, k2 = _geometry_k(graph, op)
    wc = centred_weights(op, graph).reshape(oc, icg, taps)  # [-255, 255]
    ocg = oc // group
    ocgp = -(-ocg // MR) * MR
    a = np.zeros((group, ocgp, taps, 2 * ich), np.int16)
    a[:, :ocg, :, :icg] = wc.reshape(group, ocg, icg, taps).transpose(0, 1, 3, 2)
    panels = a.reshape(group, ocgp // MR, MR, k2, 2).transpose(0, 1, 3, 2, 4)
    name = graph.unique_name(op.inputs[3] + "__avx2_tap_pairs")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int16")
    return name


def _pack(xt: str) -> str:
    """C: the block's activations as [K2][NB] int16 pairs (channel c0, c0 + 1 of a tap),
    centred on the input zero point, 0 in the padding and past the block's last column."""
    widen = "_mm256_cvtepu8_epi16" if xt == "uint8_t" else "_mm256_cvtepi8_epi16"
    return f"""            for (kk = 0; kk < K2; ++kk) {{
                const int32_t tap = kk / ICH, c0 = 2 * (kk - tap * ICH);
                const int32_t ky = tap / KW, kx = tap - ky * KW;
                const {xt} *s0 = xg + (int64_t)c0 * HW;
                /* an odd channel count pairs the last channel with itself: its weight is 0 */
                const {xt} *s1 = c0 + 1 < ICG ? s0 + HW : s0;
                int16_t *dst = bp + (int64_t)kk * NBS * 2;
                int32_t jj = 0, t;
                if (plain) {{  /* 1x1, stride 1, no padding: a run of the channel planes */
                    const int64_t row = p0;
                    t = 0;
                    PAIRS16
                    for (; t < nb; ++t) {{
                        dst[2 * t] = (int16_t)((int32_t)s0[row + t] - xz);
                        dst[2 * t + 1] = (int16_t)((int32_t)s1[row + t] - xz);
                    }}
                    jj = nb;
                }}
                while (jj < nb) {{  /* one output row segment at a time */
                    const int32_t pp = p0 + jj, oy = pp / OW, ox = pp - oy * OW;
                    const int32_t seg = OW - ox < nb - jj ? OW - ox : nb - jj;
                    const int32_t iy = oy * SH - PT + ky * DH;
                    const int32_t ix0 = ox * SW - PL + kx * DW;
                    int16_t *d = dst + 2 * jj;
                    int32_t t_lo, t_hi;
                    if (iy < 0 || iy >= H || ix0 + (seg - 1) * SW < 0 || ix0 >= W) {{
                        t_lo = t_hi = seg;
                    }} else {{
                        t_lo = ix0 >= 0 ? 0 : (-ix0 + SW - 1) / SW;
                        t_hi = (W - 1 - ix0) / SW + 1;
                        t_hi = t_hi < seg ? t_hi : seg;
                        t_lo = t_lo < t_hi ? t_lo : t_hi;
                    }}
                    for (t = 0; t < t_lo; ++t) d[2 * t] = d[2 * t + 1] = 0;
                    if (t_hi > t_lo) {{
                        const int64_t row = (int64_t)iy * W + ix0;  /* ix0 may be < 0 */
                        t = t_lo;
                        if (SW == 1) {{
                            PAIRS16_SEG
                        }} else if (SW == 2) {{
                            PAIRS16_S2
                        }}
                        for (; t < t_hi; ++t) {{
                            d[2 * t] = (int16_t)((int32_t)s0[row + (int64_t)t * SW] - xz);
                            d[2 * t + 1] = (int16_t)((int32_t)s1[row + (int64_t)t * SW] - xz);
                        }}
                    }}
                    for (t = t_hi < t_lo ? t_lo : t_hi; t < seg; ++t) d[2 * t] = d[2 * t + 1] = 0;
                    jj += seg;
                }}
                for (t = nb; t < nbr; ++t) dst[2 * t] = dst[2 * t + 1] = 0;
            }}
""".replace("PAIRS16_SEG", _pairs16(widen, "d", "t_hi")) \
        .replace("PAIRS16_S2", _pairs16_s2(xt)).replace("PAIRS16", _pairs16(widen, "dst", "nb"))


def _pairs16(widen: str, dst: str, end: str) -> str:
    """C loop: 16 positions at a time, s0[row + t..] and s1[row + t..] widened, centred and
    interleaved into 16 int16 pairs at dst + 2t (in-lane unpacks, then the lanes put back
    in order by vperm2i128); then 8 at a time (short rows: the deep layers' 28, 14, 7)."""
    widen128 = widen.replace("_mm256_", "_mm_")
    return f"""for (; t + 16 <= {end}; t += 16) {{
                        const __m256i v0 = _mm256_sub_epi16({widen}(_mm_loadu_si128((const __m128i *)(const void *)(s0 + (row + t)))), vxz);
                        const __m256i v1 = _mm256_sub_epi16({widen}(_mm_loadu_si128((const __m128i *)(const void *)(s1 + (row + t)))), vxz);
                        const __m256i lo = _mm256_unpacklo_epi16(v0, v1), hi = _mm256_unpackhi_epi16(v0, v1);
                        _mm256_storeu_si256((__m256i *)(void *)({dst} + 2 * t), _mm256_permute2x128_si256(lo, hi, 0x20));
                        _mm256_storeu_si256((__m256i *)(void *)({dst} + 2 * t + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
                    }}
                    for (; t + 8 <= {end}; t += 8) {{  /* 8 more: 8-byte loads */
                        const __m128i v0 = _mm_sub_epi16({widen128}(_mm_loadl_epi64((const __m128i *)(const void *)(s0 + (row + t)))), vxz128);
                        const __m128i v1 = _mm_sub_epi16({widen128}(_mm_loadl_epi64((const __m128i *)(const void *)(s1 + (row + t)))), vxz128);
                        _mm_storeu_si128((__m128i *)(void *)({dst} + 2 * t), _mm_unpacklo_epi16(v0, v1));
                        _mm_storeu_si128((__m128i *)(void *)({dst} + 2 * t + 8), _mm_unpackhi_epi16(v0, v1));
                    }}"""


def _pairs16_s2(xt: str) -> str:
    """C loop for stride 2: 32 input bytes give the 16 even ones as int16 words (masked for
    uint8, shifted for int8: sign extension); only while all 32 bytes are in the row."""
    even = ("_mm256_and_si256({v}, _mm256_set1_epi16(0xff))" if xt == "uint8_t" else
            "_mm256_srai_epi16(_mm256_slli_epi16({v}, 8), 8)")
    load = "_mm256_loadu_si256((const __m256i *)(const void *)({s} + (row + 2 * t)))"
    v0 = even.format(v=load.format(s="s0"))
    v1 = even.format(v=load.format(s="s1"))
    even8 = ("_mm_and_si128({v}, _mm_set1_epi16(0xff))" if xt == "uint8_t" else
             "_mm_srai_epi16(_mm_slli_epi16({v}, 8), 8)")
    load8 = "_mm_loadu_si128((const __m128i *)(const void *)({s} + (row + 2 * t)))"
    v0_8 = even8.format(v=load8.format(s="s0"))
    v1_8 = even8.format(v=load8.format(s="s1"))
    return f"""for (; t + 16 <= t_hi && ix0 + 2 * t + 31 < W; t += 16) {{
                        const __m256i v0 = _mm256_sub_epi16({v0}, vxz);
                        const __m256i v1 = _mm256_sub_epi16({v1}, vxz);
                        const __m256i lo = _mm256_unpacklo_epi16(v0, v1), hi = _mm256_unpackhi_epi16(v0, v1);
                        _mm256_storeu_si256((__m256i *)(void *)(d + 2 * t), _mm256_permute2x128_si256(lo, hi, 0x20));
                        _mm256_storeu_si256((__m256i *)(void *)(d + 2 * t + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
                    }}
                    for (; t + 8 <= t_hi && ix0 + 2 * t + 15 < W; t += 8) {{  /* 8: 16 bytes */
                        const __m128i v0 = _mm_sub_epi16({v0_8}, vxz128);
                        const __m128i v1 = _mm_sub_epi16({v1_8}, vxz128);
                        _mm_storeu_si128((__m128i *)(void *)(d + 2 * t), _mm_unpacklo_epi16(v0, v1));
                        _mm_storeu_si128((__m128i *)(void *)(d + 2 * t + 8), _mm_unpackhi_epi16(v0, v1));
                    }}"""


def _micro_kernel() -> str:
    """The MR x 16 tile over K2 pairs: per pair, two vectors of B and MR broadcasts of A.
    A strip of at most 8 positions (the last of a 7x7 or 14x14 map: 49 = 3 x 16 + 1,
    196 = 12 x 16 + 4) runs the MR x 8 half (one vector of B), its c{r}1 left at zero: the
    same sums for the columns it has, half the multiply-adds."""
    lines = tile_avx2.zero_accumulators(MR, " " * 20)
    lines += ["                    const int16_t *bk = bj;",
              "                    const int32_t *apair = (const int32_t *)(const void *)ap;",
              "                    if (nb - j > 8) {",
              f"                    for (kk = 0; kk < K2; ++kk, bk += NBS * 2, apair += {MR}) {{",
              "                        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)bk);",
              "                        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(bk + 16));",
              "                        __m256i av;"]
    lines += tile_avx2.madd_step(MR, lambda r: f"apair[{r}]", " " * 24)
    lines += ["                    }",
              "                    } else {",
              f"                    for (kk = 0; kk < K2; ++kk, bk += NBS * 2, apair += {MR}) {{",
              "                        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)bk);",
              "                        __m256i av;"]
    lines += tile_avx2.madd_step(MR, lambda r: f"apair[{r}]", " " * 24, columns=8)
    lines += ["                    }",
              "                    }"]
    return "\n".join(lines) + "\n"


def _epilogue(rq, has_bias: bool) -> str:
    out = []
    for r in range(MR):
        store = requant_avx2.store16(rq, f"c{r}0", f"c{r}1", "bias[o]" if has_bias else "",
                                     "mults[o]", "yo", "nb - j")
        full = requant_avx2.store16(rq, f"c{r}0", f"c{r}1", "bias[o]" if has_bias else "",
                                    "mults[o]", "yo")
        out.append(f"""                    if (o0 + {r} < OCG) {{
                        const int32_t o = g * OCG + o0 + {r};
                        {rq.ctype} *yo = yg + (int64_t)(o0 + {r}) * P + p0 + j;
                        if (j + 16 <= nb) {full}
                        else {store}
                    }}""")
    return "\n".join(out) + "\n"


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost,
            label="avx2 tap/channel-pair GEMM (vpmaddwd), requantized in registers")
def lower_qlinear_conv_gemm_avx2(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    oc = geo["OC"]
    group, icg, taps, ich, k2 = _geometry_k(graph, op)
    ocgp = -(-(oc // group) // MR) * MR
    p = geo["OH"] * geo["OW"]
    nb = max(16, min(1024, BLOCK_BYTES // max(1, 4 * k2)) // 16 * 16)
    nb = min(nb, -(-p // 16) * 16)
    ins = list(pt["ins"])
    ins[1] = _packed_weights(op, graph, oc)
    xt, yt = pt["xt"], rq.ctype
    has_bias = "bias" in pt["head"]
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *a = (const int16_t *)in_ptrs[1];  /* per group, MR-row panels of pairs */
{pt["head"]}
    {requant_avx2.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const __m256i vxz = _mm256_set1_epi16((int16_t)xz);
    const __m128i vxz128 = _mm_set1_epi16((int16_t)xz);
    const int32_t ICG = C / G, OCG = OC / G, P = OH * OW, HW = H * W;
    const int plain = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0 &&
                      OH == H && OW == W;
    /* row stride of the packed block: NB + 16 positions, since NB * 4 bytes is often a
       multiple of 4 KB, which would put every row of a strip in one L1 set */
    const int32_t NBS = NB + 16;
    /* [K2][NB] int16 pairs: one block of positions, 64-byte aligned so that each 16-pair
       row of a strip is one cache line */
    int16_t *bp = (int16_t *)(void *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    float *mults = (float *)(void *)(bp + (int64_t)K2 * NBS * 2);
    int32_t b, g, p0, j, kk, o0;
    for (o0 = 0; o0 < OC; ++o0) {{  /* onnxruntime: x_scale * w_scale[o] / y_scale */
        const float wsc = ws[{"o0" if pt["ws_pc"] else "0"}];
        mults[o0] = xs * wsc{"" if rq.uses_real_scale else " / so"};
    }}
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)g * ICG) * HW;
            {yt} *yg = y + ((int64_t)b * OC + (int64_t)g * OCG) * P;
            const int16_t *ag = a + (int64_t)g * OCGP * K2 * 2;
            for (p0 = 0; p0 < P; p0 += NB) {{
                const int32_t nb = P - p0 < NB ? P - p0 : NB, nbr = (nb + 15) & ~15;
PACK
                for (j = 0; j < nb; j += 16) {{
                    const int16_t *bj = bp + (int64_t)j * 2;
                    for (o0 = 0; o0 < OCG; o0 += {MR}) {{
                        const int16_t *ap = ag + (int64_t)o0 * K2 * 2;
MICRO_KERNEL
EPILOGUE
                    }}
                }}
            }}
        }}
""".replace("PACK", _pack(xt)).replace("MICRO_KERNEL", _micro_kernel()) \
        .replace("EPILOGUE", _epilogue(rq, has_bias))
    name = f"qlinear_conv_gemm_avx2_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="avx2")
    params = PARAMS.pack(**geo, K2=k2, ICH=ich, OCGP=ocgp, NB=nb)
    ws = k2 * (nb + 16) * 4 + 4 * oc + 128
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"AVX2 int16-pair GEMM {MR}x16 (vpmaddwd) over (tap, channel pair), "
                       f"blocks of {nb} positions, requantized in registers")]
