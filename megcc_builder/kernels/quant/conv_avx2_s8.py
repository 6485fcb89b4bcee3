"""QLinearConv on AVX2: im2col into int16 pairs + a 6x16 GEMM micro-kernel on
`vpmaddwd` (_mm256_madd_epi16), then the portable requantization per element.

Why int16 and vpmaddwd rather than vpmaddubsw: vpmaddubsw adds two u8 x s8 products into
an int16 with saturation, which (x - x_zp) * (w - w_zp) products up to 255 * 255 would
overflow; widening both operands to int16 (centred: x - x_zp, w - w_zp, each within
[-255, 255]) makes every pair sum exact in int32, so the accumulator equals the portable
kernel's and the output is bit-identical. The weights are constant: centred, padded to 6
rows and an even K and interleaved as int16 pairs at compile time. Dense (group-1) 2-D
convolutions; the input is packed in blocks of NB output positions so the block stays in
cache."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ...ir.quant import operand
from ..conv.geometry import conv_schema
from ..registry import implements
from .conv_generic_s8 import QTYPES, qlinear_conv_parts
from . import tile_avx2
from .requant import wrapping_add
from .weights import centred_weights

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("K2", "reduction length in int16 pairs (IC*KH*KW rounded up / 2)"),
                     i32("OCP", "output channels padded to MR (6)"),
                     i32("NB", "output positions per packed block (multiple of 16)"))


MR = 6  # output channels per micro-kernel tile: 12 accumulators + 2 B vectors + 1 A


def _micro_kernel() -> str:
    """MR x 16 int32 accumulators over K2 int16 pairs, then stored to `tile`."""
    lines = tile_avx2.zero_accumulators(MR, " " * 20)
    lines += ["                    const int16_t *bj = bp + (int64_t)j * 2;",
              "                    const int32_t *apair = (const int32_t *)ap;",
              f"                    for (kk = 0; kk < K2; ++kk, bj += NB * 2, apair += {MR}) {{",
              "                        const __m256i b0 = _mm256_loadu_si256((const __m256i *)bj);",
              "                        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bj + 16));",
              "                        __m256i av;"]
    lines += tile_avx2.madd_step(MR, lambda r: f"apair[{r}]", " " * 24)
    lines.append("                    }")
    for r in range(MR):
        lines += [f"                    _mm256_storeu_si256((__m256i *)tile[{r}], c{r}0);",
                  f"                    _mm256_storeu_si256((__m256i *)(tile[{r}] + 8), c{r}1);"]
    return "\n".join(lines) + "\n"


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
    if int(op.attrs.get("group", 1)) != 1:
        return "grouped / depthwise (portable direct loop)"
    if len(graph.tensors[op.inputs[0]].shape) != 4:
        return "not 2-D"
    w = graph.tensors[op.inputs[3]]
    if not w.is_const:
        return "weights not constant"
    zp = operand(graph, op, 5)
    if zp is not None and not graph.tensors[zp].is_const:
        return "weight zero point not constant"
    if op.attrs.get("activation") not in (None, "", "Relu", "Clip"):
        return "real-valued activation"
    return None


def _macs(op: Op, graph: Graph) -> float:
    x, w, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[3], op.outputs[0]))
    return float(np.prod(y.shape)) * float(np.prod(w.shape[1:]))


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 16 int16 multiply-adds per vpmaddwd, ~2 per cycle with loads; im2col + epilogue
    y = graph.tensors[op.outputs[0]]
    return _macs(op, graph) / 12.0 + 8.0 * float(np.prod(y.shape))


def _packed_weights(op: Op, graph: Graph, oc: int, k: int) -> str:
    wc = centred_weights(op, graph).reshape(oc, k)  # [-255, 255]
    ocp, kp = -(-oc // MR) * MR, k + (k & 1)
    a = np.zeros((ocp, kp), np.int16)
    a[:oc, :k] = wc
    # per MR-row panel: for each pair kk, the MR rows' (a[2kk], a[2kk+1]) pairs in order
    panels = a.reshape(ocp // MR, MR, kp // 2, 2).transpose(0, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + "__avx2_i16x2")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int16")
    return name


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost, label="avx2 int16-pair GEMM (vpmaddwd)")
def lower_qlinear_conv_avx2(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    oc, c = geo["OC"], geo["C"]
    k = c * geo["KH"] * geo["KW"]
    k2 = (k + 1) // 2
    ocp = -(-oc // MR) * MR
    p = geo["OH"] * geo["OW"]
    nb = int(min(512, max(16, (96 * 1024) // max(1, 4 * k2)))) // 16 * 16
    nb = min(nb, -(-p // 16) * 16)
    ins = list(pt["ins"])
    ins[1] = _packed_weights(op, graph, oc, k)
    xt, head, xz = pt["xt"], pt["head"] + "\n", pt["x_zp"]
    epi_value = rq.value("acc", "mult", "rs")
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *a = (const int16_t *)in_ptrs[1];  /* MR-row panels of int16 pairs */
{head}    const int32_t xz = {xz};
    const int32_t K = C * KH * KW, P = OH * OW;
    int16_t *bp = (int16_t *)workspace;  /* [K2][NB][2]: im2col block, int16 pairs */
    int32_t tile[{MR}][16];
    float *mults = (float *)(void *)(bp + (int64_t)K2 * NB * 2);  /* per output channel */
    {{
        int32_t o;
        for (o = 0; o < OC; ++o) {{  /* onnxruntime: x_scale * w_scale[o] / y_scale */
            const float wsc = ws[{"o" if pt["ws_pc"] else "0"}];
            mults[o] = xs * wsc{"" if rq.uses_real_scale else " / so"};
        }}
    }}
    int32_t b, p0, o0, j, kk, r;
    for (b = 0; b < N; ++b) {{
        const {xt} *xb = x + (int64_t)b * C * H * W;
        {rq.ctype} *yb = y + (int64_t)b * OC * P;
        for (p0 = 0; p0 < P; p0 += NB) {{
            const int32_t nb = P - p0 < NB ? P - p0 : NB;
            int32_t kidx;
            /* im2col of NB output positions, centred on the input zero point (padding: 0) */
            for (kidx = 0; kidx < 2 * K2; ++kidx) {{
                int16_t *dst = bp + (int64_t)(kidx >> 1) * NB * 2 + (kidx & 1);
                if (kidx >= K) {{
                    for (j = 0; j < NB; ++j) dst[2 * j] = 0;
                    continue;
                }}
                {{
                    const int32_t ic = kidx / (KH * KW), kr = kidx % (KH * KW);
                    const int32_t ky = kr / KW, kx = kr % KW;
                    const {xt} *xc = xb + (int64_t)ic * H * W;
                    if (KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0) {{
                        const {xt} *src = xc + p0;  /* 1x1: a contiguous run of the plane */
                        for (j = 0; j < nb; ++j) dst[2 * j] = (int16_t)((int32_t)src[j] - xz);
                    }} else {{
                        /* one output row segment at a time: the valid input columns of a
                           segment are a computed range, no test per element */
                        int32_t jj = 0;
                        while (jj < nb) {{
                            const int32_t pp = p0 + jj, oy = pp / OW, ox = pp % OW;
                            const int32_t seg = OW - ox < nb - jj ? OW - ox : nb - jj;
                            const int32_t iy = oy * SH - PT + ky * DH;
                            const int32_t ix0 = ox * SW - PL + kx * DW;
                            int16_t *d = dst + 2 * jj;
                            int32_t t, t_lo, t_hi;
                            if (iy < 0 || iy >= H || ix0 + (seg - 1) * SW < 0 || ix0 >= W) {{
                                t_lo = t_hi = seg;
                            }} else {{
                                t_lo = ix0 >= 0 ? 0 : (-ix0 + SW - 1) / SW;
                                t_hi = (W - 1 - ix0) / SW + 1;
                                t_hi = t_hi < seg ? t_hi : seg;
                                t_lo = t_lo < t_hi ? t_lo : t_hi;
                            }}
                            for (t = 0; t < t_lo; ++t) d[2 * t] = 0;
                            if (t_hi > t_lo) {{
                                const {xt} *row = xc + (int64_t)iy * W;  /* ix0 may be < 0 */
                                for (t = t_lo; t < t_hi; ++t)
                                    d[2 * t] = (int16_t)((int32_t)row[ix0 + t * SW] - xz);
                            }}
                            for (t = t_hi < t_lo ? t_lo : t_hi; t < seg; ++t) d[2 * t] = 0;
                            jj += seg;
                        }}
                    }}
                    for (j = nb; j < NB; ++j) dst[2 * j] = 0;
                }}
            }}
            for (o0 = 0; o0 < OCP; o0 += {MR}) {{
                const int16_t *ap = a + (int64_t)o0 * K2 * 2;
                for (j = 0; j < nb; j += 16) {{
MICRO_KERNEL
                    for (r = 0; r < {MR} && o0 + r < OC; ++r) {{
                        const int32_t o = o0 + r;
                        const float {"rs" if rq.uses_real_scale else "mult"} = mults[o];
                        const int32_t bo = {"bias[o]" if "bias" in pt["head"] else "0"};
                        {rq.ctype} *yo = yb + (int64_t)o * P + p0 + j;
                        int32_t t = 0;
                        VECTOR_EPILOGUE
                        for (; t < 16 && j + t < nb; ++t) {{
                            const int32_t acc = {wrapping_add("tile[r][t]", "bo")};  /* MLAS: acc + bias */
                            yo[t] = {rq.store(epi_value, 'yz')};
                        }}
                    }}
                }}
            }}
        }}
    }}
"""
    body = body.replace("MICRO_KERNEL", _micro_kernel())
    pack8 = "_mm256_packus_epi16" if rq.dtype == "uint8" else "_mm256_packs_epi16"
    if rq.rounding == "half_even":
        # _mm256_cvtps_epi32 rounds ties to even (MXCSR default): the same integers as the
        # scalar magic-number rounding after the same clamp
        vec = f"""if (j + 16 <= nb) {{{{
                            const __m256i vb = _mm256_set1_epi32(bo), vz = _mm256_set1_epi32(yz);
                            const __m256 vm = _mm256_set1_ps(mult), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
                            for (; t < 16; t += 8) {{{{
                                __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(
                                    _mm256_loadu_si256((const __m256i *)(tile[r] + t)), vb)), vm);
                                __m256i q;
                                int32_t lo4, hi4;
                                v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
                                q = _mm256_add_epi32(_mm256_cvtps_epi32(v), vz);
                                /* in range already: the saturating packs only narrow */
                                q = _mm256_packs_epi32(q, q);
                                q = {pack8}(q, q);
                                lo4 = _mm_cvtsi128_si32(_mm256_castsi256_si128(q));
                                hi4 = _mm_cvtsi128_si32(_mm256_extracti128_si256(q, 1));
                                memcpy(yo + t, &lo4, 4);
                                memcpy(yo + t + 4, &hi4, 4);
                            }}}}
                        }}}}"""
        body = body.replace("VECTOR_EPILOGUE", vec.replace("{{", "{").replace("}}", "}"))
    else:
        body = body.replace("VECTOR_EPILOGUE", "")
    name = f"qlinear_conv_avx2_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, rq.helpers, isa="avx2")
    params = PARAMS.pack(**geo, K2=k2, OCP=ocp, NB=nb)
    ws = k2 * nb * 2 * 2 + 4 * ocp + 64
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"AVX2 int16-pair GEMM {MR}x16 (vpmaddwd), im2col blocks of {nb!r}")]
