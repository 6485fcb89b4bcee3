"""Depthwise QLinearConv on Cortex-M Helium (level cortex-m-mve): each channel is copied
once into an int16 plane centred on the input zero point with zero borders; four adjacent
outputs of a row are computed at once in int32 lanes: per tap, one widening load of four
int16 cells (VLDRH.S32; a gather for strides other than 1) and one VMLA by the tap's
weight. Any stride, padding and dilation. Same int32 sums as the portable kernel, then its
requantization per element."""
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
    return depthwise_applies(op, graph)


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # units as conv_dsp_s8.cost: ~2 cycles per (tap, 4 outputs), the plane copy ~2 cycles
    # per input cell, the 4-output blocks' store ~2 cycles per output
    x, y, w = (graph.tensors[n] for n in (op.inputs[0], op.outputs[0], op.inputs[3]))
    kh, kw = w.shape[2:]
    return float(y.numel) * (kh * kw * 0.1 + 0.4) + 0.4 * float(x.numel)


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="mve",
            applies=_applies, cost=cost, label="Cortex-M Helium: depthwise, 4 outputs per VMLA")
def lower_qlinear_dwconv_mve(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo = pt["geo"]
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("KH", "KW", "SH", "SW", "DH", "DW"))
    # the last block of 4 outputs reads up to 3 outputs past the row's end: slack columns
    hp, wp = padded_plane(geo, (kw - 1) * dw + 1 + 3 * sw)
    rows = centred_rows(graph, op, 3, 5).astype(np.int32)
    ins = list(pt["ins"])
    ins[1] = add_packed(graph, op.inputs[3], "mve_taps", rows, "int32")
    xt = pt["xt"]
    load = ("vldrhq_s32(rk + {off})" if sw == 1 else
            "vldrhq_gather_shifted_offset_s32(rk + {off}, offs)")
    taps = "\n".join(
        f"                        acc = vmlaq_n_s32(acc, {load.format(off=kx * dw)}, "
        f"wo[{ky * kw + kx}]);" for ky in range(kh) for kx in range(kw))
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int32_t *wt = (const int32_t *)in_ptrs[1];  /* [C][KH * KW] centred */
{pt["head"]}
    const int32_t xz = {pt["x_zp"]};
    const int32_t HP = {hp}, WP = {wp};
    int16_t *plane = (int16_t *)workspace;  /* [HP][WP] one channel, centred, zero borders */
    const uint32x4_t offs = vmulq_n_u32(vidupq_n_u32(0, 1), {sw});  /* lanes' columns */
    int32_t b, ch, oy, ox, iy, ix, i, t;
    (void)offs;
    for (b = 0; b < N; ++b)
        for (ch = 0; ch < OC; ++ch) {{
            const {xt} *xc = x + ((int64_t)b * C + ch) * H * W;
            const int64_t yc = ((int64_t)b * OC + ch) * OH * OW;
            const int32_t *wo = wt + (int64_t)ch * {kh * kw};
            {fill_plane(xt)}
            for (oy = 0; oy < OH; ++oy)
                for (ox = 0; ox < OW; ox += 4) {{
                    int32_t sums[4];
                    int32x4_t acc = vdupq_n_s32(0);
                    const int16_t *rk = plane + (int64_t)(oy * {sh}) * WP + ox * {sw};
{_rows(kh, dh, taps, kw)}
                    vst1q_s32(sums, acc);
                    for (t = 0; t < 4 && ox + t < OW; ++t) {{
                        {output_store(pt, "sums[t]", "ch", "yc + (int64_t)oy * OW + ox + t")}
                    }}
                }}
        }}
"""
    rq = pt["rq"]
    name = (f"qlinear_dwconv_vmla_mve_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_p{hp}x{wp}_"
            f"{pt['variant']}")
    kernel = make_kernel(name, body, PARAMS, tuple(rq.helpers), isa="mve")
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo),
                  workspace_bytes=2 * hp * wp + 16,
                  note="Cortex-M Helium int8 depthwise: int16 plane, 4 outputs per VMLA")]


def _rows(kh: int, dh: int, taps: str, kw: int) -> str:
    """The taps of each kernel row, `rk` moved down by the dilation between rows."""
    lines = taps.split("\n")
    out = []
    for ky in range(kh):
        if ky:
            out.append(f"                        rk += {dh} * WP;")
        out.extend(lines[ky * kw:(ky + 1) * kw])
    return "                    {\n" + "\n".join(out) + "\n                    }"
