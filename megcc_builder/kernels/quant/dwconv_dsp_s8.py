"""Depthwise QLinearConv (one filter per channel) on the Cortex-M DSP extension (level
cortex-m-dsp): each channel is copied once into an int16 plane centred on the input zero
point with zero borders, and each output sums its window by pairs of horizontally adjacent
taps: one 32-bit load of two int16 cells and one SMLAD against the pair of weights (centred
int16, packed at compile time; an odd kernel width gets a zero weight). Stride and padding
any, horizontal dilation 1 (the pair must be adjacent). Same int32 sums as the portable
kernel, then its requantization."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .conv_generic_s8 import PARAMS, QTYPES, qlinear_conv_parts
from .mcu_s8 import add_packed, centred_rows, depthwise_applies, fill_plane, output_store, \
    padded_plane


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = depthwise_applies(op, graph)
    if why:
        return why
    dil = op.attrs.get("dilations") or [1, 1]
    return "horizontal dilation (taps not adjacent)" if int(dil[-1]) != 1 else None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # units as conv_dsp_s8.cost: ~2 cycles per tap pair (load + SMLAD), the plane copy
    # ~2 cycles per input cell
    x, y, w = (graph.tensors[n] for n in (op.inputs[0], op.outputs[0], op.inputs[3]))
    kh, kw = w.shape[2:]
    return float(y.numel) * kh * ((kw + 1) // 2) * 0.4 + 0.4 * float(x.numel)


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="dsp",
            applies=_applies, cost=cost, label="Cortex-M DSP: depthwise tap pairs on SMLAD")
def lower_qlinear_dwconv_dsp(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo = pt["geo"]
    kh, kw, sh, sw, dh = (geo[k] for k in ("KH", "KW", "SH", "SW", "DH"))
    kwe = kw + (kw & 1)
    hp, wp = padded_plane(geo, kwe)
    rows = centred_rows(graph, op, 3, 5).reshape(-1, kh, kw)
    packed = np.zeros((rows.shape[0], kh, kwe), np.int16)
    packed[:, :, :kw] = rows
    ins = list(pt["ins"])
    ins[1] = add_packed(graph, op.inputs[3], "smlad_pairs", packed, "int16")
    xt = pt["xt"]
    taps = "\n".join(
        f"                    memcpy(&xv, r{ky} + {kx}, 4);\n"
        f"                    acc = __smlad(wv[{ky * kwe // 2 + kx // 2}], xv, acc);"
        for ky in range(kh) for kx in range(0, kwe, 2))
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *wp = (const int16_t *)in_ptrs[1];  /* [C][KH][KWE] centred */
{pt["head"]}
    const int32_t xz = {pt["x_zp"]};
    const int32_t HP = {hp}, WP = {wp};
    int16_t *plane = (int16_t *)workspace;  /* [HP][WP] one channel, centred, zero borders */
    int32_t b, ch, oy, ox, iy, ix, i;
    for (b = 0; b < N; ++b)
        for (ch = 0; ch < OC; ++ch) {{
            const {xt} *xc = x + ((int64_t)b * C + ch) * H * W;
            const int64_t yc = ((int64_t)b * OC + ch) * OH * OW;
            int32_t wv[{kh * kwe // 2}];
            memcpy(wv, wp + (int64_t)ch * {kh * kwe}, sizeof wv);  /* int16 pairs */
            {fill_plane(xt)}
            for (oy = 0; oy < OH; ++oy) {{
                const int16_t *row = plane + (int64_t)(oy * {sh}) * WP;
                {"".join(f"const int16_t *r{ky} = row + {ky * dh} * WP; " for ky in range(kh))}
                for (ox = 0; ox < OW; ++ox) {{
                    int32_t acc = 0, xv;
{taps}
                    {output_store(pt, "acc", "ch", "yc + (int64_t)oy * OW + ox")}
                    {"".join(f"r{ky} += {sw}; " for ky in range(kh))}
                }}
            }}
        }}
"""
    rq = pt["rq"]
    name = f"qlinear_dwconv_smlad_dsp_k{kh}x{kw}_s{sh}x{sw}_d{dh}_p{hp}x{wp}_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, tuple(rq.helpers), isa="dsp")
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo),
                  workspace_bytes=2 * hp * wp + 4,
                  note="Cortex-M DSP int8 depthwise: int16 plane, tap pairs on SMLAD")]
