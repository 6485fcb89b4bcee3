"""QLinearConv and ConvInteger, portable C: a direct loop over (x - x_zp) * (w - w_zp[oc])
in int32 with the int32 bias added to the accumulator, then requantized per output channel
(requant.py). Dense, grouped, depthwise, strided, dilated and padded 1-D/2-D convolutions;
padded cells hold the input zero point, i.e. contribute nothing."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...ir.quant import check_scale, check_zero_point, operand
from ..conv.geometry import conv_geometry, conv_schema
from ..registry import implements
from .requant import CTYPE, SHORT, Requant, wrapping_add

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"))
QTYPES = ("int8", "uint8")


def geometry(op: Op, graph: Graph, x_name: str, w_name: str, y_name: str) -> dict:
    if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise graph.error(f"auto_pad {op.attrs['auto_pad']} is not supported on quantized "
                          "convolutions (give explicit pads)", op)
    view = Op("Conv", [x_name, w_name], [y_name], dict(op.attrs), op.name)
    one_d, (kh, kw), (sh, sw), (dh, dw), pads = conv_geometry(view, graph)
    x, w, y = (graph.tensors[n] for n in (x_name, w_name, y_name))
    group = int(op.attrs.get("group", 1))
    c = x.shape[1]
    if group < 1 or c % group or w.shape[1] * group != c or y.shape[1] % group:
        raise graph.error(f"input has {c} channels but the weights expect {w.shape[1]} x "
                          f"group {group}", op)
    h, wd = (1, x.shape[2]) if one_d else x.shape[2:]
    oh, ow = (1, y.shape[2]) if one_d else y.shape[2:]
    return dict(N=x.shape[0], C=c, H=h, W=wd, OC=y.shape[1], OH=oh, OW=ow, G=group,
                PT=pads[0], PL=pads[1], KH=kh, KW=kw, SH=sh, SW=sw, DH=dh, DW=dw)


def _loop(xt: str, wt: str, x_zp: str, w_zp: str, epilogue: str, head: str) -> str:
    """The direct convolution over every output element, then `epilogue` (acc -> y[yi])."""
    return f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const {wt} *w = (const {wt} *)in_ptrs[1];
{head}
    const int32_t ICG = C / G, OCG = OC / G;  /* channels per group */
    const int32_t xz = {x_zp};
    int32_t b, o, oy, ox, ic, ky, kx;
    int64_t yi = 0;
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)(o / OCG) * ICG) * H * W;
            const {wt} *wo = w + (int64_t)o * ICG * KH * KW;
            const int32_t wz = {w_zp};
            {{
            OC_SETUP
            for (oy = 0; oy < OH; ++oy)
                for (ox = 0; ox < OW; ++ox, ++yi) {{
                    int32_t acc = 0;
                    for (ic = 0; ic < ICG; ++ic) {{
                        const {xt} *xc = xg + (int64_t)ic * H * W;
                        const {wt} *wk = wo + (int64_t)ic * KH * KW;
                        for (ky = 0; ky < KH; ++ky) {{
                            const int32_t iy = oy * SH - PT + ky * DH;
                            if (iy < 0 || iy >= H) continue;
                            for (kx = 0; kx < KW; ++kx) {{
                                const int32_t ix = ox * SW - PL + kx * DW;
                                if (ix < 0 || ix >= W) continue;
                                acc += ((int32_t)xc[(int64_t)iy * W + ix] - xz) *
                                       ((int32_t)wk[ky * KW + kx] - wz);
                            }}
                        }}
                    }}
                    {epilogue}
                }}
            }}
        }}
"""


def fixed_point_operands(op: Op, graph: Graph, rq, scale_slots, count: int,
                         alpha: float = 1.0, per_column: bool = True):
    """Fixed-point requantization (requant.py): the Q31 multipliers and exponents of
    alpha * s_in * s_w[c] / s_out as two int32 constants (one value, or `count` when the
    weight scale has one per channel), and the C declarations reading them (`qmv`, `qev`)
    from the instruction's two last inputs; the float scales stay inputs, unused."""
    from .requant import fixed_point_problem, q31_multipliers

    vals = []
    for k in scale_slots:
        t = graph.tensors[op.inputs[k]]
        if not t.is_const:
            raise graph.error("fixed-point requantization needs constant scales", op)
        vals.append(np.asarray(t.data, np.float64).reshape(-1))
    s_in, s_w, s_out = vals
    real = alpha * s_in[0] * s_w / s_out[0]
    why = fixed_point_problem(real)
    if why:
        raise graph.error(why, op)
    rq.set_clip_scale(float(s_out[0]))
    m, e = q31_multipliers(real)
    names = []
    for what, data in (("q31_mult", m), ("q31_exp", e)):
        names.append(graph.unique_name(f"{op.outputs[0]}__{what}"))
        graph.add_const(names[-1], data.astype(np.int32), "int32")
    return names


def fixed_point_head(at: int) -> str:
    """C: the fixed-point operands at instruction inputs `at`, `at + 1`; the float scales,
    read by the shared prologue, unused."""
    return (f"\n    const int32_t *qmv = (const int32_t *)in_ptrs[{at}];\n"
            f"    const int32_t *qev = (const int32_t *)in_ptrs[{at + 1}];\n"
            "    (void)xs; (void)ws; (void)so;\n")


def portable_cost(op: Op, graph: Graph, isa) -> float:
    """About one cycle per multiply-add of the direct loop (bounds checks per tap)."""
    w, y = graph.tensors[op.inputs[3]], graph.tensors[op.outputs[0]]
    macs = 1
    for d in tuple(y.shape) + tuple(w.shape[1:]):
        macs *= d
    return float(macs)


def qlinear_conv_parts(op: Op, graph: Graph) -> dict:
    """What every QLinearConv implementation shares: the checked operands (compacted
    instruction inputs: x, w, x_scale, x_zp, w_scale, w_zp, y_scale, y_zp, [bias]), the C
    prologue reading scales and zero points, the per-channel setup, the epilogue and the
    kernel-name variant."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    y = graph.tensors[op.outputs[0]]
    for k, what in ((1, "x_scale"), (4, "w_scale"), (6, "y_scale")):
        check_scale(graph, op, k, what)
    check_zero_point(graph, op, 2, x.dtype, "x_zero_point")
    check_zero_point(graph, op, 5, w.dtype, "w_zero_point")
    check_zero_point(graph, op, 7, y.dtype, "y_zero_point")
    geo = geometry(op, graph, op.inputs[0], op.inputs[3], op.outputs[0])
    oc = geo["OC"]
    ws_pc = graph.tensors[op.inputs[4]].numel > 1
    wz_pc = operand(graph, op, 5) is not None and graph.tensors[op.inputs[5]].numel > 1
    for k, pc, what in ((4, ws_pc, "w_scale"), (5, wz_pc, "w_zero_point")):
        if pc and graph.tensors[op.inputs[k]].numel != oc:
            raise graph.error(f"{what} has {graph.tensors[op.inputs[k]].numel} values for "
                              f"{oc} output channels", op)
    bias = operand(graph, op, 8)
    if bias is not None:
        b = graph.tensors[bias]
        if b.dtype != "int32" or b.numel != oc:
            raise graph.error(f"the bias must be int32 with {oc} values (has {b.dtype} "
                              f"{list(b.shape)})", op)
    rq = Requant(op, graph, y.dtype)
    ins = [op.inputs[0], op.inputs[3], op.inputs[1], op.inputs[2] or "", op.inputs[4],
           operand(graph, op, 5) or "", op.inputs[6], operand(graph, op, 7) or "", bias or ""]
    fixed = fixed_point_operands(op, graph, rq, (1, 4, 6), oc) if rq.fixed else None
    has = [bool(n) for n in ins]
    ins = [n for n in ins if n]
    pos = {slot: sum(has[:slot]) for slot, present in enumerate(has) if present}
    zp = lambda slot, t, idx: (f"(int32_t)((const {CTYPE[t]} *)in_ptrs[{pos[slot]}])[{idx}]"  # noqa: E731
                               if slot in pos else "0")
    head = f"""    {rq.ctype} *y = ({rq.ctype} *)out_ptrs[0];
    const float xs = *(const float *)in_ptrs[{pos[2]}];
    const float *ws = (const float *)in_ptrs[{pos[4]}];
    const float so = *(const float *)in_ptrs[{pos[6]}];
    const int32_t yz = {zp(7, y.dtype, 0)};
    {"const int32_t *bias = (const int32_t *)in_ptrs[%d];" % pos[8] if 8 in pos else ""}
    {rq.setup("yz")}"""
    # onnxruntime: output scale per channel = x_scale * w_scale[c] / y_scale (float32)
    oc_setup = (f"const float wsc = ws[{'o' if ws_pc else '0'}];\n"
                + ("            const float rs = xs * wsc;\n" if rq.uses_real_scale else
                   "            const float mult = xs * wsc / so;\n") +
                f"            const int32_t bo = {'bias[o]' if 8 in pos else '0'};")
    if fixed:  # the Q31 multipliers and exponents per channel, instead of float scales
        head += fixed_point_head(len(ins))
        ins += fixed
        oc_setup = (f"const int32_t qm = qmv[{'o' if ws_pc else '0'}], "
                    f"qe = qev[{'o' if ws_pc else '0'}];\n"
                    f"            const int32_t bo = {'bias[o]' if 8 in pos else '0'};")
    variant = (f"{SHORT[x.dtype]}{SHORT[w.dtype]}_{rq.tag}"
               f"{'_wpc' if ws_pc else ''}{'_wzpc' if wz_pc else ''}"
               f"{'' if 3 in pos else '_noxz'}{'' if 5 in pos else '_nowz'}"
               f"{'' if 7 in pos else '_noyz'}{'_bias' if 8 in pos else ''}")
    return dict(ins=ins, head=head, oc_setup=oc_setup, rq=rq, geo=geo, variant=variant,
                ws_pc=ws_pc,
                xt=CTYPE[x.dtype], wt=CTYPE[w.dtype], x_zp=zp(3, x.dtype, 0),
                w_zp=zp(5, w.dtype, "o" if wz_pc else "0"))


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), cost=portable_cost)
def lower_qlinear_conv(op: Op, graph: Graph):
    """Inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias int32]."""
    pt = qlinear_conv_parts(op, graph)
    rq = pt["rq"]
    geo = pt["geo"]
    if geo["G"] == geo["C"] == geo["OC"] and geo["G"] > 1:
        return [_depthwise(op, pt)]
    epilogue = f"y[yi] = {rq.store(rq.value(wrapping_add('acc', 'bo'), 'mult', 'rs'), 'yz')};"
    body = _loop(pt["xt"], pt["wt"], pt["x_zp"], pt["w_zp"], epilogue, pt["head"]) \
        .replace("OC_SETUP", pt["oc_setup"])
    kernel = make_kernel(f"qlinear_conv_{pt['variant']}", body, PARAMS, rq.helpers)
    return [Instr(kernel, pt["ins"], [op.outputs[0]], PARAMS.pack(**pt["geo"]),
                  note="int8 direct convolution")]


def _depthwise(op: Op, pt: dict) -> Instr:
    """One filter per channel (channel multiplier 1), a row of outputs at a time: each tap
    adds its weight times a run of input row cells to an int32 row of accumulators (a
    unit-stride loop when the stride is 1, which the C compiler vectorises), the valid
    output range of each tap computed instead of tested per element. Window, stride and
    dilation compiled in; the integer sums equal the general loop's."""
    geo, rq, xt, wt = pt["geo"], pt["rq"], pt["xt"], pt["wt"]
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("KH", "KW", "SH", "SW", "DH", "DW"))
    epilogue = f"yrow[ox] = {rq.store(rq.value(wrapping_add('acc', 'bo'), 'mult', 'rs'), 'yz')};"
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const {wt} *w = (const {wt} *)in_ptrs[1];
    int32_t *accs = (int32_t *)workspace;  /* one output row of int32 sums */
{pt["head"]}
    const int32_t xz = {pt["x_zp"]};
    int32_t b, o, oy, ox, ky, kx;
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o) {{
            const {xt} *xc = x + ((int64_t)b * C + o) * H * W;
            {rq.ctype} *yc = y + ((int64_t)b * OC + o) * OH * OW;
            const int32_t wz = {pt["w_zp"]};
            {{
            {pt["oc_setup"]}
            for (oy = 0; oy < OH; ++oy) {{
                {rq.ctype} *yrow = yc + (int64_t)oy * OW;
                for (ox = 0; ox < OW; ++ox) accs[ox] = 0;
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy < 0 || iy >= H) continue;
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const int32_t wv = (int32_t)w[(int64_t)o * {kh * kw} + ky * {kw} + kx] - wz;
                        const int32_t off = kx * {dw} - PL;  /* input column = ox * stride + off */
                        const int32_t first = off >= 0 ? 0 : (-off + {sw - 1}) / {sw};
                        int32_t end = W - 1 - off < 0 ? 0 : (W - 1 - off) / {sw} + 1;
                        const {xt} *r = xc + (int64_t)iy * W;  /* (off may be < 0) */
                        end = end < OW ? end : OW;
                        for (ox = first; ox < end; ++ox)
                            accs[ox] += ((int32_t)r[ox * {sw} + off] - xz) * wv;
                    }}
                }}
                for (ox = 0; ox < OW; ++ox) {{
                    const int32_t acc = accs[ox];
                    {epilogue}
                }}
            }}
            }}
        }}
"""
    name = f"qlinear_dwconv_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, rq.helpers)
    return Instr(kernel, pt["ins"], [op.outputs[0]], PARAMS.pack(**geo),
                 workspace_bytes=4 * geo["OW"], note="int8 depthwise convolution by rows")


@implements("ConvInteger", dtypes=QTYPES, typed_inputs=(0, 1))
def lower_conv_integer(op: Op, graph: Graph):
    """Inputs: x, w, [x_zp], [w_zp] (scalar or per output channel); int32 output."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    check_zero_point(graph, op, 2, x.dtype, "x_zero_point")
    check_zero_point(graph, op, 3, w.dtype, "w_zero_point")
    geo = geometry(op, graph, op.inputs[0], op.inputs[1], op.outputs[0])
    xz, wz = operand(graph, op, 2), operand(graph, op, 3)
    wz_pc = wz is not None and graph.tensors[wz].numel > 1
    if wz_pc and graph.tensors[wz].numel != geo["OC"]:
        raise graph.error(f"w_zero_point has {graph.tensors[wz].numel} values for "
                          f"{geo['OC']} output channels", op)
    ins = [op.inputs[0], op.inputs[1]] + [n for n in (xz, wz) if n]
    xz_expr = f"(int32_t)((const {CTYPE[x.dtype]} *)in_ptrs[2])[0]" if xz else "0"
    wz_expr = (f"(int32_t)((const {CTYPE[w.dtype]} *)in_ptrs[{3 if xz else 2}])"
               f"[{'o' if wz_pc else '0'}]") if wz else "0"
    head = "    int32_t *y = (int32_t *)out_ptrs[0];"
    body = _loop(CTYPE[x.dtype], CTYPE[w.dtype], xz_expr, wz_expr, "y[yi] = acc;", head) \
        .replace("OC_SETUP", "")
    name = (f"conv_integer_{SHORT[x.dtype]}{SHORT[w.dtype]}{'' if xz else '_noxz'}"
            f"{'_wzpc' if wz_pc else ('' if wz else '_nowz')}")
    kernel = make_kernel(name, body, PARAMS)
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo),
                  note="int8 direct convolution, int32 output")]
