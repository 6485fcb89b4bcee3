"""3x3 stride-1 QLinearConv on AVX2 by integer Winograd F(4x4, 3x3): exact, bit-identical to
the portable kernel, with 36 int16 products per 4x4 output tile and channel pair instead of
144 (F(2x2, 3x3), winograd_avx2_s8: 64 per 16 outputs).

Why it is exact. F(4,3)'s weight transform G has entries 1/4, 1/6, 1/12, 1/24; scaling its
rows by s = (4, 6, 6, 24, 24, 1) makes it integral (GS, row sums of |entries| at most 7),
and the output transform takes the scale back as AS = 24 * diag(1/s) A, also integral
(entries up to 24): AS^T [(GS g GS^T) . (B^T d B)] AS = 576 * acc, the direct
convolution's int32 accumulator, for every 4x4 tile (checked against numpy in the tests).
Sizes: U = GS g GS^T of the centred weights is within 49 * 255 = 12495 and V = B^T d B of
the centred inputs within 100 * 255 = 25500, so both are int16 (every int16 intermediate
may wrap: the final values fit, and int16 arithmetic is a ring modulo 2^16) and a
`vpmaddwd` pair sum (< 2 * 12495 * 25500 < 2^31) is exact in int32. The rest is int32
arithmetic modulo 2^32, so the output transform yields 576 * acc modulo 2^32 exactly.
576 = 2^6 * 9: an arithmetic shift by 6 gives 9 * acc modulo 2^26, the multiplicative
inverse of 9 modulo 2^32 then acc modulo 2^26, and sign extension from 26 bits acc itself
whenever acc lies in [-2^25, 2^25). To widen that window each output channel is centred:
the accumulator's range [lo, hi] follows from the constant weights and the input range
(every input code minus its zero point, when that is a constant; else [-255, 255]), the
kernel subtracts 576 * cen (cen = the range's midpoint) before the shift and adds cen back
with the bias, and `_applies` requires max(hi - cen, cen - lo) < 2^25 for every channel
(about: 255 * sum|w - w_zp| below 2^26 for inputs of one sign, 2^25 for centred ones);
otherwise F(2x2, 3x3) or the direct kernels run. The epilogue is requant_avx2's.

Layout and loops are winograd_avx2_s8's with 6x6 patches (stride 4) and 36 positions: a
padded, centred int16 channel-last plane per image, 16-channel input transforms (columns,
then rows, through a 36-vector scratch), 36 GEMMs over channel pairs on the 6 tiles x 16
output channels `vpmaddwd` tile (U packed at compile time as [OC/16][36][pair][16][2]),
output transform 8 channels at a time."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..conv.geometry import conv_schema
from ..registry import implements
from . import requant_avx2, tile_avx2
from .conv_generic_s8 import QTYPES, qlinear_conv_parts
from .weights import centred_weights, not_constant

PARAMS = conv_schema(i32("CP", "input channels rounded up to 16"),
                     i32("OCP", "output channels rounded up to 16"),
                     i32("TH", "tile rows (output rows / 4, rounded up)"),
                     i32("TW", "tile columns (output columns / 4, rounded up)"),
                     i32("NT", "tiles per transformed block (multiple of 6)"))

MR = 6  # tiles per GEMM tile: 12 accumulators + 2 weight vectors + 1 broadcast
NP = 36  # transformed positions per tile
BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.int64)
GS = np.array([[1, 0, 0], [-1, -1, -1], [-1, 1, -1], [1, 2, 4], [1, -2, 4], [0, 0, 1]],
              np.int64)
AS = np.array([[6, 0, 0, 0], [4, 4, 4, 4], [4, -4, 4, -4], [1, 2, 4, 8], [1, -2, 4, -8],
               [0, 0, 0, 24]], np.int64)
SCALE = 576  # AS^T (U . V) AS = SCALE * acc
SHIFT = 6  # SCALE = 2^SHIFT * 9
INV9 = pow(9, -1, 2 ** 32)
WINDOW = 2 ** 25  # acc - cen in [-WINDOW, WINDOW) is recovered exactly
BLOCK_BYTES = 512 * 1024
WEIGHT_BYTE_COST = 0.12  # cost units per transformed weight byte beyond CACHED_BYTES
CACHED_BYTES = 512 * 1024


def weight_bytes_cost(nbytes: int) -> float:
    """Both Winograd kernels: streaming transformed weights that do not stay in L2."""
    return WEIGHT_BYTE_COST * max(0, nbytes - CACHED_BYTES)


def _input_range(op: Op, graph: Graph):
    """Centred input codes (x - x_zp) lie in [lo, hi]; the padding (0) too."""
    x = graph.tensors[op.inputs[0]]
    qlo, qhi = (0, 255) if x.dtype == "uint8" else (-128, 127)
    zp = operand(graph, op, 2)
    if zp is None:
        return qlo, qhi
    t = graph.tensors[zp]
    if not t.is_const:
        return -255, 255
    z = int(np.asarray(t.data).reshape(-1)[0])
    return qlo - z, qhi - z


def accumulator_centres(op: Op, graph: Graph):
    """Per output channel: the midpoint of the accumulator's range and its half-width
    (int64), from the constant centred weights and the input range."""
    wc = centred_weights(op, graph).astype(np.int64)
    lo_in, hi_in = _input_range(op, graph)
    lo = np.minimum(wc * lo_in, wc * hi_in).sum(axis=1)
    hi = np.maximum(wc * lo_in, wc * hi_in).sum(axis=1)
    cen = (lo + hi) // 2
    return cen, np.maximum(hi - cen, cen - lo)


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    if len(x.shape) != 4 or list(w.shape[2:]) != [3, 3]:
        return "not a 2-D 3x3 convolution"
    if int(op.attrs.get("group", 1)) != 1:
        return "grouped"
    if list(op.attrs.get("strides", [1, 1])) != [1, 1] or \
            list(op.attrs.get("dilations", [1, 1])) != [1, 1]:
        return "strided or dilated"
    why = not_constant(op, graph)
    if why:
        return why
    if op.attrs.get("activation") not in requant_avx2.BOUND_ACTIVATIONS:
        return "real-valued activation"
    _, half = accumulator_centres(op, graph)
    if half.size and int(half.max()) >= WINDOW:
        return ("accumulator range too wide for F(4x4,3x3)'s 576 * acc in int32 "
                "(|acc - centre| must stay below 2^25)")
    return None


def _dims(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    c, oc = x.shape[1], y.shape[1]
    th, tw = -(-y.shape[2] // 4), -(-y.shape[3] // 4)
    return -(-c // 16) * 16, -(-oc // 16) * 16, th, tw


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # as winograd_avx2_s8.cost: the GEMMs at 24 multiply-adds per cycle, the input
    # transform (~7 operations per tile and channel), the plane copy, the output transform
    # and requantization (~24 per tile and output channel: 16 outputs), tile groups of 6
    # rounded up; and the transformed weights streamed from beyond L2 (2.25x F(2x2)'s
    # bytes: measured on ResNet-50, F(2x2) stays faster for 256 channels at 14x14 and 512
    # at 7x7, where few tiles share each weight byte)
    n = graph.tensors[op.inputs[0]].shape[0]
    cp, ocp, th, tw = _dims(op, graph)
    t = float(th * tw)
    t6 = float(-(-th * tw // MR) * MR)
    return n * (t6 * NP * cp * ocp / 24.0 + 7.0 * t * cp + (4 * th + 2) * (4 * tw + 2) * cp
                + 24.0 * t * ocp) + weight_bytes_cost(2 * NP * cp * ocp)


def _packed_weights(op: Op, graph: Graph, cp: int, ocp: int):
    """[OCP/16][36 positions][CP/2][16][2] int16: U = GS g GS^T of the centred weights;
    and [OCP] int32: the accumulator centres."""
    w = graph.tensors[op.inputs[3]]
    oc, c = w.shape[0], w.shape[1]
    g = centred_weights(op, graph).reshape(oc, c, 3, 3).astype(np.int64)
    u = np.einsum("ik,ockl,jl->ocij", GS, g, GS)  # [OC][C][6][6]
    assert np.abs(u).max(initial=0) <= 32767
    a = np.zeros((ocp, cp, NP), np.int16)
    a[:oc, :c] = u.reshape(oc, c, NP)
    packed = a.reshape(ocp // 16, 16, cp // 2, 2, NP).transpose(0, 4, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + "__avx2_winograd_f43")
    graph.add_const(name, np.ascontiguousarray(packed).reshape(-1), "int16")
    cen, _ = accumulator_centres(op, graph)
    cname = graph.unique_name(op.inputs[3] + "__avx2_winograd_f43_centres")
    graph.add_const(cname, cen.astype(np.int32), "int32")
    return name, cname


def _transform6(v: Sequence[str], t: str) -> List[str]:
    """C expressions of B^T v for six vectors v (type suffix t: epi16), shared terms first
    (as `const __m256i` declarations returned in the first list entry)."""
    add = f"_mm256_add_{t}"
    sub = f"_mm256_sub_{t}"
    sl = f"_mm256_slli_{t}"
    return [f"{add}({sub}({sl}({v[0]}, 2), {add}({sl}({v[2]}, 2), {v[2]})), {v[4]})",
            f"{sub}({add}({v[3]}, {v[4]}), {sl}({add}({v[1]}, {v[2]}), 2))",
            f"{add}({sl}({sub}({v[1]}, {v[2]}), 2), {sub}({v[4]}, {v[3]}))",
            f"{add}({sl}({sub}({v[3]}, {v[1]}), 1), {sub}({v[4]}, {v[2]}))",
            f"{add}({sl}({sub}({v[1]}, {v[3]}), 1), {sub}({v[4]}, {v[2]}))",
            f"{add}({sub}({sl}({v[1]}, 2), {add}({sl}({v[3]}, 2), {v[3]})), {v[5]})"]


def _input_transform() -> str:
    """C: one tile's 6x6 patch of 16 channels (pointer `d`, row stride `rs`, column stride
    CP) to V = B^T d B, stored at `v` with position stride `ps` (int16 elements); the column
    pass goes through `tmp` (36 vectors)."""
    lines = []
    for j in range(6):  # B^T down each column j
        loads = [f"_mm256_loadu_si256((const __m256i *)(const void *)(d + {i} * rs + {j} * CP))"
                 for i in range(6)]
        lines.append("{ const __m256i " + ", ".join(f"e{i} = {loads[i]}" for i in range(6)) + ";")
        for i, e in enumerate(_transform6([f"e{k}" for k in range(6)], "epi16")):
            lines.append(f"  tmp[{6 * i + j}] = {e};")
        lines.append("}")
    for i in range(6):  # then along each transformed row i
        lines.append("{ const __m256i " + ", ".join(f"e{k} = tmp[{6 * i + k}]"
                                                    for k in range(6)) + ";")
        for j, e in enumerate(_transform6([f"e{k}" for k in range(6)], "epi16")):
            lines.append(f"  _mm256_storeu_si256((__m256i *)(void *)(v + {6 * i + j} * ps), {e});")
        lines.append("}")
    return "\n                        ".join(lines)


def _micro_kernel() -> str:
    """6 tiles x 16 output channels over K2 channel pairs for position pp, stored to M[pp]."""
    lines = tile_avx2.zero_accumulators(MR, "")
    lines += ["const int32_t *a0 = (const int32_t *)(const void *)"
              "(vt + ((int64_t)pp * NT + t0) * CP);"]
    lines += [f"const int32_t *a{r} = a0 + {r} * K2;" for r in range(1, MR)]
    lines += [f"const int16_t *bk = wt + ((int64_t)ob * {NP} + pp) * K2 * 32;",
              "for (kk = 0; kk < K2; ++kk, bk += 32) {",
              "    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)bk);",
              "    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(bk + 16));",
              "    __m256i av;"]
    lines += tile_avx2.madd_step(MR, lambda r: f"a{r}[kk]", "    ")
    lines.append("}")
    for r in range(MR):
        lines += [f"_mm256_storeu_si256((__m256i *)(void *)(mb + ({r} * {NP} + pp) * 16), c{r}0);",
                  f"_mm256_storeu_si256((__m256i *)(void *)(mb + ({r} * {NP} + pp) * 16 + 8), c{r}1);"]
    return "\n                        ".join(lines)


def _out4(m: Sequence[str]) -> List[str]:
    """C expressions of AS^T m for six int32 vectors m (needs a = m1 + m2, b = m1 - m2,
    c = m3 + m4, e = m3 - m4 declared by the caller under the given names)."""
    a, b, c, e = m[6:10]
    add, sl = "_mm256_add_epi32", "_mm256_slli_epi32"
    six0 = f"{add}({sl}({m[0]}, 2), {sl}({m[0]}, 1))"
    return [f"{add}({add}({six0}, {sl}({a}, 2)), {c})",
            f"{add}({sl}({b}, 2), {sl}({e}, 1))",
            f"{sl}({add}({a}, {c}), 2)",
            f"{add}({add}({sl}({b}, 2), {sl}({e}, 3)), "
            f"{add}({sl}({m[5]}, 4), {sl}({m[5]}, 3)))"]


def _output_transform(rq) -> str:
    """C: tile r's 36 positions of 8 output channels (m + pos * 16) to 4x4 codes q[16][8]."""
    ld = "_mm256_loadu_si256((const __m256i *)(const void *)(m + {p} * 16))"
    lines = []
    for j in range(6):  # AS^T down each column j
        lines.append("{ const __m256i " + ", ".join(f"e{i} = {ld.format(p=6 * i + j)}"
                                                    for i in range(6)) + ";")
        lines.append("  const __m256i ea = _mm256_add_epi32(e1, e2), eb = _mm256_sub_epi32(e1, e2), "
                     "ec = _mm256_add_epi32(e3, e4), ee = _mm256_sub_epi32(e3, e4);")
        for i, e in enumerate(_out4([f"e{k}" for k in range(6)] + ["ea", "eb", "ec", "ee"])):
            lines.append(f"  sm[{6 * i + j}] = {e};")
        lines.append("}")
    for i in range(4):  # then along each row i
        lines.append("{ const __m256i " + ", ".join(f"e{k} = sm[{6 * i + k}]"
                                                    for k in range(6)) + ";")
        lines.append("  const __m256i ea = _mm256_add_epi32(e1, e2), eb = _mm256_sub_epi32(e1, e2), "
                     "ec = _mm256_add_epi32(e3, e4), ee = _mm256_sub_epi32(e3, e4);")
        for j, e in enumerate(_out4([f"e{k}" for k in range(6)] + ["ea", "eb", "ec", "ee"])):
            k = 4 * i + j
            # 576 * (acc - cen) -> acc - cen (see the module docstring), + cen + bias
            lines += [f"  {{ const __m256i z = _mm256_srai_epi32(_mm256_sub_epi32({e}, vk), {SHIFT});",
                      "    const __m256i u = _mm256_mullo_epi32(z, vinv9);",
                      f"    const __m256i a{k} = _mm256_add_epi32(_mm256_srai_epi32("
                      f"_mm256_slli_epi32(u, {SHIFT}), {SHIFT}), vb);",
                      "    " + requant_avx2.codes8(rq, f"a{k}", f"q{k}").replace("\n", "\n    "),
                      f"    c{k} = q{k}; }}"]
        lines.append("}")
    # the 16 positions x 8 channels of codes to u[i][k]: row i of channel k's 4x4 tile as
    # 4 bytes. Packing 4 position vectors gives per 128-bit lane a 4x4 byte matrix
    # [position][channel 4h..4h+3] (lane h); a byte shuffle transposes it in place
    pack = "_mm256_packus_epi16" if rq.dtype == "uint8" else "_mm256_packs_epi16"
    lines.append("{ const __m256i tr = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, "
                 "14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);")
    for i in range(4):
        c = [f"c{4 * i + j}" for j in range(4)]
        lines.append(f"  _mm256_storeu_si256((__m256i *)(void *)u[{i}], _mm256_shuffle_epi8("
                     f"{pack}(_mm256_packs_epi32({c[0]}, {c[1]}), "
                     f"_mm256_packs_epi32({c[2]}, {c[3]})), tr));")
    lines.append("}")
    return "\n                            ".join(lines)


def _plane_copy8(xt: str) -> str:
    """C: channels c..c+7 of input columns x0..x0+7 (row src, channel stride H * W)
    widened, centred and transposed to 8 channel-last vectors at dst + column * CP."""
    widen = "_mm_cvtepu8_epi16" if xt == "uint8_t" else "_mm_cvtepi8_epi16"
    lines = [f"const __m128i r{k} = _mm_sub_epi16({widen}(_mm_loadl_epi64((const __m128i *)"
             f"(const void *)(src + (int64_t){k} * H * W + x0))), vxz);" for k in range(8)]
    # stage 1: channel pairs per column; 2: channel quads; 3: all 8 channels of a column
    lines += [f"const __m128i a{k} = _mm_unpack{'lo' if k % 2 == 0 else 'hi'}_epi16("
              f"r{2 * (k // 2)}, r{2 * (k // 2) + 1});" for k in range(8)]
    # a0: columns 0-3 of channels 0,1; a1: columns 4-7 of 0,1; a2, a3: channels 2,3; ...
    lines += [f"const __m128i b{k} = _mm_unpack{'lo' if k % 2 == 0 else 'hi'}_epi32("
              f"a{4 * (k // 4) + (k // 2) % 2}, a{4 * (k // 4) + (k // 2) % 2 + 2});"
              for k in range(8)]
    # b0: columns 0,1 of channels 0-3; b1: columns 2,3; b2: 4,5; b3: 6,7; b4-b7: channels 4-7
    for col in range(8):
        bq, bh = col // 2, col % 2
        lo, hi = f"b{bq}", f"b{bq + 4}"
        half = "_mm_unpacklo_epi64" if bh == 0 else "_mm_unpackhi_epi64"
        lines.append(f"_mm_storeu_si128((__m128i *)(void *)(dst + (int64_t)(x0 + {col}) * CP), "
                     f"{half}({lo}, {hi}));")
    return "\n                        ".join(lines)


def plane_copy(xt: str) -> str:
    """C (both Winograd kernels): the image xb's channels into the zeroed channel-last plane
    [PH][PW][CP] at (PT, PL), centred on xz (needs c, C, H, W, xb, plane, PW, PH, PT, PL,
    CP, xz in scope)."""
    return f"""        {{  /* channel-last copy, centred; the padding stays 0 */
            const int32_t WL = W < PW - PL ? W : PW - PL, HL = H < PH - PT ? H : PH - PT;
            const __m128i vxz = _mm_set1_epi16((int16_t)xz);
            int32_t iy, ix;
            /* 8 channels x 8 columns at a time: 8-byte loads widened, an 8x8 int16
               transpose, one 16-byte store per column; a row's last columns by one block
               ending at its end (columns written twice get the same values) */
            for (c = 0; c + 8 <= C && WL >= 8; c += 8)
                for (iy = 0; iy < HL; ++iy) {{
                    const {xt} *src = xb + ((int64_t)c * H + iy) * W;
                    int16_t *dst = plane + ((int64_t)(iy + PT) * PW + PL) * CP + c;
                    for (ix = 0; ix < WL; ix += 8) {{
                        const int32_t x0 = ix + 8 <= WL ? ix : WL - 8;
                        {_plane_copy8(xt)}
                    }}
                }}
            for (; c < C; ++c)
                for (iy = 0; iy < HL; ++iy) {{
                    const {xt} *src = xb + ((int64_t)c * H + iy) * W;
                    int16_t *dst = plane + ((int64_t)(iy + PT) * PW + PL) * CP + c;
                    for (ix = 0; ix < WL; ++ix)
                        dst[(int64_t)ix * CP] = (int16_t)((int32_t)src[ix] - xz);
                }}
        }}"""


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost,
            label="avx2 integer Winograd F(4x4,3x3) on vpmaddwd (3x3 stride 1, exact)")
def lower_qlinear_conv_winograd_f43_avx2(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    cp, ocp, th, tw = _dims(op, graph)
    nt = max(MR, min(th * tw + MR - 1, BLOCK_BYTES // (2 * NP * cp)) // MR * MR)
    ins = list(pt["ins"])
    ins[1], centres = _packed_weights(op, graph, cp, ocp)
    ins.append(centres)
    xt, yt = pt["xt"], rq.ctype
    has_bias = "bias" in pt["head"]
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *wt = (const int16_t *)in_ptrs[1];  /* [OCP/16][36][K2][16][2] */
    const int32_t *cen = (const int32_t *)in_ptrs[{len(ins) - 1}];
{pt["head"]}
    {requant_avx2.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const int32_t K2 = CP / 2, T = TH * TW, PH = 4 * TH + 2, PW = 4 * TW + 2;
    const int64_t rs = (int64_t)PW * CP, ps = (int64_t)NT * CP;
    const __m256i vinv9 = _mm256_set1_epi32((int32_t){INV9 - 2 ** 32});
    /* workspace: padded centred plane [PH][PW][CP], V [36][NT][CP], M [6][36][16] int32,
       per-channel multipliers, cen + bias and 576 * cen [OCP] */
    int16_t *plane = (int16_t *)(void *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    int16_t *vt = plane + (int64_t)PH * PW * CP;
    int32_t *mb = (int32_t *)(void *)(vt + (int64_t){NP} * NT * CP);
    float *mults = (float *)(void *)(mb + {MR} * {NP} * 16);
    int32_t *biasv = (int32_t *)(void *)(mults + OCP);
    int32_t *k576 = biasv + OCP;
    __m256i tmp[{NP}], sm[24];
    int32_t b, c, t0, tb, ob, pp, kk, r, o;
    for (o = 0; o < OCP; ++o) {{  /* onnxruntime: x_scale * w_scale[o] / y_scale */
        const float wsc = ws[{"o < OC ? o : 0" if pt["ws_pc"] else "0"}];
        const int32_t ce = o < OC ? cen[o] : 0;
        mults[o] = xs * wsc{"" if rq.uses_real_scale else " / so"};
        biasv[o] = (int32_t)((uint32_t)ce + (uint32_t)({"o < OC ? bias[o] : 0" if has_bias else "0"}));
        k576[o] = (int32_t)((uint32_t)ce * {SCALE}u);
    }}
    for (b = 0; b < N; ++b) {{
        const {xt} *xb = x + (int64_t)b * C * H * W;
        {yt} *yb = y + (int64_t)b * OC * OH * OW;
        memset(plane, 0, (size_t)PH * PW * CP * sizeof(int16_t));
{plane_copy(xt)}
        for (tb = 0; tb < T; tb += NT) {{
            const int32_t nt = T - tb < NT ? T - tb : NT;
            int32_t t;
            for (t = 0; t < nt; ++t) {{  /* input transform of the block's tiles */
                const int32_t ty = (tb + t) / TW, tx = (tb + t) - ty * TW;
                for (c = 0; c < CP; c += 16) {{
                    const int16_t *d = plane + ((int64_t)4 * ty * PW + 4 * tx) * CP + c;
                    int16_t *v = vt + (int64_t)t * CP + c;
                    {{
                        {_input_transform()}
                    }}
                }}
            }}
            if (nt % {MR})  /* the last group's missing tiles: zeros (their results unused) */
                for (pp = 0; pp < {NP}; ++pp)
                    memset(vt + ((int64_t)pp * NT + nt) * CP, 0,
                           (size_t)(({MR} - nt % {MR}) * CP) * sizeof(int16_t));
            for (ob = 0; ob < OCP / 16; ++ob)
                for (t0 = 0; t0 < nt; t0 += {MR}) {{
                    for (pp = 0; pp < {NP}; ++pp) {{
                        {_micro_kernel()}
                    }}
                    for (r = 0; r < {MR} && t0 + r < nt; ++r) {{
                        const int32_t tt = tb + t0 + r, ty = tt / TW, tx = tt - ty * TW;
                        int32_t h;
                        for (h = 0; h < 2 && ob * 16 + h * 8 < OC; ++h) {{
                            const int32_t o0 = ob * 16 + h * 8;
                            const int32_t *m = mb + r * {NP * 16} + h * 8;
                            const __m256 vm = _mm256_loadu_ps(mults + o0);
                            const __m256i vb = _mm256_loadu_si256((const __m256i *)(const void *)(biasv + o0));
                            const __m256i vk = _mm256_loadu_si256((const __m256i *)(const void *)(k576 + o0));
                            __m256i {", ".join(f"c{k}" for k in range(16))};
                            uint32_t u[4][8];
                            int32_t k, i, j;
                            const int whole = 4 * ty + 4 <= OH && 4 * tx + 4 <= OW;
                            {_output_transform(rq)}
                            for (k = 0; k < 8 && o0 + k < OC; ++k) {{
                                {yt} *yo = yb + ((int64_t)(o0 + k) * OH + 4 * ty) * OW + 4 * tx;
                                if (whole)
                                    for (i = 0; i < 4; ++i)
                                        memcpy(yo + (int64_t)i * OW, &u[i][k], 4);
                                else
                                    for (i = 0; i < 4 && 4 * ty + i < OH; ++i)
                                        for (j = 0; j < 4 && 4 * tx + j < OW; ++j)
                                            yo[(int64_t)i * OW + j] =
                                                (({yt} *)(void *)&u[i][k])[j];
                            }}
                        }}
                    }}
                }}
        }}
    }}
"""
    name = f"qlinear_conv_winograd_f43_avx2_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="avx2")
    head = {k: v for k, v in geo.items() if k in PARAMS.names}
    params = PARAMS.pack(**head, CP=cp, OCP=ocp, TH=th, TW=tw, NT=nt)
    ws = (2 * ((4 * th + 2) * (4 * tw + 2) * cp + NP * nt * cp) + 4 * MR * NP * 16
          + 12 * ocp + 128)
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"AVX2 integer Winograd F(4x4,3x3), {MR} tiles x 16 channels "
                       f"(vpmaddwd), blocks of {nt} tiles")]
