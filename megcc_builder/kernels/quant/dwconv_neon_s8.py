"""Depthwise QLinearConv on NEON (ARMv7 and AArch64; one filter per channel),
bit-identical to the portable row kernel.

Each channel plane is first copied into a padded plane whose border holds the input zero
point (every tap of every output position then reads a real cell that contributes exactly
what the padding does: nothing), with room past the right edge for whole 8-wide blocks.
Per 8 output positions, each tap's 8 input cells are widened to int16 and centred
(stride 1: an 8-byte load, `vmovl`; stride 2: the even bytes of a 16-byte `vld2`) and
multiplied by the tap's centred weight into two int32x4 sums (`vmlal_n_s16`, exact:
operands within [-255, 255]); the sums are requantized in registers (requant_neon) and
stored (the last block of a row through a buffer). Other strides sum the padded plane with
a scalar loop. Weights are centred at compile time."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..conv.geometry import conv_schema
from ..registry import implements
from . import requant_neon
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
    if op.attrs.get("activation") not in requant_neon.BOUND_ACTIVATIONS:
        return "real-valued activation"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # per 8 outputs and tap: a load, a widen, a subtract, two vmlal (~0.6 cycles per
    # output and tap), the requantization ~1.5 cycles per output; the plane copy ~0.25
    # cycles per input. Not scaled by the core's rate, as the portable estimate is not.
    y, w, x = (graph.tensors[n] for n in (op.outputs[0], op.inputs[3], op.inputs[0]))
    taps = float(np.prod(w.shape[2:]))
    return float(y.numel) * (taps * 0.6 + 1.5) + 0.25 * float(x.numel)


def _centred_weights(op: Op, graph: Graph, oc: int) -> str:
    name = graph.unique_name(op.inputs[3] + "__neon_centred")
    graph.add_const(name, centred_weights(op, graph).astype(np.int16).reshape(-1), "int16")
    return name


def _load8(xt: str, sw: int, addr: str) -> str:
    """C expression: 8 int16 input cells at stride `sw` from `addr`, centred."""
    if sw == 1:
        v = (f"vreinterpretq_s16_u16(vmovl_u8(vld1_u8({addr})))" if xt == "uint8_t" else
             f"vmovl_s8(vld1_s8({addr}))")
    else:
        v = (f"vreinterpretq_s16_u16(vmovl_u8(vld2_u8({addr}).val[0]))" if xt == "uint8_t"
             else f"vmovl_s8(vld2_s8({addr}).val[0])")
    return f"vsubq_s16({v}, vxz)"


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon",
            applies=_applies, cost=cost, label="neon depthwise, 8 positions per vmlal pair")
def lower_qlinear_dwconv_neon(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq, xt = pt["geo"], pt["rq"], pt["xt"]
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("KH", "KW", "SH", "SW", "DH", "DW"))
    taps = kh * kw
    wp_ = max(geo["PL"] + geo["W"], -(-geo["OW"] // 8) * 8 * sw + (kw - 1) * dw + 16)
    hp_ = max(geo["PT"] + geo["H"], (geo["OH"] - 1) * sh + (kh - 1) * dh + 1)
    ins = list(pt["ins"])
    ins[1] = _centred_weights(op, graph, geo["OC"])
    mult = "rs" if rq.uses_real_scale else "mult"
    vector = sw in (1, 2)
    if vector:
        full = requant_neon.store(rq, ["s0", "s1"], "bo", mult, "yrow + ox", "8")
        part = requant_neon.store(rq, ["s0", "s1"], "bo", mult, "yrow + ox", "OW - ox")
        row = f"""for (ox = 0; ox < OW; ox += 8) {{
                    const {xt} *src = prow + (int64_t)ox * {sw};
                    int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
                    int32_t t;
                    for (t = 0; t < {taps}; ++t) {{
                        const int16x8_t v = {_load8(xt, sw, "src + toff[t]")};
                        s0 = vmlal_n_s16(s0, vget_low_s16(v), wo[t]);
                        s1 = vmlal_n_s16(s1, vget_high_s16(v), wo[t]);
                    }}
                    if (ox + 8 <= OW) {full}
                    else {part}
                }}"""
    else:
        row = f"""for (ox = 0; ox < OW; ++ox) {{
                    const {xt} *src = prow + (int64_t)ox * {sw};
                    int32_t acc = 0, t;
                    for (t = 0; t < {taps}; ++t)
                        acc += ((int32_t)src[toff[t]] - xz) * (int32_t)wo[t];
                    yrow[ox] = {rq.store(rq.value(wrapping_add("acc", "bo"), "mult", "rs"), "yz")};
                }}"""
    vec_setup = (requant_neon.setup(rq) + "    const int16x8_t vxz = vdupq_n_s16((int16_t)"
                 f"{pt['x_zp']});") if vector else ""
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
    name = f"qlinear_dwconv_neon_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="neon",
                         helpers=() if vector else rq.helpers)
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo, HP=hp_, WP=wp_),
                  workspace_bytes=hp_ * wp_ + 64,
                  note="NEON depthwise int8 on a padded plane: 8 positions per vmlal pair, "
                       "requantized in registers")]
