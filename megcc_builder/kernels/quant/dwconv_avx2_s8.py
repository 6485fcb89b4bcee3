"""Depthwise QLinearConv on AVX2 (one filter per channel), bit-identical to the portable
row kernel.

Each channel plane is first copied into a padded plane whose border holds the input zero
point (so every tap of every output position reads a real cell that contributes exactly
what the padding does: nothing), with room past the right edge for whole 16-wide blocks.
Then, per 16 output positions, the taps are taken two at a time: each tap's 16 input cells
are widened to int16 and centred (stride 1: a 16-byte load; stride 2: the even bytes of a
32-byte load), interleaved into int16 pairs and multiplied by the pair of centred weights
with `vpmaddwd`, exact in int32 (operands within [-255, 255]); the sums are requantized in
registers (requant_avx2) and stored (the last block of a row through a buffer). Other
strides sum the padded plane with a scalar loop. Weights are centred at compile time."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..registry import implements
from . import requant_avx2
from ...codegen.params import i32
from ..conv.geometry import conv_schema
from .conv_generic_s8 import QTYPES, qlinear_conv_parts
from .requant import wrapping_add
from .weights import centred_weights

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("HP", "rows of the padded plane"),
                     i32("WP", "row length of the padded plane"))


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
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
    name = graph.unique_name(op.inputs[3] + "__avx2_centred")
    graph.add_const(name, centred_weights(op, graph).astype(np.int16).reshape(-1), "int16")
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
    taps = kh * kw
    wp_ = max(geo["PL"] + geo["W"], -(-geo["OW"] // 16) * 16 * sw + (kw - 1) * dw + 32)
    hp_ = max(geo["PT"] + geo["H"], (geo["OH"] - 1) * sh + (kh - 1) * dh + 1)
    ins = list(pt["ins"])
    ins[1] = _centred_weights(op, graph, geo["OC"])
    mult = "rs" if rq.uses_real_scale else "mult"
    full = requant_avx2.store16(rq, "a0", "a1", "bo", mult, "yrow + ox")
    part = requant_avx2.store16(rq, "a0", "a1", "bo", mult, "yrow + ox", "OW - ox")
    if sw in (1, 2):
        pairs = []
        for t in range(0, taps, 2):
            v0 = _load16(xt, sw, f"src + toff[{t}]")
            if t + 1 < taps:
                v1 = _load16(xt, sw, f"src + toff[{t + 1}]")
                wpair = (f"(int32_t)((uint32_t)(uint16_t)wo[{t}] | "
                         f"((uint32_t)(uint16_t)wo[{t + 1}] << 16))")
            else:  # an odd tap count: the last tap paired with a zero weight
                v1 = "_mm256_setzero_si256()"
                wpair = f"(int32_t)(uint32_t)(uint16_t)wo[{t}]"
            pairs.append(f"""{{
                        const __m256i v0 = {v0};
                        const __m256i v1 = {v1};
                        const __m256i wp = _mm256_set1_epi32({wpair});
                        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi16(v0, v1), wp));
                        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi16(v0, v1), wp));
                    }}""")
        row = f"""for (ox = 0; ox < OW; ox += 16) {{
                    const {xt} *src = prow + (int64_t)ox * {sw};
                    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
                    {"".join(pairs)}
                    {{  /* in-lane unpacks: s0 holds positions 0-3, 8-11; s1 4-7, 12-15 */
                        const __m256i a0 = _mm256_permute2x128_si256(s0, s1, 0x20);
                        const __m256i a1 = _mm256_permute2x128_si256(s0, s1, 0x31);
                        if (ox + 16 <= OW) {full}
                        else {part}
                    }}
                }}"""
    else:
        row = f"""for (ox = 0; ox < OW; ++ox) {{
                    const {xt} *src = prow + (int64_t)ox * {sw};
                    int32_t acc = 0, t;
                    for (t = 0; t < {taps}; ++t)
                        acc += ((int32_t)src[toff[t]] - xz) * (int32_t)wo[t];
                    yrow[ox] = {rq.store(rq.value(wrapping_add("acc", "bo"), "mult", "rs"), "yz")};
                }}"""
    vec_setup = (requant_avx2.setup(rq) + "    const __m256i vxz = _mm256_set1_epi16((int16_t)"
                 f"{pt['x_zp']});") if sw in (1, 2) else ""
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *wc = (const int16_t *)in_ptrs[1];  /* centred weights [C][taps] */
    {xt} *pad = ({xt} *)workspace;  /* [HP][WP]: one channel, border = input zero point */
{pt["head"]}
    {vec_setup}
    const int32_t xz = {pt["x_zp"]};
    int32_t toff[{taps}];  /* tap -> offset in the padded plane from the window's corner */
    int32_t b, o, oy, ox, iy;
    for (iy = 0; iy < {taps}; ++iy)
        toff[iy] = (iy / {kw}) * {dh} * WP + (iy % {kw}) * {dw};
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o) {{
            const {xt} *xc = x + ((int64_t)b * C + o) * H * W;
            {rq.ctype} *yc = y + ((int64_t)b * OC + o) * OH * OW;
            const int16_t *wo = wc + (int64_t)o * {taps};
            {pt["oc_setup"]}
            memset(pad, ({xt})xz, (size_t)HP * WP);
            for (iy = 0; iy < H; ++iy)
                memcpy(pad + (int64_t)(PT + iy) * WP + PL, xc + (int64_t)iy * W, (size_t)W);
            for (oy = 0; oy < OH; ++oy) {{
                {rq.ctype} *yrow = yc + (int64_t)oy * OW;
                const {xt} *prow = pad + (int64_t)oy * {sh} * WP;
                {row}
            }}
        }}
"""
    name = f"qlinear_dwconv_avx2_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="avx2",
                         helpers=() if sw in (1, 2) else rq.helpers)
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo, HP=hp_, WP=wp_),
                  workspace_bytes=hp_ * wp_ + 64,
                  note="AVX2 depthwise int8 on a padded plane: tap pairs (vpmaddwd), "
                       "requantized in registers")]
