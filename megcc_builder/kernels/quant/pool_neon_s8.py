"""MaxPool on int8 / uint8 codes with NEON (ARMv7 and AArch64): pool_avx2_s8's separable
form (the window rows' maximum into a padded row buffer, then the maximum of kw cells of it
per output), 16 codes per instruction (`vmaxq_u8` / `vmaxq_s8`). Stride 2 takes the even
bytes of 32 buffer cells (`vld2q`). Other strides: scalar horizontal pass. The maximum of the
codes is the codes of the maximum (dequantization is monotonic): exact, as the portable
kernel."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .pool_generic_s8 import MAXPOOL_PARAMS, QTYPES, maxpool_s8_applies
from .requant import CTYPE, SHORT

SLACK = 96  # buffer cells past the last window: whole vectors are read and written there


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return None if maxpool_s8_applies(op, graph) else "not a 2-D int8/uint8 MaxPool"


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    return (float(x.numel) * kh * y.shape[2] / max(1, x.shape[2]) + float(y.numel) * kw) / 8.0


@implements("MaxPool", dtypes=QTYPES, requires="neon", applies=_applies, cost=cost,
            label="neon int8 max pool (separable, 16 codes per vmax)")
def lower_maxpool_s8_neon(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    ct = CTYPE[x.dtype]
    low = "INT8_MIN" if x.dtype == "int8" else "0"
    sfx = "s8" if x.dtype == "int8" else "u8"
    vmax = f"vmaxq_{sfx}"
    ld = f"vld1q_{sfx}({{p}})"
    st = f"vst1q_{sfx}"
    if sw == 1:
        taps = [ld.format(p=f"m + ox + {kx * dw}") for kx in range(kw)]
    elif sw == 2:
        taps = [f"vld2q_{sfx}(m + 2 * ox + {kx * dw}).val[0]" for kx in range(kw)]
    else:
        taps = []
    if taps:
        red = taps[0]
        for t in taps[1:]:
            red = f"{vmax}({red}, {t})"
        # the last block too: its windows read the buffer's slack (low cells); only the
        # outputs inside the row are copied out
        horizontal = f"""for (ox = 0; ox + 16 <= OW; ox += 16)
                {st}(yc + (int64_t)oy * OW + ox, {red});
            if (ox < OW) {{
                {ct} tail[16];
                {st}(tail, {red});
                memcpy(yc + (int64_t)oy * OW + ox, tail, (size_t)(OW - ox));
                ox = OW;
            }}
            for (; ox < OW; ++ox) {{"""
    else:
        horizontal = "for (ox = 0; ox < OW; ++ox) {"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    {ct} *m = ({ct} *)workspace;  /* WP cells: PL low cells, the row maxima, low cells */
    int32_t c, oy, ox, ky, kx, i;
    for (c = 0; c < NC; ++c) {{
        const {ct} *xc = x + (int64_t)c * H * W;
        {ct} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            const int32_t iy0 = oy * {sh} - PT;
            memset(m, ({ct}){low}, (size_t)WP + {SLACK});
            for (ky = 0; ky < {kh}; ++ky) {{
                const int32_t iy = iy0 + ky * {dh};
                if (iy >= 0 && iy < H) {{
                    const {ct} *r = xc + (int64_t)iy * W;
                    {ct} *mm = m + PL;
                    for (i = 0; i + 16 <= W; i += 16)
                        {st}(mm + i, {vmax}({ld.format(p="r + i")}, {ld.format(p="mm + i")}));
                    if (i < W) {{  /* the row's last cells through a buffer of low cells */
                        {ct} tail[16];
                        memset(tail, ({ct}){low}, sizeof tail);
                        memcpy(tail, r + i, (size_t)(W - i));
                        {st}(mm + i, {vmax}({ld.format(p="tail")}, {ld.format(p="mm + i")}));
                    }}
                }}
            }}
            {horizontal}
                const {ct} *w0 = m + ox * {sw};
                {ct} v = w0[0];
                for (kx = 1; kx < {kw}; ++kx) v = w0[kx * {dw}] > v ? w0[kx * {dw}] : v;
                yc[oy * OW + ox] = v;
            }}
        }}
    }}
"""
    name = f"maxpool_sep_neon_{SHORT[x.dtype]}_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    kernel = make_kernel(name, body, MAXPOOL_PARAMS, (), isa="neon")
    wp = max(pads[1] + x.shape[3], (y.shape[3] - 1) * sw + (kw - 1) * dw + 1)
    params = MAXPOOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                 OH=y.shape[2], OW=y.shape[3], PT=pads[0], PL=pads[1], WP=wp)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  workspace_bytes=wp + SLACK, note="NEON int8 max pool (separable)")]

