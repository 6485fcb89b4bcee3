"""Vector max and average pooling (NCHW, float32): one vector of outputs at a time over a
padded input plane, generated for one vector vocabulary (the level's f32 `direct` one).

Same plane scheme as the depthwise kernel (conv/depthwise_simd_f32.py): each channel is
copied once into a plane padded with -inf (max) or 0 (average), so every window is a run of full vector
loads (stride 2 by deinterleaving) and max or add operations. NaN propagates like the
portable kernel: a NaN input anywhere in the window gives NaN. Average pooling divides by
the window's count of input cells (or of padded cells, count_include_pad), which factors
into a row count times a column count: the kernel multiplies each sum by 1/rows (per output
row) and 1/columns (per output column, a table built once per call).
"""
from __future__ import annotations

from typing import Optional

from ...codegen.kernel import Instr
from ...codegen.parallel import (MAX_SCRATCH_PARTS, MIN_RANGE_ELEMENTS, parts_with_scratch,
                                 scratch_bytes, scratch_parts, scratch_stride, scratch_tag,
                                 split_kernel)
from ...codegen.params import i32, int_constants, schema
from ...codegen.vector import Simd
from ...codegen.window import plane, store_row_tail, window_row
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import F32, implements
from .geometry import pool_cost, pool_geometry


_PLANE = (i32("NC", "planes (N * C)"), i32("H", "input height"), i32("W", "input width"),
          i32("OH", "output height"), i32("OW", "output width"), i32("PT", "padding top"),
          i32("PL", "padding left"), i32("PH", "padded plane height"),
          i32("PW", "padded plane width (row stride)"))
MAX_PARAMS = schema(*_PLANE)
AVG_PARAMS = schema(*_PLANE, i32("PB", "padding bottom"), i32("PR", "padding right"))


def pool_parts(most: int = MAX_SCRATCH_PARTS) -> str:
    """C expression: parts of a plane pooling (ranges of planes, a padded plane each): one
    per thread (at most `most`, scratch_parts) when the output is large enough to pay for
    waking the pool."""
    if most == 1:
        return "1"
    return f"((int64_t)NC * OH * OW >= {MIN_RANGE_ELEMENTS // 4} ? {parts_with_scratch('NC', most)} : 1)"


def _max_instr(op, geo, s, name: str, body: str, scratch_floats: int, note: str):
    """The max-pool instruction both forms make: the padded-plane geometry as parameters,
    `scratch_floats` of scratch per part (a whole plane, or the separable form's one row)."""
    kernel = split_kernel(name, body, pool_parts(geo["most"]), MAX_PARAMS, ("math",), isa=s.isa)
    ph, pw = plane(geo, s.vw)
    pads = geo["pads"]
    params = MAX_PARAMS.pack(NC=geo["n"] * geo["c"], H=geo["h"], W=geo["w"], OH=geo["oh"],
                             OW=geo["ow"], PT=pads[0], PL=pads[1], PH=ph, PW=pw)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  workspace_bytes=scratch_bytes(_scratch_parts(geo), scratch_floats),
                  note=note)]


def _scratch_parts(geo) -> int:
    nc = geo["n"] * geo["c"]
    return min(geo["most"], nc) if isinstance(nc, int) else geo["most"]


def _geometry(op: Op, graph: Graph) -> dict:
    """pool_geometry and the most parts with a scratch area (max_threads: scratch_parts)."""
    geo = pool_geometry(op, graph)
    geo["most"] = scratch_parts(graph)
    return geo


def lower_maxpool(op: Op, graph: Graph, s: Simd):
    geo = _geometry(op, graph)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"maxpool_{tag}{'_sep' if sw == 2 else ''}_f32_{s.name}{scratch_tag(geo['most'])}"
    if s.max_keeps_nan:
        extra, track, apply = "", "", ""
    else:  # AVX2 maxps returns its second operand for a NaN: track NaN lanes apart
        extra = ", nan{u} = _mm256_setzero_ps()"
        track = " nan{u} = _mm256_or_ps(nan{u}, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));"
        apply = "acc{u} = _mm256_blendv_ps(acc{u}, _mm256_set1_ps(NAN), nan{u});"
    row_loop = window_row(
        s, sw, lambda u: f"{s.vtype} acc{u} = {s.set1('-INFINITY')}" + extra.format(u=u) + ";",
        lambda u, x: (f"{{ const {s.vtype} xv = {x}; acc{u} = {s.max(f'acc{u}', 'xv')};"
                      + track.format(u=u) + " }"),
        lambda u: apply.format(u=u), 12)
    if sw == 2:
        return _maxpool_split(op, graph, s, geo, name, extra, track, apply)
    # parts: ranges of planes, each with its own padded plane in the workspace
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    float *pl = (float *)workspace + part * {scratch_stride('PH * PW')};  /* this part's -inf-padded plane */
    const int32_t c0 = (int32_t)((int64_t)NC * part / parts),
                  c1 = (int32_t)((int64_t)NC * (part + 1) / parts);
{{geometry}}    int32_t c, oy, ox, ky, kx;
    for (c = c0; c < c1; ++c) {{
        float *yc = y + (int64_t)c * OH * OW;
        megcc_pad_plane(x + (int64_t)c * H * W, H, W, PT, PL, PH, PW, -INFINITY, pl, c > c0);
        for (oy = 0; oy < OH; ++oy) {{
            const float *row = pl + (int64_t)oy * SH * PW;
            float *yr = yc + (int64_t)oy * OW;
            {row_loop}
        }}
    }}
"""
    body = body.replace("{geometry}", int_constants(body, KH=kh, KW=kw, SH=sh, SW=sw, DH=dh,
                                                    DW=dw))
    ph, pw = plane(geo, s.vw)
    return _max_instr(op, geo, s, name, body, ph * pw,
                      f"{s.label} max pooling over a -inf-padded {ph!r}x{pw!r} plane, {s.vw} "
                      f"outputs per vector")


def _maxpool_split(op: Op, graph: Graph, s: Simd, geo, name: str, extra: str, track: str,
                   apply: str):
    """Stride-2 max pooling, separably: per output row, the lane-wise max of its window's
    input rows (plain loads over the whole row) into a -inf-bordered row buffer, then the
    stride-2 max along that row (KW deinterleaving loads per output vector). Through the
    padded plane every tap of every row deinterleaved 2 x VW floats again (3x3 stride 2:
    9 per output vector; SqueezeNet's 64 x 111 x 111 max pooling took 224 us against
    onnxruntime's 78). Max is exact, so the result is the same as the window's max."""
    kw, dw = geo["kw"], geo["dw"]
    nan_v = "" if s.max_keeps_nan else \
        " vn = _mm256_or_ps(vn, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));"
    fix_v = "" if s.max_keeps_nan else " v = _mm256_blendv_ps(v, _mm256_set1_ps(NAN), vn);"
    vn_decl = "" if s.max_keeps_nan else ", vn = _mm256_setzero_ps()"
    taps = []
    for kx in range(kw):
        col = kx * dw
        load = s.even(f"rb + 2 * ox + {col}") if col % 2 == 0 else s.odd(f"rb + 2 * ox + {col - 1}")
        taps.append(f"{{ const {s.vtype} xv = {load}; acc0 = {s.max('acc0', 'xv')};"
                    + track.format(u=0) + " }")
    tap_code = "\n".join("                " + c for c in taps)
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
{{geometry}}    /* this part's row buffer: PW floats, -inf outside the input's columns */
    float *rb = (float *)workspace + part * {scratch_stride('PW')};
    const int32_t c0 = (int32_t)((int64_t)NC * part / parts),
                  c1 = (int32_t)((int64_t)NC * (part + 1) / parts);
    const int32_t left = PL < PW ? PL : PW, ncopy = W < PW - left ? W : PW - left;
    int32_t c, oy, ox, ky, j;
    for (j = 0; j < PW; ++j) rb[j] = -INFINITY;
    for (c = c0; c < c1; ++c) {{
        const float *xc = x + (int64_t)c * H * W;
        float *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            const float *rows[{geo["kh"]}];
            float *yr = yc + (int64_t)oy * OW, *d = rb + left;
            int32_t nr = 0;
            for (ky = 0; ky < KH; ++ky) {{
                const int32_t iy = oy * SH - PT + ky * DH;
                if (iy >= 0 && iy < H) rows[nr++] = xc + (int64_t)iy * W;
            }}
            /* the window's rows, max by column (none: the window is all padding, -inf) */
            j = 0;
            if (nr > 0) {{
                for (; j + {s.vw} <= ncopy; j += {s.vw}) {{
                    {s.vtype} v = {s.load('rows[0] + j')}{vn_decl};
                    int32_t k;
{"" if s.max_keeps_nan else "                    { const __m256 xv = v; vn = _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q); }"}
                    for (k = 1; k < nr; ++k) {{
                        const {s.vtype} xv = {s.load('rows[k] + j')};
                        v = {s.max('v', 'xv')};{nan_v}
                    }}{fix_v}
                    {s.store('d + j', 'v')};
                }}
                for (; j < ncopy; ++j) {{
                    float m = rows[0][j];
                    int32_t k;
                    for (k = 1; k < nr; ++k) m = megcc_maxf(m, rows[k][j]);
                    d[j] = m;
                }}
            }} else {{
                for (; j < ncopy; ++j) d[j] = -INFINITY;
            }}
            for (ox = 0; ox < OW; ox += {s.vw}) {{
                {s.vtype} acc0 = {s.set1('-INFINITY')}{extra.format(u=0)};
{tap_code}
                {apply.format(u=0)}
                {store_row_tail(s, "acc0").replace(chr(10), chr(10) + "                ")}
            }}
        }}
    }}
"""
    body = body.replace("{geometry}", int_constants(body, KH=geo["kh"], SH=geo["sh"],
                                                    DH=geo["dh"]))
    _, pw = plane(geo, s.vw)
    return _max_instr(op, geo, s, name, body, pw,
                      f"{s.label} max pooling, separable: window rows max into a -inf-"
                      f"bordered {pw!r}-float row, then stride 2 along it, {s.vw} outputs "
                      f"per vector")


def lower_avgpool(op: Op, graph: Graph, s: Simd):
    geo = _geometry(op, graph)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    include_pad = int(op.attrs.get("count_include_pad", 0))
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"avgpool_{tag}_f32{'_incpad' if include_pad else ''}_{s.name}{scratch_tag(geo['most'])}"
    row_loop = window_row(
        s, sw, lambda u: f"{s.vtype} acc{u} = {s.zero};",
        lambda u, x: f"acc{u} = {s.add(f'acc{u}', x)};",
        lambda u: f"acc{u} = {s.mul(s.mul(f'acc{u}', 'ry'), s.load(f'rx + ox + {u * s.vw}'))};", 12)
    # taps of a window inside the input (or inside the padded input: count_include_pad,
    # which does not count the overhang past the padding of a ceil-mode window)
    lo, hi = ("-PT", "H + PB") if include_pad else ("0", "H")
    lox, hix = ("-PL", "W + PR") if include_pad else ("0", "W")
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
{{geometry}}    const int32_t OWV = (OW + {s.vw - 1}) / {s.vw} * {s.vw};
    /* this part's zero-padded input plane, then its 1/columns table */
    float *pl = (float *)workspace + part * {scratch_stride('(int64_t)PH * PW + OWV')};
    float *rx = pl + (int64_t)PH * PW;
    const int32_t c0 = (int32_t)((int64_t)NC * part / parts),
                  c1 = (int32_t)((int64_t)NC * (part + 1) / parts);
    int32_t c, oy, ox, ky, kx;
    for (ox = 0; ox < OWV; ++ox) {{
        int32_t n = 0;
        for (kx = 0; kx < KW; ++kx) {{
            const int32_t ix = ox * SW - PL + kx * DW;
            n += ix >= {lox} && ix < {hix};
        }}
        rx[ox] = n > 0 && ox < OW ? 1.0f / (float)n : 1.0f;
    }}
    for (c = c0; c < c1; ++c) {{
        float *yc = y + (int64_t)c * OH * OW;
        megcc_pad_plane(x + (int64_t)c * H * W, H, W, PT, PL, PH, PW, 0.0f, pl, c > c0);
        for (oy = 0; oy < OH; ++oy) {{
            const float *row = pl + (int64_t)oy * SH * PW;
            float *yr = yc + (int64_t)oy * OW;
            int32_t n = 0;
            {s.vtype} ry;
            for (ky = 0; ky < KH; ++ky) {{
                const int32_t iy = oy * SH - PT + ky * DH;
                n += iy >= {lo} && iy < {hi};
            }}
            ry = {s.set1("n > 0 ? 1.0f / (float)n : 1.0f")};
            {row_loop}
        }}
    }}
"""
    body = body.replace("{geometry}", int_constants(body, KH=kh, KW=kw, SH=sh, SW=sw, DH=dh,
                                                    DW=dw))
    kernel = split_kernel(name, body, pool_parts(geo["most"]), AVG_PARAMS, ("math",), isa=s.isa)
    ph, pw = plane(geo, s.vw)
    pads = geo["pads"]
    params = AVG_PARAMS.pack(NC=geo["n"] * geo["c"], H=geo["h"], W=geo["w"], OH=geo["oh"],
                             OW=geo["ow"], PT=pads[0], PL=pads[1], PH=ph, PW=pw, PB=pads[2],
                             PR=pads[3])
    owv = -(-geo["ow"] // s.vw) * s.vw
    parts = _scratch_parts(geo)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  workspace_bytes=scratch_bytes(parts, ph * pw + owv),
                  note=f"{s.label} average pooling over a zero-padded {ph!r}x{pw!r} plane, {s.vw} "
                       f"outputs per vector, sums scaled by 1/rows x 1/columns")]


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    return None if pool_geometry(op, graph) is not None else "not a 2-D pooling it handles"


@implements("MaxPool", dtypes=F32, requires="f32.direct", applies=_applies,
            cost=lambda op, graph, isa: pool_cost(op, graph, isa, True),
            label=lambda isa: f"{isa.vec('f32').direct.name} plane max",
            name="pool.plane_simd_f32.max")
def emit_max(op: Op, graph: Graph, isa: IsaSpec):
    return lower_maxpool(op, graph, isa.vec("f32").direct)


@implements("AveragePool", dtypes=F32, requires="f32.direct", applies=_applies,
            cost=lambda op, graph, isa: pool_cost(op, graph, isa, True),
            label=lambda isa: f"{isa.vec('f32').direct.name} plane average",
            name="pool.plane_simd_f32.average")
def emit_average(op: Op, graph: Graph, isa: IsaSpec):
    return lower_avgpool(op, graph, isa.vec("f32").direct)
