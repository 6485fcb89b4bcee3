"""The separable int8 / uint8 MaxPool kernel both vector ISAs generate (pool_avx2_s8,
pool_neon_s8): per output row, the maximum of the window's input rows goes into a row
buffer with low cells around it, then each output is the maximum of kw cells of it; whole
vectors for the row maxima, and for the horizontal pass at strides 1 and 2 (the ISA's
even-byte load). Other strides take the scalar horizontal pass.

No library call per row (it was most of the time on SqueezeNet's 111/55/27 wide rows): the
buffer's low cells (left padding, past the row) are written once per call and only the
row's own cells are stored per row; a window row outside the input reads a row of low
cells; a row or output row whose length is not a whole number of vectors ends with one
vector overlapping the previous one (a maximum recomputed is the same), and only one
shorter than a vector takes the scalar loop. The maximum of the codes is the code of the
maximum (dequantization is monotonic): exact, as the portable kernel."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from .pool_generic_s8 import MAXPOOL_PARAMS
from .requant import CTYPE, SHORT


@dataclass(frozen=True)
class VectorWidth:
    """One width of an ISA's byte vectors, for a dtype's signedness."""
    lanes: int                             # codes per vector
    vmax: str                              # the lane-wise maximum
    load: Callable[[str], str]             # expression loading a vector at pointer p
    store: Callable[[str, str], str]       # statement storing vector v at pointer p
    even: Optional[Callable[[str], str]]   # the even bytes of 2 vectors at p (stride 2)


@dataclass(frozen=True)
class ByteVectors:
    """An ISA's byte vectors: its widths, widest first (a row narrower than the widest
    takes the next that fits, so 27- and 13-wide rows stay vectorised)."""
    isa: str                               # kernel tag and name part ("avx2", "neon")
    widths: Tuple[VectorWidth, ...]
    helpers: Tuple = ()                    # helpers the even-byte loads need
    note: str = ""


def _max_of(w: VectorWidth, terms):
    red = terms[0]
    for t in terms[1:]:
        red = f"{w.vmax}({red}, {t})"
    return red


def _blocks(widths, length: str, index: str, step) -> str:
    """C running step(w, pos) over [0, length) in whole vectors of the widest width that
    fits, the last one ending at the end (overlapping); `index` ends at what is left for
    a scalar loop (only rows narrower than every width)."""
    out = f"{index} = 0;\n"
    for k, w in enumerate(widths):
        n = w.lanes
        out += f"""            {"else " if k else ""}if ({length} >= {n}) {{
                for (; {index} + {n} <= {length}; {index} += {n})
                    {step(w, index)}
                if ({index} < {length}) {{
                    {index} = {length} - {n};
                    {step(w, index)}
                    {index} = {length};
                }}
            }}
"""
    return out


def _buffer_cells(op: Op, graph: Graph, n: int) -> int:
    """Cells of the row buffer from its start: the low lead (left padding rounded up to a
    vector), then every cell a window or a whole-vector horizontal load reads, plus a
    vector."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kw = op.attrs["kernel_shape"][1]
    sw = op.attrs.get("strides", [1, 1])[1]
    dw = op.attrs.get("dilations", [1, 1])[1]
    pl = list(op.attrs.get("pads", [0, 0, 0, 0]))[1]
    lead = -(-pl // n) * n
    reach = max(pl + x.shape[3], sw * y.shape[3] + (kw - 1) * dw)
    return lead + reach + 2 * n


def lower_separable_maxpool(op: Op, graph: Graph, v: ByteVectors):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    ct = CTYPE[x.dtype]
    low = "INT8_MIN" if x.dtype == "int8" else "0"
    n = v.widths[0].lanes
    scalar = f"""for (; ox < OW; ++ox) {{
                const {ct} *w0 = m + ox * {sw};
                {ct} v = w0[0];
                for (kx = 1; kx < {kw}; ++kx) v = w0[kx * {dw}] > v ? w0[kx * {dw}] : v;
                yr[ox] = v;
            }}"""
    if sw in (1, 2):
        def h_step(w, ix):
            tap = w.load if sw == 1 else w.even
            return w.store(f"yr + {ix}",
                           _max_of(w, [tap(f"m + {sw} * {ix} + {kx * dw}") for kx in range(kw)]))
        horizontal = _blocks(v.widths, "OW", "ox", h_step) + "            " + scalar
    else:
        horizontal = f"ox = 0;\n            {scalar}"

    def v_step(w, ix):
        return w.store(f"mm + {ix}", _max_of(w, [w.load(f"r[{k}] + {ix}") for k in range(kh)]))
    vertical = _blocks(v.widths, "W", "i", v_step)
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    /* BL buffer cells (low lead, row maxima, low cells), then a row of W low cells */
    const int32_t lead = (PL + {n - 1}) / {n} * {n};
    const int32_t reach = {sw} * OW + {(kw - 1) * dw};  /* past the last vector window */
    const int32_t BL = lead + (WP > reach ? WP : reach) + {2 * n};
    {ct} *buf = ({ct} *)workspace;
    {ct} *mm = buf + lead;       /* cell i: input column i's window-row maximum */
    const {ct} *m = mm - PL;     /* cell j: padded column j */
    const {ct} *lowrow = buf + BL;
    const {ct} *r[{kh}];
    int32_t c, oy, ox, ky, kx, i;
    (void)kx;
    memset(buf, ({ct}){low}, (size_t)BL + (size_t)W);
    for (c = 0; c < NC; ++c) {{
        const {ct} *xc = x + (int64_t)c * H * W;
        {ct} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            {ct} *yr = yc + (int64_t)oy * OW;
            for (ky = 0; ky < {kh}; ++ky) {{
                const int32_t iy = oy * {sh} - PT + ky * {dh};
                r[ky] = iy >= 0 && iy < H ? xc + (int64_t)iy * W : lowrow;
            }}
            {vertical}
            for (; i < W; ++i) {{
                {ct} v = r[0][i];
                for (ky = 1; ky < {kh}; ++ky) v = r[ky][i] > v ? r[ky][i] : v;
                mm[i] = v;
            }}
            {horizontal}
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
                  workspace_bytes=_buffer_cells(op, graph, n) + x.shape[3], note=v.note)]
