"""The separable int8 / uint8 MaxPool kernel both vector ISAs generate (pool_avx2_s8,
pool_neon_s8): per output row, the window rows' maximum goes into a padded row buffer (low
cells around it), then each output is the maximum of kw cells of it; whole vectors for the
row maxima, and for the horizontal pass at strides 1 and 2 (the ISA's even-byte load).
Other strides take the scalar horizontal pass. The maximum of the codes is the code of the
maximum (dequantization is monotonic): exact, as the portable kernel."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from .pool_generic_s8 import MAXPOOL_PARAMS
from .requant import CTYPE, SHORT


@dataclass(frozen=True)
class ByteVectors:
    """What one ISA's byte vectors look like in C, for a dtype's signedness."""
    isa: str                               # kernel tag and name part ("avx2", "neon")
    lanes: int                             # codes per vector
    slack: int                             # buffer cells past the last window (whole vectors)
    vmax: str                              # the lane-wise maximum
    load: Callable[[str], str]             # expression loading a vector at pointer p
    store: Callable[[str, str], str]       # statement storing vector v at pointer p
    even: Optional[Callable[[str], str]]   # the even bytes of 2 vectors at p (stride 2)
    helpers: Tuple = ()                    # helpers the even-byte load needs
    note: str = ""


def lower_separable_maxpool(op: Op, graph: Graph, v: ByteVectors):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    ct = CTYPE[x.dtype]
    low = "INT8_MIN" if x.dtype == "int8" else "0"
    n = v.lanes
    if sw == 1:
        taps = [v.load(f"m + ox + {kx * dw}") for kx in range(kw)]
    elif sw == 2:
        taps = [v.even(f"m + 2 * ox + {kx * dw}") for kx in range(kw)]
    else:
        taps = []
    if taps:
        red = taps[0]
        for t in taps[1:]:
            red = f"{v.vmax}({red}, {t})"
        # the last block too: its windows read the buffer's slack (low cells); only the
        # outputs inside the row are copied out
        horizontal = f"""for (ox = 0; ox + {n} <= OW; ox += {n})
                {v.store("yc + (int64_t)oy * OW + ox", red)}
            if (ox < OW) {{
                {ct} tail[{n}];
                {v.store("tail", red)}
                memcpy(yc + (int64_t)oy * OW + ox, tail, (size_t)(OW - ox));
                ox = OW;
            }}
            for (; ox < OW; ++ox) {{"""
    else:
        horizontal = "for (ox = 0; ox < OW; ++ox) {"
    row_max = v.store("mm + i", f"{v.vmax}({v.load('r + i')}, {v.load('mm + i')})")
    tail_max = v.store("mm + i", f"{v.vmax}({v.load('tail')}, {v.load('mm + i')})")
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    {ct} *m = ({ct} *)workspace;  /* WP cells: PL low cells, the row maxima, low cells */
    int32_t c, oy, ox, ky, kx, i;
    for (c = 0; c < NC; ++c) {{
        const {ct} *xc = x + (int64_t)c * H * W;
        {ct} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            const int32_t iy0 = oy * {sh} - PT;
            memset(m, ({ct}){low}, (size_t)WP + {v.slack});
            for (ky = 0; ky < {kh}; ++ky) {{
                const int32_t iy = iy0 + ky * {dh};
                if (iy >= 0 && iy < H) {{
                    const {ct} *r = xc + (int64_t)iy * W;
                    {ct} *mm = m + PL;
                    for (i = 0; i + {n} <= W; i += {n})
                        {row_max}
                    if (i < W) {{  /* the row's last cells through a buffer of low cells */
                        {ct} tail[{n}];
                        memset(tail, ({ct}){low}, sizeof tail);
                        memcpy(tail, r + i, (size_t)(W - i));
                        {tail_max}
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
    helpers = v.helpers if sw == 2 else ()
    name = f"maxpool_sep_{v.isa}_{SHORT[x.dtype]}_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    kernel = make_kernel(name, body, MAXPOOL_PARAMS, helpers, isa=v.isa)
    wp = max(pads[1] + x.shape[3], (y.shape[3] - 1) * sw + (kw - 1) * dw + 1)
    params = MAXPOOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                 OH=y.shape[2], OW=y.shape[3], PT=pads[0], PL=pads[1], WP=wp)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  workspace_bytes=wp + v.slack, note=v.note)]
