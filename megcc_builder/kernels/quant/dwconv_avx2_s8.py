"""Depthwise QLinearConv on AVX2 (one filter per channel), bit-identical to the portable
row kernel.

Per output row, the taps whose input row exists are taken two at a time: 16 output
positions of each tap's input run are widened to int16 and centred on the input zero point
(stride 1: a 16-byte load; stride 2: the even bytes of a 32-byte load), interleaved into
int16 pairs and multiplied by the pair of centred weights with `vpmaddwd`, exact in int32
(operands within [-255, 255]). The border positions, where some tap falls into the
padding, are summed by a scalar loop; then the row of int32 sums is requantized 16 at a
time in registers (requant_avx2) with a scalar tail. Weights are centred on their zero
points at compile time."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..registry import implements
from . import requant_avx2
from .conv_generic_s8 import PARAMS, QTYPES, qlinear_conv_parts


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    if not (group > 1 and w.shape[0] == group and w.shape[1] == 1 and x.shape[1] == group):
        return "not depthwise"
    if len(x.shape) != 4:
        return "not 2-D"
    if not w.is_const:
        return "weights not constant"
    zp = operand(graph, op, 5)
    if zp is not None and not graph.tensors[zp].is_const:
        return "weight zero point not constant"
    if op.attrs.get("activation") not in requant_avx2.BOUND_ACTIVATIONS:
        return "real-valued activation"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # ~12 vector operations per 16 outputs and 2 taps, plus the requantization
    y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[3]]
    taps = float(np.prod(w.shape[2:]))
    return float(y.numel) * (taps * 0.4 + 1.0)


def _centred_weights(op: Op, graph: Graph, oc: int) -> str:
    w = np.asarray(graph.tensors[op.inputs[3]].data).reshape(oc, -1).astype(np.int32)
    zp = operand(graph, op, 5)
    wz = np.zeros(oc, np.int32) if zp is None else \
        np.broadcast_to(np.asarray(graph.tensors[zp].data).reshape(-1).astype(np.int32), (oc,))
    name = graph.unique_name(op.inputs[3] + "__avx2_centred")
    graph.add_const(name, (w - wz[:, None]).astype(np.int16).reshape(-1), "int16")
    return name


def _load16(xt: str, sw: int, addr: str) -> str:
    """C expression: 16 int16 input cells at stride `sw` from `addr`, centred."""
    if sw == 1:
        widen = "_mm256_cvtepu8_epi16" if xt == "uint8_t" else "_mm256_cvtepi8_epi16"
        v = f"{widen}(_mm_loadu_si128((const __m128i *)(const void *)({addr})))"
    else:
        raw = f"_mm256_loadu_si256((const __m256i *)(const void *)({addr}))"
        v = (f"_mm256_and_si256({raw}, _mm256_set1_epi16(0xff))" if xt == "uint8_t" else
             f"_mm256_srai_epi16(_mm256_slli_epi16({raw}, 8), 8)")
    return f"_mm256_sub_epi16({v}, vxz)"


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost, label="avx2 depthwise, tap pairs (vpmaddwd)")
def lower_qlinear_dwconv_avx2(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq, xt = pt["geo"], pt["rq"], pt["xt"]
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("KH", "KW", "SH", "SW", "DH", "DW"))
    ins = list(pt["ins"])
    ins[1] = _centred_weights(op, graph, geo["OC"])
    has_bias = "bias" in pt["head"]
    vec = sw in (1, 2)
    # the last input byte a 16-wide block at output ox reads, relative to ox * sw + off
    span = 15 if sw == 1 else 31
    mult = "rs" if rq.uses_real_scale else "mult"
    full = requant_avx2.store16(rq, "a0", "a1", "", mult, "yrow + ox")
    part = requant_avx2.store16(rq, "a0", "a1", "", mult, "yrow + ox", "OW - ox")
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *wc = (const int16_t *)in_ptrs[1];  /* centred weights [C][KH*KW] */
    int32_t *accs = (int32_t *)workspace;  /* one output row of int32 sums (+ bias) */
{pt["head"]}
    {requant_avx2.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const __m256i vxz = _mm256_set1_epi16((int16_t)xz);
    int32_t toff[{kh * kw}], tkx[{kh * kw}];
    int16_t tw[{kh * kw}];
    int32_t b, o, oy, ox, ky, kx, t, nt;
    /* positions [ox_lo, ox_hi) have every tap's column inside the row */
    const int32_t ox_lo = (PL + {sw - 1}) / {sw};
    const int32_t last = W - 1 - {(kw - 1) * dw} + PL;
    int32_t ox_hi = last < 0 ? 0 : last / {sw} + 1;
    if (ox_hi > OW) ox_hi = OW;
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o) {{
            const {xt} *xc = x + ((int64_t)b * C + o) * H * W;
            {rq.ctype} *yc = y + ((int64_t)b * OC + o) * OH * OW;
            const int16_t *wo = wc + (int64_t)o * {kh * kw};
            {pt["oc_setup"]}
            for (oy = 0; oy < OH; ++oy) {{
                {rq.ctype} *yrow = yc + (int64_t)oy * OW;
                nt = 0;
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy < 0 || iy >= H) continue;
                    for (kx = 0; kx < {kw}; ++kx, ++nt) {{
                        toff[nt] = iy * W + kx * {dw} - PL;  /* input cell = ox * SW + toff */
                        tkx[nt] = kx * {dw} - PL;
                        tw[nt] = wo[ky * {kw} + kx];
                    }}
                }}
                ox = 0;
                VECTOR_ROWS
                for (; ox < OW; ++ox) {{  /* borders: taps in the padding skipped */
                    int32_t acc = 0;
                    for (t = 0; t < nt; ++t) {{
                        const int32_t ix = ox * {sw} + tkx[t];
                        if (ix >= 0 && ix < W)
                            acc += ((int32_t)xc[toff[t] + ox * {sw}] - xz) * (int32_t)tw[t];
                    }}
                    accs[ox] = acc + bo;
                }}
                for (ox = 0; ox + 16 <= OW; ox += 16) {{
                    const __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(accs + ox));
                    const __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(accs + ox + 8));
                    {full}
                }}
                if (ox < OW) {{
                    for (t = OW; t < ox + 16; ++t) accs[t] = 0;  /* (workspace has room) */
                    {{
                        const __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(accs + ox));
                        const __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(accs + ox + 8));
                        {part}
                    }}
                }}
            }}
        }}
"""
    if vec:
        vrows = f"""for (; ox < ox_lo && ox < OW; ++ox) {{
                    int32_t acc = 0;
                    for (t = 0; t < nt; ++t) {{
                        const int32_t ix = ox * {sw} + tkx[t];
                        if (ix >= 0 && ix < W)
                            acc += ((int32_t)xc[toff[t] + ox * {sw}] - xz) * (int32_t)tw[t];
                    }}
                    accs[ox] = acc + bo;
                }}
                /* 16 positions whose {span + 1} input bytes per tap are all in the row */
                for (; ox + 16 <= ox_hi && ox * {sw} + {span} + {(kw - 1) * dw} - PL < W; ox += 16) {{
                    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
                    for (t = 0; t + 1 < nt; t += 2) {{
                        const __m256i v0 = {_load16(xt, sw, f"xc + (toff[t] + ox * {sw})")};
                        const __m256i v1 = {_load16(xt, sw, f"xc + (toff[t + 1] + ox * {sw})")};
                        const __m256i wp = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)tw[t] |
                                                                       ((uint32_t)(uint16_t)tw[t + 1] << 16)));
                        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi16(v0, v1), wp));
                        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi16(v0, v1), wp));
                    }}
                    if (t < nt) {{
                        const __m256i v0 = {_load16(xt, sw, f"xc + (toff[t] + ox * {sw})")};
                        const __m256i wp = _mm256_set1_epi32((int32_t)(uint32_t)(uint16_t)tw[t]);
                        const __m256i z = _mm256_setzero_si256();
                        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi16(v0, z), wp));
                        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi16(v0, z), wp));
                    }}
                    {{  /* in-lane unpacks: s0 holds positions 0-3, 8-11; s1 4-7, 12-15 */
                        const __m256i vb = _mm256_set1_epi32(bo);
                        _mm256_storeu_si256((__m256i *)(void *)(accs + ox),
                                            _mm256_add_epi32(_mm256_permute2x128_si256(s0, s1, 0x20), vb));
                        _mm256_storeu_si256((__m256i *)(void *)(accs + ox + 8),
                                            _mm256_add_epi32(_mm256_permute2x128_si256(s0, s1, 0x31), vb));
                    }}
                }}"""
    else:
        vrows = ""
    body = body.replace("VECTOR_ROWS", vrows)
    name = f"qlinear_dwconv_avx2_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="avx2")
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo),
                  workspace_bytes=4 * (geo["OW"] + 16),
                  note="AVX2 depthwise int8: tap pairs (vpmaddwd), requantized in registers")]
