"""QLinearConv on AVX2 with `vpmaddubsw` (u8 x s8 byte pairs into int16), for weights small
enough that it cannot saturate: exact, and about twice the int16-pair GEMM's speed.

`vpmaddubsw` adds two u8 x s8 products into an int16 with saturation. With activations in
[0, 255] (uint8 as they are, int8 shifted by 128) a pair sum is at most
255 * (|w0| + |w1|), which stays within int16 iff |w0| + |w1| <= 128 for every weight pair
(w centred on its zero point). That is checked on the constant weights at compile time:
onnxruntime's `reduce_range=True` (7-bit weights, its advice for AVX2 without VNNI) always
satisfies it; full-range int8 weights usually do not, and keep conv_gemm_avx2_s8 (int16
pairs, `vpmaddwd`). Then `vpmaddwd` with ones adds the two int16 of a lane into an int32:
4 reductions per int32 lane, 32 multiply-adds per `vpmaddubsw`.

The reduction runs over (tap, quad of input channels): the activations are packed per block
of positions as [K quad][position][4] bytes (four channels of one input cell; stride 1:
16 positions of 4 planes interleaved by byte and word unpacks), the weights at compile time
as [6-row panel][K quad][6][4] int8. The input zero point returns as a per-channel constant
(sum((x - z) w) = sum((x - o) w) - (z - o) sum(w), o the shift; padding holds z - o), so the
int32 accumulator equals the portable kernel's; the 6 x 16 tile is requantized in
registers (requant_avx2)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..conv.geometry import conv_schema
from ..registry import implements
from . import requant_avx2
from .weights import centred_weights
from .requant import wrapping_mul, wrapping_sub
from .conv_generic_s8 import QTYPES, qlinear_conv_parts

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("KQ", "reduction length in quads (KH * KW * ICQ)"),
                     i32("ICQ", "channel quads per tap (input channels per group / 4, "
                         "rounded up)"),
                     i32("OCGP", "output channels per group rounded up to MR"),
                     i32("NB", "output positions per packed block (multiple of 16)"))

MR = 6
BLOCK_BYTES = 192 * 1024


def _geometry_k(graph: Graph, op: Op):
    w = graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    icg, taps = w.shape[1], int(np.prod(w.shape[2:]))
    icq = (icg + 3) // 4
    return group, icg, taps, icq, taps * icq


def _quads(graph: Graph, op: Op) -> np.ndarray:
    """Centred weights [OC][taps][4 * ICQ] (K ordered tap, channel; channels padded by 0)."""
    w = graph.tensors[op.inputs[3]]
    oc = w.shape[0]
    group, icg, taps, icq, _ = _geometry_k(graph, op)
    out = np.zeros((oc, taps, 4 * icq), np.int32)
    out[:, :, :icg] = centred_weights(op, graph).reshape(oc, icg, taps).transpose(0, 2, 1)
    return out


def saturation_free(wq: np.ndarray) -> bool:
    """Whether every byte pair vpmaddubsw adds (k = 2i, 2i + 1 of a quad) has
    |w0| + |w1| <= 128, with every weight an int8: then 255 * (|w0| + |w1|) <= 32640."""
    if wq.size == 0:
        return True
    if wq.min() < -128 or wq.max() > 127:
        return False
    a = np.abs(wq.reshape(wq.shape[0], -1, 2))
    return bool((a.sum(axis=-1) <= 128).all())


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = quad_gemm_refusal(op, graph)
    if why:
        return why
    if not saturation_free(_quads(graph, op)):
        return ("weight pairs with |w0| + |w1| > 128 (vpmaddubsw would saturate; 7-bit "
                "weights, e.g. onnxruntime's reduce_range, avoid it)")
    return None


def quad_gemm_refusal(op: Op, graph: Graph):
    """Why the quad GEMM (whatever its reduction step) cannot compute op; None if it can."""
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    if len(x.shape) not in (3, 4):
        return "not 1-D or 2-D"
    group = int(op.attrs.get("group", 1))
    if group > 1 and w.shape[0] == group and w.shape[1] == 1:
        return "depthwise (dwconv kernels)"
    if not w.is_const:
        return "weights not constant"
    zp = operand(graph, op, 5)
    if zp is not None and not graph.tensors[zp].is_const:
        return "weight zero point not constant"
    if op.attrs.get("activation") not in requant_avx2.BOUND_ACTIVATIONS:
        return "real-valued activation"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    return quad_gemm_cost(op, graph, 48.0)


def quad_gemm_cost(op: Op, graph: Graph, macs_per_cycle: float) -> float:
    """The multiply-adds at the reduction step's rate, the packing (one byte quad per
    position and K quad) and the epilogue (~1 per output)."""
    y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[3]]
    macs = float(np.prod(y.shape)) * float(np.prod(w.shape[1:]))
    group, _, _, _, kq = _geometry_k(graph, op)
    positions = float(np.prod(y.shape)) / max(1, y.shape[1])
    return macs / macs_per_cycle + 0.5 * positions * kq * group + 1.0 * float(np.prod(y.shape))


def _packed_weights(op: Op, graph: Graph):
    group, icg, taps, icq, kq = _geometry_k(graph, op)
    wq = _quads(graph, op)
    oc = wq.shape[0]
    ocg = oc // group
    ocgp = -(-ocg // MR) * MR
    a = np.zeros((group, ocgp, taps * 4 * icq), np.int8)
    a[:, :ocg] = wq.reshape(group, ocg, -1)
    panels = a.reshape(group, ocgp // MR, MR, kq, 4).transpose(0, 1, 3, 2, 4)
    name = graph.unique_name(op.inputs[3] + "__avx2_u8s8_quads")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int8")
    sums = graph.unique_name(op.inputs[3] + "__avx2_u8s8_sums")
    graph.add_const(sums, wq.reshape(oc, -1).sum(axis=1).astype(np.int32), "int32")
    return name, sums, ocgp


def _pack(xt: str, shift: int, masked=None) -> str:
    """The block packing; `masked` (conv_u8s8_vnni_s8.masked_runs, AVX-512BW) replaces the
    scalar tails of the stride-1 runs and the scalar stride-2 runs by vector code."""
    flip = "_mm_xor_si128({v}, _mm_set1_epi8((char)0x80))" if shift else "{v}"
    ld = "_mm_loadu_si128((const __m128i *)(const void *)(s{c} + (row + t)))"
    loads = "\n".join(f"                            const __m128i a{c} = "
                      f"{flip.format(v=ld.format(c=c))};" for c in range(4))
    quads16 = f"""for (; t + 16 <= END; t += 16) {{
{loads}
                            const __m128i l01 = _mm_unpacklo_epi8(a0, a1), h01 = _mm_unpackhi_epi8(a0, a1);
                            const __m128i l23 = _mm_unpacklo_epi8(a2, a3), h23 = _mm_unpackhi_epi8(a2, a3);
                            uint8_t *q = DST + 4 * t;
                            _mm_storeu_si128((__m128i *)(void *)q, _mm_unpacklo_epi16(l01, l23));
                            _mm_storeu_si128((__m128i *)(void *)(q + 16), _mm_unpackhi_epi16(l01, l23));
                            _mm_storeu_si128((__m128i *)(void *)(q + 32), _mm_unpacklo_epi16(h01, h23));
                            _mm_storeu_si128((__m128i *)(void *)(q + 48), _mm_unpackhi_epi16(h01, h23));
                        }}"""
    scalar = f"""for (; t < END; ++t) {{
                            uint8_t *q = DST + 4 * t;
                            q[0] = (uint8_t)((int32_t)s0[row + t * SW] - ({shift}));
                            q[1] = (uint8_t)((int32_t)s1[row + t * SW] - ({shift}));
                            q[2] = (uint8_t)((int32_t)s2[row + t * SW] - ({shift}));
                            q[3] = (uint8_t)((int32_t)s3[row + t * SW] - ({shift}));
                        }}"""
    if masked is None:
        plain_tail = scalar.replace("END", "nb").replace("DST", "dst").replace("t * SW", "t")
        runs = f"""if (SW == 1) {{
                            {quads16.replace("END", "t_hi").replace("DST", "d")}
                        }}
                        {scalar.replace("END", "t_hi").replace("DST", "d")}"""
    else:
        plain_tail, runs = masked(shift, scalar)
    return f"""            for (kq = 0; kq < KQ; ++kq) {{
                const int32_t tap = kq / ICQ, c0 = 4 * (kq - tap * ICQ);
                const int32_t ky = tap / KW, kx = tap - ky * KW;
                /* channels past ICG read channel c0 again: their weight is 0 */
                const {xt} *s0 = xg + (int64_t)c0 * HW;
                const {xt} *s1 = c0 + 1 < ICG ? s0 + HW : s0;
                const {xt} *s2 = c0 + 2 < ICG ? s0 + 2 * HW : s0;
                const {xt} *s3 = c0 + 3 < ICG ? s0 + 3 * HW : s0;
                uint8_t *dst = bp + (int64_t)kq * NBS * 4;
                int32_t jj = 0, t;
                if (plain) {{  /* 1x1, stride 1, no padding: runs of the channel planes */
                    const int64_t row = p0;
                    t = 0;
                    {quads16.replace("END", "nb").replace("DST", "dst")}
                    {plain_tail}
                    jj = nb;
                }}
                while (jj < nb) {{  /* one output row segment at a time */
                    const int32_t pp = p0 + jj, oy = pp / OW, ox = pp - oy * OW;
                    const int32_t seg = OW - ox < nb - jj ? OW - ox : nb - jj;
                    const int32_t iy = oy * SH - PT + ky * DH;
                    const int32_t ix0 = ox * SW - PL + kx * DW;
                    uint8_t *d = dst + 4 * jj;
                    int32_t t_lo, t_hi;
                    if (iy < 0 || iy >= H || ix0 + (seg - 1) * SW < 0 || ix0 >= W) {{
                        t_lo = t_hi = seg;
                    }} else {{
                        t_lo = ix0 >= 0 ? 0 : (-ix0 + SW - 1) / SW;
                        t_hi = (W - 1 - ix0) / SW + 1;
                        t_hi = t_hi < seg ? t_hi : seg;
                        t_lo = t_lo < t_hi ? t_lo : t_hi;
                    }}
                    if (t_lo > 0) memset(d, padv, (size_t)(4 * t_lo));
                    if (t_hi > t_lo) {{
                        const int64_t row = (int64_t)iy * W + ix0;  /* ix0 may be < 0 */
                        t = t_lo;
                        {runs}
                    }}
                    t = t_hi < t_lo ? t_lo : t_hi;
                    if (seg > t) memset(d + 4 * t, padv, (size_t)(4 * (seg - t)));
                    jj += seg;
                }}
                if (nbr > nb) memset(dst + 4 * nb, 0, (size_t)(4 * (nbr - nb)));
            }}
"""


# one quad step of accumulator c (int32 x 8) with activations b (u8 quads) and the broadcast
# weight quad av (s8): vpmaddubsw + vpmaddwd by ones (saturation-free weights only)
MADDUBS_STEP = "{c} = _mm256_add_epi32({c}, _mm256_madd_epi16(_mm256_maddubs_epi16({b}, av), ones));"


def _micro_kernel(step: str = MADDUBS_STEP) -> str:
    """MR x 16 int32 accumulators c{r}0, c{r}1 over KQ quads: activations from bj (rows of
    NBS positions x 4 bytes), weight quads from ap (MR per quad)."""
    lines = [f"                    __m256i c{r}0 = _mm256_setzero_si256(), "
             f"c{r}1 = _mm256_setzero_si256();" for r in range(MR)]
    lines += ["                    const uint8_t *bk = bj;",
              "                    const int32_t *aq = (const int32_t *)(const void *)ap;",
              f"                    for (kq = 0; kq < KQ; ++kq, bk += NBS * 4, aq += {MR}) {{",
              "                        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)bk);",
              "                        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(bk + 32));",
              "                        __m256i av;"]
    for r in range(MR):
        lines += [f"                        av = _mm256_set1_epi32(aq[{r}]);",
                  "                        " + step.format(c=f"c{r}0", b="b0"),
                  "                        " + step.format(c=f"c{r}1", b="b1")]
    lines.append("                    }")
    return "\n".join(lines) + "\n"


def _epilogue(rq, has_bias: bool, halves=None) -> str:
    """Requantize and store the MR x 16 tile (c{r}0: positions 0-7, c{r}1: 8-15); with
    `halves` (a list of (lo, hi, offset) expressions per row, see WIDE_HALVES) a wider tile
    whose 16-position groups lie at `offset`, each group only while inside the block."""
    out = []
    const = wrapping_sub("bias[o]" if has_bias else "0", wrapping_mul("zs", "wsum[o]"))
    for r in range(MR):
        groups = halves or [("c{r}0", "c{r}1", "0")]
        stores = []
        for lo, hi, off in groups:
            lo, hi = lo.format(r=r), hi.format(r=r)
            at = "j" if off == "0" else f"j + {off}"
            dst = "yo" if off == "0" else f"yo + {off}"
            full = requant_avx2.store16(rq, lo, hi, const, "mults[o]", dst)
            part = requant_avx2.store16(rq, lo, hi, const, "mults[o]", dst,
                                        "nb - j" if off == "0" else f"nb - ({at})")
            stores.append(f"""if ({at} + 16 <= nb) {full}
                        else {part}""" if off == "0" else f"""if ({at} + 16 <= nb) {full}
                        else if ({at} < nb) {part}""")
        body = "\n                        ".join(stores)
        out.append(f"""                    if (o0 + {r} < OCG) {{
                        const int32_t o = g * OCG + o0 + {r};
                        {rq.ctype} *yo = yg + (int64_t)(o0 + {r}) * P + p0 + j;
                        {body}
                    }}""")
    return "\n".join(out) + "\n"


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost,
            label="avx2 u8 x s8 quads (vpmaddubsw, weights checked saturation-free)")
def lower_qlinear_conv_u8s8_avx2(op: Op, graph: Graph):
    return emit_u8s8(op, graph, "avx2", MADDUBS_STEP,
                     "    const __m256i ones = _mm256_set1_epi16(1);\n",
                     "AVX2 u8 x s8 GEMM {MR}x16 (vpmaddubsw, saturation-free weights)")


def emit_u8s8(op: Op, graph: Graph, tag: str, step: str, setup: str, what: str,
              wide=None, masked=None):
    """The quad GEMM conv with the reduction step `step` (see MADDUBS_STEP), kernel tag
    `tag`, `setup` (C lines before the loops) and the note's description `what`; `wide`
    (a WideTile) replaces the 16-position strip loop by its own (e.g. 512-bit tiles)."""
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    group, icg, taps, icq, kq = _geometry_k(graph, op)
    p = geo["OH"] * geo["OW"]
    nb = max(16, min(1024, BLOCK_BYTES // max(1, 4 * kq)) // 16 * 16)
    nb = min(nb, -(-p // 16) * 16)
    if wide is not None and hasattr(wide, "block"):
        nb = wide.block(p, kq)
    ins = list(pt["ins"])
    ins[1], sums, ocgp = (_packed_weights if wide is None or not hasattr(wide, "weights")
                          else wide.weights)(op, graph)
    ins.append(sums)
    xt, yt = pt["xt"], rq.ctype
    shift = 0 if xt == "uint8_t" else -128  # activation - shift is in [0, 255]
    has_bias = "bias" in pt["head"]
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int8_t *a = (const int8_t *)in_ptrs[1];  /* [G][OCGP/6][KQ][6][4] */
    const int32_t *wsum = (const int32_t *)in_ptrs[{len(ins) - 1}];
{pt["head"]}
    {requant_avx2.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const int32_t zs = xz - ({shift});  /* the zero point among the shifted codes */
    const int padv = (int)(uint8_t)zs;  /* padding: contributes 0 once zs * wsum is off */
SETUP    const int32_t ICG = C / G, OCG = OC / G, P = OH * OW, HW = H * W;
    const int plain = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0 &&
                      OH == H && OW == W;
    /* row stride of the packed block: NB + 16 positions, since NB * 4 bytes is often a
       multiple of 4 KB, which would put every row of a strip in one L1 set */
    const int32_t NBS = NB + 16;
    /* [KQ][NB][4] bytes: one block of positions, 64-byte aligned */
    uint8_t *bp = (uint8_t *)(void *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    float *mults = (float *)(void *)(bp + (int64_t)KQ * NBS * 4);
    int32_t b, g, p0, j, kq, o0;
    for (o0 = 0; o0 < OC; ++o0) {{  /* onnxruntime: x_scale * w_scale[o] / y_scale */
        const float wsc = ws[{"o0" if pt["ws_pc"] else "0"}];
        mults[o0] = xs * wsc{"" if rq.uses_real_scale else " / so"};
    }}
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)g * ICG) * HW;
            {yt} *yg = y + ((int64_t)b * OC + (int64_t)g * OCG) * P;
            const int8_t *ag = a + (int64_t)g * OCGP * KQ * 4;
            for (p0 = 0; p0 < P; p0 += NB) {{
                const int32_t nb = P - p0 < NB ? P - p0 : NB, nbr = (nb + 15) & ~15;
PACK
STRIPS
            }}
        }}
""".replace("PACK", _pack(xt, shift, masked)).replace("SETUP", setup)
    if wide is None:
        strips = f"""                for (j = 0; j < nb; j += 16) {{
                    const uint8_t *bj = bp + (int64_t)j * 4;
                    for (o0 = 0; o0 < OCG; o0 += {MR}) {{
                        const int8_t *ap = ag + (int64_t)o0 * KQ * 4;
MICRO_KERNEL
EPILOGUE
                    }}
                }}""".replace("MICRO_KERNEL", _micro_kernel(step)) \
            .replace("EPILOGUE", _epilogue(rq, has_bias))
    else:
        strips = wide.strips(lambda halves: _epilogue(rq, has_bias, halves), rq, has_bias)
    body = body.replace("STRIPS", strips)
    name = f"qlinear_conv_u8s8_{tag}{getattr(wide, 'suffix', '')}_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa=tag)
    params = PARAMS.pack(**geo, KQ=kq, ICQ=icq, OCGP=ocgp, NB=nb)
    ws = kq * (nb + 16) * 4 + 4 * geo["OC"] + 128
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"{what.format(MR=MR)} over (tap, channel quad), blocks of {nb} "
                       f"positions")]
