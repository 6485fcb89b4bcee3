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

import numpy as np

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from . import requant_avx2
from .conv_generic_s8 import QTYPES
from .conv_u8s8_avx2_s8 import (BLOCK_BYTES, MR, _geometry_k, _quads, emit_u8s8,
                                quad_gemm_cost, quad_gemm_refusal)
from .requant import wrapping_mul, wrapping_sub

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
    def strips(epilogue, rq=None, has_bias=None) -> str:
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


CP = 7    # positions per channel-lane tile (7 divides ResNet's 7, 14, 28, 56 wide maps)
WHOLE_BYTES = 480 * 1024  # the channel tile packs every position in one block (L2)


class ChannelTile:
    """Output channels in the vector lanes, for maps whose position count is far from a
    multiple of 32 (7x7: 49 positions fill 64 of the position tile's columns): 7 positions
    (broadcast quads from the packed block) x 32 output channels (two 16-channel weight
    panels [OCG/16][K quad][16][4]), 14 zmm accumulators; the epilogue requantizes 16
    channels of one position with per-lane multipliers, transposes the 7 x 16 codes in
    registers and stores each channel's 7 positions with one masked store into its plane.
    Chosen by `channel_tile_better`."""

    @staticmethod
    def block(p: int, kq: int) -> int:
        return p  # one block of every position (channel_tile_better checks its size)

    @staticmethod
    def weights(op: Op, graph: Graph):
        group, icg, taps, icq, kq = _geometry_k(graph, op)
        wq = _quads(graph, op)
        oc = wq.shape[0]
        ocg = oc // group
        ocgp = -(-ocg // 32) * 32
        a = np.zeros((group, ocgp, kq * 4), np.int8)
        a[:, :ocg] = wq.reshape(group, ocg, -1)
        panels = a.reshape(group, ocgp // 16, 16, kq, 4).transpose(0, 1, 3, 2, 4)
        name = graph.unique_name(op.inputs[3] + "__vnni_c16_quads")
        graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int8")
        sums = graph.unique_name(op.inputs[3] + "__avx2_u8s8_sums")
        graph.add_const(sums, wq.reshape(oc, -1).sum(axis=1).astype(np.int32), "int32")
        return name, sums, ocgp

    suffix = "_c32"

    @staticmethod
    def strips(epilogue, rq, has_bias: bool) -> str:
        ind = "                        "
        acc = [f"{ind}__m512i " + ", ".join(f"z{r}{v} = _mm512_setzero_si512()"
                                           for v in range(2)) + ";" for r in range(CP)]
        steps = []
        for r in range(CP):
            steps.append(f"{ind}    {{ const __m512i av = _mm512_set1_epi32("
                         f"*(const int32_t *)(const void *)(bk + {4 * r}));")
            steps += [f"{ind}      z{r}{v} = _mm512_dpbusd_epi32(z{r}{v}, av, w{v});"
                      for v in range(2)]
            steps.append(f"{ind}    }}")
        pack = "_mm_packus_epi16" if rq.dtype == "uint8" else "_mm_packs_epi16"
        stores = []
        for v in range(2):
            # the 7 positions' 16 codes (channels 16v..16v+15) as byte vectors t0..t6, an
            # 8x16 byte transpose (t7 zero) to 8 bytes per channel, and one masked store of
            # the tile's positions per channel plane (no byte stores)
            codes = []
            for r in range(CP):
                halves = []
                for h, part in enumerate(("_mm512_castsi512_si256(z{r}{v})",
                                          "_mm512_extracti64x4_epi64(z{r}{v}, 1)")):
                    c = 16 * v + 8 * h
                    halves.append(f"""{{
                                const __m256 vm = _mm256_loadu_ps(mv + {c});
                                const __m256i s{h} = _mm256_add_epi32({part.format(r=r, v=v)},
                                    _mm256_loadu_si256((const __m256i *)(const void *)(cv + {c})));
                                {requant_avx2.codes8(rq, f"s{h}", f"e{h}")}
                                q{h} = e{h};
                            }}""")
                codes.append(f"""{ind}{{
                            __m256i q0, q1;
                            {halves[0]}
                            {halves[1]}
                            {{
                                const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
                                t{r} = {pack}(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
                            }}
                        }}""")
            lo, hi = "_mm_unpacklo_epi{}", "_mm_unpackhi_epi{}"
            tr = [f"{ind}const __m128i u{k} = {(lo if k % 2 == 0 else hi).format(8)}"
                  f"(t{2 * (k // 2)}, t{2 * (k // 2) + 1});" for k in range(8)]
            # u0/u1: channels 0-7 / 8-15 of positions 0,1; u2/u3: positions 2,3; ...
            tr += [f"{ind}const __m128i v{k} = {(lo if k % 2 == 0 else hi).format(16)}"
                   f"(u{4 * (k // 4) + (k // 2) % 2}, u{4 * (k // 4) + (k // 2) % 2 + 2});"
                   for k in range(8)]
            # v0..v3: channels 0-3, 4-7, 8-11, 12-15 of positions 0-3; v4..v7: positions 4-7
            tr += [f"{ind}const __m128i w{k} = {(lo if k % 2 == 0 else hi).format(32)}"
                   f"(v{k // 2}, v{k // 2 + 4});" for k in range(8)]
            # w{k}: channels 2k, 2k + 1, 8 positions each
            st = []
            for ch in range(16):
                w = f"w{ch // 2}" if ch % 2 == 0 else f"_mm_srli_si128(w{ch // 2}, 8)"
                st.append(f"{ind}if (o0 + {16 * v + ch} < OCG) _mm_mask_storeu_epi8("
                          f"yq + (int64_t)(o0 + {16 * v + ch}) * P, pm, {w});")
            stores.append(f"""{ind}{{
                        __m128i {", ".join(f"t{r}" for r in range(CP))}, t7 = _mm_setzero_si128();
{chr(10).join(codes)}
                        {{
{chr(10).join(tr)}
{chr(10).join(st)}
                        }}
                        }}""")
        const = wrapping_sub("bias[o]" if has_bias else "0", wrapping_mul("zs", "wsum[o]"))
        steps_c = "\n".join(steps)
        acc_c = "\n".join(acc)
        stores_c = "\n".join(stores)
        return f"""                for (o0 = 0; o0 < OCG; o0 += 32) {{
                    const int8_t *wp = ag + (int64_t)o0 * KQ * 4;  /* panels o0/16, o0/16 + 1 */
                    float mv[32];
                    int32_t cv[32], i;
                    for (i = 0; i < 32; ++i) {{  /* per-lane multipliers and constants */
                        const int32_t o = g * OCG + o0 + i;
                        mv[i] = o0 + i < OCG ? mults[o] : 0.0f;
                        cv[i] = o0 + i < OCG ? {const} : 0;
                    }}
                    for (j = 0; j < nb; j += {CP}) {{
                        /* positions past nb read packed cells inside the row (NBS >= nb + 16);
                           their outputs are masked out of the stores */
                        const uint8_t *bk = bp + (int64_t)j * 4;
                        const int8_t *wk = wp;
                        {rq.ctype} *yq = yg + p0 + j;
                        /* the tile's positions inside the block: one mask bit each */
                        const __mmask16 pm = (__mmask16)((1u << (nb - j < {CP} ? nb - j : {CP})) - 1u);
{acc_c}
                        for (kq = 0; kq < KQ; ++kq, bk += NBS * 4, wk += 64) {{
                            const __m512i w0 = _mm512_loadu_si512((const void *)wk);
                            const __m512i w1 = _mm512_loadu_si512((const void *)(wk + 64 * KQ));
{steps_c}
                        }}
{stores_c}
                    }}
                }}"""


def positions_computed(p: int, nb: int) -> int:
    """Positions the 32/16-wide position tile computes for p outputs in blocks of nb."""
    total = 0
    for p0 in range(0, p, nb):
        n = min(nb, p - p0)
        total += (n // 32) * 32 + (32 if n % 32 > 16 else 16 if n % 32 else 0)
    return total


def channel_tile_better(op: Op, graph: Graph, p: int, kq: int, nb: int) -> bool:
    """Whether the channel-lane tile computes at least 5 % fewer multiply-adds than the
    position tile (ResNet-50's 7x7 maps: 49 positions against 64; 14x14: 196 against 208)
    over a reduction of at least 64 quads, with the whole map packed in one block.
    Measured per layer (benchmarks/layer_profile.py, x86_64-vnni, one thread) with its
    transposed stores: 3x3 256@14 625 -> 574 us, 3x3 s2 256@28->14 649 -> 596, 1x1
    1024->256@14 250 -> 237, 256->1024@14 267 -> 258, 512->2048@7 312 -> 243; on
    SqueezeNet's 13x13 maps (169 positions against 176) it is no faster: left out."""
    if kq < 64 or p * 4 * kq > WHOLE_BYTES:
        return False
    group, _, _, _, _ = _geometry_k(graph, op)
    ocg = graph.tensors[op.inputs[3]].shape[0] // group
    pos = positions_computed(p, nb) * (-(-ocg // MR) * MR)
    chan = -(-p // CP) * CP * (-(-ocg // 32) * 32)
    return chan < 0.95 * pos


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="vnni",
            applies=_applies, cost=cost, label="vnni u8 x s8 quads (vpdpbusd, exact)")
def lower_qlinear_conv_u8s8_vnni(op: Op, graph: Graph):
    group, icg, taps, icq, kq = _geometry_k(graph, op)
    p = int(np.prod(graph.tensors[op.outputs[0]].shape[2:]))
    nb = min(max(16, min(1024, BLOCK_BYTES // max(1, 4 * kq)) // 16 * 16), -(-p // 16) * 16)
    if channel_tile_better(op, graph, p, kq, nb):
        return emit_u8s8(op, graph, "vnni", DPBUSD_STEP, "",
                         f"AVX512-VNNI u8 x s8 GEMM {CP} positions x 32 channels (vpdpbusd zmm)",
                         wide=ChannelTile, masked=masked_runs)
    return emit_u8s8(op, graph, "vnni", DPBUSD_STEP, "",
                     "AVX512-VNNI u8 x s8 GEMM {MR}x32 (vpdpbusd zmm)", wide=WideTile,
                     masked=masked_runs)
