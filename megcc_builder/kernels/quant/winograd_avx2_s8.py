"""3x3 stride-1 QLinearConv on AVX2 by integer Winograd F(2x2, 3x3): exact, bit-identical to
the portable kernel, with 16 int16 products per 2x2 output tile and channel pair instead of 36.

Why it is exact: with G2 = 2G (G the F(2,3) weight transform, whose entries are 0, +-1/2,
1) every transform has integer entries: U = G2 g G2^T (centred weights; |U| <= 9 * 255 fits
int16), V = B^T d B (centred inputs, |V| <= 4 * 255) and Y = A^T (U . V) A = 4 * (the direct
convolution's int32 accumulator). All sums are int32 modulo 2^32 (a ring: the wrapped result
is the true one modulo 2^32), so an arithmetic shift right by 2 returns the accumulator
exactly whenever |acc| < 2^29; `_applies` checks 255 * sum|w - w_zp| < 2^29 per output
channel on the constant weights (true of any real network: 3x3 convolutions up to ~900
input channels at the extreme weights), otherwise the direct kernels run. The bias is added
afterwards with the same wrapping add and the epilogue is requant_avx2's, so outputs are
bit-identical to the portable kernel (and onnxruntime / MegEngine).

Layout (per image): the input is copied once into a zero-padded, centred int16 plane in
(row, column, channel) order (channels padded to 16): each tile's 4x4 patch is then 16
vector loads of 16 channels, transformed in registers and stored as V[position][tile][CP].
The transformed products are 16 independent GEMMs over channel pairs, done by the same 6x16
`vpmaddwd` tile as conv_gemm_avx2_s8 with the roles swapped: 6 tiles broadcast (channel
pairs of V), 16 output channels as vectors (U packed at compile time as
[OC/16][position][pair][16][2]). The 16 positions of a 6-tile x 16-channel block are kept in
a small buffer, transformed back (A^T M A), shifted, requantized 8 channels at a time with
per-channel multipliers and stored."""
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
from .weights import centred_weights, not_constant
from .winograd_f43_avx2_s8 import plane_copy, weight_bytes_cost

PARAMS = conv_schema(i32("CP", "input channels rounded up to 16"),
                     i32("OCP", "output channels rounded up to 16"),
                     i32("TH", "tile rows (output rows / 2, rounded up)"),
                     i32("TW", "tile columns (output columns / 2, rounded up)"),
                     i32("NT", "tiles per transformed block (multiple of 6)"))

MR = 6  # tiles per GEMM tile: 12 accumulators + 2 weight vectors + 1 broadcast
G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], np.int64)
# transformed inputs of one block of tiles: they stay in L2 while every 16-channel block of
# the weights passes over them; each weight byte is read once per block, so small images
# (the deep layers, whose weights are the largest) are one block
BLOCK_BYTES = 512 * 1024
EXACT_LIMIT = 2 ** 29  # |acc| below it: 4 * acc fits int32, the shift recovers acc


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
    wc = centred_weights(op, graph)
    if int(np.abs(wc.astype(np.int64)).sum(axis=1).max(initial=0)) * 255 >= EXACT_LIMIT:
        return "weights so large that 4 * the accumulator could leave int32"
    return None


def _dims(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    c, oc = x.shape[1], y.shape[1]
    th, tw = -(-y.shape[2] // 2), -(-y.shape[3] // 2)
    return -(-c // 16) * 16, -(-oc // 16) * 16, th, tw


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # the GEMMs at conv_gemm_avx2_s8's rate (16 int16 pair products per vpmaddwd), the input
    # transform (~4 operations per tile and channel), the channel-last plane copy, the
    # output transform and requantization (~4 per tile and output channel)
    n = graph.tensors[op.inputs[0]].shape[0]
    cp, ocp, th, tw = _dims(op, graph)
    t = float(th * tw)
    # (+ the transformed weights beyond L2, as winograd_f43_avx2_s8.cost)
    return n * (t * 16 * cp * ocp / 24.0 + 2.0 * t * cp + (2 * th + 2) * (2 * tw + 2) * cp
                + 4.0 * t * ocp) + weight_bytes_cost(2 * 16 * cp * ocp)


def _packed_weights(op: Op, graph: Graph, cp: int, ocp: int) -> str:
    """[OCP/16][16 positions][CP/2][16][2] int16: U = G2 g G2^T of the centred weights."""
    w = graph.tensors[op.inputs[3]]
    oc, c = w.shape[0], w.shape[1]
    g = centred_weights(op, graph).reshape(oc, c, 3, 3).astype(np.int64)
    u = np.einsum("ik,ockl,jl->ocij", G2, g, G2)  # [OC][C][4][4]
    a = np.zeros((ocp, cp, 16), np.int16)
    a[:oc, :c] = u.reshape(oc, c, 16)
    # [ob][o16][k2][e][p] -> [ob][p][k2][o16][e]
    packed = a.reshape(ocp // 16, 16, cp // 2, 2, 16).transpose(0, 4, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + "__avx2_winograd_f23")
    graph.add_const(name, np.ascontiguousarray(packed).reshape(-1), "int16")
    return name


def _input_transform() -> str:
    """C: one tile's 4x4 patch of 16 channels (pointer `d`, row stride `rs`, column stride
    CP) to V = B^T d B, stored at `v` with position stride `ps` (int16 elements)."""
    lines = []
    for i in range(4):
        loads = ", ".join(f"r{i}{j} = _mm256_loadu_si256((const __m256i *)(const void *)"
                          f"(d + {i} * rs + {j} * CP))" for j in range(4))
        lines.append(f"const __m256i {loads};")
    # columns of rows: B^T over i for each j
    for j in range(4):
        lines.append(f"const __m256i c{j}0 = _mm256_sub_epi16(r0{j}, r2{j}), "
                     f"c{j}1 = _mm256_add_epi16(r1{j}, r2{j}), "
                     f"c{j}2 = _mm256_sub_epi16(r2{j}, r1{j}), "
                     f"c{j}3 = _mm256_sub_epi16(r1{j}, r3{j});")
    # then B over j for each transformed row i
    for i in range(4):
        outs = [f"_mm256_sub_epi16(c0{i}, c2{i})", f"_mm256_add_epi16(c1{i}, c2{i})",
                f"_mm256_sub_epi16(c2{i}, c1{i})", f"_mm256_sub_epi16(c1{i}, c3{i})"]
        for j in range(4):
            lines.append(f"_mm256_storeu_si256((__m256i *)(void *)(v + {4 * i + j} * ps), "
                         f"{outs[j]});")
    return "\n                        ".join(lines)


def _micro_kernel() -> str:
    """6 tiles x 16 output channels over K2 channel pairs for position p, stored to M[p]."""
    lines = tile_avx2.zero_accumulators(MR, "")
    lines += ["const int32_t *a0 = (const int32_t *)(const void *)"
              "(vt + ((int64_t)pp * NT + t0) * CP);"]
    lines += [f"const int32_t *a{r} = a0 + {r} * K2;" for r in range(1, MR)]
    lines += ["const int16_t *bk = wt + ((int64_t)ob * 16 + pp) * K2 * 32;",
              "for (kk = 0; kk < K2; ++kk, bk += 32) {",
              "    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)bk);",
              "    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(bk + 16));",
              "    __m256i av;"]
    lines += tile_avx2.madd_step(MR, lambda r: f"a{r}[kk]", "    ")
    lines.append("}")
    for r in range(MR):
        lines += [f"_mm256_storeu_si256((__m256i *)(void *)(mb + ({r} * 16 + pp) * 16), c{r}0);",
                  f"_mm256_storeu_si256((__m256i *)(void *)(mb + ({r} * 16 + pp) * 16 + 8), c{r}1);"]
    return "\n                        ".join(lines)


def _output_transform(rq) -> str:
    """C: tile r's 16 positions of 8 output channels (m + pos * 16) to 2x2 codes q[4][8]."""
    ld = "_mm256_loadu_si256((const __m256i *)(const void *)(m + {p} * 16))"
    lines = [f"const __m256i m{p} = {ld.format(p=p)};" for p in range(16)]
    for j in range(4):  # A^T over rows i for each column j
        lines.append(f"const __m256i s0{j} = _mm256_add_epi32(_mm256_add_epi32(m{j}, m{4 + j}), "
                     f"m{8 + j}), s1{j} = _mm256_sub_epi32(_mm256_sub_epi32(m{4 + j}, "
                     f"m{8 + j}), m{12 + j});")
    for i in range(2):
        lines.append(f"const __m256i y{i}0 = _mm256_add_epi32(_mm256_add_epi32(s{i}0, s{i}1), "
                     f"s{i}2), y{i}1 = _mm256_sub_epi32(_mm256_sub_epi32(s{i}1, s{i}2), s{i}3);")
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        # 4 * acc -> acc (exact, see the module docstring), then + bias modulo 2^32
        lines.append(f"const __m256i a{k} = _mm256_add_epi32(_mm256_srai_epi32(y{i}{j}, 2), vb);")
        lines.append(requant_avx2.codes8(rq, f"a{k}", f"q{k}").replace("\n", "\n" + " " * 28))
    # the 4 positions x 8 channels of codes to u[k]: channel k's 2x2 tile as 4 bytes (row
    # 0, row 1): packed, per 128-bit lane a 4x4 byte matrix [position][channel 4h..4h+3],
    # transposed in place by a byte shuffle
    pack = "_mm256_packus_epi16" if rq.dtype == "uint8" else "_mm256_packs_epi16"
    lines.append("_mm256_storeu_si256((__m256i *)(void *)u, _mm256_shuffle_epi8("
                 f"{pack}(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3)), "
                 "_mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, "
                 "0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)));")
    return "\n                            ".join(lines)


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost,
            label="avx2 integer Winograd F(2x2,3x3) on vpmaddwd (3x3 stride 1, exact)")
def lower_qlinear_conv_winograd_avx2(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    cp, ocp, th, tw = _dims(op, graph)
    nt = max(MR, min(th * tw + MR - 1, BLOCK_BYTES // (32 * cp)) // MR * MR)
    ins = list(pt["ins"])
    ins[1] = _packed_weights(op, graph, cp, ocp)
    xt, yt = pt["xt"], rq.ctype
    has_bias = "bias" in pt["head"]
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *wt = (const int16_t *)in_ptrs[1];  /* [OCP/16][16][K2][16][2] */
{pt["head"]}
    {requant_avx2.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const int32_t K2 = CP / 2, T = TH * TW, PH = 2 * TH + 2, PW = 2 * TW + 2;
    const int64_t rs = (int64_t)PW * CP, ps = (int64_t)NT * CP;
    /* workspace: padded centred plane [PH][PW][CP], V [16][NT][CP], M [6][16][16] int32,
       per-channel multipliers and biases [OCP] */
    int16_t *plane = (int16_t *)(void *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    int16_t *vt = plane + (int64_t)PH * PW * CP;
    int32_t *mb = (int32_t *)(void *)(vt + (int64_t)16 * NT * CP);
    float *mults = (float *)(void *)(mb + {MR} * 16 * 16);
    int32_t *biasv = (int32_t *)(void *)(mults + OCP);
    int32_t b, c, t0, tb, ob, pp, kk, r, o;
    for (o = 0; o < OCP; ++o) {{  /* onnxruntime: x_scale * w_scale[o] / y_scale */
        const float wsc = ws[{"o < OC ? o : 0" if pt["ws_pc"] else "0"}];
        mults[o] = xs * wsc{"" if rq.uses_real_scale else " / so"};
        biasv[o] = {"o < OC ? bias[o] : 0" if has_bias else "0"};
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
                    const int16_t *d = plane + ((int64_t)2 * ty * PW + 2 * tx) * CP + c;
                    int16_t *v = vt + (int64_t)t * CP + c;
                    {{
                        {_input_transform()}
                    }}
                }}
            }}
            if (nt % {MR})  /* the last group's missing tiles: zeros (their results unused) */
                for (pp = 0; pp < 16; ++pp)
                    memset(vt + ((int64_t)pp * NT + nt) * CP, 0,
                           (size_t)(({MR} - nt % {MR}) * CP) * sizeof(int16_t));
            for (ob = 0; ob < OCP / 16; ++ob)
                for (t0 = 0; t0 < nt; t0 += {MR}) {{
                    for (pp = 0; pp < 16; ++pp) {{
                        {_micro_kernel()}
                    }}
                    for (r = 0; r < {MR} && t0 + r < nt; ++r) {{
                        const int32_t tt = tb + t0 + r, ty = tt / TW, tx = tt - ty * TW;
                        int32_t h;
                        for (h = 0; h < 2 && ob * 16 + h * 8 < OC; ++h) {{
                            const int32_t o0 = ob * 16 + h * 8;
                            const int32_t *m = mb + r * 256 + h * 8;
                            const __m256 vm = _mm256_loadu_ps(mults + o0);
                            const __m256i vb = _mm256_loadu_si256((const __m256i *)(const void *)(biasv + o0));
                            uint32_t u[8];
                            int32_t k, i, j;
                            const int whole = 2 * ty + 2 <= OH && 2 * tx + 2 <= OW;
                            {_output_transform(rq)}
                            for (k = 0; k < 8 && o0 + k < OC; ++k) {{
                                {yt} *yo = yb + ((int64_t)(o0 + k) * OH + 2 * ty) * OW + 2 * tx;
                                const {yt} *uk = (const {yt} *)(const void *)&u[k];
                                if (whole) {{
                                    memcpy(yo, uk, 2);
                                    memcpy(yo + OW, uk + 2, 2);
                                }} else
                                    for (i = 0; i < 2 && 2 * ty + i < OH; ++i)
                                        for (j = 0; j < 2 && 2 * tx + j < OW; ++j)
                                            yo[(int64_t)i * OW + j] = uk[2 * i + j];
                            }}
                        }}
                    }}
                }}
        }}
    }}
"""
    name = f"qlinear_conv_winograd_avx2_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="avx2")
    head = {k: v for k, v in geo.items() if k in PARAMS.names}
    params = PARAMS.pack(**head, CP=cp, OCP=ocp, TH=th, TW=tw, NT=nt)
    ws = 2 * ((2 * th + 2) * (2 * tw + 2) * cp + 16 * nt * cp) + 4 * MR * 256 + 8 * ocp + 128
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"AVX2 integer Winograd F(2x2,3x3), {MR} tiles x 16 channels "
                       f"(vpmaddwd), blocks of {nt} tiles")]
